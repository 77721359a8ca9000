"""Writing custom-format files: records checked as the dataset reads them, files written whole.

Every converter builds its records with :func:`make_record` and writes them with
:func:`write_custom_splits`, which checks all records of all splits (as
:func:`~dit_sam_mm.datasets.custom_format.read_custom_file` would read them) before it writes
anything, and writes each file to a temporary file renamed when complete: a refused input or a
kill leaves no partial file.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

from ..checkpoint.safe_load import atomic_write
from .custom_format import parse_records

RecordId = Union[int, str]


def make_record(record_id: RecordId, image: str, width: int, height: int,
                sentences: Sequence[Union[str, dict]], objects: Sequence[dict] = (),
                meta: Optional[dict] = None) -> dict:
    """One record of the custom format.

    Args:
        record_id (int | str): The record's id (unique in its file).
        image (str): Image path relative to the image root.
        width (int): Image width.
        height (int): Image height.
        sentences (Sequence[str | dict]): Texts or ``{'text', 'id'}`` dicts.
        objects (Sequence[dict]): ``{'polygons': ...}``, ``{'rle': ...}`` or ``{'mask': ...}``
            dicts (with an optional ``category_id``); none means no target.
        meta (dict, optional): Kept in the record, ignored by the dataset.

    Returns:
        dict: The record (``no_target: true`` when ``objects`` is empty).
    """
    record = dict(id=record_id, image=image, width=int(width), height=int(height),
                  sentences=list(sentences))
    if objects:
        record['objects'] = list(objects)
    else:
        record['no_target'] = True
    if meta:
        record['meta'] = meta
    return record


def dump_record(record: dict) -> str:
    """One line of a custom-format file (UTF-8 JSON without NaN, no line break)."""
    return json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(',', ':'))


def split_file_path(out_dir: str, split: str) -> str:
    """The file of ``split`` in ``out_dir`` (``out_dir/{split}.jsonl``)."""
    return osp.join(out_dir, f'{split}.jsonl')


def write_custom_splits(splits: Dict[str, List[dict]], out_dir: str, image_root: str,
                        overwrite: bool = False) -> Dict[str, str]:
    """Check the records of every split, then write ``out_dir/{split}.jsonl`` for each.

    Args:
        splits (dict[str, list[dict]]): Split name -> records.
        out_dir (str): Folder of the files (created if needed).
        image_root (str): The image root the records' paths are relative to (mask files are
            read there when a record names one).
        overwrite (bool): Replace existing files. Defaults to False.

    Returns:
        dict[str, str]: Split -> file written.

    Raises:
        FileExistsError: A file exists and ``overwrite`` is False (nothing is written).
        ValueError: No records, or a record breaks the format (nothing is written).
    """
    if not any(splits.values()):
        raise ValueError('no records to write: the input holds no sentence')
    paths = {split: split_file_path(out_dir, split) for split in splits}
    existing = [path for path in paths.values() if osp.exists(path)]
    if existing and not overwrite:
        raise FileExistsError(f'{existing[0]} exists; give --overwrite to replace it')
    for split, records in splits.items():
        parse_records(enumerate(records, start=1), paths[split], split, image_root)
    for split, records in splits.items():
        with atomic_write(paths[split]) as f:
            for record in records:
                f.write(dump_record(record).encode('utf-8') + b'\n')
    return paths

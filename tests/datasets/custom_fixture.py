"""The REFER and gRefCOCO fixture folders of conftest.py rewritten in the custom format.

Each ref becomes one record with the same id, image, sentences (ids kept) and target objects
(polygons or RLE copied from instances.json), so a ``CustomReferDataset`` on these files can be
compared field by field with ``RefCOCODataset`` / ``GRefCOCODataset`` on the fixture.
"""
import json
from pathlib import Path
from typing import Dict, List

from dit_sam_mm.datasets import load_grefs, load_refs, read_instances_json
from dit_sam_mm.datasets.custom_writer import dump_record, make_record

SPLITS = ('train', 'val', 'testA', 'testB')


def _object(ann: dict) -> dict:
    key = 'polygons' if isinstance(ann['segmentation'], list) else 'rle'
    return {key: ann['segmentation'], 'category_id': ann['category_id']}


def custom_records(fixture_root: Path, generalized: bool = False) -> Dict[str, List[dict]]:
    """Split -> records of the REFER fixture folder (``generalized``: the gRefCOCO one)."""
    instances = read_instances_json(str(fixture_root / 'instances.json'))
    annotations = {ann['id']: ann for ann in instances['annotations']}
    images = {image['id']: image for image in instances['images']}
    refs = (load_grefs(str(fixture_root / 'grefs(unc).json')) if generalized else
            load_refs(str(fixture_root / 'refs(unc).p')))
    splits: Dict[str, List[dict]] = {split: [] for split in SPLITS}
    for ref in refs:
        ann_ids = ref['ann_id'] if isinstance(ref['ann_id'], list) else [ref['ann_id']]
        image = images[ref['image_id']]
        splits[ref['split']].append(make_record(
            ref['ref_id'], image['file_name'], image['width'], image['height'],
            [dict(id=s['sent_id'], text=s['raw']) for s in ref['sentences']],
            [_object(annotations[i]) for i in ann_ids]))
    return splits


def write_custom_folder(root: Path, splits: Dict[str, List[dict]]) -> Path:
    """Write ``root/{split}.jsonl`` for each split (records as they are, unchecked)."""
    root.mkdir(parents=True, exist_ok=True)
    for split, records in splits.items():
        lines = [r if isinstance(r, str) else dump_record(r) for r in records]
        (root / f'{split}.jsonl').write_text(''.join(line + '\n' for line in lines))
    return root


def write_lines(path: Path, values: list) -> Path:
    """Write JSON values (or raw strings) one per line."""
    path.write_text(''.join((v if isinstance(v, str) else json.dumps(v)) + '\n'
                            for v in values))
    return path

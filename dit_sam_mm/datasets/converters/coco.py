"""From a COCO ``instances.json`` and a table of (annotation ids, sentence) to the custom format.

The table is a CSV file with a header, or a JSON list of objects, with the columns:

- ``ann_ids``: the annotation id of the object the sentence names, several separated by spaces
  (a JSON list in a JSON file), or empty / ``-1`` when it names nothing in the image;
- ``sentence``: the text;
- ``image_id`` (needed for a sentence without annotations, else checked against them),
  ``split`` (else the converter's ``split``) and ``id`` (the record id, else ``ann:<ids>``),
  all optional.

Sentences with the same split, image and annotation ids form one record. Polygons and RLE are
copied; a polygon of fewer than 3 points (COCO holds a few) is left out of its annotation.
"""
import csv
import os.path as osp
from typing import Dict, Iterator, List, Tuple

from ..custom_writer import make_record
from ..refcoco import read_instances_json, read_json_file

COLUMNS = ('ann_ids', 'sentence', 'image_id', 'split', 'id')


def _table_rows(path: str) -> Iterator[Tuple[str, dict]]:
    """``(where, row)`` of each row of a CSV or JSON sentence table."""
    if path.lower().endswith('.json'):
        rows = read_json_file(path, 'a JSON list of sentence rows')
        if not isinstance(rows, list):
            raise ValueError(f'{path} holds a JSON {type(rows).__name__}, not a list of rows')
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ValueError(f'{path}, row {i}: must be an object with {list(COLUMNS)}')
            yield f'{path}, row {i}', row
        return
    if not osp.isfile(path):
        raise FileNotFoundError(f'sentence table not found: {path}')
    with open(path, newline='', encoding='utf-8') as f:
        try:
            reader = csv.DictReader(f)
            missing = [c for c in ('ann_ids', 'sentence') if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f'{path}, line 1: the header lacks the column(s) {missing}')
            for row in reader:
                yield f'{path}, line {reader.line_num}', row
        except UnicodeDecodeError:
            raise ValueError(f'{path}: not UTF-8 text') from None
        except csv.Error as err:
            raise ValueError(f'{path}: not a CSV table: {err}') from None


def _ids(value: object, where: str, column: str) -> List[int]:
    """A list of integer ids from a JSON list / int or a space-separated CSV cell."""
    items = value if isinstance(value, list) else str(value or '').split()
    try:
        ids = [int(item) if not isinstance(item, bool) else None for item in items]
    except (TypeError, ValueError):
        ids = [None]
    if None in ids:
        raise ValueError(f'{where}: {column}: expected integer ids, got {value!r}')
    return ids


def _objects(annotations: List[dict], where: str) -> List[dict]:
    objects = []
    for ann in annotations:
        segmentation = ann.get('segmentation')
        if isinstance(segmentation, list):
            kept = [p for p in segmentation if isinstance(p, list) and len(p) >= 6]
            if not kept:
                raise ValueError(f'{where}: annotation {ann["id"]} has no polygon of 3 points '
                                 'or more')
            objects.append(dict(polygons=kept, category_id=ann.get('category_id')))
        elif isinstance(segmentation, dict):
            objects.append(dict(rle=segmentation, category_id=ann.get('category_id')))
        else:
            raise ValueError(f'{where}: annotation {ann["id"]} has no segmentation')
    return [{k: v for k, v in obj.items() if v is not None} for obj in objects]


def convert_coco(instances_file: str, table: str, split: str = 'train'
                 ) -> Dict[str, List[dict]]:
    """Read a COCO ``instances.json`` and a sentence table into custom-format records.

    Args:
        instances_file (str): The COCO annotations; record images are its ``file_name``s.
        table (str): The sentence table (``.csv`` or ``.json``, see the module documentation).
        split (str): Split of rows without a ``split``. Defaults to ``'train'``.

    Returns:
        dict[str, list[dict]]: Split -> records.

    Raises:
        FileNotFoundError: A file is missing.
        ValueError: A row names an unknown annotation or image, annotations of several images,
            an empty sentence, or breaks the table's columns (file and row named).
    """
    instances = read_instances_json(instances_file)
    images = {image['id']: image for image in instances['images']}
    annotations = {ann['id']: ann for ann in instances['annotations']}
    records: Dict[Tuple, dict] = {}
    for where, row in _table_rows(table):
        sentence = row.get('sentence')
        if not isinstance(sentence, str) or not sentence.strip():
            raise ValueError(f'{where}: sentence: empty or missing')
        ann_ids = [i for i in _ids(row.get('ann_ids'), where, 'ann_ids') if i != -1]
        unknown = [i for i in ann_ids if i not in annotations]
        if unknown:
            raise ValueError(f'{where}: ann_ids: {unknown} not in {instances_file}')
        image_ids = {annotations[i]['image_id'] for i in ann_ids}
        given = row.get('image_id')
        if given not in (None, ''):
            image_ids.add(_ids(given, where, 'image_id')[0])
        if len(image_ids) != 1:
            raise ValueError(f'{where}: ' + ('a sentence without annotations needs an image_id'
                                             if not image_ids else
                                             f'the annotations and image_id name the images '
                                             f'{sorted(image_ids)}; a record is on one image'))
        image_id = image_ids.pop()
        if image_id not in images:
            raise ValueError(f'{where}: image_id {image_id} is not in {instances_file}')
        row_split = str(row.get('split') or split)
        key = (row_split, image_id, tuple(sorted(set(ann_ids))))
        if key not in records:
            image = images[image_id]
            record_id = row.get('id')
            if record_id in (None, ''):
                record_id = ('ann:' + ','.join(map(str, key[2])) if ann_ids else
                             f'image:{image_id}:none')
            records[key] = make_record(
                record_id, image['file_name'], image['width'], image['height'], [],
                _objects([annotations[i] for i in key[2]], where))
        records[key]['sentences'].append(sentence)
    splits: Dict[str, List[dict]] = {}
    for (row_split, _, _), record in records.items():
        splits.setdefault(row_split, []).append(record)
    return splits

"""The custom referring-segmentation format: one JSON Lines file per split.

Each non-blank line is one JSON object, a *record*: one image, the sentences that refer to the
same target in it, and the target::

    {"id": "street-7", "image": "street/0007.jpg", "width": 640, "height": 480,
     "sentences": ["the red car", {"id": "s2", "text": "car on the left"}],
     "objects": [{"polygons": [[x1, y1, x2, y2, x3, y3, ...]], "category_id": 3},
                 {"rle": {"size": [480, 640], "counts": "..."}},
                 {"mask": "street/0007_car.png"}]}
    {"id": "street-8", "image": "street/0007.jpg", "width": 640, "height": 480,
     "sentences": ["the blue bus"], "no_target": true}

- ``id`` (int or string, unique in the file), ``image`` (a path relative to the image root:
  neither absolute nor leaving it with ``..``), ``width`` and ``height`` (pixels), ``sentences``
  (a string or ``{"text", "id"}``; ids default to the position and are unique in the record)
  are required.
- ``objects``: the target, one or more objects, each given as ``polygons`` (COCO polygons, at
  least 3 points each), ``rle`` (COCO RLE, compressed or not, of the image's size) or ``mask``
  (a mask image relative to the image root, non-zero = object, of the image's size), with an
  optional integer ``category_id``. The target is their union.
- ``no_target: true`` (the gRefCOCO meaning: the sentences name nothing in the image) instead of
  ``objects``. An empty ``objects`` without it is refused, so a target cannot go missing by
  accident.
- ``meta``: any JSON object, kept by converters (e.g. the score of a prediction) and ignored by
  the dataset. Any other key is refused (a misspelt key would otherwise be ignored silently).

:func:`read_custom_file` reads a file into REFER-shaped refs, images and annotations, the shapes
``RefCOCODataset`` and ``GRefCOCODataset`` build their data lists from. Every error names the
file, the line and the field.
"""
import json
import math
import os.path as osp
import posixpath
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from .mask_codec import check_rle, encode_mask, read_mask_file

RECORD_KEYS = ('id', 'image', 'width', 'height', 'sentences', 'objects', 'no_target', 'meta')
OBJECT_KEYS = ('polygons', 'rle', 'mask', 'category_id')
TARGET_KEYS = ('polygons', 'rle', 'mask')


class CustomFormatError(ValueError):
    """A record of a custom-format file breaks the format (the message names file and line)."""


class CustomAnnotations(NamedTuple):
    """One custom-format file in REFER's shapes.

    Attributes:
        refs (list[dict]): One per record: ``ref_id``, ``image_id`` (the image path), ``split``,
            ``sentences`` (``[{'sent_id', 'raw'}]``), ``ann_id`` (list of annotation ids, empty
            for no target), ``no_target``, ``line``.
        images (dict): Image path -> ``{'file_name', 'width', 'height', 'line'}``.
        annotations (dict): Annotation id -> ``{'id', 'image_id', 'segmentation',
            'category_id'}``; ids count from 1 in file order.
    """
    refs: List[dict]
    images: Dict[str, dict]
    annotations: Dict[int, dict]


def iter_tab_lines(path: str, columns: Sequence[str]) -> Iterator[Tuple[int, str, List[str]]]:
    """``(line number, where, fields)`` of each line of a UTF-8 file of tab-separated
    ``columns`` (``where`` names the file and line for messages); blank lines and lines starting
    with ``#`` are skipped, fields are stripped.

    Raises:
        ValueError: A line is not UTF-8, or has another number of fields (file and line named).
    """
    layout = '<TAB>'.join(columns)
    with open(path, 'rb') as f:
        for number, raw in enumerate(f, start=1):
            where = f'{path}, line {number}'
            try:
                line = raw.decode('utf-8').rstrip('\r\n')
            except UnicodeDecodeError:
                raise ValueError(f'{where}: not UTF-8 text') from None
            if not line.strip() or line.startswith('#'):
                continue
            fields = line.split('\t')
            if len(fields) != len(columns):
                raise ValueError(f'{where}: expected {layout} ({len(columns)} fields), got '
                                 f'{len(fields)}')
            yield number, where, [field.strip() for field in fields]


def iter_json_lines(path: str) -> Iterator[Tuple[int, object]]:
    """The JSON value of every non-blank line of a file, with its line number (from 1).

    Args:
        path (str): The file.

    Yields:
        tuple[int, object]: Line number and value.

    Raises:
        FileNotFoundError: The file does not exist.
        CustomFormatError: A line is not UTF-8 JSON, holds NaN or infinity, or nests too deeply.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'annotation file not found: {path}')

    def refuse_constant(name: str) -> None:
        raise ValueError(f'{name} is not a number JSON allows')

    with open(path, 'rb') as f:
        for number, raw in enumerate(f, start=1):
            try:
                text = raw.decode('utf-8').rstrip('\r\n')
                if not text.strip():
                    continue
                value = json.loads(text, parse_constant=refuse_constant)
            except UnicodeDecodeError as err:
                raise CustomFormatError(f'{path}, line {number}: not UTF-8 text (byte '
                                        f'{err.start})') from None
            except json.JSONDecodeError as err:
                raise CustomFormatError(f'{path}, line {number}: not valid JSON: {err.msg} '
                                        f'(column {err.colno})') from None
            except RecursionError:
                raise CustomFormatError(f'{path}, line {number}: JSON nested too deeply') \
                    from None
            except ValueError as err:
                raise CustomFormatError(f'{path}, line {number}: {err}') from None
            yield number, value


def _is_int(value: object) -> bool:
    return type(value) is int


def check_relative_path(path: object) -> str:
    """A file path of the format, refused when absolute or leaving its root.

    Args:
        path (object): The value of an ``image`` or ``mask`` field.

    Returns:
        str: The path, normalised with forward slashes.

    Raises:
        ValueError: Not a non-empty string, absolute, or leaving the root with ``..``.
    """
    if not isinstance(path, str) or not path.strip():
        raise ValueError(f'must be a non-empty path, got {path!r}')
    normal = posixpath.normpath(path.replace('\\', '/'))
    if normal.startswith('/') or osp.isabs(path) or (len(normal) > 1 and normal[1] == ':'):
        raise ValueError(f'{path!r} is absolute; give it relative to the image root')
    if normal == '..' or normal.startswith('../'):
        raise ValueError(f'{path!r} leaves the image root')
    return normal


def _sentences(value: object) -> List[dict]:
    """The record's sentences as ``[{'sent_id', 'raw'}]``."""
    if not isinstance(value, list) or not value:
        raise ValueError('sentences: must be a non-empty list of sentences')
    sentences, seen = [], set()
    for position, item in enumerate(value):
        field = f'sentences[{position}]'
        if isinstance(item, dict):
            unknown = sorted(set(item) - {'text', 'id'})
            if unknown:
                raise ValueError(f'{field}: unknown key(s) {unknown}; a sentence has "text" and '
                                 'an optional "id"')
            text, sent_id = item.get('text'), item.get('id', position)
        else:
            text, sent_id = item, position
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f'{field}: empty sentence {text!r}')
        if not (_is_int(sent_id) or isinstance(sent_id, str)):
            raise ValueError(f'{field}.id: must be an integer or a string, got {sent_id!r}')
        if sent_id in seen:
            raise ValueError(f'{field}.id: {sent_id!r} repeats an id of this record')
        seen.add(sent_id)
        sentences.append(dict(sent_id=sent_id, raw=text))
    return sentences


def _polygons(value: object) -> List[List[float]]:
    if not isinstance(value, list) or not value:
        raise ValueError('must be a non-empty list of polygons [x1, y1, x2, y2, ...]')
    for i, polygon in enumerate(value):
        # Checked as a whole (fast for 100k records): only ints and floats, and a finite sum.
        if (not isinstance(polygon, list) or not set(map(type, polygon)) <= {int, float}
                or not math.isfinite(sum(polygon))):
            raise ValueError(f'[{i}] must be a list of finite numbers')
        if len(polygon) < 6 or len(polygon) % 2:
            raise ValueError(f'[{i}] has {len(polygon)} numbers; a polygon has x, y pairs of '
                             'at least 3 points (6 numbers)')
    return value


def _segmentation(obj: object, size: Tuple[int, int], mask_root: str) -> object:
    """The COCO segmentation of one object (a mask file becomes a compressed RLE)."""
    if not isinstance(obj, dict):
        raise ValueError(f': must be an object with one of {list(TARGET_KEYS)}')
    unknown = sorted(set(obj) - set(OBJECT_KEYS))
    given = [key for key in TARGET_KEYS if key in obj]
    if unknown or len(given) != 1:
        raise ValueError(f': needs exactly one of {list(TARGET_KEYS)} (and an optional '
                         f'"category_id"), got keys {sorted(obj)}')
    if 'category_id' in obj and not _is_int(obj['category_id']):
        raise ValueError(f'.category_id: must be an integer, got {obj["category_id"]!r}')
    key = given[0]
    width, height = size
    try:
        if key == 'polygons':
            return _polygons(obj[key])
        if key == 'rle':
            if not isinstance(obj[key], dict):
                raise ValueError('must be {"size": [height, width], "counts": ...}')
            check_rle(obj[key], height, width)
            return dict(size=obj[key]['size'], counts=obj[key]['counts'])
        path = osp.join(mask_root, check_relative_path(obj[key]))
        return encode_mask(read_mask_file(path, size))
    except (ValueError, OSError) as err:
        raise ValueError(f'.{key}: {err}') from None


def parse_record(value: object, mask_root: str = '') -> Tuple[dict, List[dict]]:
    """Check one record and return it as a REFER-shaped ref and its objects.

    Args:
        value (object): The line's JSON value.
        mask_root (str): Folder the ``mask`` paths are relative to (the image root).

    Returns:
        tuple[dict, list[dict]]: The ref (``ref_id``, ``image_id``, ``width``, ``height``,
        ``sentences``, ``no_target``) and one ``{'segmentation', 'category_id'}`` per object.

    Raises:
        ValueError: The record breaks the format; the message starts with the field.
    """
    if not isinstance(value, dict):
        raise ValueError(f'a record must be a JSON object, got {type(value).__name__}')
    unknown = sorted(set(value) - set(RECORD_KEYS))
    if unknown:
        raise ValueError(f'unknown field(s) {unknown}; a record has {list(RECORD_KEYS)}')
    for key in ('id', 'image', 'width', 'height', 'sentences'):
        if key not in value:
            raise ValueError(f'{key}: missing')
    ref_id = value['id']
    if not (_is_int(ref_id) or isinstance(ref_id, str)):
        raise ValueError(f'id: must be an integer or a string, got {ref_id!r}')
    try:
        image = check_relative_path(value['image'])
    except ValueError as err:
        raise ValueError(f'image: {err}') from None
    for key in ('width', 'height'):
        if not _is_int(value[key]) or value[key] < 1:
            raise ValueError(f'{key}: must be a positive integer, got {value[key]!r}')
    if 'meta' in value and not isinstance(value['meta'], dict):
        raise ValueError('meta: must be a JSON object')
    no_target = value.get('no_target', False)
    if type(no_target) is not bool:
        raise ValueError(f'no_target: must be true or false, got {no_target!r}')
    objects = value.get('objects', [])
    if not isinstance(objects, list):
        raise ValueError('objects: must be a list of objects')
    if no_target and objects:
        raise ValueError('objects: a record with "no_target": true has no objects')
    if not no_target and not objects:
        raise ValueError('objects: missing or empty; give the target, or "no_target": true '
                         'for sentences that name nothing in the image')
    size = (value['width'], value['height'])
    parsed = []
    for i, obj in enumerate(objects):
        try:
            segmentation = _segmentation(obj, size, mask_root)
        except ValueError as err:
            raise ValueError(f'objects[{i}]{err}') from None
        parsed.append(dict(segmentation=segmentation, category_id=obj.get('category_id')))
    ref = dict(ref_id=ref_id, image_id=image, width=value['width'], height=value['height'],
               sentences=_sentences(value['sentences']), no_target=no_target)
    return ref, parsed


def parse_records(lines: Iterable[Tuple[int, object]], source: str, split: str,
                  mask_root: str = '', errors: Optional[List[str]] = None) -> CustomAnnotations:
    """Check records and return them in REFER's shapes.

    Args:
        lines (Iterable[tuple[int, object]]): Line number and JSON value of each record.
        source (str): The file the records are (or will be) in, for the messages.
        split (str): The split the records belong to.
        mask_root (str): Folder the ``mask`` paths are relative to (the image root).
        errors (list[str], optional): Collect every bad record's message here and skip the
            record, instead of raising at the first (the data checker's mode).

    Returns:
        CustomAnnotations: The records.

    Raises:
        CustomFormatError: (Without ``errors``) a record breaks the format, repeats an id, or
            gives its image another size than an earlier record.
    """
    refs, images, annotations = [], {}, {}
    seen_ids: Dict[object, int] = {}
    for number, value in lines:
        try:
            ref, objects = parse_record(value, mask_root)
            if ref['ref_id'] in seen_ids:
                raise ValueError(f'id: {ref["ref_id"]!r} repeats the id of line '
                                 f'{seen_ids[ref["ref_id"]]}')
            image = images.get(ref['image_id'])
            if image is not None and (image['width'], image['height']) != (ref['width'],
                                                                           ref['height']):
                raise ValueError(f'width, height: {ref["width"]}x{ref["height"]}, but line '
                                 f'{image["line"]} gives {ref["image_id"]!r} as '
                                 f'{image["width"]}x{image["height"]}')
        except ValueError as err:
            message = f'{source}, line {number}: {err}'
            if errors is None:
                raise CustomFormatError(message) from None
            errors.append(message)
            continue
        seen_ids[ref['ref_id']] = number
        images.setdefault(ref['image_id'], dict(file_name=ref['image_id'], width=ref['width'],
                                                height=ref['height'], line=number))
        ann_ids = []
        for obj in objects:
            ann_id = len(annotations) + 1
            annotations[ann_id] = dict(obj, id=ann_id, image_id=ref['image_id'])
            ann_ids.append(ann_id)
        refs.append(dict(ref, split=split, ann_id=ann_ids, line=number))
    return CustomAnnotations(refs, images, annotations)


def read_custom_file(path: str, split: str, mask_root: str = '',
                     errors: Optional[List[str]] = None) -> CustomAnnotations:
    """Read a custom-format JSON Lines file into REFER-shaped refs, images and annotations.

    Args:
        path (str): The file.
        split (str): The split its records belong to.
        mask_root (str): Folder the ``mask`` paths are relative to (the image root).
        errors (list[str], optional): See :func:`parse_records`.

    Returns:
        CustomAnnotations: The file's records.

    Raises:
        FileNotFoundError: The file does not exist.
        CustomFormatError: A line is not JSON, or a record is refused (see
            :func:`parse_records`).
    """
    return parse_records(iter_json_lines(path), path, split, mask_root, errors)

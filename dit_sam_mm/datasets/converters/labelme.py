"""From LabelMe JSON files to the custom format.

Every ``*.json`` under the folder (sub-folders included) is a LabelMe annotation of one image
(``imagePath`` relative to the JSON file, ``imageWidth``, ``imageHeight``, ``shapes``). Each
polygon or rectangle shape carries its sentence in its ``label`` or, with
``sentence_from='description'``, in its ``description``. Shapes of one image with the same
sentence are one record whose target is all of them (a sentence naming several objects).
Other shape types (circle, line, point) cannot be a mask and are refused.
"""
import glob
import os.path as osp
from typing import Dict, List, Tuple

from ..custom_format import check_relative_path
from ..custom_writer import make_record
from ..refcoco import read_json_file

SENTENCE_FIELDS = ('label', 'description')


def _polygon(shape: dict, where: str) -> List[float]:
    """The flat ``[x1, y1, ...]`` polygon of a polygon or rectangle shape."""
    kind = shape.get('shape_type') or 'polygon'
    points = shape.get('points')
    if (not isinstance(points, list)
            or not all(isinstance(p, list) and len(p) == 2 for p in points)
            or not all(type(v) in (int, float) for p in points for v in p)):
        raise ValueError(f'{where}: points must be a list of [x, y] number pairs')
    if kind == 'rectangle':
        if len(points) != 2:
            raise ValueError(f'{where}: a rectangle has 2 points, got {len(points)}')
        (x1, y1), (x2, y2) = points
        points = [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]
    elif kind != 'polygon':
        raise ValueError(f'{where}: shape_type {kind!r} is not a region; draw polygons or '
                         'rectangles')
    if len(points) < 3:
        raise ValueError(f'{where}: a polygon needs at least 3 points, got {len(points)}')
    return [float(v) for point in points for v in point]


def _read_annotation(path: str, folder: str, sentence_from: str
                     ) -> Tuple[str, int, int, Dict[str, List[List[float]]]]:
    """``(image, width, height, {sentence: polygons})`` of one LabelMe file."""
    content = read_json_file(path, 'a LabelMe annotation')
    if not isinstance(content, dict):
        raise ValueError(f'{path}: not a LabelMe annotation (a JSON object)')
    for key, kind in (('imagePath', str), ('imageWidth', int), ('imageHeight', int),
                      ('shapes', list)):
        if type(content.get(key)) is not kind:
            raise ValueError(f'{path}: {key}: missing or not a {kind.__name__}')
    joined = osp.relpath(osp.join(osp.dirname(path), content['imagePath']), folder)
    try:
        image = check_relative_path(joined)
    except ValueError as err:
        raise ValueError(f'{path}: imagePath: {err}') from None
    by_sentence: Dict[str, List[List[float]]] = {}
    for i, shape in enumerate(content['shapes']):
        where = f'{path}: shapes[{i}]'
        if not isinstance(shape, dict):
            raise ValueError(f'{where}: not an object')
        sentence = shape.get(sentence_from)
        if not isinstance(sentence, str) or not sentence.strip():
            raise ValueError(f'{where}: empty {sentence_from}; the sentence goes in the '
                             f'{sentence_from} (or choose the other field)')
        by_sentence.setdefault(' '.join(sentence.split()), []).append(_polygon(shape, where))
    return image, content['imageWidth'], content['imageHeight'], by_sentence


def convert_labelme(folder: str, split: str = 'train',
                    sentence_from: str = 'label') -> Dict[str, List[dict]]:
    """Read every LabelMe file under ``folder`` into custom-format records.

    Args:
        folder (str): The folder; it becomes the image root.
        split (str): Split of the records. Defaults to ``'train'``.
        sentence_from (str): Shape field holding the sentence: ``'label'`` or
            ``'description'``. Defaults to ``'label'``.

    Returns:
        dict[str, list[dict]]: Split -> records (one per image and sentence).

    Raises:
        FileNotFoundError: The folder holds no JSON file.
        ValueError: A file is not a LabelMe annotation, or a shape has no sentence or is not a
            region (file and shape named).
    """
    if sentence_from not in SENTENCE_FIELDS:
        raise ValueError(f'sentence_from must be one of {SENTENCE_FIELDS}, got '
                         f'{sentence_from!r}')
    files = sorted(glob.glob(osp.join(glob.escape(folder), '**', '*.json'), recursive=True))
    if not files:
        raise FileNotFoundError(f'no LabelMe *.json file under {folder}')
    records = []
    for path in files:
        image, width, height, by_sentence = _read_annotation(path, folder, sentence_from)
        for k, (sentence, polygons) in enumerate(by_sentence.items()):
            records.append(make_record(f'{image}#{k}', image, width, height, [sentence],
                                       [dict(polygons=[p]) for p in polygons]))
    return {split: records}

"""From the predictions of ``tools/infer.py`` back to the custom format, to correct and train on.

Each prediction (``id``, ``image``, ``sentence``, ``segmentation`` as COCO RLE, ``score``,
``no_target_prob``, ``area``; :mod:`dit_sam_mm.apis.batch_inference`) becomes one record with
the same id, image and sentence: its mask as an ``rle`` object, or ``"no_target": true`` when the
mask is empty (load such files with ``generalized=True``). The image size is the RLE's ``size``;
``score`` and ``no_target_prob`` are kept in the record's ``meta``. Image paths stay relative to
the image root the predictions were made with.
"""
from typing import Dict, List

from ..custom_format import iter_json_lines
from ..custom_writer import make_record
from ..mask_codec import check_rle, compressed_counts

#: Fields a prediction record must have.
PREDICTION_FIELDS = ('id', 'image', 'sentence', 'segmentation')


def _prediction(value: object, where: str) -> dict:
    """The custom-format record of one prediction line."""
    if not isinstance(value, dict):
        raise ValueError(f'{where}: a prediction must be a JSON object, got '
                         f'{type(value).__name__}')
    for field in PREDICTION_FIELDS:
        if field not in value:
            raise ValueError(f'{where}: {field}: missing; not a prediction of tools/infer.py')
    rle = value['segmentation']
    size = rle.get('size') if isinstance(rle, dict) else None
    if (not isinstance(size, list) or len(size) != 2
            or not all(type(s) is int and s > 0 for s in size)):
        raise ValueError(f'{where}: segmentation: must be a COCO RLE with size [height, width], '
                         f'got {rle!r:.80}')
    if not isinstance(rle.get('counts'), str):
        raise ValueError(f'{where}: segmentation.counts: must be the compressed string '
                         'tools/infer.py writes')
    try:
        check_rle(rle, *size)
    except ValueError as err:
        raise ValueError(f'{where}: segmentation: {err}') from None
    height, width = size
    empty = not compressed_counts(rle['counts'])[1::2].any()
    meta = {key: value[key] for key in ('score', 'no_target_prob') if key in value}
    return make_record(value['id'], value['image'], width, height, [value['sentence']],
                       [] if empty else [dict(rle=dict(size=size, counts=rle['counts']))], meta)


def convert_predictions(path: str, split: str = 'train') -> Dict[str, List[dict]]:
    """Read a predictions file of ``tools/infer.py`` into custom-format records.

    Args:
        path (str): The predictions (JSON Lines).
        split (str): Split of the records. Defaults to ``'train'``.

    Returns:
        dict[str, list[dict]]: Split -> records, one per prediction.

    Raises:
        FileNotFoundError: The file is missing.
        ValueError: A line is not JSON, lacks a field or holds an RLE that does not add up to its
            size (file, line and field named); ids, images and sentences are checked by the
            writer as the dataset reads them.
    """
    return {split: [_prediction(value, f'{path}, line {number}')
                    for number, value in iter_json_lines(path)]}

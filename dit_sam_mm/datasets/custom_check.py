"""Checks of a custom-format split file beyond what reading it refuses.

Reading a file (:func:`~dit_sam_mm.datasets.custom_format.read_custom_file`) refuses what
breaks the format: bad JSON, missing or misspelt fields, duplicate ids, polygons of fewer than
3 points, RLE or mask images of another size. :func:`check_split_file` collects all of those
instead of stopping at the first, and adds what is well-formed but cannot train: polygons that
enclose no area, objects that cover no pixel, sentences that tokenize to nothing (or only to
``[UNK]``). The image files are checked by ``tools/dataset_converters/custom_refer.py check``.
"""
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from .custom_format import read_custom_file
from .transforms import decode_coco_segmentation


class SplitCheck(NamedTuple):
    """What :func:`check_split_file` found in one split file.

    Attributes:
        errors (list[str]): Problems that stop or spoil training, one line each.
        warnings (list[str]): Problems worth a look.
        images (dict): Image path -> (width, height) the records give.
        records (int): Well-formed records.
        sentences (int): Their sentences.
        no_target (int): Sentences of no-target records.
        multi_target (int): Sentences of records with several objects.
    """
    errors: List[str]
    warnings: List[str]
    images: Dict[str, Tuple[int, int]]
    records: int
    sentences: int
    no_target: int
    multi_target: int


def polygon_area(polygon: List[float]) -> float:
    """The area a flat ``[x1, y1, x2, y2, ...]`` polygon encloses (shoelace formula)."""
    x, y = np.asarray(polygon[0::2], float), np.asarray(polygon[1::2], float)
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def object_problems(segmentation: object, height: int, width: int) -> List[str]:
    """Why one object cannot train: polygons without area, or no pixel covered.

    Args:
        segmentation (object): The object's COCO segmentation (checked by the reader).
        height (int): Image height.
        width (int): Image width.

    Returns:
        list[str]: One line per problem, each starting with the field.
    """
    problems = []
    if isinstance(segmentation, list):
        problems = [f'polygons[{j}] encloses no area (its points lie on one line)'
                    for j, polygon in enumerate(segmentation) if polygon_area(polygon) == 0.0]
    if not problems and not decode_coco_segmentation(segmentation, height, width).any():
        problems.append('covers no pixel of the image (outside it, or too thin)')
    return problems


def tokenizer_check(tokenizer) -> Callable[[str], Optional[Tuple[bool, str]]]:
    """A function saying whether a sentence reaches the model, for a BERT tokenizer.

    Args:
        tokenizer: A ``transformers`` BERT tokenizer (see ``build_bert_tokenizer``).

    Returns:
        Callable: ``text -> None`` when the sentence has known word pieces, else
        ``(is_error, problem)``: an error when it has no word piece at all, a warning when
        every piece is unknown (read as [UNK]).
    """

    def check(text: str) -> Optional[Tuple[bool, str]]:
        pieces = tokenizer(text, add_special_tokens=False)['input_ids']
        if not pieces:
            return True, 'tokenizes to nothing (no word piece: only spaces, control or ' \
                'zero-width characters?)'
        if all(p == tokenizer.unk_token_id for p in pieces):
            return False, f"none of its {len(pieces)} word pieces is in the vocabulary " \
                '(all read as [UNK])'
        return None

    return check


def check_split_file(path: str, split: str, image_root: str,
                     sentence_check: Optional[Callable] = None) -> SplitCheck:
    """Check one split file of the custom format, collecting every problem.

    Args:
        path (str): The split file.
        split (str): Its split name.
        image_root (str): Folder the records' paths are relative to.
        sentence_check (Callable, optional): From :func:`tokenizer_check`; None skips the
            sentence check.

    Returns:
        SplitCheck: The problems and counts.

    Raises:
        FileNotFoundError: The file does not exist.
        CustomFormatError: A line is not JSON (the rest of the file cannot be trusted).
    """
    errors: List[str] = []
    warnings: List[str] = []
    parsed = read_custom_file(path, split, mask_root=image_root, errors=errors)
    sentences = no_target = multi = 0
    for ref in parsed.refs:
        where = f'{path}, line {ref["line"]}'
        image = parsed.images[ref['image_id']]
        for i, ann_id in enumerate(ref['ann_id']):
            for problem in object_problems(parsed.annotations[ann_id]['segmentation'],
                                           image['height'], image['width']):
                errors.append(f'{where}: objects[{i}].{problem}')
        count = len(ref['sentences'])
        sentences += count
        no_target += count * ref['no_target']
        multi += count * (len(ref['ann_id']) > 1)
        for k, sentence in enumerate(ref['sentences']):
            found = sentence_check(sentence['raw']) if sentence_check else None
            if found is not None:
                is_error, problem = found
                line = f'{where}: sentences[{k}] {sentence["raw"]!r} {problem}'
                (errors if is_error else warnings).append(line)
    images = {name: (image['width'], image['height']) for name, image in parsed.images.items()}
    return SplitCheck(errors, warnings, images, len(parsed.refs), sentences, no_target, multi)

"""Horizontal flip of image, mask and sentence together."""
import re
from typing import Optional

from mmcv.transforms import RandomFlip

from mmseg.registry import TRANSFORMS

# A direction word is "left" or "right", optionally glued to one of these
# endings ("leftmost", "righthand", "leftside", "rightwards"). Matching is on
# whole words only, so "leftover", "bright", "alright" and "copyright" stay;
# hyphenated forms ("left-most", "right-hand") swap through their first part.
_DIRECTION_WORD = re.compile(
    r'\b(left|right)(most|hand|handed|side|sided|ward|wards)?\b',
    re.IGNORECASE)
_OPPOSITE = {'left': 'right', 'right': 'left'}


def _match_case(word: str, like: str) -> str:
    """Write ``word`` in the letter case of ``like`` (lower/UPPER/Title)."""
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def swap_left_right(sentence: str) -> str:
    """Swap the words "left" and "right" (and their forms) in a sentence.

    Whole words only, case kept (``Left`` -> ``Right``, ``LEFT`` ->
    ``RIGHT``), every other character unchanged. Forms swapped: left/right,
    leftmost/rightmost, lefthand/righthand, lefthanded/righthanded,
    leftside/rightside, leftsided/rightsided, leftward(s)/rightward(s); the
    hyphenated forms ("left-most", "right-hand") swap through their first
    word. Not swapped: words that only contain the letters, such as
    "leftover", "leftovers", "bright", "alright" (a plain substring
    replacement would turn "bright" into "bleft"). "right" is swapped
    whatever its meaning ("all right" becomes "all left"): a sentence gives
    no reliable way to tell the senses apart.

    Args:
        sentence (str): Referring expression.

    Returns:
        str: The sentence as it reads for the mirrored image.
    """

    def replace(match: re.Match) -> str:
        stem, ending = match.group(1), match.group(2) or ''
        return _match_case(_OPPOSITE[stem.lower()], stem) + ending

    return _DIRECTION_WORD.sub(replace, sentence)


@TRANSFORMS.register_module()
class ReferRandomFlip(RandomFlip):
    """MMCV's ``RandomFlip`` that also mirrors the referring sentence.

    A horizontally flipped image makes "the man on the left" point at the
    wrong person; this flips image and ``gt_seg_map`` (through MMCV's
    ``RandomFlip``) and swaps "left"/"right" in ``results['sentence']`` with
    :func:`swap_left_right`. Put it before ``TokenizeText``.

    Only horizontal flips are supported: a vertical flip would also need
    "top"/"bottom", "above"/"below", ... swapped.

    Required keys: ``img``, ``sentence``; optional ``gt_seg_map``.
    Modified keys: ``img``, ``gt_seg_map``, ``sentence``.
    Added keys: ``flip``, ``flip_direction``, ``ori_sentence`` (the sentence
    before swapping, kept only when the sample is flipped).

    Args:
        prob (float): Probability of flipping. Defaults to 0.5.
        direction (str): Must be ``'horizontal'``. Defaults to
            ``'horizontal'``.
    """

    def __init__(self,
                 prob: float = 0.5,
                 direction: Optional[str] = 'horizontal') -> None:
        if direction != 'horizontal':
            raise ValueError('ReferRandomFlip only flips horizontally (a '
                             'vertical flip would need top/bottom words '
                             f'swapped); got direction={direction!r}')
        super().__init__(prob=float(prob), direction=direction)

    def _flip(self, results: dict) -> None:
        if 'text_ids' in results:
            raise RuntimeError(
                'ReferRandomFlip must run before TokenizeText: the sentence '
                f'of ref_id={results.get("ref_id")} is already tokenized, so '
                'swapping its words would not reach the model')
        direction = results.get('flip_direction')
        if direction != 'horizontal':
            raise ValueError('ReferRandomFlip only flips horizontally, got '
                             f'flip_direction={direction!r} from the sample')
        super()._flip(results)
        sentence = results.get('sentence')
        if sentence is not None:
            results['ori_sentence'] = sentence
            results['sentence'] = swap_left_right(sentence)

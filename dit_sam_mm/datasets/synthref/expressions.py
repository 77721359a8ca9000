"""Referring expressions that pick out exactly one object of a SynthRef scene.

Every generator below returns only sentences whose meaning selects the
target and nothing else in the scene, with a safety margin on positions and
sizes (a shape "on the left" is at least ``gap`` pixels left of the other).
Positions are bounding-box centres and sizes are mask areas, the numbers
written to ``instances.json``. All templates stay true under a horizontal
flip once "left" and "right" are swapped, as ``ReferRandomFlip`` does.
"""
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .scene import COLOURS, KINDS, SceneObject

#: Every word a SynthRef sentence can use (the vocabulary of vocab.txt).
SYNTHREF_WORDS = sorted(
    set(KINDS) | set(COLOURS) | {k + 's' for k in KINDS} | {
        'the', 'shape', 'shapes', 'of', 'two', 'on', 'at', 'to', 'big',
        'small', 'bigger', 'smaller', 'left', 'right', 'top', 'bottom',
        'leftmost', 'rightmost', 'highest', 'lowest', 'above', 'below',
        'cluster', 'group', 'dots'
    })

# direction -> (axis, sign): the position along ``axis`` grows with ``sign``
# when moving in that direction (image y grows downwards).
_DIRECTIONS = {'left': (0, -1), 'right': (0, 1), 'top': (1, -1),
               'bottom': (1, 1)}
_EXTREMES = {'leftmost': 'left', 'rightmost': 'right', 'highest': 'top',
             'lowest': 'bottom'}
_RELATIONS = {'to the left of': 'left', 'to the right of': 'right',
              'above': 'top', 'below': 'bottom'}
#: A compared shape must be at least this much bigger in area.
AREA_RATIO = 1.5
#: Sentences of one ref, at most.
SENTENCES_PER_REF = 3


def _coord(obj: SceneObject, direction: str) -> float:
    axis, sign = _DIRECTIONS[direction]
    return sign * obj.centre[axis]


def _is_extreme(target, group, direction, gap) -> bool:
    """Target is furthest in ``direction``, ``gap`` ahead of all others."""
    others = [o for o in group if o is not target]
    return bool(others) and all(
        _coord(target, direction) >= _coord(o, direction) + gap
        for o in others)


def _cone(obj, anchor, direction) -> Tuple[float, float]:
    """(progress along direction, lateral offset) of obj seen from anchor."""
    axis, sign = _DIRECTIONS[direction]
    delta = (obj.centre[0] - anchor.centre[0], obj.centre[1] - anchor.centre[1])
    return sign * delta[axis], abs(delta[1 - axis])


def _clearly_in(obj, anchor, direction, gap) -> bool:
    """obj lies in ``direction`` of anchor: progress >= 2 gap, lateral <= 0.6 progress."""
    progress, lateral = _cone(obj, anchor, direction)
    return progress >= 2 * gap and lateral <= 0.6 * progress


def _clearly_out(obj, anchor, direction, gap) -> bool:
    """obj is not in ``direction`` of anchor.

    Progress <= -gap / 2, or lateral >= 1.5 max(progress, 0) + gap / 2.
    """
    progress, lateral = _cone(obj, anchor, direction)
    return (progress <= -gap / 2
            or lateral >= 1.5 * max(progress, 0.0) + gap / 2)


def cone_members(anchor: SceneObject, group: List[SceneObject],
                 direction: str, gap: float) -> Optional[List[SceneObject]]:
    """The members of ``group`` (anchor aside) in ``direction`` of anchor.

    A reader's rule "progress > 0 and lateral < progress" agrees with
    :func:`_clearly_in` and :func:`_clearly_out`.

    Returns:
        list | None: The members clearly in that direction, when every other
        one is clearly not; None when one of them is in between.
    """
    members = []
    for obj in group:
        if obj is anchor:
            continue
        if _clearly_in(obj, anchor, direction, gap):
            members.append(obj)
        elif not _clearly_out(obj, anchor, direction, gap):
            return None
    return members


def _only_one_in_cone(target, anchor, group, direction, gap) -> bool:
    """Target clearly lies in ``direction`` of anchor, all others clearly not."""
    members = cone_members(anchor, group, direction, gap)
    return members is not None and len(members) == 1 and members[0] is target


def _bigger(a: SceneObject, b: SceneObject) -> bool:
    return a.area >= AREA_RATIO * b.area


def attribute_expressions(target: SceneObject,
                          shapes: List[SceneObject]) -> List[str]:
    """Expressions naming colour, kind and size class only."""
    k, c, s = target.kind, target.colour, target.size

    def count(pred: Callable) -> int:
        return sum(1 for o in shapes if pred(o))

    out = []
    if count(lambda o: o.kind == k) == 1:
        out.append(f'the {k}')
    if count(lambda o: o.colour == c) == 1:
        out.append(f'the {c} shape')
    same_ck = count(lambda o: (o.kind, o.colour) == (k, c))
    if same_ck == 1:
        out.append(f'the {c} {k}')
    same_k = [o for o in shapes if o.kind == k]
    if len(same_k) > 1 and count(lambda o: (o.kind, o.size) == (k, s)) == 1:
        out.append(f'the {s} {k}')
    if same_ck > 1 and count(
            lambda o: (o.kind, o.colour, o.size) == (k, c, s)) == 1:
        out.append(f'the {s} {c} {k}')
    return out


def relational_expressions(target: SceneObject, shapes: List[SceneObject],
                           gap: float) -> List[str]:
    """Expressions by position, comparison or relation to another shape."""
    k, c = target.kind, target.colour
    out = []
    # Groups of shapes the sentence talks about: (words, plural, members).
    groups = [(f'{k}', f'{k}s', [o for o in shapes if o.kind == k]),
              (f'{c} shape', f'{c} shapes',
               [o for o in shapes if o.colour == c])]
    for noun, plural, group in groups:
        if len(group) == 2:
            other = group[0] if group[1] is target else group[1]
            if _bigger(target, other):
                out.append(f'the bigger of the two {plural}')
            if _bigger(other, target):
                out.append(f'the smaller of the two {plural}')
            for side in ('left', 'right'):
                if _is_extreme(target, group, side, gap):
                    out.append(f'the {noun} on the {side}')
            for end in ('top', 'bottom'):
                if _is_extreme(target, group, end, gap):
                    out.append(f'the {noun} at the {end}')
    for noun, group in ((k, groups[0][2]), ('shape', shapes)):
        if len(group) >= 2:
            for word, direction in _EXTREMES.items():
                if _is_extreme(target, group, direction, gap):
                    out.append(f'the {word} {noun}')
    for anchor in shapes:
        if anchor is target or sum(
                1 for o in shapes
                if (o.kind, o.colour) == (anchor.kind, anchor.colour)) != 1:
            continue
        name = f'{anchor.colour} {anchor.kind}'
        for words, direction in _RELATIONS.items():
            if _only_one_in_cone(target, anchor, shapes, direction, gap):
                out.append(f'the shape {words} the {name}')
            elif _only_one_in_cone(target, anchor, groups[0][2], direction,
                                   gap):
                out.append(f'the {k} {words} the {name}')
    return out


def expressions_for(target: SceneObject, objects: List[SceneObject],
                    gap: float) -> Dict[str, List[str]]:
    """All valid expressions of ``target``, split by family.

    Returns:
        dict: ``{'attribute': [...], 'relational': [...]}``; dots only get
        attribute-like names ("the cluster of dots").
    """
    if not target.is_shape:
        return dict(attribute=['the cluster of dots', 'the group of dots',
                               'the dots'], relational=[])
    shapes = [o for o in objects if o.is_shape]
    return dict(
        attribute=attribute_expressions(target, shapes),
        relational=relational_expressions(target, shapes, gap))


def choose_sentences(rng: np.random.Generator,
                     options: Dict[str, List[str]]) -> List[str]:
    """Up to 3 sentences of one ref, preferring position/comparison ones.

    Args:
        rng (np.random.Generator): Draws the order of each family.
        options (dict): ``{'attribute': [...], 'relational': [...]}``.

    Returns:
        list[str]: Two relational and one attribute sentence when there are
        enough, else filled up from the rest; unique, in drawn order.
    """
    rel = [options['relational'][i]
           for i in rng.permutation(len(options['relational']))]
    attr = [options['attribute'][i]
            for i in rng.permutation(len(options['attribute']))]
    chosen = rel[:2] + attr[:1]
    rest = rel[2:] + attr[1:]
    chosen += rest[:SENTENCES_PER_REF - len(chosen)]
    return list(dict.fromkeys(chosen))  # unique, order kept

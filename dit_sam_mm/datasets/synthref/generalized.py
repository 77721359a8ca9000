"""Multi-target and no-target sentences for SynthRef in the gRefCOCO format.

Multi-target sentences name two or more shapes, by attribute ("all the red
shapes", "both squares", "the three circles"), by size ("the big
triangles"), by position ("the two circles on the left") or by relation ("the
shapes below the green square"). No-target sentences name an attribute or a
relation that no object of the picture has ("the blue triangle" when there is
none, "the circle above the red square" when no circle is above it). Like the
single-target sentences of :mod:`.expressions`, they are built with safety
margins (``gap`` pixels on positions, a factor ``AREA_RATIO`` on areas) and
stay true under a horizontal flip once "left" and "right" are swapped.
"""
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .expressions import (_RELATIONS, AREA_RATIO, SYNTHREF_WORDS, _coord,
                          choose_sentences, cone_members)
from .scene import COLOURS, KINDS, SceneObject

_COUNTS = {2: 'two', 3: 'three', 4: 'four', 5: 'five'}
_SIDES = {'left': 'on the left', 'right': 'on the right', 'top': 'at the top',
          'bottom': 'at the bottom'}
#: The SynthRef words, in their order (same token ids), then the new ones.
GENERALIZED_WORDS = SYNTHREF_WORDS + sorted(
    {'all', 'both'} | set(_COUNTS.values()) - set(SYNTHREF_WORDS))
#: Default shares of the sentences of each split.
MULTI_TARGET_SHARE = 0.25
NO_TARGET_SHARE = 0.15

Options = Dict[str, List[str]]


def _unique_anchors(shapes: List[SceneObject]) -> List[SceneObject]:
    """Shapes that are the only one of their colour and kind."""
    pairs = Counter((o.colour, o.kind) for o in shapes)
    return [o for o in shapes if pairs[(o.colour, o.kind)] == 1]


def _plural_groups(shapes: List[SceneObject]) -> List[Tuple[str, list]]:
    """(plural noun, members) of all shapes, each kind, colour and both."""
    groups = [('shapes', shapes)]
    groups += [(f'{k}s', [o for o in shapes if o.kind == k]) for k in KINDS]
    groups += [(f'{c} shapes', [o for o in shapes if o.colour == c])
               for c in COLOURS]
    groups += [(f'{c} {k}s', [o for o in shapes
                              if (o.colour, o.kind) == (c, k)])
               for c in COLOURS for k in KINDS]
    return groups


def size_classes(group: List[SceneObject]) -> Optional[Tuple[list, list]]:
    """(small, big) members of one kind when their areas fall in two classes.

    Sorted by area, exactly one step between neighbours is a factor of at
    least ``AREA_RATIO``, and it separates the small shapes from the big ones.
    """
    ordered = sorted(group, key=lambda o: o.area)
    steps = [i for i in range(1, len(ordered))
             if ordered[i].area >= AREA_RATIO * ordered[i - 1].area]
    if len(steps) != 1:
        return None
    small, big = ordered[:steps[0]], ordered[steps[0]:]
    if any(o.size != 'small' for o in small) or any(o.size != 'big'
                                                    for o in big):
        return None
    return small, big


def multi_target_expressions(objects: List[SceneObject],
                             gap: float) -> Dict[Tuple[int, ...], Options]:
    """Sentences that name two or more shapes of the scene, by target set.

    Args:
        objects (list[SceneObject]): The scene.
        gap (float): Safety margin on positions, in pixels.

    Returns:
        dict: Sorted indices into ``objects`` of the targets ->
        ``{'attribute': [...], 'relational': [...]}``.
    """
    shapes = [o for o in objects if o.is_shape]
    index = {id(o): i for i, o in enumerate(objects)}
    found: Dict[Tuple[int, ...], Options] = {}

    def add(members, family, text):
        key = tuple(sorted(index[id(o)] for o in members))
        options = found.setdefault(key, dict(attribute=[], relational=[]))
        options[family].append(text)

    for noun, members in _plural_groups(shapes):
        if len(members) < 2:
            continue
        for text in (f'all the {noun}', f'the {noun}',
                     f'the {_COUNTS[len(members)]} {noun}'):
            add(members, 'attribute', text)
        if len(members) == 2:
            add(members, 'attribute', f'both {noun}')
            continue
        for side, words in _SIDES.items():
            ordered = sorted(members, key=lambda o: -_coord(o, side))
            if _coord(ordered[1], side) >= _coord(ordered[2], side) + gap:
                add(ordered[:2], 'relational', f'the two {noun} {words}')
    for kind in KINDS:
        classes = size_classes([o for o in shapes if o.kind == kind])
        for size, members in zip(('small', 'big'), classes or ()):
            if len(members) >= 2:
                add(members, 'relational', f'the {size} {kind}s')
    for anchor in _unique_anchors(shapes):
        name = f'{anchor.colour} {anchor.kind}'
        for noun in ('shape', ) + KINDS:
            group = [o for o in shapes if noun in ('shape', o.kind)]
            for words, direction in _RELATIONS.items():
                members = cone_members(anchor, group, direction, gap)
                if members is not None and len(members) >= 2:
                    add(members, 'relational',
                        f'the {noun}s {words} the {name}')
    return found


def no_target_expressions(objects: List[SceneObject], gap: float) -> Options:
    """Sentences that name nothing in the scene.

    Attribute ones name a colour, a kind or a colour and kind that no shape
    has (the pair shares a word with a shape that is there), or the dots when
    there are none. Relational ones name a direction from a shape in which
    no shape (or no shape of a kind that is there) lies.

    Args:
        objects (list[SceneObject]): The scene.
        gap (float): Safety margin on positions, in pixels.

    Returns:
        dict: ``{'attribute': [...], 'relational': [...]}``.
    """
    shapes = [o for o in objects if o.is_shape]
    kinds = {o.kind for o in shapes}
    colours = {o.colour for o in shapes}
    pairs = {(o.colour, o.kind) for o in shapes}
    attribute = []
    for colour in COLOURS:
        if colour not in colours:
            attribute += [f'the {colour} shape', f'all the {colour} shapes']
        attribute += [f'the {colour} {kind}' for kind in KINDS
                      if (colour, kind) not in pairs
                      and (colour in colours or kind in kinds)]
    for kind in KINDS:
        if kind not in kinds:
            attribute += [f'the {kind}', f'all the {kind}s']
    if all(o.is_shape for o in objects):
        attribute += ['the dots', 'the cluster of dots']
    relational = []
    for anchor in _unique_anchors(shapes):
        name = f'{anchor.colour} {anchor.kind}'
        for words, direction in _RELATIONS.items():
            for noun in ('shape', ) + KINDS:
                group = [o for o in shapes if o is not anchor
                         and noun in ('shape', o.kind)]
                if group and cone_members(anchor, group, direction, gap) == []:
                    relational.append(f'the {noun} {words} the {name}')
    return dict(attribute=attribute, relational=relational)


class TargetMix:
    """Adds multi-target and no-target refs to keep each split's shares.

    After the single-target sentences of an image are counted, refs of the
    other two kinds are added while their sentence counts in the split are
    below ``share / single share`` times the single-target count.

    Args:
        rng (np.random.Generator): Draws which refs and sentences are taken.
        multi_target_share (float): Wanted share of multi-target sentences.
            Defaults to ``MULTI_TARGET_SHARE`` (0.25).
        no_target_share (float): Wanted share of no-target sentences.
            Defaults to ``NO_TARGET_SHARE`` (0.15).
    """

    def __init__(self, rng: np.random.Generator,
                 multi_target_share: float = MULTI_TARGET_SHARE,
                 no_target_share: float = NO_TARGET_SHARE):
        for name, share in (('multi_target_share', multi_target_share),
                            ('no_target_share', no_target_share)):
            if not 0.0 <= share < 1.0:
                raise ValueError(f'{name} must be in [0, 1), got {share}')
        single = 1.0 - multi_target_share - no_target_share
        if single <= 0.0:
            raise ValueError(
                'multi_target_share + no_target_share must be below 1, got '
                f'{multi_target_share} + {no_target_share}')
        self.rng = rng
        self.ratios = dict(multi_target=multi_target_share / single,
                           no_target=no_target_share / single)
        self.counts: Dict[str, Counter] = {}

    def _take(self, counts: Counter, kind: str,
              options: Sequence[Options]) -> List[Tuple[int, List[str]]]:
        """(option index, sentences) of the refs to add, in drawn order."""
        taken = []
        for i in self.rng.permutation(len(options)):
            if counts[kind] >= self.ratios[kind] * counts['single']:
                break
            sentences = choose_sentences(self.rng, options[i])
            counts[kind] += len(sentences)
            taken.append((int(i), sentences))
        return taken

    def extra_refs(self, objects: List[SceneObject], split: str,
                   single_sentences: int,
                   gap: float) -> List[Tuple[List[int], List[str]]]:
        """The multi-target, then no-target refs of one image.

        Args:
            objects (list[SceneObject]): The scene.
            split (str): Its split.
            single_sentences (int): Its single-target sentences.
            gap (float): Safety margin on positions, in pixels.

        Returns:
            list: ``(target indices into objects, sentences)`` per ref; no
            indices for a no-target ref.
        """
        counts = self.counts.setdefault(split, Counter())
        counts['single'] += single_sentences
        multi = multi_target_expressions(objects, gap)
        keys = list(multi)
        refs = [(list(keys[i]), sentences) for i, sentences in self._take(
            counts, 'multi_target', [multi[k] for k in keys])]
        pool = no_target_expressions(objects, gap)
        while pool['attribute'] or pool['relational']:
            taken = self._take(counts, 'no_target', [pool])
            if not taken:
                break
            refs.append(([], taken[0][1]))
            pool = {family: [t for t in texts if t not in taken[0][1]]
                    for family, texts in pool.items()}
        return refs

"""SynthRef: a tiny synthetic referring-segmentation dataset in REFER layout.

Generate it with ``python tools/dataset_converters/make_synthref.py data/synthref``;
add ``--generalized`` for the gRefCOCO-format variant with multi-target and
no-target sentences.
"""
from .expressions import SYNTHREF_WORDS, expressions_for
from .generalized import (GENERALIZED_WORDS, multi_target_expressions,
                          no_target_expressions)
from .scene import COLOURS, KINDS, SceneObject, render, sample_scene
from .writer import CATEGORIES, make_synthref, split_of

__all__ = [
    'make_synthref', 'split_of', 'expressions_for', 'sample_scene', 'render',
    'SceneObject', 'KINDS', 'COLOURS', 'CATEGORIES', 'SYNTHREF_WORDS',
    'GENERALIZED_WORDS', 'multi_target_expressions', 'no_target_expressions'
]

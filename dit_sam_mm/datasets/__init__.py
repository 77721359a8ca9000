"""Datasets and data transforms for referring image segmentation.

Importing this package registers ``RefCOCODataset`` (``mmseg.registry.DATASETS``)
and ``LoadReferAnnotations``, ``ReferRandomFlip``, ``RandomGaussianBlur``,
``TokenizeText`` and ``PackReferSegInputs`` (``mmseg.registry.TRANSFORMS``).
"""
from .refcoco import RefCOCODataset
from .refer_pickle import UnsafePickleError, load_plain_pickle, load_refs
from .transforms import (REFER_META_KEYS, LoadReferAnnotations,
                         PackReferSegInputs, RandomGaussianBlur,
                         ReferRandomFlip, TokenizeText, build_bert_tokenizer,
                         decode_coco_segmentation, swap_left_right)

__all__ = [
    'RefCOCODataset', 'LoadReferAnnotations', 'ReferRandomFlip',
    'TokenizeText', 'PackReferSegInputs', 'RandomGaussianBlur',
    'REFER_META_KEYS', 'load_refs',
    'load_plain_pickle', 'UnsafePickleError', 'swap_left_right',
    'decode_coco_segmentation', 'build_bert_tokenizer'
]

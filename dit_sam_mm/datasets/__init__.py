"""Datasets and data transforms for referring image segmentation.

Importing this package registers ``RefCOCODataset``, ``GRefCOCODataset`` and
``CustomReferDataset`` (``mmseg.registry.DATASETS``) and ``LoadReferImageFromFile``,
``LoadReferAnnotations``, ``ReferRandomFlip``, ``RandomGaussianBlur``,
``TokenizeText``, ``ReferPad`` and ``PackReferSegInputs``
(``mmseg.registry.TRANSFORMS``).
"""
from .custom_format import CustomFormatError, read_custom_file
from .custom_refer import CustomReferDataset
from .grefcoco import (GRefCOCODataset, gref_targets, load_grefs,
                       read_grefs_file)
from .refcoco import RefCOCODataset, read_instances_json, read_json_file
from .refer_pickle import UnsafePickleError, load_plain_pickle, load_refs
from .transforms import (REFER_META_KEYS, LoadReferAnnotations,
                         LoadReferImageFromFile, PackReferSegInputs,
                         RandomGaussianBlur, ReferRandomFlip, TokenizeText,
                         build_bert_tokenizer, decode_coco_segmentation,
                         read_image_file, swap_left_right)

__all__ = [
    'RefCOCODataset', 'GRefCOCODataset', 'CustomReferDataset', 'read_custom_file',
    'CustomFormatError', 'load_grefs', 'gref_targets',
    'read_grefs_file',
    'read_json_file', 'LoadReferImageFromFile', 'LoadReferAnnotations',
    'read_image_file', 'ReferRandomFlip',
    'TokenizeText', 'PackReferSegInputs', 'RandomGaussianBlur',
    'REFER_META_KEYS', 'load_refs', 'read_instances_json',
    'load_plain_pickle', 'UnsafePickleError', 'swap_left_right',
    'decode_coco_segmentation', 'build_bert_tokenizer'
]

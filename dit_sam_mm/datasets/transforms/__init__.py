"""Data transforms of referring image segmentation (registered in mmseg)."""
from .blur import RandomGaussianBlur
from .flip import ReferRandomFlip, swap_left_right
from .formatting import REFER_META_KEYS, PackReferSegInputs
from .loading import (LoadReferAnnotations, LoadReferImageFromFile,
                      decode_coco_segmentation, read_image_file)
from .pad import ReferPad
from .tokenize import TokenizeText, build_bert_tokenizer

__all__ = [
    'LoadReferAnnotations', 'LoadReferImageFromFile', 'read_image_file',
    'ReferRandomFlip', 'TokenizeText',
    'RandomGaussianBlur', 'ReferPad',
    'PackReferSegInputs', 'REFER_META_KEYS', 'swap_left_right',
    'decode_coco_segmentation', 'build_bert_tokenizer'
]

"""Decode heads of DIT-SAM (registered into ``mmseg.registry.MODELS``)."""
from .sam_decoder_head import (SAM_DECODER_KEYS_DROPPED, HeadOutputs, SAMDecoderHead,
                               TextPromptedInputs, is_dropped_sam_decoder_key, split_head_outputs)

__all__ = [
    'SAMDecoderHead', 'TextPromptedInputs', 'SAM_DECODER_KEYS_DROPPED', 'HeadOutputs',
    'is_dropped_sam_decoder_key', 'split_head_outputs'
]

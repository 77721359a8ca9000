"""Decode heads of DIT-SAM (registered into ``mmseg.registry.MODELS``)."""
from .sam_decoder_head import (SAM_DECODER_KEYS_DROPPED, SAMDecoderHead, TextPromptedInputs,
                               is_dropped_sam_decoder_key)

__all__ = [
    'SAMDecoderHead', 'TextPromptedInputs', 'SAM_DECODER_KEYS_DROPPED',
    'is_dropped_sam_decoder_key'
]

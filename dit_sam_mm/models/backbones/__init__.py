"""Backbones of DIT-SAM: SAM's ViT with text tokens (registered in ``mmseg.registry.MODELS``)."""
from .dit_block import DITBlock
from .dit_sam_vit import DITSAMViT
from .sam_key_mapping import (convert_sam_checkpoint, convert_sam_image_encoder,
                              infer_sam_arch)
from .text_image_attention import TextImageAttention
from .text_injection import BaseTextInjection, LinearTextInjection

__all__ = [
    'DITSAMViT', 'DITBlock', 'TextImageAttention', 'BaseTextInjection', 'LinearTextInjection',
    'convert_sam_checkpoint', 'convert_sam_image_encoder', 'infer_sam_arch'
]

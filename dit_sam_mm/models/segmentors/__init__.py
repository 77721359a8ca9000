"""Segmentors of DIT-SAM (registered into ``mmseg.registry.MODELS``)."""
from .dit_sam import DITSAM

__all__ = ['DITSAM']

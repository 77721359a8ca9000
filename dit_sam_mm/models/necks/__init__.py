"""Necks of DIT-SAM: the BERT text encoder (registered into ``mmseg.registry.MODELS``)."""
from .bert_neck import BertNeck

__all__ = ['BertNeck']

"""Data preprocessors."""
from .refer_seg_data_preprocessor import ReferSegDataPreProcessor

__all__ = ['ReferSegDataPreProcessor']

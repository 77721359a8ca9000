"""Metrics of referring image segmentation."""
from .refer_seg_metric import ReferSegMetric

__all__ = ['ReferSegMetric']

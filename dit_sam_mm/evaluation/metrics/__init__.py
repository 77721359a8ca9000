"""Metrics of referring image segmentation."""
from .gres_metric import GRESMetric
from .refer_seg_metric import ReferSegMetric

__all__ = ['GRESMetric', 'ReferSegMetric']

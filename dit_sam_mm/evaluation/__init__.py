"""Evaluation metrics for referring image segmentation."""
from .metrics import GRESMetric, ReferSegMetric

__all__ = ['GRESMetric', 'ReferSegMetric']

"""Evaluation metrics for referring image segmentation."""
from .metrics import ReferSegMetric

__all__ = ['ReferSegMetric']

"""Losses of the plugin."""
from .mask_bce_loss import MaskBCELoss

__all__ = ['MaskBCELoss']

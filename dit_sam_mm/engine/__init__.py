"""Training-loop extensions (hooks) of the plugin."""
from .invalid_loss_hook import InvalidLossStopHook

__all__ = ['InvalidLossStopHook']

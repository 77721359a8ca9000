"""Training-loop extensions (hooks, optimiser wrappers) of the plugin."""
from .bf16_optim_wrapper import BF16OptimWrapper
from .invalid_loss_hook import InvalidLossStopHook

__all__ = ['BF16OptimWrapper', 'InvalidLossStopHook']

"""Training-loop extensions (hooks, optimiser wrappers) of the plugin."""
from .bf16_optim_wrapper import BF16OptimWrapper
from .epoch_seed_hook import EpochSeedHook, seed_worker_from_torch
from .invalid_loss_hook import InvalidLossStopHook

__all__ = [
    'BF16OptimWrapper', 'EpochSeedHook', 'InvalidLossStopHook', 'seed_worker_from_torch'
]

"""Training-loop extensions (hooks, optimiser wrappers) of the plugin."""
from .bf16_optim_wrapper import BF16OptimWrapper
from .deferred_grad_norm_optim_wrapper import DeferredGradNormOptimWrapper
from .deferred_runtime_info_hook import DeferredRuntimeInfoHook
from .epoch_seed_hook import EpochSeedHook, seed_worker_from_torch
from .foreach_ema import ForeachEMA
from .invalid_loss_hook import InvalidLossStopHook
from .safe_checkpoint_hook import AtomicLocalBackend, ResumeStateError, SafeCheckpointHook

__all__ = [
    'BF16OptimWrapper', 'DeferredGradNormOptimWrapper', 'DeferredRuntimeInfoHook', 'EpochSeedHook',
    'ForeachEMA', 'InvalidLossStopHook', 'AtomicLocalBackend', 'ResumeStateError',
    'SafeCheckpointHook', 'seed_worker_from_torch'
]

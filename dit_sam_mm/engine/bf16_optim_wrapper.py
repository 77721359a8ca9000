"""Optimiser wrapper for bfloat16 autocast training without loss scaling, on GPU or CPU."""
from contextlib import contextmanager
from typing import Iterator, Union

import torch
from mmseg.registry import OPTIM_WRAPPERS
from torch import nn

from .deferred_grad_norm_optim_wrapper import DeferredGradNormOptimWrapper


@OPTIM_WRAPPERS.register_module()
class BF16OptimWrapper(DeferredGradNormOptimWrapper):
    """``OptimWrapper`` whose forward pass runs under ``torch.autocast(dtype=torch.bfloat16)``.

    MMEngine's ``AmpOptimWrapper(dtype='bfloat16')`` keeps a ``GradScaler``: bfloat16 has
    float32's exponent range and needs no loss scaling, but the scaler still unscales every
    gradient and, in ``step``, reads its inf/NaN flag on the host (``found_inf.item()``), a
    host-device synchronisation in every training step; it also refuses to run without a GPU.
    This wrapper autocasts the forward pass (``optim_context``, which MMEngine's ``train_step``
    enters around the data preprocessor and the forward) on the device of the model's parameters
    and otherwise is ``DeferredGradNormOptimWrapper`` (the plain ``OptimWrapper`` whose gradient
    norm ``DeferredRuntimeInfoHook`` can log without a per-step sync): float32 parameters,
    gradients and optimiser state. Ops that autocast keeps in float32 (losses, layer norms on
    CUDA) stay float32; the DIT-SAM modules cast their own numerically sensitive parts (mask logits, ``LayerNorm2d``).

    Config (a drop-in for ``AmpOptimWrapper(dtype='bfloat16')``: change the type only)::

        optim_wrapper = dict(type='BF16OptimWrapper', optimizer=dict(type='Adam', lr=1e-4))

    Args:
        dtype (str | torch.dtype): Must be bfloat16; accepted so that configs (and
            ``tools/train.py --amp``, which sets ``dtype``) written for ``AmpOptimWrapper`` work
            unchanged. float16 needs loss scaling: use ``AmpOptimWrapper`` for it.
            Defaults to ``'bfloat16'``.
        **kwargs: ``OptimWrapper`` arguments (``optimizer``, ``clip_grad``,
            ``accumulative_counts``).
    """

    def __init__(self, dtype: Union[str, torch.dtype] = 'bfloat16', **kwargs) -> None:
        if dtype not in ('bfloat16', torch.bfloat16):
            raise ValueError(f'BF16OptimWrapper autocasts to bfloat16 only, got dtype={dtype!r}; '
                             'float16 needs loss scaling: use AmpOptimWrapper')
        super().__init__(**kwargs)

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Gradient-accumulation context of ``OptimWrapper`` plus bfloat16 autocast."""
        param = next(model.parameters(), None)
        device_type = param.device.type if param is not None else 'cpu'
        with super().optim_context(model), torch.autocast(device_type, dtype=torch.bfloat16):
            yield

"""Optimiser wrapper that clips gradients without reading the gradient norm on the host."""
from typing import List, Optional

import torch
from mmengine.optim import OptimWrapper
from mmseg.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class DeferredGradNormOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose gradient norm can be logged later, by ``DeferredRuntimeInfoHook``.

    With ``clip_grad`` set, MMEngine's ``OptimWrapper`` puts the gradient norm into the message
    hub with ``float(norm)`` after every clipping: a host-device synchronisation in every training
    step (the clipping itself, ``clip_grad_norm_``, runs on the device without one). This wrapper
    behaves exactly like ``OptimWrapper`` until a ``DeferredRuntimeInfoHook`` calls
    :meth:`defer_grad_norm` at the start of training; from then on the norm stays a device tensor
    that the hook collects with :meth:`pop_grad_norm` after each iteration and moves to the host
    together with the losses, once per logging interval. The logged values are the same.

    Config (the released recipe's schedule uses it)::

        optim_wrapper = dict(type='DeferredGradNormOptimWrapper',
                             optimizer=dict(type='Adam', lr=1e-4),
                             clip_grad=dict(max_norm=0.15, norm_type=2))

    Args:
        **kwargs: ``OptimWrapper`` arguments (``optimizer``, ``clip_grad``,
            ``accumulative_counts``).
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._defer = False
        self._grad_norm: Optional[torch.Tensor] = None

    def defer_grad_norm(self) -> None:
        """Keep the gradient norm on the device for :meth:`pop_grad_norm` instead of logging it."""
        self._defer = True

    def pop_grad_norm(self) -> Optional[torch.Tensor]:
        """The (0-dim, detached) norm of the last clipping since the previous call, or None when
        no clipping happened (no ``clip_grad``, value clipping, or an accumulation step)."""
        norm, self._grad_norm = self._grad_norm, None
        return norm

    def _clip_grad(self) -> None:
        if not self._defer:
            super()._clip_grad()
            return
        params: List[torch.Tensor] = [
            p for group in self.optimizer.param_groups for p in group['params']
            if p.requires_grad and p.grad is not None
        ]
        if params:
            # clip_grad_norm_ returns the total norm; clip_grad_value_ returns None
            norm = self.clip_func(params, **self.clip_grad_kwargs)
            self._grad_norm = None if norm is None else norm.detach()

"""Log the training losses without a host-device synchronisation in every iteration."""
from typing import Dict, List, Optional

import torch
from mmengine.hooks import LoggerHook, RuntimeInfoHook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class DeferredRuntimeInfoHook(RuntimeInfoHook):
    """``RuntimeInfoHook`` that reads the logged losses on the host every ``interval`` iterations.

    MMEngine's hook puts every value of the model's ``log_vars`` into the message hub after every
    iteration, which calls ``.item()`` on each loss tensor: a host-device synchronisation per
    step, so the CPU cannot queue the next step while the GPU finishes this one. This hook keeps
    the (detached) tensors on the device and moves them to the host in one transfer every
    ``interval`` iterations, at the end of each epoch and before a checkpoint. Every iteration's
    value still enters the message hub, in order, before ``LoggerHook`` (lower priority) reads it,
    so logged averages are unchanged. With a ``DeferredGradNormOptimWrapper`` (or
    ``BF16OptimWrapper``) and ``clip_grad``, the gradient norm is deferred the same way.

    Config: ``default_hooks = dict(runtime_info=dict(type='DeferredRuntimeInfoHook'))``

    Args:
        interval (int, optional): Iterations between two host reads. Defaults to None: the
            ``LoggerHook``'s interval (where MMEngine synchronises anyway), so the logger always
            finds every value in the message hub.
    """

    def __init__(self, interval: Optional[int] = None) -> None:
        if interval is not None and interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.interval = interval
        self._pending: List[Dict[str, object]] = []

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self.interval is None:
            loggers = [hook for hook in runner.hooks if isinstance(hook, LoggerHook)]
            self.interval = loggers[0].interval if loggers else 50
        if hasattr(runner.optim_wrapper, 'defer_grad_norm'):
            runner.optim_wrapper.defer_grad_norm()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        pending = {
            key: value.detach() if isinstance(value, torch.Tensor) else value
            for key, value in (outputs or {}).items()
        }
        wrapper = runner.optim_wrapper
        grad_norm = wrapper.pop_grad_norm() if hasattr(wrapper, 'pop_grad_norm') else None
        if grad_norm is not None:
            pending[wrapper.grad_name] = grad_norm
        if pending:
            self._pending.append(pending)
        if (self.every_n_train_iters(runner, self.interval)
                or self.every_n_inner_iters(batch_idx, self.interval)
                or self.end_of_epoch(runner.train_dataloader, batch_idx)
                or self.is_last_train_iter(runner)):
            self.flush(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self.flush(runner)

    def after_train(self, runner) -> None:
        self.flush(runner)

    def flush(self, runner) -> None:
        """Move the pending values to the host in one transfer and log them in order."""
        tensors = [(i, key, value) for i, outputs in enumerate(self._pending)
                   for key, value in outputs.items() if isinstance(value, torch.Tensor)]
        host = {}
        if tensors:
            # (K,) float64 on the host: one synchronisation for all pending scalars.
            values = torch.stack([v.reshape(()).double() for _, _, v in tensors]).tolist()
            host = {(i, key): value for (i, key, _), value in zip(tensors, values)}
        for i, outputs in enumerate(self._pending):
            for key, value in outputs.items():
                runner.message_hub.update_scalar(f'train/{key}', host.get((i, key), value))
        self._pending = []

"""Stop training on a NaN/Inf loss before a bad checkpoint is written."""
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class InvalidLossStopHook(Hook):
    """Raise a clear error when the training loss stops being finite.

    MMEngine's ``CheckInvalidLossHook`` reads the loss on the host every ``interval`` iterations, so
    a checkpoint saved between two checks may already hold NaN weights. This hook keeps a running
    "all losses finite so far" flag on the loss's device (no host-device synchronisation inside the
    training step), reads it every ``interval`` iterations, and always reads it before a
    checkpoint is saved: a run whose loss became NaN or Inf stops with the iteration named, and the
    checkpoints it already wrote are the last good ones.

    Args:
        interval (int): Iterations between two host-side checks. Defaults to 50 (the logging
            interval, where MMEngine synchronises anyway).
    """

    priority = 'VERY_HIGH'

    def __init__(self, interval: int = 50) -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.interval = interval
        self._all_finite: Optional[torch.Tensor] = None
        self._last_checked_iter = 0

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        loss = (outputs or {}).get('loss')
        if loss is None:
            return
        finite = torch.isfinite(loss.detach()).all()
        self._all_finite = finite if self._all_finite is None else self._all_finite & finite
        if self.every_n_train_iters(runner, self.interval):
            self._raise_if_invalid(runner, completed_iters=runner.iter + 1)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self._raise_if_invalid(runner, completed_iters=runner.iter)

    def _raise_if_invalid(self, runner, completed_iters: int) -> None:
        """Read the flag on the host; raise if a loss since the start was not finite."""
        if self._all_finite is not None and not bool(self._all_finite):
            raise RuntimeError(
                f'The training loss became NaN or Inf between iterations '
                f'{self._last_checked_iter + 1} and {completed_iters}; training stopped before '
                f'writing another checkpoint, so the last one in {runner.work_dir} is the last '
                f'good one. Lower the learning rate, enable gradient clipping '
                f'(optim_wrapper.clip_grad) or check the data.')
        self._last_checked_iter = completed_iters

"""Exponential moving average of the weights: one fused update per step, no host reads."""
from typing import Optional

import torch
from mmengine.model import ExponentialMovingAverage
from mmseg.registry import MODELS
from torch import nn


@MODELS.register_module()
class ForeachEMA(ExponentialMovingAverage):
    """``ExponentialMovingAverage`` updated with foreach kernels, optionally with a decay warm-up.

    MMEngine's averaged models compare the ``steps`` buffer (a device tensor) with 0 and the
    interval in every update, two host-device synchronisations per training step, and update
    the parameters one by one (hundreds of small kernels for ViT-B + BERT). This class keeps a
    host copy of the step count (read from the buffer once, when a checkpoint is loaded), and
    updates all floating-point tensors with one ``torch._foreach_lerp_``: the same values as
    ``ExponentialMovingAverage``.

    ``decay_warmup=W`` makes the decay grow as in the DIT-SAM authors' released code
    (``min(decay, (n + 1) / (n + 1 + W))`` at the n-th update, W = 9 there), so early averages
    follow the trained weights closely instead of keeping the initial weights for thousands of
    steps. As in MMEngine, the first update copies the weights.

    Config: ``custom_hooks = [dict(type='EMAHook', ema_type='ForeachEMA', momentum=0.0003,
    decay_warmup=9, update_buffers=True)]``

    Args:
        model (nn.Module): The model to average.
        momentum (float): Weight of the new value, ``1 - decay``. Defaults to 0.0002.
        interval (int): Steps between two updates. Defaults to 1.
        device (torch.device, optional): Where the average lives. Defaults to None (the
            model's device).
        update_buffers (bool): Average the buffers too (else they are copied). Defaults to
            False.
        decay_warmup (int, optional): W of the decay warm-up. Defaults to None (constant
            momentum, as ``ExponentialMovingAverage``).
    """

    def __init__(self,
                 model: nn.Module,
                 momentum: float = 0.0002,
                 interval: int = 1,
                 device: Optional[torch.device] = None,
                 update_buffers: bool = False,
                 decay_warmup: Optional[int] = None) -> None:
        super().__init__(model, momentum, interval, device, update_buffers)
        if decay_warmup is not None and decay_warmup < 0:
            raise ValueError(f'decay_warmup must be >= 0, got {decay_warmup}')
        self.decay_warmup = decay_warmup
        self._host_steps = 0
        self.register_load_state_dict_post_hook(ForeachEMA._read_steps)

    @staticmethod
    def _read_steps(module: 'ForeachEMA', incompatible_keys) -> None:
        module._host_steps = int(module.steps)  # once per checkpoint load

    def momentum_at(self, step: int) -> float:
        """Weight of the new value at update ``step`` (0-based; 0 copies the weights)."""
        if self.decay_warmup is None:
            return self.momentum
        return max(self.momentum, 1 - (step + 1) / (step + 1 + self.decay_warmup))

    def update_parameters(self, model: nn.Module) -> None:
        source = model.state_dict() if self.update_buffers else dict(model.named_parameters())
        step = self._host_steps
        if step == 0:
            torch._foreach_copy_([p.data for p in self.avg_parameters.values()],
                                 [source[k].data.to(p.device)
                                  for k, p in self.avg_parameters.items()])
        elif step % self.interval == 0:
            keys = [k for k, p in self.avg_parameters.items() if p.dtype.is_floating_point]
            averaged = [self.avg_parameters[k].data for k in keys]
            torch._foreach_lerp_(averaged, [source[k].data.to(p.device)
                                            for k, p in zip(keys, averaged)],
                                 self.momentum_at(step))
        if not self.update_buffers:
            for b_avg, b_src in zip(self.module.buffers(), model.buffers()):
                b_avg.data.copy_(b_src.data.to(b_avg.device))
        self.steps.add_(1)
        self._host_steps += 1

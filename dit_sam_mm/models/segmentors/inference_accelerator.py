"""Run a segmentor's inference tensor path in reduced precision and compiled, on CUDA.

Inference spends its time in one pure tensor function: normalised images and token ids / mask in,
low-resolution mask logits out (``DITSAM.mask_logits``). :class:`InferenceAccelerator` wraps it
with ``torch.autocast`` (bfloat16 by default) and ``torch.compile`` with static shapes: one
compiled graph per input size and batch size. With ``compile_mode='reduce-overhead'`` inductor
also captures a CUDA graph per size, which removes the per-kernel launch cost that dominates at
batch 1. Everything around it (pre- and post-processing, data samples) stays eager.
"""
from typing import Callable, Optional, Tuple, Union

import torch
from torch import Tensor

from ...engine.compile_fallback import FALLBACK_BACKEND

#: Autocast element types by name.
DTYPES = {'bfloat16': torch.bfloat16, 'float16': torch.float16}


class InferenceAccelerator:
    """Autocast and ``torch.compile`` around a tensor function of inference.

    Args:
        fn (Callable): ``fn(images, text_ids, text_mask) -> logits``, a tensor or a tuple of
            tensors (e.g. mask and no-target logits).
        dtype (str, optional): ``'bfloat16'`` or ``'float16'`` autocast, None for the input's
            precision. Defaults to ``'bfloat16'``.
        compile_mode (str, optional): ``torch.compile`` mode (``'default'``,
            ``'reduce-overhead'`` for CUDA graphs, ``'max-autotune'``), None not to compile.
            Defaults to ``'reduce-overhead'``.
        backend (str): ``torch.compile`` backend. Defaults to ``'inductor_or_eager'``
            (inductor, or eager with one warning where inductor cannot compile).
    """

    def __init__(self,
                 fn: Callable[[Tensor, Tensor, Tensor], Union[Tensor, Tuple[Tensor, ...]]],
                 *,
                 dtype: Optional[str] = 'bfloat16',
                 compile_mode: Optional[str] = 'reduce-overhead',
                 backend: str = FALLBACK_BACKEND) -> None:
        if dtype is not None and dtype not in DTYPES:
            raise ValueError(f'dtype={dtype!r}: choose from {sorted(DTYPES)} or None')
        self.dtype = DTYPES[dtype] if dtype is not None else None
        self.compile_mode = compile_mode
        self.fn = fn
        if compile_mode is not None:
            options = dict(backend=backend, dynamic=False)
            if backend in ('inductor', FALLBACK_BACKEND):
                options['mode'] = compile_mode
            self.fn = torch.compile(fn, **options)

    def __call__(self, images: Tensor, text_ids: Tensor,
                 text_mask: Tensor) -> Union[Tensor, Tuple[Tensor, ...]]:
        """Float32 logits of ``fn`` (each of them, for a tuple) for the inputs, under autocast,
        compiled."""
        if self.compile_mode == 'reduce-overhead' and images.is_cuda:
            # A new inference step: the CUDA graph may reuse the previous call's output memory
            # (its logits were post-processed into new tensors already).
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(images.device.type, dtype=self.dtype or torch.float32,
                            enabled=self.dtype is not None):
            logits = self.fn(images, text_ids, text_mask)
        if isinstance(logits, tuple):
            return tuple(tensor.float() for tensor in logits)
        return logits.float()

    def __deepcopy__(self, memo: dict) -> None:
        """A deep copy of the model (e.g. MMEngine's EMA model) runs without acceleration: the
        compiled function belongs to the original model."""
        return None

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(dtype={self.dtype}, compile_mode={self.compile_mode!r})')

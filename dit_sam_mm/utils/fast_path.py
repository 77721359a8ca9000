"""The GPU fast path that training, testing and inference take by default.

On CUDA, DIT-SAM runs fastest in bfloat16 autocast (float32 master weights and optimiser state)
and compiled by ``torch.compile``. :func:`gpu_fast_path` decides, from the config and the command
line, whether a run takes it; the tools apply the decision:

- ``tools/train.py``: ``BF16OptimWrapper`` (as ``--amp``) and MMEngine's ``compile`` of the
  training step; validation runs in bfloat16 autocast.
- ``tools/test.py``: the segmentor's inference path in bfloat16 autocast, compiled
  (``DITSAM.accelerate_inference``).
- ``ReferSegInferencer``: the same, with CUDA graphs (``'reduce-overhead'``) for small batches.

The way back: ``--fp32`` (no autocast) and ``--eager`` (no compilation) on the command line, or
``gpu_fast_path = False`` in a config (the ``*_official`` configs, which reproduce the released
code's float32 numbers). On a machine without CUDA nothing changes.
"""
from typing import NamedTuple, Optional

import torch
from mmengine.config import Config
from mmengine.model import is_model_wrapper


class FastPath(NamedTuple):
    """What a run takes of the GPU fast path."""
    bf16: bool
    compile: bool


def gpu_fast_path(cfg: Config,
                  fp32: bool = False,
                  eager: bool = False,
                  cuda: Optional[bool] = None) -> FastPath:
    """Whether a run uses bfloat16 autocast and ``torch.compile``.

    Args:
        cfg (Config): The run's config; ``gpu_fast_path = False`` in it turns both off.
        fp32 (bool): The user asked for float32 (``--fp32``). Defaults to False.
        eager (bool): The user asked for eager mode (``--eager``). Defaults to False.
        cuda (bool, optional): Whether the run is on CUDA. Defaults to
            ``torch.cuda.is_available()``.

    Returns:
        FastPath: ``(bf16, compile)``.
    """
    cuda = torch.cuda.is_available() if cuda is None else cuda
    enabled = cuda and bool(cfg.get('gpu_fast_path', True))
    return FastPath(bf16=enabled and not fp32, compile=enabled and not eager)


def accelerate_inference(model: torch.nn.Module, fast: FastPath,
                         compile_mode: str = 'default') -> bool:
    """Apply ``fast`` to a segmentor's inference (``DITSAM.accelerate_inference``).

    Args:
        model (nn.Module): The segmentor, possibly wrapped (DDP); models without
            ``accelerate_inference`` (e.g. a stock ``EncoderDecoder``) are left as they are.
        fast (FastPath): The decision of :func:`gpu_fast_path`.
        compile_mode (str): ``torch.compile`` mode when compiling. Defaults to ``'default'``.

    Returns:
        bool: Whether anything was applied.
    """
    if is_model_wrapper(model):
        model = model.module
    if not hasattr(model, 'accelerate_inference') or not (fast.bf16 or fast.compile):
        return False
    model.accelerate_inference('bfloat16' if fast.bf16 else None,
                               compile_mode if fast.compile else None)
    return True

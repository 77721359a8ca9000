"""The GPU fast path that training, testing and inference take by default, chosen per device.

On CUDA, DIT-SAM runs fastest in reduced-precision autocast (float32 master weights and optimiser
state) and compiled by ``torch.compile``. :func:`gpu_fast_path` decides, from the GPU, the config
and the command line, what a run takes:

- precision: bfloat16 where the GPU computes it natively (compute capability 8.0 and up:
  A100, H100, RTX 30xx and later); on older GPUs (V100 7.0, T4 7.5) float16, with dynamic loss
  scaling in training (MMEngine's ``AmpOptimWrapper``);
- compilation: only where inductor can run: compute capability 7.0 and up, with Triton
  importable. The backend is ``'inductor_or_eager'`` (``dit_sam_mm.engine.compile_fallback``): a
  graph inductor fails to compile runs eagerly, with one warning.

The tools apply the decision and log it in one line (:func:`describe`):

- ``tools/train.py``: ``BF16OptimWrapper`` or ``AmpOptimWrapper`` (as ``--amp``) and MMEngine's
  ``compile`` of the training step; validation runs in the same autocast.
- ``tools/test.py``: the segmentor's inference path in autocast, compiled
  (``DITSAM.accelerate_inference``).
- ``ReferSegInferencer``: the same, with CUDA graphs (``'reduce-overhead'``) for small batches.

The way back: ``--fp32`` (no autocast) and ``--eager`` (no compilation) on the command line, or
``gpu_fast_path = False`` in a config (the ``*_official`` configs, which reproduce the released
code's float32 numbers). On a machine without CUDA nothing changes.
"""
import importlib.util
from typing import NamedTuple, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.model import is_model_wrapper

#: Compute capability from which a GPU computes bfloat16 natively (Ampere).
NATIVE_BF16_CAPABILITY = (8, 0)
#: Compute capability inductor's Triton kernels need (Volta).
INDUCTOR_CAPABILITY = (7, 0)


class GPUInfo(NamedTuple):
    """What the fast path depends on, read from the current CUDA device."""
    name: str
    capability: Tuple[int, int]
    bf16_native: bool
    triton: bool


class FastPath(NamedTuple):
    """What a run takes of the GPU fast path.

    Attributes:
        dtype (str, optional): Autocast type, ``'bfloat16'`` or ``'float16'``; None for float32.
        compile (bool): Whether ``torch.compile`` is used.
        reason (str): Why, in words (for the log line).
    """
    dtype: Optional[str]
    compile: bool
    reason: str = ''


def cuda_device_info() -> Optional[GPUInfo]:
    """The current CUDA device's :class:`GPUInfo`, or None without CUDA."""
    if not torch.cuda.is_available():
        return None
    capability = tuple(torch.cuda.get_device_capability())
    try:
        native = torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch builds whose is_bf16_supported takes no arguments
        native = capability >= NATIVE_BF16_CAPABILITY
    return GPUInfo(name=torch.cuda.get_device_name(), capability=capability,
                   bf16_native=bool(native) or capability >= NATIVE_BF16_CAPABILITY,
                   triton=importlib.util.find_spec('triton') is not None)


def gpu_fast_path(cfg: Config,
                  fp32: bool = False,
                  eager: bool = False,
                  gpu: Optional[GPUInfo] = None,
                  cuda: Optional[bool] = None) -> FastPath:
    """What a run takes of the fast path (see the module docstring).

    Args:
        cfg (Config): The run's config; ``gpu_fast_path = False`` in it turns both off.
        fp32 (bool): The user asked for float32 (``--fp32``). Defaults to False.
        eager (bool): The user asked for eager mode (``--eager``). Defaults to False.
        gpu (GPUInfo, optional): The device. Defaults to :func:`cuda_device_info`.
        cuda (bool, optional): False for a run that stays on the CPU although CUDA exists (an
            inferencer with ``device='cpu'``). Defaults to whether there is a GPU.

    Returns:
        FastPath: precision, compilation and the reason.
    """
    gpu = cuda_device_info() if gpu is None and cuda is not False else gpu
    if gpu is None or cuda is False:
        return FastPath(None, False, 'no CUDA device')
    if not cfg.get('gpu_fast_path', True):
        return FastPath(None, False, 'gpu_fast_path = False in the config')
    sm = f'sm_{gpu.capability[0]}{gpu.capability[1]}'
    if fp32:
        dtype, precision = None, '--fp32'
    elif gpu.bf16_native:
        dtype, precision = 'bfloat16', f'native bfloat16 on {sm}'
    else:
        dtype, precision = 'float16', (f'no native bfloat16 on {sm} (needs sm_80); float16 '
                                       'with dynamic loss scaling in training')
    if eager:
        compiled, why = False, '--eager'
    elif gpu.capability < INDUCTOR_CAPABILITY:
        compiled, why = False, f'inductor needs sm_70 or newer, this is {sm}'
    elif not gpu.triton:
        compiled, why = False, 'Triton is not installed'
    else:
        compiled, why = True, 'inductor, eager where it fails'
    return FastPath(dtype, compiled, f'{precision}; {why}')


def describe(fast: FastPath, gpu: Optional[GPUInfo] = None) -> str:
    """The one log line: device, precision, compiled or not, and why."""
    device = f'{gpu.name} (sm_{gpu.capability[0]}{gpu.capability[1]})' if gpu else 'CPU'
    precision = f'{fast.dtype} autocast' if fast.dtype else 'float32'
    return (f'fast path: {device}, {precision}, '
            f'{"compiled" if fast.compile else "not compiled"} ({fast.reason})')


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
    if not hasattr(model, 'accelerate_inference') or not (fast.dtype or fast.compile):
        return False
    model.accelerate_inference(fast.dtype, compile_mode if fast.compile else None)
    return True

"""Model benchmarks of ``tools/analysis_tools/benchmark.py``: training and inference speed.

Everything runs on random weights and synthetic inputs, so no dataset, checkpoint or download is
needed: :func:`random_weights_model_cfg` drops ``pretrained`` / ``Pretrained`` ``init_cfg`` entries
and turns a ``BertNeck(pretrained=...)`` into an equivalent ``bert_cfg`` model, and
:func:`synthetic_batch` packs uint8 images and token ids as the data pipeline does, for the
model's own data preprocessor.

Timing: ``warmup`` steps, then ``iters`` steps, each one ended by a device synchronisation
(``torch.cuda.synchronize``), so every step's latency is its full wall-clock time and samples/s is
``iters * batch / sum(latencies)``. A training step is MMEngine's ``model.train_step`` (data
preprocessor, forward under the optimiser wrapper's context, loss parsing, backward, optimiser
step); an inference step is ``model.test_step`` (preprocessor, predict, post-processing to the
original size) under ``torch.no_grad``.

FLOPs: one forward (``mode='tensor'``: BERT, image encoder, mask decoder) of a batch of 1 is counted
by :func:`count_flops`; a training sample counts 3x the forward (forward + backward with the
gradients of inputs and weights), the usual "model FLOPs" convention. The achieved TFLOP/s is
``FLOPs per sample * samples/s``. The encoder is counted with its reference attention
(``attn_impl='naive'``), so the count is the model's FLOPs whatever implementation is timed: the
``'sdpa'`` path folds the relative bias into extra query / key channels and so executes more
multiply-adds than the model needs, which model FLOPs leave out. ``FlopCounterMode`` intercepts
aten operators and counts the multiply-adds of matrix products as 2 FLOPs each:
``mm``/``addmm``/``bmm``/``baddbmm`` (so ``nn.Linear``, ``matmul`` and ``einsum``), convolutions
(transposed ones too) and the fused attention kernels of CUDA (flash, memory-efficient, cuDNN:
``4 * B * heads * N_q * N_k * d``, the two products; their backward formulas for a backward
pass). Element-wise work (norms, softmax, activations, the mask addition) is not counted.
PyTorch's table lacks the CPU fused attention kernel
(``_scaled_dot_product_flash_attention_for_cpu``), which ``F.scaled_dot_product_attention`` runs
on CPU (the mask decoder's attention), so attention would silently count as 0 there;
:data:`EXTRA_FLOP_FORMULAS` adds it with the CUDA kernels' formulas, so a count does not depend
on the device (and a fused kernel counts as the two ``matmul``s it replaces).
"""
import copy
import json
import os
import resource
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch.utils import flop_counter

from dit_sam_mm.models.backbones.text_image_attention import attention_impl

from .profiling import profile_steps

Shape = Sequence[int]
_aten = torch.ops.aten


def _sdpa_cpu_flop(query_shape: Shape, key_shape: Shape, value_shape: Shape, *args,
                   **kwargs) -> int:
    """Forward FLOPs of the CPU fused attention kernel (the CUDA kernels' formula)."""
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _sdpa_cpu_backward_flop(grad_out_shape: Shape, query_shape: Shape, key_shape: Shape,
                            value_shape: Shape, *args, **kwargs) -> int:
    """Backward FLOPs of the CPU fused attention kernel (the CUDA kernels' formula)."""
    return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape,
                                                 value_shape)


#: Operators added to PyTorch's FLOP table; FlopCounterMode passes them shapes, not tensors.
EXTRA_FLOP_FORMULAS: Dict[Any, Callable[..., int]] = {
    _aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_flop,
    _aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_cpu_backward_flop,
}


def count_flops(fn: Callable[[], Any]) -> Tuple[int, Any]:
    """Run ``fn()`` once and count the FLOPs of its tensor operations.

    Args:
        fn (Callable): What to count, e.g. ``lambda: model(**data, mode='tensor')``; a backward
            pass inside ``fn`` is counted too.

    Returns:
        Tuple[int, Any]: The total FLOPs and ``fn``'s return value.
    """
    with flop_counter.FlopCounterMode(
            display=False, custom_mapping=EXTRA_FLOP_FORMULAS) as counter:
        out = fn()
    return counter.get_total_flops(), out


#: BERT-base uncased (what ``BertNeck(pretrained='bert-base-uncased')`` loads).
BERT_BASE = dict(
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    vocab_size=30522)
TEXT_LEN = 20  # [CLS] + up to 18 word pieces + [SEP] (DIT-SAM's tokenizer)
DEFAULT_OPTIMIZER = dict(type='Adam', lr=1e-4, betas=(0.9, 0.98), eps=1e-9)


def _bert_cfg(pretrained: str) -> dict:
    """BertConfig kwargs equal to a pretrained BERT: its local config.json, else BERT-base."""
    path = os.path.join(os.path.expanduser(pretrained), 'config.json')
    if os.path.isfile(path):
        with open(path, encoding='utf-8') as f:
            return {k: v for k, v in json.load(f).items() if k in BERT_BASE}
    return dict(BERT_BASE)


def _strip_pretrained(node):
    """Copy of a config tree without weight files to load (recursively)."""
    if isinstance(node, list):
        return [_strip_pretrained(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {k: _strip_pretrained(v) for k, v in node.items()}
    if node.get('type') == 'BertNeck' and node.get('pretrained') is not None:
        node['bert_cfg'] = _bert_cfg(node['pretrained'])
    node.pop('pretrained', None)
    init_cfg = node.get('init_cfg')
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        node.pop('init_cfg')
    return node


def random_weights_model_cfg(model_cfg: dict, reference: bool = False) -> dict:
    """The model config with pretrained weights disabled (and the reference attention).

    Args:
        model_cfg (dict): ``cfg.model`` of a DIT-SAM config.
        reference (bool): Build the encoder with ``attn_impl='naive'`` (the released code's
            hand-written attention). Defaults to False.

    Returns:
        dict: A config that builds without any file.
    """
    cfg = _strip_pretrained(copy.deepcopy(dict(model_cfg)))
    if reference:
        cfg['backbone']['attn_impl'] = 'naive'
    return cfg


def build_model(model_cfg: dict, device: str, reference: bool = False) -> torch.nn.Module:
    """Build a random-weight model on ``device`` (mmseg scope).

    The modules keep the initialisation of their constructors (PyTorch's defaults, zero text
    projections); ``init_weights`` is not called, it would only change the random values.
    """
    init_default_scope('mmseg')
    return MODELS.build(random_weights_model_cfg(model_cfg, reference)).to(device)


def input_size(model_cfg: dict) -> int:
    """The square input side of a config: the backbone's ``img_size`` (default 512)."""
    size = model_cfg.get('backbone', {}).get('img_size', 512)
    return size if isinstance(size, int) else max(size)


def synthetic_batch(batch_size: int, img_size: int, vocab_size: int, text_len: int = TEXT_LEN,
                    with_gt: bool = True, seed: int = 0) -> dict:
    """A packed batch as ``PackSegInputs`` + ``DataLoader`` produce it (CPU, uint8 images).

    Each sample has a random sentence of 4..``text_len`` tokens ([CLS] ... [SEP], padded with 0
    to ``text_len``) and, when ``with_gt``, a random rectangle as its mask. Token ids follow
    BERT-base uncased ([CLS] 101, [SEP] 102, words from 1000) or, for a vocabulary of at most
    1000 entries such as SynthRef's, a small one that starts [PAD] [UNK] [CLS] [SEP] [MASK].
    """
    cls_id, sep_id, first_word = (101, 102, 1000) if vocab_size > 1000 else (2, 3, 5)
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch_size):
        inputs.append(torch.randint(0, 256, (3, img_size, img_size), generator=gen,
                                    dtype=torch.uint8))
        length = int(torch.randint(4, text_len + 1, (1, ), generator=gen))
        ids = torch.zeros(text_len, dtype=torch.long)
        ids[:length] = torch.randint(first_word, vocab_size, (length, ), generator=gen)
        ids[0], ids[length - 1] = cls_id, sep_id
        shape = (img_size, img_size)
        sample = SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, pad_shape=shape,
                                             flip=False))
        sample.set_data(dict(text_ids=ids, text_mask=(ids > 0).long()))
        if with_gt:
            y0, x0 = torch.randint(0, img_size // 2, (2, ), generator=gen).tolist()
            gt = torch.zeros(1, img_size, img_size, dtype=torch.uint8)
            gt[:, y0:y0 + img_size // 3, x0:x0 + img_size // 3] = 1
            sample.gt_sem_seg = PixelData(data=gt)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def forward_flops(model: torch.nn.Module, img_size: int, vocab_size: int) -> int:
    """Model FLOPs of one forward (``mode='tensor'``) of one sample, counted in float32 with the
    reference attention."""
    data = model.data_preprocessor(synthetic_batch(1, img_size, vocab_size, with_gt=False))
    was_training = model.training
    model.eval()
    with torch.no_grad(), attention_impl(model, 'naive'):
        flops, _ = count_flops(lambda: model(**data, mode='tensor'))
    model.train(was_training)
    return flops


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def time_steps(step: Callable[[], object], device: str, warmup: int, iters: int) -> List[float]:
    """Run ``warmup`` untimed then ``iters`` timed steps; each timed step's seconds."""
    for _ in range(warmup):
        step()
    _sync(device)
    seconds = []
    for _ in range(iters):
        start = time.perf_counter()
        step()
        _sync(device)
        seconds.append(time.perf_counter() - start)
    return seconds


def _percentile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _peak_memory_mb(device: str) -> Dict[str, object]:
    if device.startswith('cuda'):
        return dict(peak_mem_mb=torch.cuda.max_memory_allocated() / 2**20,
                    mem_kind='cuda_max_allocated')
    # ru_maxrss is in KiB on Linux: the peak resident set of the whole process.
    return dict(peak_mem_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                mem_kind='process_max_rss')


def _report(mode: str, seconds: List[float], batch_size: int, flops_per_sample: float,
            device: str, base_mem_mb: float) -> Dict[str, object]:
    samples_per_s = batch_size * len(seconds) / sum(seconds)
    mem = _peak_memory_mb(device)
    result = dict(
        mode=mode, samples_per_s=samples_per_s,
        latency_ms_median=1000 * statistics.median(seconds),
        latency_ms_p90=1000 * _percentile(seconds, 0.9),
        peak_mem_per_sample_mb=mem['peak_mem_mb'] / batch_size,
        flops_per_sample=flops_per_sample,
        tflops_achieved=flops_per_sample * samples_per_s / 1e12, **mem)
    if device.startswith('cuda'):
        # Weights, gradients and optimiser state are allocated before the timed steps.
        result['base_mem_mb'] = base_mem_mb
        result['activation_mem_per_sample_mb'] = (mem['peak_mem_mb'] - base_mem_mb) / batch_size
    return result


def _title(mode: str, batch_size: int, device: str, amp: Optional[str], reference: bool,
           compile_mode: Optional[str]) -> str:
    """One line saying what a profile shows."""
    precision = 'float32 reference' if reference else (amp or 'float32')
    name = torch.cuda.get_device_name(device) if device.startswith('cuda') else device
    return (f'{mode}, batch {batch_size}, {name}, {precision}, compile={compile_mode}, '
            f'torch {torch.__version__}')


def _maybe_compile(step: Callable, mode: Optional[str]) -> Callable:
    return step if mode is None else torch.compile(step, mode=mode)


def prepare_model(model_cfg: dict, device: str, reference: bool, amp: Optional[str]):
    """(model, vocabulary size, input size, forward FLOPs of one sample) of a random-weights
    benchmark model; checks the precision settings and, for the reference on GPU, turns cuDNN
    off."""
    if reference and amp:
        raise ValueError('the reference runs in float32: do not combine it with --amp')
    if amp not in (None, 'bf16'):
        raise ValueError(f'amp={amp!r}: only bf16 is supported')
    if reference and device.startswith('cuda'):
        torch.backends.cudnn.enabled = False  # as the released code
    model = build_model(model_cfg, device, reference)
    vocab = model.neck.bert.config.vocab_size
    size = input_size(model_cfg)
    return model, vocab, size, forward_flops(model, size, vocab)


def benchmark_train(model_cfg: dict, optim_cfg: Optional[dict], batch_size: int, device: str,
                    amp: Optional[str] = None, compile_mode: Optional[str] = None,
                    reference: bool = False, warmup: int = 3, iters: int = 10,
                    profile_dir: Optional[str] = None,
                    profile_iters: int = 3) -> Dict[str, object]:
    """Training speed: MMEngine ``train_step``s on one synthetic batch.

    Args:
        model_cfg (dict): ``cfg.model``.
        optim_cfg (dict, optional): ``cfg.optim_wrapper``; its wrapper type is replaced by
            ``DeferredGradNormOptimWrapper`` with the gradient norm deferred as
            ``DeferredRuntimeInfoHook`` does (``BF16OptimWrapper`` with ``amp='bf16'``; MMEngine's
            ``OptimWrapper``, which reads the norm on the host, for the reference). None: Adam
            with the released recipe's hyper-parameters, ``fused=True``. The reference always runs
            PyTorch's single-tensor Adam (``foreach=False, fused=False``), as the released code.
        batch_size (int): Samples per step.
        device (str): ``'cpu'`` or ``'cuda'``.
        amp (str, optional): ``'bf16'`` for bfloat16 autocast. Defaults to None (float32).
        compile_mode (str, optional): ``torch.compile`` the ``train_step`` with this mode
            (``'default'``, ``'reduce-overhead'``, ``'max-autotune'``), as MMEngine's runner does
            for ``compile=dict(mode=...)``. Defaults to None (eager).
        reference (bool): Naive attention, float32 (and cuDNN off on GPU). Defaults to False.
        warmup (int): Untimed steps. Defaults to 3.
        iters (int): Timed steps. Defaults to 10.
        profile_dir (str, optional): After timing, profile ``profile_iters`` more steps
            and write a trace and a top-kernels table there (:func:`profile_steps`).
            Defaults to None (no profile).
        profile_iters (int): Steps profiled. Defaults to 3.

    Returns:
        dict: The measurements (with ``profile``: the files and the category shares).
    """
    model, vocab, size, flops = prepare_model(model_cfg, device, reference, amp)
    model.train()
    optim_cfg = copy.deepcopy(dict(optim_cfg)) if optim_cfg else dict(
        optimizer=dict(DEFAULT_OPTIMIZER, fused=True))
    for key in ('dtype', 'loss_scale', 'use_fsdp'):  # AmpOptimWrapper's
        optim_cfg.pop(key, None)
    if reference:
        optim_cfg['type'] = 'OptimWrapper'
        optim_cfg['optimizer'] = dict(optim_cfg['optimizer'], foreach=False, fused=False)
    else:
        optim_cfg['type'] = 'BF16OptimWrapper' if amp else 'DeferredGradNormOptimWrapper'
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    if not reference:
        optim_wrapper.defer_grad_norm()
    train_step = _maybe_compile(model.train_step, compile_mode)
    data = synthetic_batch(batch_size, size, vocab)
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    # One step creates the optimiser state, so the base memory below includes it.
    train_step(data, optim_wrapper)
    _sync(device)
    base = torch.cuda.memory_allocated() / 2**20 if device.startswith('cuda') else 0.0
    seconds = time_steps(lambda: train_step(data, optim_wrapper), device, max(warmup - 1, 0),
                         iters)
    result = _report('train', seconds, batch_size, 3 * flops, device, base)
    if profile_dir:
        result['profile'] = profile_steps(
            lambda: train_step(data, optim_wrapper), device, profile_iters, profile_dir,
            _title('train', batch_size, device, amp, reference, compile_mode))
    return result


def benchmark_infer(model_cfg: dict, batch_size: int, device: str, amp: Optional[str] = None,
                    compile_mode: Optional[str] = None, reference: bool = False, warmup: int = 3,
                    iters: int = 10, profile_dir: Optional[str] = None,
                    profile_iters: int = 3, accelerate: bool = False) -> Dict[str, object]:
    """Inference speed: ``test_step``s (masks at the original size) on one synthetic batch.

    Arguments as :func:`benchmark_train` (without the optimiser), and:

    Args:
        accelerate (bool): Apply ``amp`` and ``compile_mode`` as ``tools/test.py`` and
            ``ReferSegInferencer`` do on a GPU (``DITSAM.accelerate_inference``: autocast and
            compilation of the tensor path only) instead of around the whole ``test_step``.
            Defaults to False.

    Returns:
        dict: The measurements.
    """
    model, vocab, size, flops = prepare_model(model_cfg, device, reference, amp)
    model.eval()
    data = synthetic_batch(batch_size, size, vocab, with_gt=False)
    if accelerate:
        model.accelerate_inference('bfloat16' if amp else None, compile_mode)
        test_step, autocast = model.test_step, False
    else:
        test_step, autocast = _maybe_compile(model.test_step, compile_mode), amp == 'bf16'

    def step() -> object:
        with torch.no_grad(), torch.autocast(device.split(':')[0], dtype=torch.bfloat16,
                                             enabled=autocast):
            return test_step(data)

    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() / 2**20 if device.startswith('cuda') else 0.0
    seconds = time_steps(step, device, warmup, iters)
    result = _report('infer', seconds, batch_size, flops, device, base)
    if profile_dir:
        result['profile'] = profile_steps(
            step, device, profile_iters, profile_dir,
            _title('infer', batch_size, device, amp, reference, compile_mode))
    return result

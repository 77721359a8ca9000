"""Benchmark a config: training speed, inference speed, or the training data pipeline.

``--mode train`` / ``--mode infer`` measure the model of a config (only ``model=`` is needed) with
random weights and synthetic inputs: pretrained weights are disabled (a ``BertNeck`` pretrained
directory becomes an equivalent ``bert_cfg``, BERT-base unless the directory's config.json is
there), and images + token ids are packed as ``SegDataSample``s for the model's own data
preprocessor. After ``--warmup`` steps, ``--iters`` steps are timed, each ended by a device
synchronisation. A training step is MMEngine's ``train_step`` with the config's optimiser (Adam
if none); an inference step is ``test_step`` (masks at the original size)::

    python tools/analysis_tools/benchmark.py configs/dit/ldit_vitb_refcoco.py --mode train \
        --batch-size 64 --amp bf16 --device cuda [--compile] --json work_dirs/train.json
    python tools/analysis_tools/benchmark.py CONFIG --mode infer --batch-size 1 --amp bf16
    python tools/analysis_tools/benchmark.py CONFIG --mode train --reference   # released-code way
    python tools/analysis_tools/benchmark.py CONFIG --mode train --profile work_dirs/profile

Printed and written (``--json``): ``samples_per_s``, ``latency_ms_median`` / ``latency_ms_p90``
(per step), ``peak_mem_mb`` and ``peak_mem_per_sample_mb`` (CUDA max allocated; on CPU the process'
peak RSS, ``mem_kind`` says which), on CUDA also ``base_mem_mb`` (weights, gradients, optimiser
state) and ``activation_mem_per_sample_mb``, ``flops_per_sample`` (model FLOPs: one forward
counted by ``torch.utils.flop_counter.FlopCounterMode`` with the reference attention, x3 for a
training sample) and ``tflops_achieved``, plus the settings. ``--reference`` builds the encoder
with the hand-written attention (``attn_impl='naive'``), runs float32, single-tensor Adam and, on
GPU, turns cuDNN off, as the authors' release does. See ``dit_sam_mm/analysis/benchmark.py``.

``--profile DIR`` profiles ``--profile-iters`` more steps after the timed ones and writes
``DIR/trace.json`` (Chrome trace) and ``DIR/top_kernels.md`` (time share of attention, matmuls,
elementwise, optimiser, other and host; the top operators or kernels), see
``dit_sam_mm/analysis/profiling.py``.

``--mode activations`` counts the activation memory of a training forward: the bytes autograd saves
for the backward pass at batch B and B + 1, and their difference per sample (see
``dit_sam_mm/analysis/activation_memory.py`` for what it does and does not include)::

    python tools/analysis_tools/benchmark.py configs/dit/ldit_vith_refcoco.py --mode activations \
        --batch-size 1 --amp bf16 --device cpu

``--mode data`` measures the training data pipeline of a config: the dataset
and pipeline of ``train_dataloader`` (no model), in samples per second in
total and per dataloader worker::

    python tools/analysis_tools/benchmark.py CONFIG --mode data \
        --num-workers 2 --iters 200 --json work_dirs/bench_data.json

With ``--num-workers 0`` the pipeline runs in the main process, so the
number is the throughput of one core; ``samples_per_cpu_s`` divides by the
main process' CPU time instead of the wall-clock time, which other jobs on a
shared machine change much less. ``--per-transform`` (with 0 workers) adds
the mean wall-clock and CPU time of each transform.
"""
import argparse
import copy
import json
import platform
import time
from typing import Callable, Dict, List, Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import DATASETS, init_default_scope
from mmengine.runner import Runner
from mmengine.utils import import_modules_from_strings
from mmengine.utils.dl_utils import set_multi_processing

import dit_sam_mm  # noqa: F401  (registers the plugin for any config)
from dit_sam_mm.analysis.activation_memory import benchmark_activations
from dit_sam_mm.analysis.benchmark import benchmark_infer, benchmark_train


class _TimedTransform:
    """Wraps a transform and adds up the time spent in it."""

    def __init__(self, transform: Callable) -> None:
        self.transform = transform
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.calls = 0

    def __call__(self, results: dict) -> Optional[dict]:
        start, cpu_start = time.perf_counter(), time.thread_time()
        out = self.transform(results)
        self.seconds += time.perf_counter() - start
        self.cpu_seconds += time.thread_time() - cpu_start
        self.calls += 1
        return out


def _time_transforms(dataset) -> List[_TimedTransform]:
    timed = [_TimedTransform(t) for t in dataset.pipeline.transforms]
    dataset.pipeline.transforms = timed
    return timed


def benchmark_data(cfg: Config, num_workers: int, iters: int, warmup: int,
                   per_transform: bool = False) -> Dict[str, object]:
    """Throughput of the training dataset + pipeline of ``cfg``.

    Args:
        cfg (Config): Config with ``train_dataloader``.
        num_workers (int): Dataloader workers (0: main process).
        iters (int): Batches timed after the warm-up.
        warmup (int): Batches read before timing (worker start-up).
        per_transform (bool): Time each transform (needs 0 workers).

    Returns:
        dict: The measurements (see the keys).
    """
    if per_transform and num_workers:
        raise ValueError('--per-transform needs --num-workers 0')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    # As MMEngine's Runner does: OpenCV single-threaded in every process.
    mp_cfg = cfg.get('env_cfg', {}).get('mp_cfg', {})
    set_multi_processing(
        mp_start_method=mp_cfg.get('mp_start_method', 'fork'),
        opencv_num_threads=mp_cfg.get('opencv_num_threads', 0))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _measure(cfg, num_workers, iters, warmup, per_transform)
    finally:
        torch.set_num_threads(threads)


def _measure(cfg: Config, num_workers: int, iters: int, warmup: int,
             per_transform: bool) -> Dict[str, object]:
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    start = time.perf_counter()
    dataset = DATASETS.build(loader_cfg.pop('dataset'))
    if hasattr(dataset, 'full_init'):
        dataset.full_init()
    init_seconds = time.perf_counter() - start
    loader_cfg.update(
        dataset=dataset, num_workers=num_workers,
        persistent_workers=False,
        sampler=dict(type='InfiniteSampler', shuffle=True))
    if num_workers == 0:
        loader_cfg.pop('prefetch_factor', None)
    # build_dataloader deep-copies its config, the dataset included.
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    timed = _time_transforms(loader.dataset) if per_transform else []
    batch_size = loader.batch_size
    batches = iter(loader)
    start = time.perf_counter()
    for _ in range(warmup):
        next(batches)
    warmup_seconds = time.perf_counter() - start
    for t in timed:
        t.seconds, t.cpu_seconds, t.calls = 0.0, 0.0, 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(iters):
        next(batches)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    samples = iters * batch_size
    result = dict(
        mode='data', dataset=type(dataset).__name__, dataset_len=len(dataset),
        dataset_init_s=round(init_seconds, 3), num_workers=num_workers,
        batch_size=batch_size, warmup_batches=warmup,
        warmup_s=round(warmup_seconds, 3), iters=iters, samples=samples,
        seconds=round(seconds, 3),
        samples_per_s=round(samples / seconds, 2),
        samples_per_s_per_worker=round(samples / seconds / max(num_workers, 1),
                                       2))
    if num_workers == 0:
        # The main process' CPU time: on a machine that other jobs share, samples per CPU
        # second stays near the quiet-machine throughput while samples/s drops.
        result.update(cpu_s=round(cpu_seconds, 3),
                      samples_per_cpu_s=round(samples / cpu_seconds, 2))
    if timed:
        result['ms_per_transform'] = {
            f'{i}:{type(t.transform).__name__}':
            round(1000 * t.seconds / max(t.calls, 1), 3)
            for i, t in enumerate(timed)
        }
        result['cpu_ms_per_transform'] = {
            f'{i}:{type(t.transform).__name__}':
            round(1000 * t.cpu_seconds / max(t.calls, 1), 3)
            for i, t in enumerate(timed)
        }
    return result


def print_data_result(result: Dict[str, object]) -> None:
    workers = result['num_workers']
    print(f'{result["dataset"]}: {result["dataset_len"]} samples, built in '
          f'{result["dataset_init_s"]} s')
    print(f'{result["samples"]} samples in {result["seconds"]} s with '
          f'{workers} worker(s) (batch {result["batch_size"]}): '
          f'{result["samples_per_s"]} samples/s, '
          f'{result["samples_per_s_per_worker"]} samples/s per '
          f'{"worker" if workers else "core (main process)"}')
    if 'samples_per_cpu_s' in result:
        print(f'CPU time of the main process: {result["cpu_s"]} s, '
              f'{result["samples_per_cpu_s"]} samples per CPU second')
    cpu_ms = result.get('cpu_ms_per_transform', {})
    for name, ms in result.get('ms_per_transform', {}).items():
        print(f'  {name:40s} {ms:8.3f} ms ({cpu_ms[name]:.3f} ms CPU)')


def run_data(cfg: Config, args: argparse.Namespace) -> Dict[str, object]:
    """``--mode data``: the training data pipeline."""
    if args.batch_size:
        cfg.train_dataloader.batch_size = args.batch_size
    return benchmark_data(cfg, num_workers=args.num_workers, iters=args.iters,
                          warmup=args.warmup, per_transform=args.per_transform)


def _model_settings(cfg: Config, args: argparse.Namespace) -> dict:
    """Keyword arguments of the model benchmarks; sets cuDNN's autotuner as the config does."""
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device.startswith('cuda'):
        torch.backends.cudnn.benchmark = bool(
            cfg.get('env_cfg', {}).get('cudnn_benchmark', False))
    batch_size = args.batch_size or cfg.get('train_dataloader', {}).get('batch_size', 1)
    return dict(batch_size=batch_size, device=device, amp=args.amp, compile_mode=args.compile,
                reference=args.reference, warmup=args.warmup, iters=args.iters,
                profile_dir=args.profile, profile_iters=args.profile_iters)


def _environment(settings: dict) -> dict:
    device = settings['device']
    name = (torch.cuda.get_device_name(device) if device.startswith('cuda') else
            platform.processor() or platform.machine())
    return dict(settings, device_name=name, torch=torch.__version__,
                cpu_threads=torch.get_num_threads())


def run_train(cfg: Config, args: argparse.Namespace) -> Dict[str, object]:
    """``--mode train``: ``train_step``s of the config's model and optimiser."""
    settings = _model_settings(cfg, args)
    result = benchmark_train(cfg.model, cfg.get('optim_wrapper'), **settings)
    return {**_environment(settings), **result}


def run_infer(cfg: Config, args: argparse.Namespace) -> Dict[str, object]:
    """``--mode infer``: ``test_step``s of the config's model."""
    settings = _model_settings(cfg, args)
    return {**_environment(settings), 'accelerate': args.accelerate,
            **benchmark_infer(cfg.model, **settings, accelerate=args.accelerate)}


def run_activations(cfg: Config, args: argparse.Namespace) -> Dict[str, object]:
    """``--mode activations``: autograd's saved tensors per sample in a training forward."""
    settings = _model_settings(cfg, args)
    return {**_environment(settings), **benchmark_activations(cfg.model, **settings)}


def print_activation_result(result: Dict[str, object]) -> None:
    precision = 'float32 reference' if result['reference'] else (result['amp'] or 'float32')
    batch = result['batch_size']
    print(f'training forward on {result["device"]}, {precision}: autograd saves '
          f'{result["saved_mb"]:.0f} MB at batch {batch}, {result["saved_mb_next"]:.0f} MB at '
          f'batch {batch + 1}: {result["saved_mb_per_sample"]:.0f} MB per sample')


def print_model_result(result: Dict[str, object]) -> None:
    precision = 'float32 reference' if result['reference'] else (result['amp'] or 'float32')
    accelerated = ' (accelerate_inference)' if result.get('accelerate') else ''
    print(f'{result["mode"]} on {result["device"]} ({result["device_name"]}), batch '
          f'{result["batch_size"]}, {precision}, compile={result["compile_mode"]}{accelerated}:')
    print(f'  {result["samples_per_s"]:.2f} samples/s, latency median '
          f'{result["latency_ms_median"]:.1f} ms, p90 {result["latency_ms_p90"]:.1f} ms')
    print(f'  peak memory {result["peak_mem_mb"]:.0f} MB ({result["mem_kind"]}), '
          f'{result["peak_mem_per_sample_mb"]:.0f} MB per sample')
    print(f'  {result["flops_per_sample"] / 1e9:.4g} GFLOP per sample, '
          f'{result["tflops_achieved"]:.3f} TFLOP/s achieved')
    if 'profile' in result:
        shares = ', '.join(f'{k} {v:.1f}%' for k, v in result['profile']['shares'].items())
        print(f'  profile ({shares}): {result["profile"]["table"]}, {result["profile"]["trace"]}')


MODES = {
    'data': (run_data, print_data_result),
    'train': (run_train, print_model_result),
    'infer': (run_infer, print_model_result),
    'activations': (run_activations, print_activation_result),
}
# (iters, warmup); activations runs one forward per batch size
DEFAULT_ITERS = {'data': (200, 10), 'train': (10, 3), 'infer': (10, 3), 'activations': (1, 0)}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark a config.')
    parser.add_argument('config', help='config file')
    parser.add_argument('--mode', choices=sorted(MODES), default='data',
                        help='what to measure (default: data)')
    parser.add_argument('--batch-size', type=int,
                        help='samples per step (default: train_dataloader.batch_size, else 1)')
    parser.add_argument('--iters', type=int,
                        help='steps (batches) timed (default: 200 data, 10 train/infer)')
    parser.add_argument('--warmup', type=int,
                        help='steps (batches) before timing (default: 10 data, 3 train/infer)')
    parser.add_argument('--num-workers', type=int, default=0,
                        help='data: dataloader workers, 0 = main process')
    parser.add_argument('--per-transform', action='store_true',
                        help='data: time each transform (with --num-workers 0)')
    parser.add_argument('--device', choices=['cpu', 'cuda'],
                        help='train/infer: device (default: cuda if available)')
    parser.add_argument('--amp', choices=['bf16'], help='train/infer: bfloat16 autocast')
    parser.add_argument('--compile', nargs='?', const='default', metavar='MODE',
                        help='train/infer: torch.compile the step (optional mode, e.g. '
                        'reduce-overhead)')
    parser.add_argument('--accelerate', action='store_true',
                        help="infer: apply --amp / --compile as tools/test.py and the "
                        "inferencer do on a GPU (the segmentor's accelerate_inference)")
    parser.add_argument('--reference', action='store_true',
                        help='train/infer: the released code\'s way (naive attention, float32)')
    parser.add_argument('--profile', metavar='DIR',
                        help='train/infer: after timing, profile --profile-iters more steps and '
                        'write DIR/trace.json (Chrome trace) and DIR/top_kernels.md')
    parser.add_argument('--profile-iters', type=int, default=3,
                        help='train/infer: steps profiled with --profile (default: 3)')
    parser.add_argument('--json', help='also write the result to this file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries')
    args = parser.parse_args(argv)
    if args.reference and args.amp:
        parser.error('--reference runs in float32: drop --amp')
    if args.profile and args.mode not in ('train', 'infer'):
        parser.error('--profile needs --mode train or infer')
    iters, warmup = DEFAULT_ITERS[args.mode]
    args.iters = iters if args.iters is None else args.iters
    args.warmup = warmup if args.warmup is None else args.warmup
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
        if cfg.get('custom_imports'):  # also those added on the command line
            import_modules_from_strings(**cfg['custom_imports'])
    run, show = MODES[args.mode]
    result = run(cfg, args)
    result['config'] = args.config
    show(result)
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=2, sort_keys=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

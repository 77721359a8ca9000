"""Benchmark parts of training, one mode at a time.

``--mode data`` measures the training data pipeline of a config: the dataset
and pipeline of ``train_dataloader`` (no model), in samples per second in
total and per dataloader worker::

    python tools/analysis_tools/benchmark.py CONFIG --mode data \
        --num-workers 2 --iters 200 --json work_dirs/bench_data.json

With ``--num-workers 0`` the pipeline runs in the main process, so the
number is the throughput of one core. ``--per-transform`` (with 0 workers)
adds the mean time of each transform.
"""
import argparse
import copy
import json
import time
from typing import Callable, Dict, List, Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import DATASETS, init_default_scope
from mmengine.runner import Runner
from mmengine.utils import import_modules_from_strings
from mmengine.utils.dl_utils import set_multi_processing

import dit_sam_mm  # noqa: F401  (registers the plugin for any config)


class _TimedTransform:
    """Wraps a transform and adds up the time spent in it."""

    def __init__(self, transform: Callable) -> None:
        self.transform = transform
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, results: dict) -> Optional[dict]:
        start = time.perf_counter()
        out = self.transform(results)
        self.seconds += time.perf_counter() - start
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
        t.seconds, t.calls = 0.0, 0
    start = time.perf_counter()
    for _ in range(iters):
        next(batches)
    seconds = time.perf_counter() - start
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
    if timed:
        result['ms_per_transform'] = {
            f'{i}:{type(t.transform).__name__}':
            round(1000 * t.seconds / max(t.calls, 1), 3)
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
    for name, ms in result.get('ms_per_transform', {}).items():
        print(f'  {name:40s} {ms:8.3f} ms')


MODES = {'data': (benchmark_data, print_data_result)}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark a config.')
    parser.add_argument('config', help='config file')
    parser.add_argument('--mode', choices=sorted(MODES), default='data',
                        help='what to measure (default: data)')
    parser.add_argument('--num-workers', type=int, default=0,
                        help='dataloader workers, 0 = main process')
    parser.add_argument('--iters', type=int, default=200,
                        help='batches timed')
    parser.add_argument('--warmup', type=int, default=10,
                        help='batches read before timing')
    parser.add_argument('--per-transform', action='store_true',
                        help='time each transform (with --num-workers 0)')
    parser.add_argument('--json', help='also write the result to this file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
        if cfg.get('custom_imports'):  # also those added on the command line
            import_modules_from_strings(**cfg['custom_imports'])
    run, show = MODES[args.mode]
    result = run(cfg, num_workers=args.num_workers, iters=args.iters,
                 warmup=args.warmup, per_transform=args.per_transform)
    result['config'] = args.config
    show(result)
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=2, sort_keys=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

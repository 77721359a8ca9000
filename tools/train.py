"""Train a segmentor with MMEngine's Runner (MMSegmentation's command line).

Example::

    python tools/train.py configs/dit/ldit_vitb_refcoco.py
    bash tools/dist_train.sh configs/dit/ldit_vitb_refcoco.py 8
"""
import argparse
import logging
import os.path as osp
import sys
from typing import Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # lets configs import `projects.*` (MMSeg's projects convention)
    sys.path.insert(0, REPO_ROOT)

# First: outside the environment it names the one to activate (rather than "no module mmengine").
import dit_sam_mm  # noqa: E402,F401
from mmengine.config import Config  # noqa: E402
from mmengine.hooks import CheckpointHook  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from dit_sam_mm.datasets.leakage import warn_about_leaks  # noqa: E402
from dit_sam_mm.utils.cli import CommandLineError, run_main  # noqa: E402
from dit_sam_mm.engine.compile_fallback import FALLBACK_BACKEND  # noqa: E402
from dit_sam_mm.utils.fast_path import (accelerate_inference, cuda_device_info,  # noqa: E402
                                        describe, gpu_fast_path)
from dit_sam_mm.utils.launch import (add_common_arguments, apply_common_args,  # noqa: E402
                                     apply_cpu_threads,
                                     latest_checkpoint, parse_with_local_rank, read_config,
                                     setup_cpu_distributed)
from dit_sam_mm.utils.preflight import raise_if_files_missing  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a DIT-SAM (or any MMSeg) segmentor')
    parser.add_argument('config', help='train config file path')
    add_common_arguments(parser, work_dir_help='directory for logs and checkpoints')
    parser.add_argument(
        '--resume', action='store_true', default=False,
        help='resume from the latest checkpoint in the work directory')
    parser.add_argument(
        '--amp', action='store_true', default=False,
        help='automatic mixed precision (bfloat16 unless optim_wrapper.dtype says otherwise), '
        'also on CPU; on a GPU bfloat16 is the default (see --fp32)')
    return parse_with_local_rank(parser)


def enable_amp(cfg: Config, dtype: Optional[str] = None) -> None:
    """MMSeg's ``--amp`` and the GPU fast path: bfloat16 autocast (``BF16OptimWrapper``), or
    float16 with dynamic loss scaling (``AmpOptimWrapper``).

    Args:
        cfg (Config): The config to change.
        dtype (str, optional): ``'bfloat16'`` or ``'float16'``; None (``--amp`` alone) takes
            ``optim_wrapper.dtype`` when it is ``'float16'``, else bfloat16.
    """
    optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if optim_wrapper in ('AmpOptimWrapper', 'BF16OptimWrapper'):
        print_log('AMP training is already enabled in your config.', logger='current',
                  level=logging.WARNING)
        return
    if optim_wrapper not in ('OptimWrapper', 'DeferredGradNormOptimWrapper'):
        raise CommandLineError(f'--amp (and the GPU fast path) need optim_wrapper.type '
                               f'OptimWrapper or DeferredGradNormOptimWrapper, not '
                               f'{optim_wrapper}; or pass --fp32')
    dtype = dtype or ('float16' if cfg.optim_wrapper.get('dtype') == 'float16' else 'bfloat16')
    cfg.optim_wrapper.type = 'AmpOptimWrapper' if dtype == 'float16' else 'BF16OptimWrapper'
    if dtype == 'float16':
        cfg.optim_wrapper.dtype = 'float16'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def use_safe_checkpoint_hook(cfg: Config) -> None:
    """Run MMEngine's ``CheckpointHook`` as ``SafeCheckpointHook`` (same options): checkpoints
    written atomically, and only files the hook wrote in this run's folder removed."""
    hook = (cfg.get('default_hooks') or {}).get('checkpoint')
    if hook is not None and hook.get('type') in ('CheckpointHook', CheckpointHook):
        hook.type = 'SafeCheckpointHook'
        print_log('default_hooks.checkpoint: CheckpointHook runs as SafeCheckpointHook (atomic '
                  'writes, removes only its own files)', logger='current')


def check_schedule(cfg: Config) -> None:
    """Refuse a schedule that trains nothing (MMEngine would end at once, exit status 0)."""
    for key in ('max_epochs', 'max_iters'):
        value = (cfg.get('train_cfg') or {}).get(key)
        if value is not None and value <= 0:
            raise CommandLineError(f'train_cfg.{key}={value} trains nothing; set it to at '
                                   'least 1')


def main() -> None:
    args = parse_args()
    cfg = read_config(args.config)
    apply_common_args(cfg, args.config, args.launcher, args.work_dir, args.cfg_options)
    apply_cpu_threads(cfg)
    gpu = cuda_device_info()
    fast = gpu_fast_path(cfg, fp32=args.fp32, eager=args.eager, gpu=gpu)
    print_log(describe(fast, gpu), logger='current')
    if args.amp and args.fp32:
        raise CommandLineError('--amp and --fp32 contradict each other: choose one')
    if args.amp or fast.dtype:
        enable_amp(cfg, fast.dtype)
    if fast.compile and cfg.get('compile') is None:
        # MMEngine compiles the training step; a graph inductor cannot compile runs eagerly
        cfg.compile = dict(backend=FALLBACK_BACKEND)
    check_schedule(cfg)
    use_safe_checkpoint_hook(cfg)
    cfg.resume = args.resume or cfg.get('resume', False)
    if cfg.resume and not cfg.get('load_from'):
        # Resume from the work dir's latest checkpoint, found in the work dir itself.
        cfg.load_from = latest_checkpoint(cfg.work_dir)
    loaders = ['train_dataloader'] + (['val_dataloader'] if cfg.get('val_cfg') else [])
    raise_if_files_missing(cfg, loaders, init_weights=not cfg.get('load_from'))
    warn_about_leaks(cfg)  # evaluation images that a training set also holds
    setup_cpu_distributed(cfg)

    runner = Runner.from_cfg(cfg)
    # Validation in the same autocast (not compiled: its graphs would add compile time).
    accelerate_inference(runner.model, fast._replace(compile=False))
    runner.train()


if __name__ == '__main__':
    sys.exit(run_main(main, 'train.py'))

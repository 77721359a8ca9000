"""Test (and evaluate) a segmentor with MMEngine's Runner (MMSegmentation's command line).

Example::

    python tools/test.py configs/dit/ldit_vitb_refcoco.py work_dirs/ldit/epoch_40.pth
    bash tools/dist_test.sh configs/dit/ldit_vitb_refcoco.py work_dirs/ldit/epoch_40.pth 8
"""
import argparse
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # lets configs import `projects.*` (MMSeg's projects convention)
    sys.path.insert(0, REPO_ROOT)

# First: outside the environment it names the one to activate (rather than "no module mmengine").
import dit_sam_mm  # noqa: E402,F401
from mmengine.config import Config  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.model import is_model_wrapper  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mmseg.registry import METRICS  # noqa: E402

from dit_sam_mm.evaluation import ReferSegMetric  # noqa: E402
from dit_sam_mm.checkpoint import load_trained_checkpoint  # noqa: E402
from dit_sam_mm.utils.cli import ensure_writable_dir, run_main  # noqa: E402
from dit_sam_mm.utils.fast_path import (accelerate_inference, cuda_device_info,  # noqa: E402
                                        describe, gpu_fast_path)
from dit_sam_mm.utils.launch import (add_common_arguments, apply_common_args,  # noqa: E402
                                     apply_cpu_threads,
                                     parse_with_local_rank, read_config, setup_cpu_distributed)
from dit_sam_mm.utils.preflight import raise_if_files_missing  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    add_common_arguments(parser,
                         work_dir_help='directory for the evaluation log and json results')
    parser.add_argument(
        '--out', help='directory where the predictions are saved for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show predictions in a window')
    parser.add_argument(
        '--show-dir', help='directory (under the work dir) where painted predictions are saved')
    parser.add_argument('--wait-time', type=float, default=2, help='interval of --show (s)')
    parser.add_argument(
        '--allow-partial', action='store_true',
        help='test a checkpoint whose keys do not all match the config (missing or unexpected '
        'keys; the model settings it was trained with must still match); refused by default')
    return parse_with_local_rank(parser)


def enable_visualization(cfg: Config, show: bool, show_dir: str, wait_time: float) -> None:
    """Turn on the ``visualization`` hook of ``default_hooks`` (``--show`` / ``--show-dir``)."""
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        raise RuntimeError(
            '--show/--show-dir need a visualization hook in default_hooks, e.g. '
            "visualization=dict(type='SegVisualizationHook')")
    hooks.visualization.draw = True
    hooks.visualization.interval = 1  # every sample, not MMSeg's default of every 50th
    if show:
        hooks.visualization.show = True
        hooks.visualization.wait_time = wait_time
    if show_dir:
        cfg.visualizer.save_dir = show_dir


def save_results(cfg: Config, out_dir: str) -> None:
    """``--out``: per-sample records (ReferSegMetric, GRESMetric) or MMSeg's saved predictions
    (IoUMetric)."""
    evaluator = cfg.test_evaluator
    if issubclass(METRICS.get(evaluator.get('type', '')) or object, ReferSegMetric):
        # one JSON line per sample: split, ids, sentence, IoU, intersection, union
        evaluator['dump_path'] = osp.join(out_dir, 'refer_seg_records.jsonl')
    else:
        evaluator['output_dir'] = out_dir
        evaluator['keep_results'] = True


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint file not found: {args.checkpoint}')
    if args.out is not None:
        ensure_writable_dir(args.out, '--out')
    cfg = read_config(args.config)
    apply_common_args(cfg, args.config, args.launcher, args.work_dir, args.cfg_options)
    apply_cpu_threads(cfg)
    if args.show or args.show_dir:
        enable_visualization(cfg, args.show, args.show_dir, args.wait_time)
    if args.out is not None:
        save_results(cfg, args.out)
    raise_if_files_missing(cfg, ['test_dataloader'], init_weights=False)
    # The checkpoint on the command line is the one tested: a config's load_from (e.g. of a
    # fine-tuning config) would be loaded by the runner over it.
    cfg.load_from, cfg.resume = None, False
    setup_cpu_distributed(cfg)

    runner = Runner.from_cfg(cfg)
    # Loaded here rather than through cfg.load_from: MMEngine only logs missing keys and shape
    # mismatches; here keys, shapes and the model settings of training are checked.
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    load_trained_checkpoint(model, args.checkpoint, cfg.model, args.allow_partial)
    gpu = cuda_device_info()
    fast = gpu_fast_path(cfg, fp32=args.fp32, eager=args.eager, gpu=gpu)
    print_log(describe(fast, gpu), logger='current')
    accelerate_inference(model, fast)
    runner.test()


if __name__ == '__main__':
    sys.exit(run_main(main, 'test.py'))

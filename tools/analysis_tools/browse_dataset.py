"""Show or save what the training pipeline of a config produces, sample by sample.

Example::

    python tools/analysis_tools/browse_dataset.py configs/dit/ldit_vitb_refcoco.py \\
        --output-dir work_dirs/browse --show-number 20 --not-show

Each picture is the image as the model receives it (after resizing, flipping and colour
augmentation) with the ground-truth mask, under a caption with the sentence after the pipeline and
whether it was flipped (and then the sentence before "left" and "right" were swapped). The same is
printed, one line per sample.
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # configs may import `projects.*`; the plugin without install
    sys.path.insert(0, REPO_ROOT)

import mmcv  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmseg.registry import DATASETS  # noqa: E402

from dit_sam_mm.datasets import REFER_META_KEYS  # noqa: E402
from dit_sam_mm.utils.cfg_options import merge_cfg_options  # noqa: E402
from dit_sam_mm.utils.cli import CommandLineError, run_main  # noqa: E402
from dit_sam_mm.utils.launch import CfgOptionsAction, read_config  # noqa: E402
from dit_sam_mm.visualization import ReferSegLocalVisualizer  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Browse the training samples of a config')
    parser.add_argument('config', help='config file')
    parser.add_argument('--output-dir', default=None,
                        help='write the pictures here (default: do not write)')
    parser.add_argument('--show-number', type=int, default=20,
                        help='number of samples to browse (default: 20)')
    parser.add_argument('--not-show', action='store_true', help='do not open a window')
    parser.add_argument('--show-interval', type=float, default=2,
                        help='seconds each picture is shown (default: 2)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config entries, e.g. train_dataloader.dataset.split=val')
    return parser.parse_args(argv)


def build_train_dataset(cfg: Config):
    """The config's training dataset, packing also ``ori_sentence`` (set by the flip)."""
    dataset_cfg = cfg.train_dataloader.dataset
    for transform in dataset_cfg.pipeline:
        if transform['type'] == 'PackReferSegInputs':
            keys = tuple(transform.get('meta_keys', REFER_META_KEYS))
            if 'ori_sentence' not in keys:
                transform['meta_keys'] = keys + ('ori_sentence', )
    return DATASETS.build(dataset_cfg)


def describe(index: int, meta: dict) -> str:
    """One line about a sample: image, flip and sentence."""
    line = (f'{index}: {osp.basename(meta.get("img_path") or "")} '
            f'flipped={"yes" if meta.get("flip", False) else "no"} '
            f'sentence="{meta.get("sentence")}"')
    if meta.get('flip', False) and 'ori_sentence' in meta:
        line += f' (was "{meta["ori_sentence"]}")'
    return line


def has_display() -> bool:
    """Whether a window can be opened (on Linux, an X11 or Wayland display is set)."""
    return not sys.platform.startswith('linux') or bool(
        os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY'))


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if not args.not_show and not has_display():
        raise CommandLineError('no display to show the pictures on (DISPLAY is not set): pass '
                               '--output-dir DIR --not-show to write them to files instead')
    cfg = read_config(args.config)
    merge_cfg_options(cfg, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset = build_train_dataset(cfg)
    visualizer = ReferSegLocalVisualizer(name='browse_dataset', show_flip=True)
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
    for index in range(min(args.show_number, len(dataset))):
        item = dataset[index]
        data_sample = item['data_samples']
        meta = data_sample.metainfo
        image = mmcv.bgr2rgb(item['inputs'].permute(1, 2, 0).numpy())
        name = f'{index:05d}_{osp.splitext(osp.basename(meta.get("img_path") or "image"))[0]}'
        out_file = osp.join(args.output_dir, f'{name}.png') if args.output_dir else None
        if out_file is not None or not args.not_show:
            visualizer.add_datasample(name, image, data_sample, draw_pred=False,
                                      show=not args.not_show, wait_time=args.show_interval,
                                      out_file=out_file)
        print(describe(index, meta))
    return 0


if __name__ == '__main__':
    sys.exit(run_main(main, 'browse_dataset.py'))

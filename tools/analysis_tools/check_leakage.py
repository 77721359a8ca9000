"""List the evaluation images of a config that its training datasets also hold.

When datasets are mixed (RefCOCO + RefCOCO+ + RefCOCOg + your own, through MMEngine's
``ConcatDataset``), an image of one dataset's val or test split may be a training image of
another: RefCOCOg-umd's train split holds images of RefCOCO's val, testA and testB. This reads
the config's datasets (annotations only, no image is opened) and prints a summary per pair of
datasets and, with ``--list``, every image::

    python tools/analysis_tools/check_leakage.py configs/custom/ldit_vitb_refcoco-mix.py
    python tools/analysis_tools/check_leakage.py CONFIG --list --out leaked_images.txt

Exit status 1 when an image leaks (so a script can refuse the mix), 0 otherwise.
``tools/train.py`` logs the summary as a warning at start-up.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # the plugin without installing it
    sys.path.insert(0, REPO_ROOT)

from mmengine.config import DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from dit_sam_mm.datasets.leakage import find_leaks, summarise  # noqa: E402
from dit_sam_mm.utils.cli import run_main  # noqa: E402
from dit_sam_mm.utils.launch import read_config  # noqa: E402
from dit_sam_mm.checkpoint.safe_load import atomic_write  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='List evaluation images that are also training images of a config')
    parser.add_argument('config', help='training config')
    parser.add_argument('--list', action='store_true', help='print every leaked image')
    parser.add_argument('--out', help='write the leaked images, one path a line, to this file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings (as tools/train.py)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    cfg = read_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    leaks = find_leaks(cfg)
    for line in summarise(leaks):
        print(line)
    if args.list:
        for leak in leaks:
            print(f'{leak.image}\tevaluated in: {"; ".join(leak.evaluated_in)}\ttrained in: '
                  f'{"; ".join(leak.trained_in)}')
    if args.out:
        with atomic_write(args.out) as f:
            f.write(''.join(f'{leak.image}\n' for leak in leaks).encode('utf-8'))
    print(f'{len(leaks):,} evaluation image(s) are also training images' if leaks else
          'no evaluation image is a training image')
    return 1 if leaks else 0


if __name__ == '__main__':
    sys.exit(run_main(main, 'check_leakage.py'))

"""Print a config with its ``_base_`` files merged and ``--cfg-options`` applied (MMSeg's tool).

Example::

    python tools/misc/print_config.py configs/dit/ldit_vitb_refcoco.py
    python tools/misc/print_config.py configs/dit/ldit_vitb_refcoco.py \\
        --cfg-options train_dataloader.batch_size=4 --save-path work_dirs/ldit_bs4.py
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # the plugin without installing it
    sys.path.insert(0, REPO_ROOT)

from dit_sam_mm.utils.cli import run_main  # noqa: E402
from dit_sam_mm.utils.launch import CfgOptionsAction, read_config  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Print the whole config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--save-path', help='also write the merged config to this file (.py)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction,
        help='override config entries, e.g. train_dataloader.batch_size=8 or key="[a,b]"')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    cfg = read_config(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    print(f'Config:\n{cfg.pretty_text}')
    if args.save_path is not None:
        cfg.dump(args.save_path)
        print(f'Saved the config to {args.save_path}')
    return 0


if __name__ == '__main__':
    sys.exit(run_main(main, 'print_config.py'))

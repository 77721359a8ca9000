"""Generate SynthRef, a small synthetic referring-segmentation dataset.

SynthRef images hold a few circles, squares and triangles of several colours
and sizes (and sometimes a crowd of dots) on a plain or lightly noisy
background. Every sentence picks out exactly one object, by attribute
("the red circle"), by position ("the leftmost square", "the circle on the
left"), by comparison ("the bigger of the two blue shapes") or by relation
("the shape below the green triangle"). It is written in the REFER layout
and read by ``RefCOCODataset`` like RefCOCO::

    python tools/dataset_converters/make_synthref.py data/synthref
    # data/synthref/{images/, instances.json, refs(unc).p, vocab.txt}

    dict(type='RefCOCODataset', data_root='data/synthref',
         ann_file='instances.json', split_file='refs(unc).p',
         data_prefix=dict(img_path='images/'), split='train')

``--generalized`` writes the variant in the gRefCOCO format (read by
``GRefCOCODataset``): the same images, ``instances.json`` and single-target
refs as SynthRef of that seed, plus multi-target sentences ("all the red
shapes", "the two circles on the left", "both squares") and no-target ones
("the blue triangle" when there is none), about 25 % and 15 % of each split's
sentences (``--multi-target-share``, ``--no-target-share``)::

    python tools/dataset_converters/make_synthref.py --generalized
    # data/synthref_gres/{images/, instances.json, grefs(unc).json, vocab.txt}

Its ``vocab.txt`` is SynthRef's followed by the new words, so the token ids of
SynthRef's words stay the same.

The same ``--seed``, ``--num-images``, ``--size`` (and shares) give
byte-identical files.
A folder that already holds SynthRef files (``instances.json``,
``refs(unc).p`` or ``grefs(unc).json``, ``vocab.txt``, the images) is refused, with nothing written,
unless ``--overwrite`` is given: the repository's own ``data/synthref`` is
regenerated with ``--overwrite``.
"""
import argparse
import sys
import time
from typing import List, Optional, Tuple

from dit_sam_mm.datasets.synthref import make_synthref
from dit_sam_mm.datasets.synthref.generalized import MULTI_TARGET_SHARE, NO_TARGET_SHARE
from dit_sam_mm.utils.cli import run_main

DEFAULT_OUT_DIR = 'data/synthref'
DEFAULT_GENERALIZED_OUT_DIR = 'data/synthref_gres'


def parse_size(text: str) -> Tuple[int, int]:
    """``'64'`` -> (64, 64); ``'640x480'`` -> (640, 480) as (width, height)."""
    parts = text.lower().split('x')
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'--size must be N or WxH, got {text!r}') from None
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise argparse.ArgumentTypeError(f'--size must be N or WxH, got {text!r}')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write the synthetic SynthRef dataset (REFER layout, or '
        'gRefCOCO layout with --generalized).')
    parser.add_argument(
        'out_dir', nargs='?', default=None,
        help=f'output folder (default: {DEFAULT_OUT_DIR}, with --generalized '
        f'{DEFAULT_GENERALIZED_OUT_DIR})')
    parser.add_argument(
        '--num-images', type=int, default=450,
        help='images in total; val/testA/testB get N//9 each, train the '
        'rest (default: 450 = 300 train + 3 x 50)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--size', type=parse_size, default=(64, 64),
        help='image size, N or WxH (default: 64)')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='replace the files of an earlier SynthRef in OUT_DIR (refused '
        'by default)')
    parser.add_argument(
        '--generalized', action='store_true',
        help='write the gRefCOCO-format variant (grefs(unc).json) with '
        'multi-target and no-target sentences')
    parser.add_argument(
        '--multi-target-share', type=float, default=MULTI_TARGET_SHARE,
        help='with --generalized: share of multi-target sentences per split '
        f'(default: {MULTI_TARGET_SHARE})')
    parser.add_argument(
        '--no-target-share', type=float, default=NO_TARGET_SHARE,
        help='with --generalized: share of no-target sentences per split '
        f'(default: {NO_TARGET_SHARE})')
    args = parser.parse_args(argv)
    if args.out_dir is None:
        args.out_dir = (DEFAULT_GENERALIZED_OUT_DIR if args.generalized
                        else DEFAULT_OUT_DIR)
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    stats = make_synthref(args.out_dir, num_images=args.num_images,
                          seed=args.seed, size=args.size,
                          overwrite=args.overwrite,
                          generalized=args.generalized,
                          multi_target_share=args.multi_target_share,
                          no_target_share=args.no_target_share)
    seconds = time.perf_counter() - start
    width, height = args.size
    name = 'SynthRef (generalized)' if args.generalized else 'SynthRef'
    print(f'{name} ({width}x{height}, seed {args.seed}) written to '
          f'{args.out_dir} in {seconds:.1f} s')
    for split, counts in stats.items():
        line = (f'  {split:6s} images {counts["images"]:5d}  refs '
                f'{counts["refs"]:5d}  sentences {counts["sentences"]:5d}')
        if args.generalized:
            line += (f'  multi-target {counts["multi_target"]:5d}  '
                     f'no-target {counts["no_target"]:5d}')
        print(line)
    return 0


if __name__ == '__main__':
    sys.exit(run_main(main, 'make_synthref.py'))

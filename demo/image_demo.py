"""Segment the object a sentence refers to in one image, and save a picture of the result.

Example::

    python demo/image_demo.py demo/synthref_demo.jpg "the leftmost triangle" \\
        configs/synthref/ldit_tiny_synthref.py work_dirs/ldit_tiny_synthref/epoch_30.pth \\
        --out-file result.png --device cpu

MMSegmentation's order (image, config, checkpoint) works too, with the sentence as an option::

    python demo/image_demo.py demo/synthref_demo.jpg configs/synthref/ldit_tiny_synthref.py \\
        work_dirs/ldit_tiny_synthref/epoch_30.pth --sentence "the leftmost triangle"

It prints the mask area and a score, the mean probability (sigmoid of the mask logits) over the
mask's pixels: near 1 when the model is sure of every pixel it selected, 0 for an empty mask. It
also prints how many word pieces of the sentence the model's vocabulary does not know (read as
[UNK]) and how many were cut off past the tokenizer's length, with a warning on stderr when most
pieces are unknown (the mask then does not follow the sentence) or the sentence was cut. With a
model that predicts "no target" (``SAMDecoderHead(no_target=True)``, e.g. trained on gRefCOCO) it
prints the probability that the sentence names nothing in the image, and "no matching object"
when that probability passes the model's threshold (the mask is then empty).
"""
import argparse
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, REPO_ROOT)

import mmcv  # noqa: E402

from dit_sam_mm.apis import ReferSegInferencer, read_image  # noqa: E402
from dit_sam_mm.datasets.image_limits import DEFAULT_MAX_PIXELS  # noqa: E402
from dit_sam_mm.utils.cli import run_main  # noqa: E402


USAGE = ('image_demo.py IMAGE SENTENCE CONFIG CHECKPOINT [options]\n'
         '       image_demo.py IMAGE CONFIG CHECKPOINT --sentence SENTENCE [options]  '
         "(MMSegmentation's order)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        usage=USAGE,
        description='Referring segmentation of one image: writes the image with the mask '
        'overlaid and the sentence as a caption, and prints the mask area and score.')
    parser.add_argument('positional', nargs='+', metavar='IMAGE [SENTENCE] CONFIG CHECKPOINT',
                        help='the image file, the referring sentence (e.g. "the man on the '
                        'left"), the config the checkpoint was trained with and the checkpoint')
    parser.add_argument('--sentence', help='the sentence, when the positional arguments are in '
                        "MMSegmentation's order IMAGE CONFIG CHECKPOINT")
    parser.add_argument('--out-file', default='result.png',
                        help='picture to write (default: result.png)')
    parser.add_argument('--device', default=None,
                        help='device, e.g. cpu or cuda:0 (default: cuda:0 if available)')
    parser.add_argument('--allow-partial', action='store_true',
                        help='load a checkpoint whose keys do not all match the config (missing '
                        'or unexpected keys); refused by default')
    parser.add_argument('--max-pixels', type=int, default=DEFAULT_MAX_PIXELS,
                        help='refuse an image with more pixels, read from its header before it '
                        f'is decoded (default: {DEFAULT_MAX_PIXELS}, Pillow\'s limit)')
    args = parser.parse_args()
    if args.max_pixels < 1:
        parser.error(f'--max-pixels must be positive, got {args.max_pixels}')
    given = args.positional
    if len(given) == 4 and args.sentence is None:
        args.img, args.sentence, args.config, args.checkpoint = given
    elif len(given) == 3 and args.sentence is not None:
        args.img, args.config, args.checkpoint = given
    elif len(given) == 3:
        parser.error('the sentence is missing: give IMAGE SENTENCE CONFIG CHECKPOINT, or '
                     "MMSegmentation's IMAGE CONFIG CHECKPOINT with --sentence SENTENCE")
    else:
        parser.error(f'expected IMAGE SENTENCE CONFIG CHECKPOINT (or IMAGE CONFIG CHECKPOINT '
                     f'with --sentence), got {len(given)} positional arguments: {given}')
    return args


def main() -> int:
    args = parse_args()
    # a bad or huge image fails before the (slow) model load
    image = read_image(args.img, max_pixels=args.max_pixels)
    inferencer = ReferSegInferencer(args.config, weights=args.checkpoint, device=args.device,
                                    allow_partial=args.allow_partial, max_pixels=args.max_pixels)
    result = inferencer(image, args.sentence, draw=True)
    mmcv.imwrite(mmcv.rgb2bgr(result.visualization), args.out_file)
    print(f'sentence: "{args.sentence}"')
    print('\n'.join(result.summary()))
    if result.tokens is not None:
        for warning in result.tokens.warnings():
            print(f'image_demo.py: warning: {warning}', file=sys.stderr)
    print(f'picture: {args.out_file}')
    return 0


if __name__ == '__main__':
    sys.exit(run_main(main, 'image_demo.py'))

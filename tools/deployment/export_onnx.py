"""Export a trained DIT-SAM model to ONNX: (image, text_ids, text_mask) -> mask logits.

Example::

    python tools/deployment/export_onnx.py configs/dit/ldit_vitb_refcoco.py \\
        work_dirs/ldit/epoch_40.pth --out ldit_vitb.onnx --shape 512 512 --opset 17

The batch size is dynamic; the input size (``--shape``, default: the config's padding size) and
the text length (the config's tokenizer ``max_length``) are fixed. The preprocessing the consumer
must do is printed and stored in the ONNX metadata (see ``dit_sam_mm/apis/onnx_export.py``).
After export the file is run with onnxruntime on another batch size and compared with PyTorch;
the tool fails (exit status 1) when the logits differ by more than ``--tolerance`` (1e-3).
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, REPO_ROOT)

from dit_sam_mm.apis import init_refer_model  # noqa: E402
from dit_sam_mm.apis.onnx_export import export_onnx, max_abs_difference  # noqa: E402
from dit_sam_mm.utils.cli import CommandLineError, run_main  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export a DIT-SAM model to ONNX')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', default='model.onnx', help='ONNX file (default: model.onnx)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), default=None,
                        help="input size (default: the data preprocessor's padding size)")
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset (default: 17)')
    parser.add_argument('--no-verify', action='store_true',
                        help='do not compare onnxruntime with PyTorch after export')
    parser.add_argument('--tolerance', type=float, default=1e-3,
                        help='largest absolute logit difference between onnxruntime and '
                        'PyTorch accepted by the check (default: 1e-3); above it the export '
                        'fails with exit status 1')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    model, cfg = init_refer_model(args.config, args.checkpoint, device='cpu')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    spec = export_onnx(model, cfg, args.out, args.shape, args.opset)
    print(f'wrote {args.out} (opset {args.opset}, dynamic batch)')
    print('inputs: image float32 (B, 3, H, W) normalised and padded; text_ids int64 (B, L); '
          'text_mask int64 (B, L), 1 = token; output: logits float32 (B, 1, H, W)')
    print('preprocessing: ' + ', '.join(f'{key}={value}' for key, value in spec.items()))
    if not args.no_verify:
        difference = max_abs_difference(model, args.out)
        print(f'onnxruntime vs PyTorch, batch 3: max abs difference {difference:.2e} '
              f'(tolerance {args.tolerance:.0e})')
        if not difference <= args.tolerance:
            raise CommandLineError(
                f'{args.out} does not compute what the PyTorch model does: the largest logit '
                f'difference {difference:.2e} exceeds --tolerance {args.tolerance:.0e}. Do not '
                'deploy it; please report the config and the difference.')
    return 0


if __name__ == '__main__':
    sys.exit(run_main(main, 'export_onnx.py'))

"""Convert an official Segment Anything checkpoint to the dit_sam_mm layout.

Usage::

    python tools/model_converters/sam2mmseg.py sam_vit_b_01ec64.pth checkpoints/sam_vit_b_mmseg.pth

``image_encoder.*`` becomes ``backbone.*`` (mmpretrain ``ViTSAM`` / ``DITSAMViT`` names),
``prompt_encoder.*`` and ``mask_decoder.*`` become ``decode_head.prompt_encoder.*`` and
``decode_head.mask_decoder.*``. The output is ``{'state_dict': ..., 'meta': ...}`` (what MMEngine
saves and ``load_checkpoint`` / ``init_cfg=dict(type='Pretrained', ...)`` read; ``meta`` holds only
strings, numbers and lists, so it loads with ``torch.load(weights_only=True)``). The whole model
loads with ``load_from``; the backbone alone with
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
"""
import argparse
import os
import os.path as osp
import sys
from collections import Counter

import torch

try:
    from dit_sam_mm.models.backbones.sam_key_mapping import convert_sam_checkpoint, infer_sam_arch
    from dit_sam_mm.utils.cli import run_main
    from dit_sam_mm.checkpoint.safe_load import load_checkpoint_file
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
    from dit_sam_mm.models.backbones.sam_key_mapping import convert_sam_checkpoint, infer_sam_arch
    from dit_sam_mm.utils.cli import run_main
    from dit_sam_mm.checkpoint.safe_load import load_checkpoint_file


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert an official SAM checkpoint (sam_vit_{b,l,h}_*.pth) to dit_sam_mm '
        'keys (backbone.*, decode_head.prompt_encoder.*, decode_head.mask_decoder.*).')
    parser.add_argument('src', help='official SAM checkpoint (flat state dict)')
    parser.add_argument('dst', help='output file')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    checkpoint = load_checkpoint_file(args.src)
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get('state_dict'), dict):
        checkpoint = checkpoint['state_dict']
    try:
        state_dict = convert_sam_checkpoint(checkpoint)
    except ValueError as err:
        print(f'sam2mmseg: cannot convert {args.src}:\n{err}', file=sys.stderr)
        return 1
    prefix = 'image_encoder.'
    arch = infer_sam_arch({k[len(prefix):]: v for k, v in checkpoint.items()
                           if k.startswith(prefix)})
    meta = dict(source=osp.basename(args.src), converter='tools/model_converters/sam2mmseg.py',
                sam_image_encoder=arch)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(dict(state_dict=state_dict, meta=meta), args.dst)

    parts = Counter('.'.join(k.split('.')[:2]) if k.startswith('decode_head.') else
                    k.split('.')[0] for k in state_dict)
    print(f'wrote {len(state_dict)} tensors to {args.dst} '
          f'({", ".join(f"{name}: {n}" for name, n in sorted(parts.items()))})')
    print('image encoder: ' + ', '.join(f'{k}={v}' for k, v in arch.items()))
    return 0


if __name__ == '__main__':
    sys.exit(run_main(main, 'sam2mmseg.py'))

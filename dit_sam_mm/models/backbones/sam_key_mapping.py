"""Key mapping from the official Segment Anything checkpoints to this plugin's layout.

Official files (``sam_vit_{b,l,h}_*.pth``) are flat state dicts with the prefixes
``image_encoder.``, ``prompt_encoder.`` and ``mask_decoder.``. This plugin keeps:

- ``image_encoder.*`` -> ``backbone.*`` in mmpretrain ``ViTSAM`` names (= :class:`DITSAMViT`);
- ``prompt_encoder.X`` -> ``decode_head.prompt_encoder.X`` and ``mask_decoder.X`` ->
  ``decode_head.mask_decoder.X`` (the decode head keeps segment_anything's sub-module names).

The image-encoder part is checked: every key must be a known SAM key and the shapes must be
consistent with one ViT (embedding width, depth, MLP width, head width, neck); problems are raised
together in one ``ValueError``.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Tuple

from torch import Tensor

from ..decode_heads.sam_decoder_head import is_dropped_sam_decoder_key

# (SAM image-encoder key pattern, ViTSAM replacement)
_IMAGE_ENCODER_RULES: List[Tuple[str, str]] = [
    (r'patch_embed\.proj\.(weight|bias)', r'patch_embed.projection.\1'),
    (r'pos_embed', r'pos_embed'),
    (r'blocks\.(\d+)\.norm1\.(weight|bias)', r'layers.\1.ln1.\2'),
    (r'blocks\.(\d+)\.norm2\.(weight|bias)', r'layers.\1.ln2.\2'),
    (r'blocks\.(\d+)\.attn\.(qkv|proj)\.(weight|bias)', r'layers.\1.attn.\2.\3'),
    (r'blocks\.(\d+)\.attn\.(rel_pos_h|rel_pos_w)', r'layers.\1.attn.\2'),
    (r'blocks\.(\d+)\.mlp\.lin1\.(weight|bias)', r'layers.\1.ffn.layers.0.0.\2'),
    (r'blocks\.(\d+)\.mlp\.lin2\.(weight|bias)', r'layers.\1.ffn.layers.1.\2'),
    (r'neck\.([0-3])\.(weight|bias)', r'channel_reduction.\1.\2'),
]
_SAM_PREFIXES = {
    'image_encoder.': 'backbone.',
    'prompt_encoder.': 'decode_head.prompt_encoder.',
    'mask_decoder.': 'decode_head.mask_decoder.',
}


def _rename(key: str) -> str:
    for pattern, repl in _IMAGE_ENCODER_RULES:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, repl, key)
    return ''


def _expected_shapes(sd: Mapping[str, Tensor]) -> Tuple[Dict[str, tuple], List[str]]:
    """Shapes one consistent SAM ViT would have, inferred from the patch embedding, the first
    block's MLP and relative tables and the neck; plus the problems found while inferring."""
    problems = []
    need = ['patch_embed.proj.weight', 'neck.0.weight', 'blocks.0.mlp.lin1.weight']
    missing = [k for k in need if k not in sd]
    if missing:
        return {}, [f'missing keys {missing}']
    C, in_ch, kh, kw = sd['patch_embed.proj.weight'].shape
    hidden = sd['blocks.0.mlp.lin1.weight'].shape[0]
    out = sd['neck.0.weight'].shape[0]
    depth = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r'blocks\.(\d+)\.', k)))
    exp = {'patch_embed.proj.weight': (C, in_ch, kh, kw), 'patch_embed.proj.bias': (C, ),
           'neck.0.weight': (out, C, 1, 1), 'neck.1.weight': (out, ), 'neck.1.bias': (out, ),
           'neck.2.weight': (out, out, 3, 3), 'neck.3.weight': (out, ), 'neck.3.bias': (out, )}
    if 'pos_embed' in sd:
        grid = tuple(sd['pos_embed'].shape[1:3])
        exp['pos_embed'] = (1, *grid, C)
    head_dims = sd['blocks.0.attn.rel_pos_h'].shape[-1] if 'blocks.0.attn.rel_pos_h' in sd \
        else None
    for i in range(depth):
        p = f'blocks.{i}.'
        for name in ('norm1', 'norm2'):
            exp[f'{p}{name}.weight'] = exp[f'{p}{name}.bias'] = (C, )
        exp[f'{p}attn.qkv.weight'], exp[f'{p}attn.qkv.bias'] = (3 * C, C), (3 * C, )
        exp[f'{p}attn.proj.weight'], exp[f'{p}attn.proj.bias'] = (C, C), (C, )
        exp[f'{p}mlp.lin1.weight'], exp[f'{p}mlp.lin1.bias'] = (hidden, C), (hidden, )
        exp[f'{p}mlp.lin2.weight'], exp[f'{p}mlp.lin2.bias'] = (C, hidden), (C, )
        if head_dims is not None:
            for axis in ('h', 'w'):
                table = sd.get(f'{p}attn.rel_pos_{axis}')
                length = table.shape[0] if table is not None and table.dim() == 2 else -1
                exp[f'{p}attn.rel_pos_{axis}'] = (length, head_dims)
    if head_dims is not None and C % head_dims != 0:
        problems.append(f'relative tables have {head_dims} channels, which does not divide the '
                        f'embedding width {C}')
    return exp, problems


def convert_sam_image_encoder(state_dict: Mapping[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Rename a SAM image-encoder state dict (keys without ``image_encoder.``) to ViTSAM names.

    Args:
        state_dict (Mapping[str, Tensor]): e.g. ``ImageEncoderViT().state_dict()``.

    Returns:
        OrderedDict[str, Tensor]: The same tensors under :class:`DITSAMViT` / ``ViTSAM`` keys.

    Raises:
        ValueError: Listing every unknown key, missing key and shape that does not fit one ViT.
    """
    unknown = [k for k in state_dict if not _rename(k)]
    expected, problems = _expected_shapes(state_dict)
    missing = [k for k in expected if k not in state_dict]
    bad_shapes = [f'{k}: {tuple(state_dict[k].shape)} (expected {expected[k]})'
                  for k in expected
                  if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k])]
    if unknown or missing or bad_shapes or problems:
        lines = ['the SAM image-encoder state dict does not fit a SAM ViT:']
        lines += [f'  unexpected keys: {unknown}'] if unknown else []
        lines += [f'  missing keys: {missing}'] if missing else []
        lines += [f'  wrong shapes: {bad_shapes}'] if bad_shapes else []
        lines += [f'  {p}' for p in problems]
        raise ValueError('\n'.join(lines))
    return OrderedDict((_rename(k), v) for k, v in state_dict.items())


def infer_sam_arch(state_dict: Mapping[str, Tensor]) -> dict:
    """Describe the ViT of a SAM image-encoder state dict (keys without ``image_encoder.``).

    Returns a dict with ``embed_dims``, ``num_layers``, ``num_heads``, ``feedforward_channels``,
    ``global_attn_indexes`` (blocks whose relative tables span the whole patch grid),
    ``patch_size``, ``img_size`` and ``out_channels``: the arguments of a matching ``DITSAMViT``.
    """
    C, _, patch, _ = state_dict['patch_embed.proj.weight'].shape
    depth = 1 + max(int(m.group(1)) for k in state_dict
                    if (m := re.match(r'blocks\.(\d+)\.', k)))
    grid = state_dict['pos_embed'].shape[1] if 'pos_embed' in state_dict else None
    arch = dict(
        embed_dims=int(C),
        num_layers=depth,
        feedforward_channels=int(state_dict['blocks.0.mlp.lin1.weight'].shape[0]),
        patch_size=int(patch),
        img_size=int(grid * patch) if grid else None,
        out_channels=int(state_dict['neck.0.weight'].shape[0]))
    if 'blocks.0.attn.rel_pos_h' in state_dict:
        arch['num_heads'] = int(C // state_dict['blocks.0.attn.rel_pos_h'].shape[1])
        arch['global_attn_indexes'] = [
            i for i in range(depth)
            if grid and state_dict[f'blocks.{i}.attn.rel_pos_h'].shape[0] == 2 * grid - 1]
    return arch


def convert_sam_checkpoint(state_dict: Mapping[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Convert a whole official SAM state dict to the plugin's segmentor layout.

    Args:
        state_dict (Mapping[str, Tensor]): Keys ``image_encoder.*``, ``prompt_encoder.*``,
            ``mask_decoder.*``.

    Returns:
        OrderedDict[str, Tensor]: ``backbone.*`` (ViTSAM names), ``decode_head.prompt_encoder.*``
        and ``decode_head.mask_decoder.*`` (names unchanged). Decoder parts that
        ``SAMDecoderHead`` does not build (point/box prompts, IoU head, the extra hypernetworks
        of SAM's multi-mask output: ``SAM_DECODER_KEYS_DROPPED``) are left out, so the result
        loads into a DIT-SAM segmentor without unexpected keys.

    Raises:
        ValueError: When keys lie outside the three SAM parts (all listed), when there is no
            image encoder, or when the image encoder does not fit a SAM ViT.
    """
    parts: Dict[str, Dict[str, Tensor]] = {prefix: OrderedDict() for prefix in _SAM_PREFIXES}
    stray = []
    for key, value in state_dict.items():
        prefix = next((p for p in _SAM_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            stray.append(key)
        else:
            parts[prefix][key[len(prefix):]] = value
    if stray:
        raise ValueError(f'keys outside image_encoder. / prompt_encoder. / mask_decoder.: '
                         f'{stray}')
    if not parts['image_encoder.']:
        raise ValueError('no image_encoder.* keys: is this a SAM checkpoint?')
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    for key, value in convert_sam_image_encoder(parts['image_encoder.']).items():
        out['backbone.' + key] = value
    for prefix in ('prompt_encoder.', 'mask_decoder.'):
        for key, value in parts[prefix].items():
            if not is_dropped_sam_decoder_key(prefix + key):
                out[_SAM_PREFIXES[prefix] + key] = value
    return out

"""Convert a checkpoint released with the authors' DIT code to the dit_sam_mm layout.

Usage::

    python tools/model_converters/dit_official2mmseg.py ldit_refcoco.pth \\
        checkpoints/ldit_vitb_refcoco_official.pth
    python tools/test.py configs/dit/ldit_vitb_refcoco_official.py \\
        checkpoints/ldit_vitb_refcoco_official.pth

The released file is ``{'state_dict', 'optimizer', 'scheduler', 'epoch', 'lr'}`` (keys possibly
``module.``-prefixed by DDP). Its model keys map as follows:

- ``visual_encoder.*`` (SAM's ``ImageEncoderViT``) -> ``backbone.*`` through the SAM key mapping of
  ``sam2mmseg`` (``convert_sam_checkpoint``); ``pos_embed`` and the relative tables keep their
  1024-input sizes, the backbone's load hooks resize them to the config's ``img_size``.
- ``visual_encoder.probs.{i}`` (the per-block text projections) ->
  ``backbone.text_injections.{i}.proj``. ViT-H releases project the BERT features first with
  ``visual_encoder.prob_text`` (768 -> 1280) and then with ``probs.{i}`` (1280 -> 1280); the two
  linear maps are folded into one ``Linear(768 -> 1280)`` per block (computed in float64; exact,
  the dropout follows the composition in both).
- ``prompt_encoder.*`` / ``mask_decoder.*`` -> ``decode_head.*`` (the point / box / mask prompt
  parts, the IoU head and the hypernetworks of mask tokens 1-3 are dropped, as by ``sam2mmseg``).
- ``text_proj.*`` -> ``decode_head.text_proj.*``.
- ``lang_encoder.bert.*`` (BERT-base, ``pytorch_pretrained_bert`` names = Hugging Face names) ->
  ``neck.bert.*``; encoder layers above ``--bert-layers`` (the release uses the first layer's
  output) and the pooler are dropped, as ``BertNeck`` does not build them.
- ``query_embeddings`` and ``self_attention.*`` are unused by the released forward pass: dropped.

Every dropped key is reported. The file is read with ``dit_sam_mm``'s safe checkpoint loader
(tensors and plain data only). If that refuses the optimizer or scheduler state (arbitrary Python
objects), the file is read again by an unpickler that rebuilds tensors and plain containers only
and replaces every other object by an inert placeholder, for every pickle record of the file (zip
and legacy formats alike), so nothing in the file runs; the weights must then still be plain
tensors. ``--unsafe-load`` unpickles the file without restrictions: any code in it runs, so use it
only for a file from a source you trust.
"""
import argparse
import os
import os.path as osp
import pickle
import re
import sys
from collections import Counter, OrderedDict
from types import SimpleNamespace
from typing import Any, Dict, List, Mapping, NamedTuple, Set, Tuple

import torch
from torch import Tensor

try:
    from dit_sam_mm.models.backbones import convert_sam_checkpoint
    from dit_sam_mm.models.decode_heads import is_dropped_sam_decoder_key
    from dit_sam_mm.checkpoint.loading import strip_ddp_prefix
    from dit_sam_mm.utils.cli import run_main
    from dit_sam_mm.checkpoint.content import check_finite_weights, plain_tensor
    from dit_sam_mm.checkpoint.safe_load import UnsafeCheckpointError, load_checkpoint_file
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
    from dit_sam_mm.models.backbones import convert_sam_checkpoint
    from dit_sam_mm.models.decode_heads import is_dropped_sam_decoder_key
    from dit_sam_mm.checkpoint.loading import strip_ddp_prefix
    from dit_sam_mm.utils.cli import run_main
    from dit_sam_mm.checkpoint.content import check_finite_weights, plain_tensor
    from dit_sam_mm.checkpoint.safe_load import UnsafeCheckpointError, load_checkpoint_file

#: Top-level keys of the released model that its forward pass does not use.
UNUSED_KEYS = re.compile(r'(query_embeddings|self_attention\..+)')
_PROBS = re.compile(r'visual_encoder\.probs\.(\d+)\.(weight|bias)')
_BERT_LAYER = re.compile(r'encoder\.layer\.(\d+)\.')


class Conversion(NamedTuple):
    """Result of :func:`convert_official_dit`.

    Attributes:
        state_dict (OrderedDict[str, Tensor]): The converted weights.
        dropped (Dict[str, List[str]]): Source keys left out, by reason.
    """
    state_dict: 'OrderedDict[str, Tensor]'
    dropped: Dict[str, List[str]]


def convert_text_injections(state_dict: Mapping[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """``visual_encoder.probs.{i}`` (and ViT-H's ``prob_text``) -> ``text_injections.{i}.proj``."""
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    text_w = state_dict.get('visual_encoder.prob_text.weight')
    text_b = state_dict.get('visual_encoder.prob_text.bias')
    for key, value in state_dict.items():
        match = _PROBS.fullmatch(key)
        if match is None:
            continue
        layer, kind = match.groups()
        if text_w is not None:
            # probs_i(prob_text(t)) = W_i (W_t t + b_t) + b_i = (W_i W_t) t + (W_i b_t + b_i)
            weight = state_dict[f'visual_encoder.probs.{layer}.weight'].double()
            value = (weight @ text_w.double() if kind == 'weight' else
                     weight @ text_b.double() + value.double()).to(value.dtype)
        out[f'backbone.text_injections.{layer}.proj.{kind}'] = value
    return out


def convert_bert(state_dict: Mapping[str, Tensor],
                 bert_layers: int) -> Tuple['OrderedDict[str, Tensor]', List[str]]:
    """BERT keys (without ``lang_encoder.bert.``) -> ``neck.bert.*`` for ``bert_layers`` layers.

    Returns:
        Tuple: the converted keys, and the dropped ones (pooler, layers above ``bert_layers``).
    """
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    dropped = []
    for key, value in state_dict.items():
        layer = _BERT_LAYER.match(key)
        if key.startswith('pooler.') or (layer and int(layer.group(1)) >= bert_layers):
            dropped.append('lang_encoder.bert.' + key)
            continue
        # early pytorch_pretrained_bert releases named the LayerNorm parameters gamma / beta
        key = re.sub(r'LayerNorm\.gamma$', 'LayerNorm.weight', key)
        out['neck.bert.' + re.sub(r'LayerNorm\.beta$', 'LayerNorm.bias', key)] = value
    return out, dropped


def convert_official_dit(state_dict: Mapping[str, Tensor], bert_layers: int = 1) -> Conversion:
    """Convert the released model weights (see the module docstring) to dit_sam_mm keys.

    Args:
        state_dict (Mapping[str, Tensor]): The ``state_dict`` of the released checkpoint.
        bert_layers (int): BERT encoder layers to keep (``BertNeck``'s ``out_layer``).
            Defaults to 1 (the released code uses the first layer's output).

    Raises:
        ValueError: Keys of no known part (all listed), or no ``visual_encoder.*`` keys.
    """
    state_dict = strip_ddp_prefix(state_dict)
    unknown = [k for k in state_dict if not (
        k.startswith(('visual_encoder.', 'prompt_encoder.', 'mask_decoder.', 'text_proj.',
                      'lang_encoder.bert.')) or UNUSED_KEYS.fullmatch(k))]
    if unknown:
        raise ValueError(f'keys of no known part of the released DIT model: {unknown}')
    if not any(k.startswith('visual_encoder.') for k in state_dict):
        raise ValueError('no visual_encoder.* keys: is this a checkpoint of the DIT release?')
    dropped: Dict[str, List[str]] = {
        'unused by the released model': [k for k in state_dict if UNUSED_KEYS.fullmatch(k)],
        'SAM decoder parts SAMDecoderHead does not build': [
            k for k in state_dict if is_dropped_sam_decoder_key(k)],
    }
    sam = OrderedDict(
        ('image_encoder.' + k[len('visual_encoder.'):] if k.startswith('visual_encoder.') else k,
         v) for k, v in state_dict.items()
        if k.startswith(('prompt_encoder.', 'mask_decoder.'))
        or (k.startswith('visual_encoder.') and not k.startswith(('visual_encoder.probs.',
                                                                   'visual_encoder.prob_text.'))))
    out = convert_sam_checkpoint(sam)
    out.update(convert_text_injections(state_dict))
    out.update((k.replace('text_proj.', 'decode_head.text_proj.', 1), v)
               for k, v in state_dict.items() if k.startswith('text_proj.'))
    prefix = 'lang_encoder.bert.'
    bert, dropped['BERT parts BertNeck does not build'] = convert_bert(
        OrderedDict((k[len(prefix):], v) for k, v in state_dict.items() if k.startswith(prefix)),
        bert_layers)
    out.update(bert)
    return Conversion(out, {reason: keys for reason, keys in dropped.items() if keys})


class _Placeholder:
    """Stands in for any object of the file that is not a tensor or a plain container."""

    def __new__(cls, *args: Any, **kwargs: Any) -> '_Placeholder':
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds tensors (torch rebuilds their storages itself) and ``OrderedDict``s; every other
    global becomes a :class:`_Placeholder`, whose calls and state updates do nothing.

    torch's legacy-format readers install their own ``persistent_load``, which for a module
    record compares the class's source with one the file gives and may write a ``.patch`` file
    named after it. Only storage records (the tensors' data) are passed on to it here.
    """
    allowed = {
        ('collections', 'OrderedDict'): OrderedDict,
        ('torch._utils', '_rebuild_tensor_v2'): torch._utils._rebuild_tensor_v2,
        ('torch._utils', '_rebuild_parameter'): torch._utils._rebuild_parameter,
    }
    replaced: Set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.allowed:
            return self.allowed[(module, name)]
        self.replaced.add(f'{module}.{name}')
        return _Placeholder

    @property
    def persistent_load(self) -> Any:
        return _PERSISTENT_LOAD.__get__(self)

    @persistent_load.setter
    def persistent_load(self, torch_persistent_load: Any) -> None:
        def storages_only(saved_id: Any) -> Any:
            # A tuple names its kind first; the oldest (tar) format keys tensors by strings.
            if type(saved_id) is tuple and (not saved_id or saved_id[0] not in ('storage',
                                                                                 b'storage')):
                kind = saved_id[0] if saved_id else None
                raise ValueError(f'a persistent record of kind {kind!r}; only tensor storages '
                                 'are read')
            return torch_persistent_load(saved_id)

        _PERSISTENT_LOAD.__set__(self, storages_only)


#: The C unpickler's own ``persistent_load`` slot, which the property above guards.
_PERSISTENT_LOAD = pickle.Unpickler.__dict__['persistent_load']


def _restricted_load(file: Any, **kwargs: Any) -> Any:
    """``pickle.load`` through :class:`_RestrictedUnpickler` (torch's legacy format calls it for
    the records before the tensors: magic number, protocol, system info, storage keys)."""
    return _RestrictedUnpickler(file, **kwargs).load()


_RESTRICTED_PICKLE = SimpleNamespace(Unpickler=_RestrictedUnpickler, load=_restricted_load,
                                     __name__='restricted_pickle')


def _tensors_only(checkpoint: Any, path: str) -> Dict[str, Tensor]:
    """The state dict of a file read by the restricted unpickler, as fresh plain tensors.

    Containers are read through ``dict``'s own methods, so attributes the file set on an
    ``OrderedDict`` are never looked up; tensors are rebuilt as fresh plain tensors
    (``plain_tensor``), dropping any hooks or attributes it attached.
    """
    state_dict = checkpoint
    if type(checkpoint) in (dict, OrderedDict):
        state_dict = dict.get(checkpoint, 'state_dict', checkpoint)
    if type(state_dict) not in (dict, OrderedDict):
        raise ValueError(f'{path}: no state dict found (got {type(state_dict).__name__})')
    items = list(dict.items(state_dict))
    bad = [k for k, v in items if type(k) is not str or not isinstance(v, Tensor)]
    if bad:
        raise ValueError(f'{path}: no state dict of tensors found (non-tensor entries: {bad})')
    state_dict = {k: plain_tensor(v, f'{path}: {k!r}') for k, v in items}
    check_finite_weights(state_dict, path)
    return state_dict


def load_official_checkpoint(path: str, unsafe: bool = False) -> Mapping[str, Tensor]:
    """Read the model weights of a released checkpoint (see the module docstring).

    Returns:
        Mapping[str, Tensor]: Its ``state_dict`` (or the file itself if it is a plain state dict).
    """
    if unsafe:
        print('WARNING: --unsafe-load unpickles the whole file, which can run any code it holds; '
              'use it only for a file from a source you trust.', file=sys.stderr)
        return _tensors_only(torch.load(path, map_location='cpu', weights_only=False), path)
    try:
        return _tensors_only(load_checkpoint_file(path), path)
    except UnsafeCheckpointError:
        _RestrictedUnpickler.replaced.clear()
        try:
            checkpoint = torch.load(path, map_location='cpu', weights_only=False,
                                    pickle_module=_RESTRICTED_PICKLE)
        except Exception as err:  # placeholders stand where torch expects real objects
            raise ValueError(f'{path}: not a readable PyTorch checkpoint once its objects are '
                             f'replaced by placeholders ({type(err).__name__}: {err})') from None
        replaced = sorted(_RestrictedUnpickler.replaced)
        print('weights-only loading refused part of the file; read it again with these '
              f'objects replaced by inert placeholders: {replaced}')
        return _tensors_only(checkpoint, path)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a checkpoint of the authors\' DIT release to dit_sam_mm keys.')
    parser.add_argument('src', help='released checkpoint')
    parser.add_argument('dst', help='output file')
    parser.add_argument('--bert-layers', type=int, default=1,
                        help='BERT encoder layers to keep (= BertNeck out_layer; default: 1, '
                        'the released code uses the first layer)')
    parser.add_argument('--unsafe-load', action='store_true',
                        help='unpickle the file without restrictions (runs any code in it)')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    try:
        conversion = convert_official_dit(
            load_official_checkpoint(args.src, args.unsafe_load), args.bert_layers)
    except ValueError as err:
        print(f'dit_official2mmseg: cannot convert {args.src}:\n{err}', file=sys.stderr)
        return 1
    meta = dict(source=osp.basename(args.src), converter='tools/model_converters/'
                'dit_official2mmseg.py', bert_layers=args.bert_layers, dropped=conversion.dropped)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(dict(state_dict=conversion.state_dict, meta=meta), args.dst)
    parts = Counter('.'.join(k.split('.')[:2]) for k in conversion.state_dict)
    print(f'wrote {len(conversion.state_dict)} tensors to {args.dst} '
          f'({", ".join(f"{name}: {n}" for name, n in sorted(parts.items()))})')
    for reason, keys in conversion.dropped.items():
        print(f'dropped {len(keys)} keys ({reason}): {", ".join(keys)}')
    return 0


if __name__ == '__main__':
    sys.exit(run_main(main, 'dit_official2mmseg.py'))

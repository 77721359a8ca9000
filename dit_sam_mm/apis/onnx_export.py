"""Export a DIT-SAM segmentor to ONNX: (image, token ids, token mask) -> mask logits.

The exported graph starts after the data pipeline and the data preprocessor and stops before
MMSeg's post-processing, so its consumer does both (see :func:`preprocessing_spec`):

1. image: BGR -> RGB (``bgr_to_rgb``), resize keeping the aspect ratio so the longer side is the
   input size (bilinear, with the test pipeline's ``Resize`` backend: OpenCV's ``cv2`` or PIL's
   ``pillow``), normalise ``(x - mean) / std``, pad with 0 to the input size at the bottom and
   right, or centred (``ReferPad(center=True)``) -> float32 (B, 3, H, W);
2. sentence: BERT WordPiece (the config's vocabulary), ``[CLS]`` + at most ``text_length - 2``
   word pieces + ``[SEP]``, padded with id 0 to ``text_length`` -> ``text_ids`` int64 (B, L) and
   ``text_mask`` int64 (B, L), 1 for real tokens (``[CLS]`` / ``[SEP]`` included), 0 for padding;
3. output ``logits`` float32 (B, 1, H, W) at the padded input size: crop the resized image's
   region, resize bilinearly to the original size, ``sigmoid(logits) > threshold``; with a
   no-target head (gRefCOCO) also ``no_target_logits`` float32 (B,): where
   ``sigmoid(no_target_logits) > no_target_threshold`` the mask is empty.

The batch size is dynamic; the input size and the text length are fixed at export.
"""
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from mmseg.models.utils import resize
from torch import Tensor, nn

from ..models.decode_heads import split_head_outputs

INPUT_NAMES = ('image', 'text_ids', 'text_mask')
OUTPUT_NAME = 'logits'
NO_TARGET_OUTPUT_NAME = 'no_target_logits'


class MaskLogitsModel(nn.Module):
    """A DIT-SAM segmentor as a plain tensor function for export.

    Args:
        segmentor (nn.Module): A ``DITSAM`` (neck = BERT, backbone, decode head) in eval mode.
    """

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.segmentor = segmentor

    def forward(self, image: Tensor, text_ids: Tensor,
                text_mask: Tensor) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Mask logits (B, 1, H, W) of normalised, padded images (B, 3, H, W) and token ids /
        mask (B, L); the same values as ``DITSAM.encode_decode`` (logits before post-processing).
        With a no-target head, also its logits (B,).
        """
        segmentor = self.segmentor
        logits, no_target_logits = split_head_outputs(
            segmentor.mask_logits(image, text_ids, text_mask))
        logits = resize(logits, size=image.shape[2:], mode='bilinear',
                        align_corners=segmentor.decode_head.align_corners)
        return logits if no_target_logits is None else (logits, no_target_logits)


def output_names(model: nn.Module) -> List[str]:
    """The exported outputs of a segmentor: ``logits`` (and ``no_target_logits``)."""
    if getattr(model.decode_head, 'no_target', False):
        return [OUTPUT_NAME, NO_TARGET_OUTPUT_NAME]
    return [OUTPUT_NAME]


def _test_transforms(cfg: Config, name: str) -> list:
    """The ``name`` steps of the config's test pipeline."""
    pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get(
        'pipeline', cfg.get('test_pipeline', []))
    return [t for t in pipeline if t['type'] == name]


def _text_length(cfg: Config) -> int:
    lengths = [t.get('max_length', 20) for t in _test_transforms(cfg, 'TokenizeText')]
    if not lengths:
        raise ValueError('the test pipeline has no TokenizeText step to read the text length from')
    return int(lengths[0])


def preprocessing_spec(cfg: Config, model: nn.Module,
                       shape: Optional[Tuple[int, int]] = None) -> Dict[str, str]:
    """What a consumer of the exported model must do, read from the config (module docstring).

    Args:
        cfg (Config): The model's config.
        model (nn.Module): The segmentor (for its decoder's threshold and ``align_corners``).
        shape (Tuple[int, int], optional): Input (H, W); defaults to the data preprocessor's
            (test) padding size.

    Returns:
        Dict[str, str]: ``input_size``, ``resize_backend``, ``bgr_to_rgb``, ``mean``, ``std``,
        ``pad_value``, ``pad_position``, ``text_length``, ``threshold``, ``align_corners``
        (and ``no_target_threshold`` with a no-target head) as strings (ONNX metadata values).
    """
    pre = cfg.model.data_preprocessor
    if shape is None:
        shape = pre.get('test_cfg', {}).get('size', pre.get('size'))
        if shape is None:
            raise ValueError('give the input shape: the data preprocessor pads to no fixed size')
    resizes = _test_transforms(cfg, 'Resize')
    centred = any(t.get('center', False) for t in _test_transforms(cfg, 'ReferPad'))
    spec = dict(
        input_size=f'{shape[0]}x{shape[1]}',
        resize_backend=resizes[0].get('backend', 'cv2') if resizes else 'cv2',
        bgr_to_rgb=str(bool(pre.get('bgr_to_rgb', False))),
        mean=str([float(v) for v in pre.mean]),
        std=str([float(v) for v in pre.std]),
        pad_value=str(float(pre.get('pad_val', 0))),
        pad_position='centre' if centred else 'bottom-right',
        text_length=str(_text_length(cfg)),
        threshold=str(float(model.decode_head.threshold)),
        align_corners=str(bool(model.decode_head.align_corners)))
    if getattr(model.decode_head, 'no_target', False):
        spec['no_target_threshold'] = str(float(model.decode_head.no_target_threshold))
    return spec


def example_inputs(batch: int, shape: Tuple[int, int], text_length: int, vocab_size: int,
                   seed: int = 0) -> Tuple[Tensor, Tensor, Tensor]:
    """Random inputs of the exported signature; the last sample's text is padded."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, 3, *shape, generator=gen)
    text_ids = torch.randint(1, vocab_size, (batch, text_length), generator=gen)
    text_mask = torch.ones(batch, text_length, dtype=torch.long)
    text_mask[-1, text_length // 2:] = 0
    text_ids[text_mask == 0] = 0
    return image, text_ids, text_mask


def export_onnx(model: nn.Module, cfg: Config, out_file: str,
                shape: Optional[Tuple[int, int]] = None, opset: int = 17) -> Dict[str, str]:
    """Export ``model`` (a DIT-SAM segmentor) with a dynamic batch size.

    Uses the TorchScript-based exporter (``dynamo=False``), traced with two samples (one with
    padded text, so the padding mask path is recorded). The preprocessing spec is stored as the
    ONNX model's metadata.

    Returns:
        Dict[str, str]: The preprocessing spec (:func:`preprocessing_spec`).
    """
    import onnx

    spec = preprocessing_spec(cfg, model, shape)
    height, width = (int(v) for v in spec['input_size'].split('x'))
    wrapper = MaskLogitsModel(model).eval()
    device = next(model.parameters()).device
    inputs = tuple(t.to(device) for t in example_inputs(
        2, (height, width), int(spec['text_length']), model.neck.bert.config.vocab_size))
    batch_axis = {0: 'batch'}
    with torch.no_grad():
        torch.onnx.export(
            wrapper, inputs, out_file, dynamo=False, opset_version=opset,
            input_names=list(INPUT_NAMES), output_names=output_names(model),
            dynamic_axes={name: batch_axis for name in (*INPUT_NAMES, *output_names(model))})
    exported = onnx.load(out_file)
    onnx.helper.set_model_props(exported, spec)
    onnx.checker.check_model(exported)
    onnx.save(exported, out_file)
    return spec


def max_abs_difference(model: nn.Module, onnx_file: str, batch: int = 3, seed: int = 1) -> float:
    """Run the exported file with onnxruntime (CPU) and PyTorch on the same random inputs of
    another batch size than the export's; return the largest absolute logit difference."""
    import onnx
    import onnxruntime

    meta = {p.key: p.value for p in onnx.load(onnx_file, load_external_data=False).metadata_props}
    height, width = (int(v) for v in meta['input_size'].split('x'))
    inputs = example_inputs(batch, (height, width), int(meta['text_length']),
                            model.neck.bert.config.vocab_size, seed)
    session = onnxruntime.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    got = session.run(output_names(model),
                      {name: t.numpy() for name, t in zip(INPUT_NAMES, inputs)})
    device = next(model.parameters()).device
    with torch.no_grad():
        expected = MaskLogitsModel(model).eval()(*(t.to(device) for t in inputs))
    expected = expected if isinstance(expected, tuple) else (expected, )
    return max(float(np.abs(g - e.cpu().numpy()).max()) for g, e in zip(got, expected))

"""DIT-SAM segmentor: BERT text features steer SAM's image encoder and mask decoder."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig, OptSampleList, SampleList,
                         add_prefix)
from torch import Tensor

from ...checkpoint.loading import load_checked_state_dict
from ..decode_heads.sam_decoder_head import HeadOutputs, TextPromptedInputs, split_head_outputs
from .inference_accelerator import FALLBACK_BACKEND, InferenceAccelerator

TEXT_FIELDS = ('text_ids', 'text_mask')


@MODELS.register_module()
class DITSAM(BaseSegmentor):
    """Referring segmentation with SAM and Deep Instruction Tuning (DIT-SAM).

    Every sample carries a tokenised sentence as the data fields ``text_ids`` (L,) and
    ``text_mask`` (L,) (1 = real token, 0 = padding; one L per batch). BERT (the ``neck``)
    encodes it; the backbone (SAM's ViT, with the text injected in E-DIT / L-DIT mode, or not at
    all for the "Default SAM" baseline) encodes the image; the decode head (SAM's mask decoder)
    takes the image embedding and the text tokens as sparse prompts and predicts one mask.

    1. ``loss`` computes the losses:

    .. code:: text

     loss(): encode_text() -> extract_feat() -> decode_head.loss()
     encode_text(): extract_text() -> neck()  # stack ids; BERT -> (B, L, C_text), mask (B, L)
     extract_feat(): backbone()               # image + text -> (image embedding, )

    2. ``predict`` returns masks at each image's original size:

    .. code:: text

     predict(): decode() -> postprocess_result() [-> mark_no_target()]
     decode(): extract_text() -> mask_logits() -> decode_head.predict_by_feat()
     mask_logits(): neck() -> extract_feat() -> decode_head.forward()
                    # autocast + torch.compile'd after accelerate_inference()
     postprocess_result(): crop padding, un-flip, resize to ori_shape, sigmoid > threshold
                           (or, threshold_before_resize: threshold, crop, un-flip, resize, > 0)
     mark_no_target(): only for a head with no_target=True: metainfo no_target_prob, and an
                       empty pred_sem_seg above the head's no_target_threshold

    3. ``_forward`` (``mode='tensor'``) returns the head's low-resolution logits (with a
       no-target head, the pair of them and the no-target logits (B,)):

    .. code:: text

     _forward(): extract_text() -> mask_logits()

    The text reaches the head bundled with the image features as
    ``TextPromptedInputs(image_feats, text_feats, text_mask)``, so ``BaseDecodeHead.loss`` and
    ``predict`` run unchanged. Only whole-image inference (``test_cfg=dict(mode='whole')``) is
    supported; the text is required in every mode, so ``predict`` with ``data_samples=None``
    raises.

    Args:
        backbone (dict): Config of the image encoder, e.g. ``DITSAMViT``; its forward takes
            ``(images, text_feats, text_mask)`` and returns a tuple of feature maps.
        neck (dict): Config of the text encoder, ``BertNeck``.
        decode_head (dict): Config of the head, ``SAMDecoderHead``.
        train_cfg (dict, optional): Passed to the head's ``loss``. Defaults to None.
        test_cfg (dict, optional): ``dict(mode='whole')`` (the default) is the only mode. With
            ``threshold_before_resize=True`` the mask is thresholded at the input size and the
            0/1 mask is resized to the original size (bilinear, half-pixel centres as OpenCV)
            keeping every pixel above 0, as the authors' released test code does; by default
            (MMSeg's way) the logits are resized, then thresholded. Defaults to None.
        data_preprocessor (dict, optional): E.g. ``SegDataPreProcessor``. Defaults to None.
        pretrained (str, optional): A converted checkpoint (see
            ``tools/model_converters/sam2mmseg.py``) loaded by ``init_weights`` after the normal
            initialisation, with every missing/unexpected key checked by name. Defaults to None.
        allowed_missing_keys (Sequence[str]): fnmatch patterns of model keys that ``pretrained``
            may lack, e.g. ``['neck.*', 'backbone.text_injections.*',
            'decode_head.text_proj.*']``. Defaults to ().
        allowed_unexpected_keys (Sequence[str]): fnmatch patterns of ``pretrained`` keys the
            model may lack. Defaults to ().
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 decode_head: ConfigType,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 pretrained: Optional[str] = None,
                 allowed_missing_keys: Sequence[str] = (),
                 allowed_unexpected_keys: Sequence[str] = (),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck)
        self.decode_head = MODELS.build(decode_head)
        self.align_corners = self.decode_head.align_corners
        self.num_classes = self.decode_head.num_classes
        self.out_channels = self.decode_head.out_channels

        self.train_cfg = train_cfg
        self.test_cfg = test_cfg if test_cfg is not None else dict(mode='whole')
        mode = self.test_cfg.get('mode', 'whole')
        if mode != 'whole':
            raise ValueError(f"DITSAM supports test_cfg mode='whole' only, got {mode!r}")
        unknown = set(self.test_cfg) - {'mode', 'threshold_before_resize'}
        if unknown:
            raise ValueError(f'DITSAM test_cfg: unknown keys {sorted(unknown)}; expected mode '
                             'and threshold_before_resize')

        self.pretrained = pretrained
        self.inference_accelerator: Optional[InferenceAccelerator] = None
        self.allowed_missing_keys = list(allowed_missing_keys)
        self.allowed_unexpected_keys = list(allowed_unexpected_keys)
        self._check_text_widths()

    def _check_text_widths(self) -> None:
        """The text width of BERT must be what the head (and backbone) project from."""
        text_width = getattr(self.neck, 'out_channels', None)
        expected = {'decode_head': getattr(self.decode_head, 'text_dim', None)}
        if getattr(self.backbone, 'text_mode', 'none') != 'none':
            expected['backbone'] = getattr(self.backbone, 'text_dims',
                                           getattr(self.backbone, 'text_dim', None))
        for name, dim in expected.items():
            if text_width is not None and dim is not None and dim != text_width:
                raise ValueError(f'The neck outputs {text_width}-d text features but the {name} '
                                 f'expects {dim}-d ones (its text_dim / text_dims)')

    def init_weights(self) -> None:
        """Initialise as configured, then load ``pretrained`` with checked keys."""
        super().init_weights()
        if self.pretrained is not None:
            load_checked_state_dict(
                self,
                self.pretrained,
                allowed_missing=self.allowed_missing_keys,
                allowed_unexpected=self.allowed_unexpected_keys)

    def extract_text(self, data_samples: OptSampleList,
                     device: Optional[torch.device] = None) -> Tuple[Tensor, Tensor]:
        """Stack the tokenised sentences of a batch.

        Returns:
            Tuple[Tensor, Tensor]: ``text_ids`` (B, L) long and ``text_mask`` (B, L) long.
        """
        if data_samples is None:
            raise ValueError('DITSAM needs the sentence of every image: pass data_samples '
                             'carrying `text_ids` and `text_mask` (packed by the data pipeline)')
        fields = {name: [] for name in TEXT_FIELDS}
        for i, sample in enumerate(data_samples):
            for name in TEXT_FIELDS:
                value = sample.get(name, None)
                if value is None:
                    raise KeyError(f'data sample {i} has no `{name}`: DITSAM needs `text_ids` and '
                                   '`text_mask` data fields (set by the text tokenizer transform '
                                   'and packed with data_sample.set_data(...))')
                fields[name].append(torch.as_tensor(value))
        lengths = {ids.shape[-1] for ids in fields['text_ids']}
        if len(lengths) != 1:
            raise ValueError(f'all samples of a batch need the same text length, got {lengths}: '
                             'let the tokenizer pad to a fixed max length')
        text_ids = torch.stack(fields['text_ids']).long().to(device)
        text_mask = torch.stack(fields['text_mask']).long().to(device)
        return text_ids, text_mask

    def encode_text(self, data_samples: OptSampleList,
                    device: Optional[torch.device] = None) -> Tuple[Tensor, Tensor]:
        """Text features (B, L, C_text) and the padding mask (B, L) bool, True = real token."""
        text_ids, text_mask = self.extract_text(data_samples, device)
        return self.neck(text_ids, text_mask)

    def extract_feat(self,
                     inputs: Tensor,
                     text_feats: Optional[Tensor] = None,
                     text_mask: Optional[Tensor] = None) -> Tuple[Tensor, ...]:
        """Image features from the backbone, given the (optional) text: a tuple of maps."""
        feats = self.backbone(inputs, text_feats, text_mask)
        return tuple(feats) if isinstance(feats, (list, tuple)) else (feats, )

    def _head_inputs(self, inputs: Tensor, data_samples: OptSampleList) -> TextPromptedInputs:
        text_feats, text_mask = self.encode_text(data_samples, inputs.device)
        image_feats = self.extract_feat(inputs, text_feats, text_mask)
        return TextPromptedInputs(image_feats, text_feats, text_mask)

    def mask_logits(self, inputs: Tensor, text_ids: Tensor, text_mask: Tensor) -> HeadOutputs:
        """The tensor path of inference: low-resolution mask logits (B, 1, 4h, 4w); with a
        no-target head (``decode_head.no_target``) the pair of them and the no-target logits
        (B,).

        Args:
            inputs (Tensor): Normalised, padded images (B, 3, H, W).
            text_ids (Tensor): Token ids (B, L).
            text_mask (Tensor): (B, L), 1 = real token.
        """
        text_feats, mask = self.neck(text_ids, text_mask)
        image_feats = self.extract_feat(inputs, text_feats, mask)
        return self.decode_head.forward(TextPromptedInputs(image_feats, text_feats, mask))

    def accelerate_inference(self,
                             dtype: Optional[str] = 'bfloat16',
                             compile_mode: Optional[str] = 'reduce-overhead',
                             backend: str = FALLBACK_BACKEND) -> None:
        """Run inference (``predict``, ``test_step``) through an :class:`InferenceAccelerator`.

        Autocast to ``dtype`` and ``torch.compile`` (one graph per input and batch size; CUDA
        graphs with ``'reduce-overhead'``) of :meth:`mask_logits`; training is unaffected.
        ``accelerate_inference(None, None)`` switches it off.

        Args:
            dtype (str, optional): Autocast type or None. Defaults to ``'bfloat16'``.
            compile_mode (str, optional): ``torch.compile`` mode or None. Defaults to
                ``'reduce-overhead'``.
            backend (str): ``torch.compile`` backend. Defaults to ``'inductor_or_eager'``.
        """
        self.inference_accelerator = None
        if dtype is not None or compile_mode is not None:
            self.inference_accelerator = InferenceAccelerator(
                self.mask_logits, dtype=dtype, compile_mode=compile_mode, backend=backend)

    def decode(self, inputs: Tensor,
               batch_data_samples: SampleList) -> Tuple[Tensor, Optional[Tensor]]:
        """Mask logits (B, 1, H, W) at the (padded) input size and the no-target logits (B,)
        (None when the head has no no-target branch)."""
        text_ids, text_mask = self.extract_text(batch_data_samples, inputs.device)
        run = self.mask_logits
        if self.inference_accelerator is not None and not self.training:
            run = self.inference_accelerator
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        return split_head_outputs(
            self.decode_head.predict_by_feat(run(inputs, text_ids, text_mask), batch_img_metas))

    def encode_decode(self, inputs: Tensor, batch_data_samples: SampleList) -> Tensor:
        """Mask logits (B, 1, H, W) at the (padded) input size."""
        return self.decode(inputs, batch_data_samples)[0]

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Losses of a batch, prefixed with ``decode.``."""
        losses = self.decode_head.loss(
            self._head_inputs(inputs, data_samples), data_samples, self.train_cfg)
        return add_prefix(losses, 'decode')

    def predict(self, inputs: Tensor, data_samples: OptSampleList = None) -> SampleList:
        """Predict masks; each sample gets ``seg_logits`` (sigmoid probabilities) and
        ``pred_sem_seg`` (0/1) at its ``ori_shape``; with a no-target head also the metainfo
        ``no_target_prob`` (see :meth:`mark_no_target`)."""
        if data_samples is None:
            raise ValueError('DITSAM.predict needs data_samples: the sentence (`text_ids`, '
                             '`text_mask`) of every image is part of the input')
        seg_logits, no_target_logits = self.decode(inputs, data_samples)
        if self.test_cfg.get('threshold_before_resize', False):
            data_samples = self.threshold_then_resize(seg_logits, data_samples)
        else:
            data_samples = self.postprocess_result(seg_logits, data_samples)
        if no_target_logits is not None:
            data_samples = self.mark_no_target(no_target_logits, data_samples)
        return data_samples

    def mark_no_target(self, no_target_logits: Tensor, data_samples: SampleList) -> SampleList:
        """Record each sample's no-target probability; empty the masks predicted as no target.

        Every sample gets the metainfo ``no_target_prob`` (float in [0, 1], sigmoid of its
        logit); a sample whose probability is above the head's ``no_target_threshold`` gets an
        all-zero ``pred_sem_seg``. ``seg_logits`` keeps the mask branch's probabilities.

        Args:
            no_target_logits (Tensor): (B,) logits of the head's no-target branch.
            data_samples (SampleList): The post-processed samples (with ``pred_sem_seg``).

        Returns:
            SampleList: ``data_samples``, updated in place.
        """
        probs = self.decode_head.no_target_probs(no_target_logits).tolist()
        for prob, sample in zip(probs, data_samples):
            sample.set_metainfo(dict(no_target_prob=prob))
            if prob > self.decode_head.no_target_threshold:
                sample.pred_sem_seg = PixelData(data=torch.zeros_like(sample.pred_sem_seg.data))
        return data_samples

    def threshold_then_resize(self, seg_logits: Tensor, data_samples: SampleList) -> SampleList:
        """The released test code's post-processing (``test_cfg.threshold_before_resize``).

        The mask is binarised at the input size (``sigmoid > threshold``), its padding cropped,
        a flip undone, and the 0/1 mask resized bilinearly to ``ori_shape`` with half-pixel
        centres (``cv2.resize``); every pixel above 0 belongs to the object, so the object grows
        by up to about half an input pixel at its border. ``seg_logits`` holds the resized
        0/1 mask.
        """
        height, width = seg_logits.shape[-2:]
        binary = (seg_logits.float().sigmoid() > self.decode_head.threshold).float()
        for mask, sample in zip(binary, data_samples):
            meta = sample.metainfo
            left, right, top, bottom = meta.get('img_padding_size',
                                                meta.get('padding_size', [0] * 4))
            mask = mask[:, top:height - bottom, left:width - right]  # (1, h, w)
            if meta.get('flip', False):
                mask = mask.flip(dims=(-1, ) if meta['flip_direction'] == 'horizontal' else (-2, ))
            # (1, h, w) -> (1, 1, h, w) -> (1, H_ori, W_ori)
            resized = F.interpolate(mask[None], size=tuple(meta['ori_shape'][:2]),
                                    mode='bilinear', align_corners=False)[0]
            sample.set_data(dict(seg_logits=PixelData(data=resized),
                                 pred_sem_seg=PixelData(data=(resized > 0).to(resized))))
        return data_samples

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None) -> HeadOutputs:
        """Low-resolution mask logits (B, 1, 4h, 4w) of the head, without post-processing
        (with a no-target head, and its no-target logits (B,))."""
        return self.mask_logits(inputs, *self.extract_text(data_samples, inputs.device))

    def extra_repr(self) -> str:
        return f'pretrained={self.pretrained!r}'


"""SAM's prompt encoder + mask decoder as an MMSegmentation decode head prompted by text.

The "Default SAM" of DIT-SAM (and the decoder of E-DIT / L-DIT): every text token, projected by
``text_proj`` (BERT width -> 256), is a sparse prompt of SAM's mask decoder; the dense prompt is
SAM's ``no_mask_embed``; the output is SAM's first (single-mask) mask token at 4x the embedding
grid. Sub-module parameter names equal SAM's, so an official SAM checkpoint converts by renaming
``prompt_encoder.X`` -> ``decode_head.prompt_encoder.X`` and ``mask_decoder.X`` ->
``decode_head.mask_decoder.X`` and dropping ``SAM_DECODER_KEYS_DROPPED``.
"""
import fnmatch
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import DiceLoss
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, SampleList
from torch import Tensor, nn

from .sam_prompt_encoder import DensePromptEncoder
from .single_mask_decoder import SingleMaskDecoder
from .two_way_transformer import TwoWayTransformer

#: fnmatch patterns of official SAM checkpoint keys (``prompt_encoder.*`` / ``mask_decoder.*``)
#: that ``SAMDecoderHead`` does not build: the point/box embeddings and the mask-prompt encoder
#: (text is the only prompt), the IoU prediction head (it would get no gradient, which breaks DDP
#: without ``find_unused_parameters``) and the hypernetwork MLPs of the multimask tokens 1..3
#: (only SAM's single-mask output, mask token 0, is predicted).
SAM_DECODER_KEYS_DROPPED: Tuple[str, ...] = (
    'prompt_encoder.point_embeddings.*',
    'prompt_encoder.not_a_point_embed.*',
    'prompt_encoder.mask_downscaling.*',
    'mask_decoder.iou_prediction_head.*',
    'mask_decoder.output_hypernetworks_mlps.[1-9]*',
)


def is_dropped_sam_decoder_key(key: str) -> bool:
    """Whether an official SAM checkpoint key is one ``SAMDecoderHead`` does not build."""
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in SAM_DECODER_KEYS_DROPPED)


class TextPromptedInputs(NamedTuple):
    """What ``SAMDecoderHead.loss``/``predict`` take as ``inputs``: image features plus text.

    ``BaseDecodeHead.loss(inputs, ...)`` and ``predict(inputs, ...)`` hand ``inputs`` to
    ``forward`` unchanged, so bundling the text here lets both run unmodified.

    Attributes:
        image_feats (Tuple[Tensor]): The backbone's outputs; the head uses ``in_index`` of them,
            the image embedding (B, C, h, w).
        text_feats (Tensor): Per-token text features (B, L, text_dim).
        text_mask (Tensor): (B, L) bool, True = real token, False = padding.
    """
    image_feats: Tuple[Tensor, ...]
    text_feats: Tensor
    text_mask: Tensor


@MODELS.register_module()
class SAMDecoderHead(BaseDecodeHead):
    """SAM's mask decoder prompted by text tokens; one binary mask per image.

    Unlike SAM's predictor, prompt set b goes with image b only (no B x B repetition), and padded
    text tokens are masked out as attention keys. ``conv_seg`` of ``BaseDecodeHead`` is not used
    and is deleted; there is no default ``init_cfg`` (modules keep PyTorch's default init, as in
    SAM, until SAM weights are loaded).

    Args:
        in_channels (int): Channels of the image embedding, which is also the decoder's
            transformer width (SAM: 256); ``BaseDecodeHead``'s ``channels`` is set to it.
            Defaults to 256.
        text_dim (int): Channels of the text features (BERT-base: 768). Defaults to 768.
        num_heads (int): Attention heads of the two-way transformer. Defaults to 8.
        mlp_dim (int): Hidden channels of the transformer's token MLPs. Defaults to 2048.
        decoder_depth (int): Two-way blocks (SAM: 2; "Add N dec layers": 2 + N). Defaults to 2.
        attention_downsample_rate (int): Channel reduction inside cross-attention. Defaults to 2.
        num_multimask_outputs (int): SAM's multimask tokens; kept as tokens for SAM weight
            compatibility. Defaults to 3.
        mask_text_padding (bool): Mask padded text tokens out of attention. False reproduces
            the released code, whose decoder attends to padding too. Defaults to True.
        num_classes (int): Must be 2 (binary). Defaults to 2.
        out_channels (int): Must be 1 (one sigmoid logit). Defaults to 1.
        threshold (float): Sigmoid threshold of the prediction. Defaults to 0.35 (paper).
        loss_decode (dict | Sequence[dict]): Losses. Defaults to BCE over non-ignored pixels,
            ``dict(type='MaskBCELoss', loss_weight=1.0)`` (the value of mmseg's
            ``CrossEntropyLoss(use_sigmoid=True, avg_non_ignore=True)``, which also works but
            reads the device twice per step). A ``DiceLoss`` (``use_sigmoid=True``) may be added;
            mmseg 1.2.2's Dice indexes with a host-side mask, one more host-device copy per
            step on GPU.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
        **kwargs: Other ``BaseDecodeHead`` arguments (``ignore_index``, ``align_corners``,
            ``in_index``, ``sampler``).
    """

    def __init__(self,
                 in_channels: int = 256,
                 *,
                 text_dim: int = 768,
                 num_heads: int = 8,
                 mlp_dim: int = 2048,
                 decoder_depth: int = 2,
                 attention_downsample_rate: int = 2,
                 num_multimask_outputs: int = 3,
                 mask_text_padding: bool = True,
                 num_classes: int = 2,
                 out_channels: int = 1,
                 threshold: float = 0.35,
                 loss_decode: Union[dict, Sequence[dict]] = dict(
                     type='MaskBCELoss', loss_weight=1.0),
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        if num_classes != 2 or out_channels != 1:
            raise ValueError('SAMDecoderHead predicts one binary mask: it needs num_classes=2 '
                             f'and out_channels=1, got {num_classes} and {out_channels}')
        super().__init__(
            in_channels,
            in_channels,
            num_classes=num_classes,
            out_channels=out_channels,
            threshold=threshold,
            dropout_ratio=0.0,
            loss_decode=loss_decode,
            init_cfg=init_cfg,
            **kwargs)
        del self.conv_seg  # the mask decoder's hypernetwork produces the logits
        self._check_losses()

        transformer_dim = in_channels
        self.text_dim = text_dim
        self.mask_text_padding = mask_text_padding
        self.text_proj = nn.Linear(text_dim, transformer_dim)
        self.prompt_encoder = DensePromptEncoder(embed_dim=transformer_dim)
        self.mask_decoder = SingleMaskDecoder(
            transformer_dim=transformer_dim,
            transformer=TwoWayTransformer(
                depth=decoder_depth,
                embedding_dim=transformer_dim,
                num_heads=num_heads,
                mlp_dim=mlp_dim,
                attention_downsample_rate=attention_downsample_rate),
            num_multimask_outputs=num_multimask_outputs)

    def _losses(self) -> List[nn.Module]:
        if isinstance(self.loss_decode, nn.ModuleList):
            return list(self.loss_decode)
        return [self.loss_decode]

    def _check_losses(self) -> None:
        for loss in self._losses():
            if isinstance(loss, DiceLoss) and not (loss.use_sigmoid and loss.activate):
                raise ValueError('SAMDecoderHead outputs one logit per pixel: DiceLoss needs '
                                 'use_sigmoid=True and activate=True')

    def forward(self,
                inputs: Union[TextPromptedInputs, Sequence[Tensor]],
                text_feats: Optional[Tensor] = None,
                text_mask: Optional[Tensor] = None) -> Tensor:
        """Predict low-resolution mask logits.

        Args:
            inputs (TextPromptedInputs | Sequence[Tensor]): The backbone's output tuple (then
                ``text_feats`` and ``text_mask`` are required), or a ``TextPromptedInputs``
                bundling it with the text (as ``loss``/``predict`` pass it).
            text_feats (Tensor, optional): (B, L, text_dim).
            text_mask (Tensor, optional): (B, L), True/1 = real token; None = all real.

        Returns:
            Tensor: float32 logits (B, 1, 4h, 4w) for an image embedding of (B, C, h, w) (under
            autocast the decoder runs in bfloat16; resizing, sigmoid, threshold and losses
            then work on float32).
        """
        if isinstance(inputs, TextPromptedInputs):
            if text_feats is not None or text_mask is not None:
                raise ValueError('pass the text either inside TextPromptedInputs or as '
                                 'arguments, not both')
            inputs, text_feats, text_mask = inputs
        if text_feats is None:
            raise ValueError('SAMDecoderHead needs text: call forward(inputs, text_feats, '
                             'text_mask) or pass TextPromptedInputs(image_feats, text_feats, '
                             'text_mask) to loss()/predict()')
        image_embedding = self._transform_inputs(inputs)  # (B, C, h, w)
        b, _, h, w = image_embedding.shape

        sparse_embeddings = self.text_proj(text_feats)  # (B, L, C)
        dense_embeddings = self.prompt_encoder.no_mask_embedding(b, (h, w))  # (B, C, h, w)
        image_pe = self.prompt_encoder.get_dense_pe((h, w))  # (1, C, h, w)
        return self.mask_decoder(
            image_embeddings=image_embedding,
            image_pe=image_pe,
            sparse_prompt_embeddings=sparse_embeddings,
            dense_prompt_embeddings=dense_embeddings,
            sparse_prompt_mask=(text_mask.bool()
                                if self.mask_text_padding and text_mask is not None else None)
        ).float()

    def loss(self, inputs: TextPromptedInputs, batch_data_samples: SampleList,
             train_cfg: ConfigType) -> dict:
        """Losses of the mask; ``inputs`` bundles the image features and the text."""
        return super().loss(inputs, batch_data_samples, train_cfg)

    def predict(self, inputs: TextPromptedInputs, batch_img_metas: List[dict],
                test_cfg: ConfigType) -> Tensor:
        """Mask logits at the (padded) input size; ``inputs`` bundles image features and text."""
        return super().predict(inputs, batch_img_metas, test_cfg)

    def loss_by_feat(self, seg_logits: Tensor, batch_data_samples: SampleList) -> dict:
        """Binary losses and accuracy of (B, 1, h, w) logits against the 0/1 ground truth.

        Differs from ``BaseDecodeHead.loss_by_feat`` where mmseg 1.2.2 mishandles one output
        channel: ``DiceLoss`` would one-hot encode the labels and score the foreground
        probability against the *background* channel, and would not ignore ``ignore_index``
        pixels; ``accuracy`` takes a top-1 over one channel, i.e. always predicts 0. Here Dice
        gets the foreground target in the logits' shape with ignored pixels removed from both
        sides, and ``acc_seg`` is the accuracy of ``sigmoid > threshold`` on non-ignored pixels.
        """
        seg_label = self._stack_batch_gt(batch_data_samples)  # (B, 1, H, W)
        seg_logits = resize(
            input=seg_logits,
            size=seg_label.shape[2:],
            mode='bilinear',
            align_corners=self.align_corners)
        seg_weight = None
        if self.sampler is not None:
            seg_weight = self.sampler.sample(seg_logits, seg_label)
        valid = seg_label != self.ignore_index  # (B, 1, H, W)
        label = seg_label.squeeze(1)  # (B, H, W)

        losses = dict()
        for loss_decode in self._losses():
            if isinstance(loss_decode, DiceLoss):
                # Ignored pixels: probability 0 (sigmoid of a very negative logit) and target 0,
                # so they add nothing to Dice's sums.
                value = loss_decode(
                    seg_logits.masked_fill(~valid, -1e4),
                    ((seg_label == 1) & valid).to(seg_logits.dtype),
                    weight=seg_weight,
                    ignore_index=self.ignore_index)
            else:
                value = loss_decode(
                    seg_logits, label, weight=seg_weight, ignore_index=self.ignore_index)
            name = loss_decode.loss_name
            losses[name] = losses[name] + value if name in losses else value

        with torch.no_grad():
            # Compared as floats: TorchInductor's CPU code (torch 2.13) cannot compare boolean
            # masks that come from different element types (float logits, uint8 labels).
            pred = (seg_logits.sigmoid() > self.threshold).float()
            correct = (pred == (seg_label == 1).float()) & valid
            num_valid = valid.sum().clamp(min=1)
            losses['acc_seg'] = correct.sum().float() * 100.0 / num_valid
        return losses

"""SAM's prompt encoder + mask decoder as an MMSegmentation decode head prompted by text.

The "Default SAM" of DIT-SAM (and the decoder of E-DIT / L-DIT): every text token, projected by
``text_proj`` (BERT width -> 256), is a sparse prompt of SAM's mask decoder; the dense prompt is
SAM's ``no_mask_embed``; the output is SAM's first (single-mask) mask token at 4x the embedding
grid. Sub-module parameter names equal SAM's, so an official SAM checkpoint converts by renaming
``prompt_encoder.X`` -> ``decode_head.prompt_encoder.X`` and ``mask_decoder.X`` ->
``decode_head.mask_decoder.X`` and dropping ``SAM_DECODER_KEYS_DROPPED``.

With ``no_target=True`` (generalized referring segmentation, gRefCOCO) the head also predicts
whether the sentence names nothing in the image: a logit per sample from the decoder's output
tokens (detached by default), trained with a binary loss against
``data_sample.metainfo['no_target']``.
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

from .sam_layers import MLP
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


#: What ``SAMDecoderHead.forward`` returns: mask logits (B, 1, h, w), or with ``no_target=True``
#: the pair (mask logits (B, 1, h, w), no-target logits (B,)).
HeadOutputs = Union[Tensor, Tuple[Tensor, Tensor]]


def is_dropped_sam_decoder_key(key: str) -> bool:
    """Whether an official SAM checkpoint key is one ``SAMDecoderHead`` does not build."""
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in SAM_DECODER_KEYS_DROPPED)


def split_head_outputs(outputs: HeadOutputs) -> Tuple[Tensor, Optional[Tensor]]:
    """The mask logits and the no-target logits (None for a head without the branch)."""
    if isinstance(outputs, (tuple, list)):
        mask_logits, no_target_logits = outputs
        return mask_logits, no_target_logits
    return outputs, None


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
        no_target (bool): Also predict whether the sentence names nothing in the image: an MLP
            (``no_target_head``, 3 layers) on the decoder's outputs of SAM's IoU token and first
            mask token gives one logit per sample. ``forward`` then returns (mask logits,
            no-target logits), the losses gain ``loss_no_target``'s term (target:
            ``metainfo['no_target']``, missing = False) and ``acc_no_target``. The mask is
            computed exactly as without the branch. Defaults to False: nothing is built, the
            head is the plain one.
        no_target_threshold (float): With ``no_target``, a sample whose no-target probability
            (sigmoid of its logit) is above it is predicted to name nothing (the segmentor
            returns an empty mask). Defaults to 0.5.
        loss_no_target (dict): With ``no_target``, the binary loss of the no-target logits
            (B, 1) against the 0/1 labels (B,); its ``loss_name`` is the key in the losses and
            must differ from the mask losses'. ``dict(type='CrossEntropyLoss', use_sigmoid=True,
            loss_name='loss_no_target', ...)`` gives the same value (reading the device once
            per step, see ``loss_decode``). Defaults to
            ``dict(type='MaskBCELoss', loss_weight=1.0, loss_name='loss_no_target')``.
        detach_no_target (bool): With ``no_target``, train the no-target MLP on the decoder's
            tokens without passing its gradient into them: the mask is then trained exactly as
            without the branch (the branch is initialised on a fork of the random stream).
            Measured on SynthRef-GRES (docs/en/grefcoco.md): trained jointly at loss weight 1.0,
            the no-target loss held the masks back (about half the cIoU of the plain head); at
            0.1 less so, but still below the plain head on average. False trains them jointly,
            as GRES's ReLA does. Defaults to True.
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
                 no_target: bool = False,
                 no_target_threshold: float = 0.5,
                 loss_no_target: dict = dict(
                     type='MaskBCELoss', loss_weight=1.0, loss_name='loss_no_target'),
                 detach_no_target: bool = True,
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

        self.no_target = no_target
        self.no_target_threshold = no_target_threshold
        self.detach_no_target = detach_no_target
        if no_target:
            # On a fork of the random stream: every other initial weight and random draw of the
            # run stays what it is without the branch, so with and without compare exactly.
            with torch.random.fork_rng(devices=[]):
                self._build_no_target_branch(transformer_dim, loss_no_target)

    def _build_no_target_branch(self, transformer_dim: int, loss_no_target: dict) -> None:
        if not 0.0 <= self.no_target_threshold <= 1.0:
            raise ValueError('SAMDecoderHead: no_target_threshold is a probability in [0, 1], '
                             f'got {self.no_target_threshold}')
        # (B, 2C): the IoU token's and the first mask token's outputs -> (B, 1)
        self.no_target_head = MLP(2 * transformer_dim, transformer_dim, 1, 3)
        self.loss_no_target = MODELS.build(loss_no_target)
        name = self.loss_no_target.loss_name
        mask_names = {loss.loss_name for loss in self._losses()}
        if not name.startswith('loss_') or name in mask_names:
            raise ValueError(f'SAMDecoderHead: loss_no_target has loss_name={name!r}; it must '
                             "start with 'loss_' and differ from the mask losses' names "
                             f"{sorted(mask_names)}, e.g. loss_name='loss_no_target'")

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
                text_mask: Optional[Tensor] = None) -> HeadOutputs:
        """Predict low-resolution mask logits (and, with ``no_target``, no-target logits).

        Args:
            inputs (TextPromptedInputs | Sequence[Tensor]): The backbone's output tuple (then
                ``text_feats`` and ``text_mask`` are required), or a ``TextPromptedInputs``
                bundling it with the text (as ``loss``/``predict`` pass it).
            text_feats (Tensor, optional): (B, L, text_dim).
            text_mask (Tensor, optional): (B, L), True/1 = real token; None = all real.

        Returns:
            Tensor | Tuple[Tensor, Tensor]: float32 logits (B, 1, 4h, 4w) for an image embedding
            of (B, C, h, w) (under autocast the decoder runs in bfloat16; resizing, sigmoid,
            threshold and losses then work on float32); with ``no_target``, the pair of them and
            the float32 no-target logits (B,).
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
        outputs = self.mask_decoder(
            image_embeddings=image_embedding,
            image_pe=image_pe,
            sparse_prompt_embeddings=sparse_embeddings,
            dense_prompt_embeddings=dense_embeddings,
            sparse_prompt_mask=(text_mask.bool()
                                if self.mask_text_padding and text_mask is not None else None),
            return_tokens=self.no_target)
        if not self.no_target:
            return outputs.float()
        mask_logits, tokens = outputs  # (B, 1, 4h, 4w), (B, 2, C)
        if self.detach_no_target:
            tokens = tokens.detach()
        no_target_logits = self.no_target_head(tokens.flatten(1)).squeeze(1)  # (B, 2C) -> (B,)
        return mask_logits.float(), no_target_logits.float()

    def loss(self, inputs: TextPromptedInputs, batch_data_samples: SampleList,
             train_cfg: ConfigType) -> dict:
        """Losses of the mask (and no-target logits); ``inputs`` bundles image features and
        text."""
        return super().loss(inputs, batch_data_samples, train_cfg)

    def predict(self, inputs: TextPromptedInputs, batch_img_metas: List[dict],
                test_cfg: ConfigType) -> HeadOutputs:
        """Mask logits at the (padded) input size (with ``no_target``, and the no-target logits
        (B,)); ``inputs`` bundles image features and text."""
        return super().predict(inputs, batch_img_metas, test_cfg)

    def predict_by_feat(self, seg_logits: HeadOutputs, batch_img_metas: List[dict]) -> HeadOutputs:
        """Resize the mask logits to the (padded) input size; no-target logits pass through."""
        mask_logits, no_target_logits = split_head_outputs(seg_logits)
        mask_logits = super().predict_by_feat(mask_logits, batch_img_metas)
        return mask_logits if no_target_logits is None else (mask_logits, no_target_logits)

    def no_target_probs(self, no_target_logits: Tensor) -> Tensor:
        """Probabilities (B,) that the sentences name nothing, of the no-target logits (B,)."""
        return no_target_logits.float().sigmoid()

    def loss_by_feat(self, seg_logits: HeadOutputs, batch_data_samples: SampleList) -> dict:
        """Mask losses (``mask_loss_by_feat``) and, with ``no_target``, the no-target loss and
        ``acc_no_target``, the accuracy (%) of ``probability > no_target_threshold``."""
        mask_logits, no_target_logits = split_head_outputs(seg_logits)
        if (no_target_logits is not None) != self.no_target:
            raise ValueError(f'SAMDecoderHead(no_target={self.no_target}) got '
                             f"{'no ' if no_target_logits is None else ''}no-target logits")
        losses = self.mask_loss_by_feat(mask_logits, batch_data_samples)
        if no_target_logits is None:
            return losses
        labels = self._no_target_labels(batch_data_samples, no_target_logits.device)
        losses[self.loss_no_target.loss_name] = self.loss_no_target(no_target_logits[:, None],
                                                                    labels)
        with torch.no_grad():
            pred = (self.no_target_probs(no_target_logits) > self.no_target_threshold).float()
            losses['acc_no_target'] = (pred == labels.float()).float().mean() * 100.0
        return losses

    @staticmethod
    def _no_target_labels(batch_data_samples: SampleList, device: torch.device) -> Tensor:
        """(B,) long, 1 = the sentence names nothing (``metainfo['no_target']``, missing =
        False), on ``device`` without making the host wait for it (pinned, asynchronous copy)."""
        labels = torch.tensor(
            [bool(sample.metainfo.get('no_target', False)) for sample in batch_data_samples],
            dtype=torch.long)
        if device.type == 'cuda':
            labels = labels.pin_memory()
        return labels.to(device, non_blocking=True)

    def mask_loss_by_feat(self, seg_logits: Tensor, batch_data_samples: SampleList) -> dict:
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

"""DITSAMViT: SAM's ViT image encoder that also reads text (Deep Instruction Tuning, DIT-SAM)."""
import copy
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.model import ModuleList
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.backbones.vit_sam import ViTSAM
from mmpretrain.models.utils import resize_pos_embed, to_2tuple
from mmseg.registry import MODELS
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from .dit_block import DITBlock

TEXT_MODES = ('none', 'e2e', 'layerwise')


@MODELS.register_module()
class DITSAMViT(ViTSAM):
    """SAM ViT with deep instruction tuning: text tokens travel through the image encoder.

    Subclass of mmpretrain's ``ViTSAM``: same arch table, parameter names, neck
    (``channel_reduction``) and ``load_state_dict`` pre-hooks that resize ``pos_embed`` and the
    relative position tables to this model's ``img_size`` (so 1024-pixel SAM weights load into a
    512-pixel model). The blocks are :class:`DITBlock` (SDPA attention over [text; image]).

    Text modes (DIT paper sec. 3, authors' release):

    - ``'none'``: plain SAM encoder, text ignored.
    - ``'e2e'`` (E-DIT): before block i the text slots become ``P_i(t)``; ``t`` is the text
      features for i = 0 and block i-1's text output after; ``depth`` projections (no ``P_depth``:
      the last text output is dropped, so every parameter gets a gradient).
    - ``'layerwise'`` (L-DIT): before block i the text slots become ``P_i(text_feats)``; the text
      outputs of each block are discarded.

    Text tokens get no absolute position embedding, no relative bias, and are dropped before the
    neck. With text, every block attends globally over [text; image] unless
    ``global_attn_with_text=False`` (windowed blocks then keep SAM's windows, each window also
    sees the text keys, text queries see all tokens). Without text, SAM's window attention.

    Input sizes: ``img_size`` must be a multiple of ``patch_size`` (ValueError otherwise). An input
    whose H, W differ from ``img_size`` is accepted if both are multiples of ``patch_size`` (else
    ValueError): ``pos_embed`` is resized on the fly (bicubic, as ``ViTSAM``) and the relative
    tables by SAM's ``get_rel_pos`` rule (linear), which costs an interpolation per forward.

    Args:
        arch (str | dict): ``'base'``, ``'large'``, ``'huge'`` (SAM ViT-B/L/H) or a dict with
            ``embed_dims``, ``num_layers``, ``num_heads``, ``feedforward_channels``,
            ``global_attn_indexes``. Defaults to ``'base'``.
        img_size (int | tuple): Input size the position embeddings are sized for. Defaults to
            1024 (SAM's); the paper trains at 512.
        patch_size (int): Patch size. Defaults to 16.
        in_channels (int): Image channels. Defaults to 3.
        out_channels (int): Channels of SAM's neck output. Defaults to 256.
        drop_rate (float): Dropout after the position embedding and in the MLPs. Defaults to 0.
        drop_path_rate (float): Stochastic depth, linearly increasing. Defaults to 0.
        qkv_bias (bool): Bias in qkv. Defaults to True.
        use_abs_pos (bool): Absolute position embedding. Defaults to True.
        use_rel_pos (bool): Decomposed relative position bias. Defaults to True.
        window_size (int): SAM window size of the non-global blocks. Defaults to 14.
        norm_cfg (dict): Norm of the blocks. Defaults to ``dict(type='LN', eps=1e-6)``.
        interpolate_mode (str): Resize mode of ``pos_embed``. Defaults to ``'bicubic'``.
        patch_cfg (dict): Extra ``PatchEmbed`` arguments. Defaults to ``dict()``.
        text_mode (str): ``'none'``, ``'e2e'`` or ``'layerwise'``. Defaults to ``'layerwise'``.
        text_dims (int): Channels of the text features (BERT-base: 768). Defaults to 768.
        injection (dict): Config of the per-block text injection, built in ``mmseg``'s MODELS
            with ``in_dims``, ``embed_dims`` and ``num_heads`` filled in (see
            ``text_injection.py`` for the contract). Defaults to
            ``dict(type='LinearTextInjection', drop_rate=0.1, zero_init=True)``.
        global_attn_with_text (bool): With text, run every block globally (DIT release).
            Defaults to True.
        mask_text_padding (bool): Mask padding text tokens (``text_mask`` 0) out of the keys.
            False reproduces the authors' release. Defaults to True.
        num_static_prompts (int): Learnable static prompt tokens concatenated after the projected
            text tokens (paper Table 2, "dynamic+static"): one set per block in layerwise mode,
            one set entering block 0 in e2e mode. Never masked. Defaults to 0.
        frozen (bool): Freeze the SAM encoder (patch/pos embedding, blocks, neck; paper Table 3)
            and keep it in eval mode; injections and static prompts stay trainable.
            Defaults to False.
        with_cp (bool): Activation checkpointing of every block (``use_reentrant=False``).
            Defaults to False.
        attn_impl (str): ``'sdpa'`` (``F.scaled_dot_product_attention`` without a mask, the
            relative bias folded into extra channels: fused kernels on CPU and GPU) or
            ``'naive'`` (dense bias mask and hand-written softmax attention, the released code's
            way; for reference measurements). Defaults to ``'sdpa'``.
        init_cfg (dict, optional): MMEngine initialisation config. Defaults to None.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 img_size: Union[int, Tuple[int, int]] = 1024,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 out_channels: int = 256,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 qkv_bias: bool = True,
                 use_abs_pos: bool = True,
                 use_rel_pos: bool = True,
                 window_size: int = 14,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 interpolate_mode: str = 'bicubic',
                 patch_cfg: dict = dict(),
                 text_mode: str = 'layerwise',
                 text_dims: int = 768,
                 injection: dict = dict(
                     type='LinearTextInjection', drop_rate=0.1, zero_init=True),
                 global_attn_with_text: bool = True,
                 mask_text_padding: bool = True,
                 num_static_prompts: int = 0,
                 frozen: bool = False,
                 with_cp: bool = False,
                 attn_impl: str = 'sdpa',
                 init_cfg: Optional[dict] = None) -> None:
        arch_settings = self._resolve_arch(arch)
        for size in to_2tuple(img_size):
            if size % patch_size != 0:
                raise ValueError(f'img_size={img_size} must be a multiple of patch_size='
                                 f'{patch_size}')
        if text_mode not in TEXT_MODES:
            raise ValueError(f'text_mode={text_mode!r}: choose from {TEXT_MODES}')
        if out_channels <= 0:
            raise ValueError('out_channels must be > 0: the output is SAM\'s neck embedding')
        # ViTSAM's constructor is run with zero layers: it builds the patch / position
        # embeddings, the neck and the pos-embed / rel-pos load hooks; the blocks are built below
        # with the same parameter names.
        super().__init__(
            arch={**arch_settings, 'num_layers': 0},
            img_size=img_size,
            patch_size=patch_size,
            in_channels=in_channels,
            out_channels=out_channels,
            out_indices=0,
            drop_rate=drop_rate,
            qkv_bias=qkv_bias,
            use_abs_pos=use_abs_pos,
            use_rel_pos=use_rel_pos,
            window_size=window_size,
            norm_cfg=norm_cfg,
            interpolate_mode=interpolate_mode,
            patch_cfg=patch_cfg,
            init_cfg=init_cfg)
        self.arch_settings = arch_settings
        self.num_layers = arch_settings['num_layers']
        self.out_indices = [self.num_layers - 1]
        self.patch_size = patch_size
        if not use_abs_pos:
            self.pos_embed = None  # ViTSAM.init_weights reads it
            self.drop_after_pos = nn.Identity()

        dpr = np.linspace(0, drop_path_rate, self.num_layers)
        self.layers = ModuleList([
            DITBlock(
                embed_dims=self.embed_dims,
                num_heads=arch_settings['num_heads'],
                feedforward_channels=arch_settings['feedforward_channels'],
                drop_rate=drop_rate,
                drop_path_rate=float(dpr[i]),
                qkv_bias=qkv_bias,
                norm_cfg=norm_cfg,
                use_rel_pos=use_rel_pos,
                window_size=0 if i in self.global_attn_indexes else window_size,
                input_size=self.patch_resolution,
                attn_impl=attn_impl) for i in range(self.num_layers)
        ])

        self.text_mode = text_mode
        self.text_dims = text_dims
        self.global_attn_with_text = global_attn_with_text
        self.mask_text_padding = mask_text_padding
        self.num_static_prompts = num_static_prompts
        self.with_cp = with_cp
        self.frozen = frozen
        self.text_injections = None
        self.static_prompts = None
        if text_mode != 'none':
            self.text_injections = ModuleList()
            for i in range(self.num_layers):
                cfg = copy.deepcopy(injection)
                cfg.update(
                    in_dims=text_dims if (i == 0 or text_mode == 'layerwise') else
                    self.embed_dims,
                    embed_dims=self.embed_dims,
                    num_heads=arch_settings['num_heads'])
                self.text_injections.append(MODELS.build(cfg))
            if num_static_prompts > 0:
                sets = self.num_layers if text_mode == 'layerwise' else 1
                self.static_prompts = nn.Parameter(
                    torch.zeros(sets, num_static_prompts, self.embed_dims))
                trunc_normal_(self.static_prompts, std=0.02)
        if frozen:
            self._freeze_encoder()

    @classmethod
    def _resolve_arch(cls, arch: Union[str, dict]) -> dict:
        if isinstance(arch, str):
            if arch.lower() not in cls.arch_zoo:
                raise ValueError(f'arch={arch!r} is not one of {sorted(set(cls.arch_zoo))}')
            return dict(cls.arch_zoo[arch.lower()])
        keys = {'embed_dims', 'num_layers', 'num_heads', 'feedforward_channels',
                'global_attn_indexes'}
        if not isinstance(arch, dict) or not keys <= set(arch):
            raise ValueError(f'a custom arch must be a dict with the keys {sorted(keys)}, '
                             f'got {arch!r}')
        return dict(arch)

    def _encoder_modules(self) -> Sequence[nn.Module]:
        return [self.patch_embed, self.drop_after_pos, self.layers, self.channel_reduction]

    def _freeze_encoder(self) -> None:
        """Freeze SAM's encoder parameters and put its modules in eval mode."""
        if self.pos_embed is not None:
            self.pos_embed.requires_grad = False
        for module in self._encoder_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'DITSAMViT':
        """Set train / eval mode (frozen encoder parts stay in eval) and return ``self``."""
        nn.Module.train(self, mode)
        if self.frozen:
            for module in self._encoder_modules():
                module.eval()
        return self

    def _check_input(self, x: Tensor) -> None:
        H, W = x.shape[-2:]
        if H % self.patch_size != 0 or W % self.patch_size != 0:
            raise ValueError(f'input size {(H, W)} must be a multiple of patch_size='
                             f'{self.patch_size} in both dimensions (pad the image)')

    def _run_block(self, block: DITBlock, x: Tensor, hw: Tuple[int, int], num_text: int,
                   text_pad: Optional[Tensor], use_window: bool) -> Tensor:
        if self.with_cp and torch.is_grad_enabled():
            return checkpoint(block, x, hw, num_text, text_pad, use_window,
                              use_reentrant=False)
        return block(x, hw, num_text, text_pad, use_window)

    def _text_tokens(self, i: int, text_feats: Tensor, prev_text: Optional[Tensor],
                     text_mask: Optional[Tensor], image_tokens: Tensor,
                     hw: Tuple[int, int]) -> Tensor:
        """The text slots of block i: (B, L [+ S], C)."""
        B, L = text_feats.shape[:2]
        if self.text_mode == 'e2e' and i > 0:
            # E-DIT: P_i applied to every slot block i-1 produced (static prompts included).
            mask = text_mask
            if mask is not None and self.static_prompts is not None:
                mask = torch.cat([mask, mask.new_ones(B, self.num_static_prompts)], dim=1)
            return self.text_injections[i](
                prev_text, text_mask=mask, image_tokens=image_tokens, hw=hw)
        tokens = self.text_injections[i](
            text_feats, text_mask=text_mask, image_tokens=image_tokens, hw=hw)  # (B, L, C)
        if self.static_prompts is not None:
            prompts = self.static_prompts[i if self.text_mode == 'layerwise' else 0]
            # (S, C) -> (B, S, C), concatenated after the sentence.
            tokens = torch.cat([tokens, prompts.expand(B, -1, -1).to(tokens.dtype)], dim=1)
        return tokens

    def forward(self,
                x: Tensor,
                text_feats: Optional[Tensor] = None,
                text_mask: Optional[Tensor] = None) -> Tuple[Tensor]:
        """Encode an image (and a sentence).

        Args:
            x (Tensor): Images (B, in_channels, H, W); H, W multiples of ``patch_size``.
            text_feats (Tensor, optional): Text features (B, L, text_dims). Ignored when
                ``text_mode='none'``; None runs the plain SAM encoder.
            text_mask (Tensor, optional): (B, L) bool / int, True or 1 = real token, 0 = padding.
                None means every token is real.

        Returns:
            tuple[Tensor]: ``(embedding,)`` with embedding (B, out_channels, H / 16, W / 16).
        """
        self._check_input(x)
        B = x.shape[0]
        x, hw = self.patch_embed(x)  # (B, H * W, C)
        if self.use_abs_pos:
            # pos_embed (1, h0, w0, C) -> (1, h0 * w0, C) -> resized to (1, H * W, C)
            x = x + resize_pos_embed(self.pos_embed.flatten(1, 2), self.patch_resolution, hw,
                                     mode=self.interpolate_mode, num_extra_tokens=0)
            x = self.drop_after_pos(x)

        if self.text_mode == 'none' or text_feats is None:
            for block in self.layers:
                x = self._run_block(block, x, hw, 0, None, True)
        else:
            if text_feats.dim() != 3 or text_feats.shape[0] != B:
                raise ValueError(f'text_feats must be (B={B}, L, {self.text_dims}), got '
                                 f'{tuple(text_feats.shape)}')
            text_mask = text_mask.bool() if text_mask is not None else None
            text_pad = None
            if self.mask_text_padding and text_mask is not None:
                text_pad = ~text_mask  # (B, L), True = padding key
                if self.static_prompts is not None:
                    text_pad = torch.cat(
                        [text_pad, text_pad.new_zeros(B, self.num_static_prompts)], dim=1)
            text = None
            for i, block in enumerate(self.layers):
                text = self._text_tokens(i, text_feats, text, text_mask, x, hw)
                num_text = text.shape[1]
                # [text; image]: (B, T, C) + (B, H * W, C) -> (B, T + H * W, C)
                tokens = torch.cat([text, x], dim=1)
                tokens = self._run_block(block, tokens, hw, num_text, text_pad,
                                         not self.global_attn_with_text)
                text, x = tokens[:, :num_text], tokens[:, num_text:]
        # Text is dropped before SAM's neck. (B, H * W, C) -> (B, H, W, C) -> (B, C, H, W)
        x = x.reshape(B, hw[0], hw[1], self.embed_dims).permute(0, 3, 1, 2)
        return (self.channel_reduction(x), )

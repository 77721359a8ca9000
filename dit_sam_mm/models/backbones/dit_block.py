"""One transformer block of SAM's ViT that carries text tokens in front of the image tokens."""
from typing import Optional, Tuple

from mmcv.cnn.bricks.drop import build_dropout
from mmcv.cnn.bricks.transformer import FFN
from mmengine.model import BaseModule
from mmpretrain.models.utils import build_norm_layer
from torch import Tensor

from .text_image_attention import TextImageAttention


class DITBlock(BaseModule):
    """Pre-norm ViT block of SAM (attention + MLP) over a flat [text; image] token sequence.

    Parameter names follow mmpretrain's ``ViTSAM`` layer (``ln1``, ``attn.qkv``, ``attn.proj``,
    ``attn.rel_pos_h/w``, ``ln2``, ``ffn.layers.0.0``, ``ffn.layers.1``) so converted SAM weights
    load. Norms and the MLP are token-wise, so text tokens go through them like image tokens.

    Args:
        embed_dims (int): Token channels.
        num_heads (int): Attention heads.
        feedforward_channels (int): Hidden channels of the MLP.
        drop_rate (float): Dropout after the MLP. Defaults to 0.
        drop_path_rate (float): Stochastic depth on both residual branches (SAM and ViTSAM use
            none on the attention branch; 0 by default, so only relevant when set).
            Defaults to 0.
        qkv_bias (bool): Bias in the qkv projection. Defaults to True.
        act_cfg (dict): MLP activation. Defaults to ``dict(type='GELU')``.
        norm_cfg (dict): Norm layer. Defaults to ``dict(type='LN', eps=1e-6)`` (SAM's).
        use_rel_pos (bool): SAM's relative position bias. Defaults to False.
        window_size (int): SAM window size, 0 for a global block. Defaults to 0.
        input_size (tuple[int, int], optional): Patch grid the relative tables of a global block
            are sized for. Defaults to None.
        attn_impl (str): ``'sdpa'`` or ``'naive'`` attention (see :class:`TextImageAttention`).
            Defaults to ``'sdpa'``.
        init_cfg (dict, optional): MMEngine initialisation config. Defaults to None.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 feedforward_channels: int,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 qkv_bias: bool = True,
                 act_cfg: dict = dict(type='GELU'),
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 use_rel_pos: bool = False,
                 window_size: int = 0,
                 input_size: Optional[Tuple[int, int]] = None,
                 attn_impl: str = 'sdpa',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.window_size = window_size
        self.ln1 = build_norm_layer(norm_cfg, embed_dims)
        self.attn = TextImageAttention(
            embed_dims,
            num_heads=num_heads,
            qkv_bias=qkv_bias,
            use_rel_pos=use_rel_pos,
            input_size=input_size if window_size == 0 else (window_size, window_size),
            window_size=window_size,
            attn_impl=attn_impl)
        self.drop_path = build_dropout(dict(type='DropPath', drop_prob=drop_path_rate))
        self.ln2 = build_norm_layer(norm_cfg, embed_dims)
        self.ffn = FFN(
            embed_dims=embed_dims,
            feedforward_channels=feedforward_channels,
            num_fcs=2,
            ffn_drop=drop_rate,
            dropout_layer=dict(type='DropPath', drop_prob=drop_path_rate),
            act_cfg=act_cfg)

    def forward(self,
                x: Tensor,
                hw: Tuple[int, int],
                num_text: int = 0,
                text_pad: Optional[Tensor] = None,
                use_window: bool = True) -> Tensor:
        """Run the block.

        Args:
            x (Tensor): Tokens (B, T + H * W, C), the T text tokens first.
            hw (tuple[int, int]): Image grid (H, W).
            num_text (int): T. Defaults to 0.
            text_pad (Tensor, optional): (B, T) bool, True = padding (masked as a key).
                Defaults to None.
            use_window (bool): False runs a windowed block with global attention.
                Defaults to True.

        Returns:
            Tensor: (B, T + H * W, C).
        """
        x = x + self.drop_path(self.attn(self.ln1(x), hw, num_text, text_pad, use_window))
        return self.ffn(self.ln2(x), identity=x)

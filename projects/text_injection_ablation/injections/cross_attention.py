"""Cross-attention text injection of the DIT paper's Table 4 ("CrossAtt").

Instead of only projecting the text features onto the visual space of block ``i`` (L-DIT's
``P_i(F_t)``), the text tokens of block ``i`` also look at the image tokens that enter that block
through multi-head cross-attention (Vaswani et al., 2017), so the injected words are conditioned on
the image at that depth::

    q = W_q F_t                                   # (B, L, C)  text queries
    k = W_k LN(F_v^i),  v = W_v LN(F_v^i)         # (B, HW, C) current image tokens
    A = W_o MHA(q, k, v)                          # (B, L, C)
    T_i = Dropout(P_i(F_t) + A)    (residual=True, default)
    T_i = Dropout(A)               (residual=False)

``P_i``, ``W_o`` start at zero, so at the start of fine-tuning every text token is the zero vector
exactly as with the L-DIT linear injection. The residual form follows the authors' released
"CrossAtt + FFN" encoder, whose text slots are ``LN(F_t + Dropout(CrossAttFFN(q=F_t, kv=F_v^i)))``
(the text features stay in the residual stream, the queries are a projection of the raw BERT
features, the keys / values the image tokens that enter the block); here the identity residual
becomes the zero-initialised ``P_i`` and the post-norms are dropped (both would make the start
non-zero). See the project README for the alternatives.
"""
from typing import Optional, Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from dit_sam_mm.models.backbones import BaseTextInjection


@MODELS.register_module()
class CrossAttentionTextInjection(BaseTextInjection):
    """Text tokens from multi-head cross-attention of the text onto the block's image tokens.

    Queries are ``Linear(in_dims -> embed_dims)`` of the incoming text (BERT features in L-DIT),
    keys and values are ``Linear(embed_dims -> embed_dims)`` of the LayerNorm-ed image tokens that
    enter the block; ``num_heads`` heads (the ViT block's, given by the backbone), computed with
    ``F.scaled_dot_product_attention``. The output projection (and ``P_i`` when ``residual``) are
    zero-initialised.

    Padding: the keys are image tokens, so there is no padding on the key side and no attention
    mask is needed; every text row (query) is computed independently of the others, so padding
    rows never change real rows. Padding rows get values like in the linear injection and are
    masked as keys by the backbone (``mask_text_padding``); ``text_mask`` is therefore unused.

    Gradients at the zero start: ``W_o`` (and ``P_i``) get nonzero gradients; ``W_q``, ``W_k``,
    ``W_v`` and the LayerNorm sit behind ``W_o = 0`` and get exactly zero (but defined) gradients
    until the first optimiser step makes ``W_o`` nonzero.

    Args:
        in_dims (int): Channels of the incoming text tokens.
        embed_dims (int): Channels of the ViT tokens (queries, keys, values and output).
        num_heads (int): Attention heads; must divide ``embed_dims``. Defaults to 1.
        residual (bool): Add the zero-initialised linear projection ``P_i(text)`` to the attention
            output (transformer sub-layer with residual, as in the release). False: the text
            slots are the attention output alone. Defaults to True.
        qkv_bias (bool): Bias in the query / key / value projections. Defaults to True.
        attn_drop_rate (float): Dropout on the attention weights (training only; the release
            uses 0.1). Defaults to 0.1.
        drop_rate (float): Dropout on the returned tokens (as the linear injection).
            Defaults to 0.1.
        zero_init (bool): Zero the output projection (and ``P_i``) at construction and in
            ``init_weights``. Defaults to True.
        init_cfg (dict, optional): MMEngine initialisation config. Defaults to None.
    """

    def __init__(self,
                 in_dims: int,
                 embed_dims: int,
                 num_heads: int = 1,
                 residual: bool = True,
                 qkv_bias: bool = True,
                 attn_drop_rate: float = 0.1,
                 drop_rate: float = 0.1,
                 zero_init: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(in_dims, embed_dims, num_heads, init_cfg=init_cfg)
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by num_heads={num_heads}')
        self.residual = residual
        self.attn_drop_rate = attn_drop_rate
        self.zero_init = zero_init
        self.proj = nn.Linear(in_dims, embed_dims) if residual else None
        self.norm_kv = nn.LayerNorm(embed_dims, eps=1e-6)
        self.q = nn.Linear(in_dims, embed_dims, bias=qkv_bias)
        self.kv = nn.Linear(embed_dims, 2 * embed_dims, bias=qkv_bias)
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        self.drop = nn.Dropout(drop_rate)
        if zero_init:
            self._zero()

    def zero_init_layers(self) -> Tuple[nn.Linear, ...]:
        """The linear layers that start at zero (weight and bias) when ``zero_init``."""
        return (self.out_proj, ) if self.proj is None else (self.proj, self.out_proj)

    def _zero(self) -> None:
        for layer in self.zero_init_layers():
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def init_weights(self) -> None:
        """Apply ``init_cfg`` (if any), then re-zero the zero-initialised layers."""
        super().init_weights()
        if self.zero_init:
            self._zero()

    def cross_attend(self, text: Tensor, image_tokens: Tensor) -> Tensor:
        """Multi-head cross-attention of the text (queries) onto the image tokens (keys / values).

        Args:
            text (Tensor): (B, L, in_dims).
            image_tokens (Tensor): (B, N, embed_dims), N = H * W.

        Returns:
            Tensor: (B, L, embed_dims), after the output projection.
        """
        B, L = text.shape[:2]
        N = image_tokens.shape[1]
        heads, head_dims = self.num_heads, self.embed_dims // self.num_heads
        # (B, L, C) -> (B, heads, L, C / heads)
        q = self.q(text).reshape(B, L, heads, head_dims).transpose(1, 2)
        # (B, N, 2C) -> (2, B, heads, N, C / heads)
        kv = self.kv(self.norm_kv(image_tokens)).reshape(B, N, 2, heads, head_dims)
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)
        drop = self.attn_drop_rate if self.training else 0.
        # softmax(q k^T / sqrt(C / heads)) v: (B, heads, L, C / heads)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        return self.out_proj(out.transpose(1, 2).reshape(B, L, self.embed_dims))

    def post_attention(self, tokens: Tensor) -> Tensor:
        """Hook applied to the (B, L, embed_dims) tokens before the dropout; identity here."""
        return tokens

    def forward(self,
                text: Tensor,
                text_mask: Optional[Tensor] = None,
                image_tokens: Optional[Tensor] = None,
                hw: Optional[Tuple[int, int]] = None) -> Tensor:
        """Return the (B, L, embed_dims) text tokens of one block (see ``BaseTextInjection``).

        ``text_mask`` and ``hw`` are not needed (see the class docstring); ``image_tokens`` is
        required.
        """
        if image_tokens is None:
            raise ValueError(f'{type(self).__name__} needs the image tokens of the block')
        if image_tokens.dim() != 3 or image_tokens.shape[-1] != self.embed_dims:
            raise ValueError(f'image_tokens must be (B, H * W, {self.embed_dims}), got '
                             f'{tuple(image_tokens.shape)}')
        tokens = self.cross_attend(text, image_tokens)  # (B, L, C)
        if self.proj is not None:
            tokens = self.proj(text) + tokens
        return self.drop(self.post_attention(tokens))

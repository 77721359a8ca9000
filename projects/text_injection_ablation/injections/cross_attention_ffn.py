"""Cross-attention + FFN text injection of the DIT paper's Table 4 ("CrossAtt + FFN").

The cross-attention injection (:class:`CrossAttentionTextInjection`) followed by a pre-norm,
residual feed-forward network, i.e. a transformer decoder layer without self-attention::

    X = P_i(F_t) + W_o MHA(W_q F_t, W_k LN(F_v^i), W_v LN(F_v^i))     (CrossAtt, residual=True)
    T_i = Dropout(X + W_2 act(W_1 LN(X)))

``W_2`` is zero-initialised (weight and bias), so with the zero-initialised ``P_i`` and ``W_o`` the
text tokens still start at exactly zero. The authors' release uses a post-norm decoder layer
(``LN(q + FFN(q))``, ReLU, 2048 hidden channels for ViT-B); the pre-norm form is what keeps the
zero start (a final LayerNorm would turn the zero vector into its bias, and a LayerNorm of the
exactly-zero stream would scale its gradient by ``1 / sqrt(eps)``).
"""
from typing import Optional, Tuple

from mmcv.cnn.bricks.transformer import FFN
from mmseg.registry import MODELS
from torch import Tensor, nn

from .cross_attention import CrossAttentionTextInjection


@MODELS.register_module()
class CrossAttentionFFNTextInjection(CrossAttentionTextInjection):
    """:class:`CrossAttentionTextInjection` followed by a residual ``LayerNorm`` + MLP.

    Gradients at the zero start: besides ``W_o`` (and ``P_i``), ``W_2`` gets nonzero gradients
    (its input ``act(W_1 LN(0) + b_1) = act(b_1)`` is nonzero with PyTorch's default bias
    initialisation; an ``init_cfg`` that zeroes ``b_1`` delays it by one step); ``W_1`` and the
    FFN's LayerNorm sit behind ``W_2 = 0`` / a zero stream and get exactly zero gradients, like
    the attention's projections, until the first optimiser step.

    Args:
        in_dims (int): Channels of the incoming text tokens.
        embed_dims (int): Channels of the ViT tokens.
        num_heads (int): Cross-attention heads. Defaults to 1.
        feedforward_channels (int, optional): Hidden channels of the MLP; None means
            ``4 * embed_dims``. Defaults to None.
        act_cfg (dict): MLP activation. Defaults to ``dict(type='GELU')`` (as SAM's blocks).
        ffn_drop_rate (float): Dropout inside the MLP. Defaults to 0.
        **kwargs: The remaining arguments of :class:`CrossAttentionTextInjection` (``residual``,
            ``qkv_bias``, ``attn_drop_rate``, ``drop_rate``, ``zero_init``, ``init_cfg``).
    """

    def __init__(self,
                 in_dims: int,
                 embed_dims: int,
                 num_heads: int = 1,
                 feedforward_channels: Optional[int] = None,
                 act_cfg: dict = dict(type='GELU'),
                 ffn_drop_rate: float = 0.,
                 **kwargs) -> None:
        super().__init__(in_dims, embed_dims, num_heads, **kwargs)
        self.norm_ffn = nn.LayerNorm(embed_dims, eps=1e-6)
        self.ffn = FFN(
            embed_dims=embed_dims,
            feedforward_channels=feedforward_channels or 4 * embed_dims,
            num_fcs=2,
            act_cfg=act_cfg,
            ffn_drop=ffn_drop_rate,
            add_identity=True)
        if self.zero_init:
            self._zero()

    def zero_init_layers(self) -> Tuple[nn.Linear, ...]:
        """The parent's zero-initialised layers and the MLP's output layer."""
        layers = super().zero_init_layers()
        ffn = getattr(self, 'ffn', None)  # None while the parent constructor runs
        # mmcv's FFN: layers = [Sequential(Linear, act, Dropout), Linear, Dropout]
        return layers if ffn is None else (*layers, ffn.layers[1])

    def post_attention(self, tokens: Tensor) -> Tensor:
        """Pre-norm residual MLP on the (B, L, embed_dims) cross-attention tokens."""
        return self.ffn(self.norm_ffn(tokens), identity=tokens)

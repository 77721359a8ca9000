"""Multi-head attention of SAM's two-way transformer, with an optional key padding mask.

SAM (Kirillov et al., 2023) projects queries, keys and values to ``embedding_dim //
downsample_rate`` channels before attending. SAM's prompts never contain padding, so its attention
has no mask; here the sparse prompts are padded text tokens, and padded tokens must not be
attended to. The mask is applied with ``F.scaled_dot_product_attention`` over the whole batch and
all heads at once.
"""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn


class MaskedAttention(nn.Module):
    """Attention with down-projected queries/keys/values and a key padding mask.

    Parameter names (``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``) equal those of SAM's
    ``Attention``.

    Args:
        embedding_dim (int): Channels of the inputs and of the output.
        num_heads (int): The number of attention heads; must divide
            ``embedding_dim // downsample_rate``.
        downsample_rate (int): Channels inside the attention are
            ``embedding_dim // downsample_rate``. Defaults to 1.
    """

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads != 0:
            raise ValueError(f'num_heads={num_heads} must divide the internal dimension '
                             f'{self.internal_dim} (= {embedding_dim} // {downsample_rate})')

        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.v_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _split_heads(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        # (B, N, C) -> (B, num_heads, N, C / num_heads)
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(self, q: Tensor, k: Tensor, v: Tensor, key_mask: Optional[Tensor] = None) -> Tensor:
        """Attend from ``q`` to ``k``/``v``.

        Args:
            q (Tensor): Queries, (B, Nq, embedding_dim).
            k (Tensor): Keys, (B, Nk, embedding_dim).
            v (Tensor): Values, (B, Nk, embedding_dim).
            key_mask (Tensor, optional): (B, Nk) bool, True where a key is real and may be
                attended to; None attends to every key. Every row needs at least one True.

        Returns:
            Tensor: (B, Nq, embedding_dim).
        """
        b, nq, _ = q.shape
        q = self._split_heads(self.q_proj(q))
        k = self._split_heads(self.k_proj(k))
        v = self._split_heads(self.v_proj(v))

        attn_mask = None
        if key_mask is not None:
            # (B, Nk) -> (B, 1, 1, Nk): broadcast over heads and queries
            attn_mask = key_mask.bool()[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)

        # (B, num_heads, Nq, C / num_heads) -> (B, Nq, internal_dim)
        out = out.transpose(1, 2).reshape(b, nq, self.internal_dim)
        return self.out_proj(out)

"""The part of SAM's prompt encoder that a text-prompted mask decoder needs.

SAM (Kirillov et al., 2023) encodes points and boxes with random Fourier features plus learned
embeddings, and a missing mask prompt with one learned ``no_mask_embed`` vector broadcast over the
image grid. With text as the only prompt, no point, box or mask is ever encoded: what is left is the
dense positional encoding of the image grid (the keys' positions in the two-way transformer) and
the "no mask" dense embedding. The point/box/mask parameters of an official SAM checkpoint are
therefore not built (see ``SAM_DECODER_KEYS_DROPPED`` in ``sam_decoder_head.py``).
"""
import math
from typing import Optional, Tuple

import torch
from torch import Tensor, nn


class PositionEmbeddingRandom(nn.Module):
    """Positional encoding of normalised 2-D coordinates with random spatial frequencies.

    A coordinate ``p`` in [0, 1]^2 maps to ``[sin(2 pi (2p - 1) G), cos(2 pi (2p - 1) G)]`` with a
    fixed Gaussian matrix ``G`` of shape (2, num_pos_feats) (buffer
    ``positional_encoding_gaussian_matrix``, saved in checkpoints as in SAM).

    Args:
        num_pos_feats (int): Frequencies; the encoding has 2 * num_pos_feats channels.
            Defaults to 64.
        scale (float, optional): Standard deviation of ``G``; None or <= 0 means 1.0.
    """

    def __init__(self, num_pos_feats: int = 64, scale: Optional[float] = None) -> None:
        super().__init__()
        if scale is None or scale <= 0.0:
            scale = 1.0
        self.register_buffer('positional_encoding_gaussian_matrix',
                             scale * torch.randn((2, num_pos_feats)))

    def _encode(self, coords: Tensor) -> Tensor:
        """(..., 2) coordinates in [0, 1] (x, y) -> (..., 2 * num_pos_feats)."""
        gaussian = self.positional_encoding_gaussian_matrix
        projected = 2 * math.pi * ((2 * coords - 1) @ gaussian)
        return torch.cat([torch.sin(projected), torch.cos(projected)], dim=-1)

    def forward(self, size: Tuple[int, int]) -> Tensor:
        """Encode the pixel centres of an (h, w) grid; any h and w.

        Returns:
            Tensor: (2 * num_pos_feats, h, w).
        """
        h, w = size
        gaussian = self.positional_encoding_gaussian_matrix
        ys = (torch.arange(h, device=gaussian.device, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=gaussian.device, dtype=torch.float32) + 0.5) / w
        # (h, w, 2) grid of (x, y) pixel centres
        coords = torch.stack(torch.meshgrid(xs, ys, indexing='xy'), dim=-1)
        return self._encode(coords.to(gaussian.dtype)).permute(2, 0, 1)  # (C, h, w)


class DensePromptEncoder(nn.Module):
    """Dense positional encoding and the "no mask" dense prompt of SAM's prompt encoder.

    Parameter names (``pe_layer.positional_encoding_gaussian_matrix``, ``no_mask_embed.weight``)
    equal those of SAM's ``PromptEncoder``.

    Args:
        embed_dim (int): Channels of the prompt embeddings (SAM: 256); must be even.
    """

    def __init__(self, *, embed_dim: int) -> None:
        super().__init__()
        if embed_dim % 2 != 0:
            raise ValueError(f'embed_dim must be even for the sin/cos encoding, got {embed_dim}')
        self.embed_dim = embed_dim
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self, size: Tuple[int, int]) -> Tensor:
        """Positional encoding of an image embedding grid of ``size`` = (h, w).

        Returns:
            Tensor: (1, embed_dim, h, w).
        """
        return self.pe_layer(size).unsqueeze(0)

    def no_mask_embedding(self, batch_size: int, size: Tuple[int, int]) -> Tensor:
        """The "no mask" dense prompt broadcast over the grid: (batch_size, embed_dim, h, w)."""
        h, w = size
        # (1, C) -> (1, C, 1, 1) -> (B, C, h, w), a broadcast view
        return self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch_size, -1, h, w)

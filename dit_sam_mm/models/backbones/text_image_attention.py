"""Multi-head attention of SAM's ViT over [text tokens; image tokens].

SAM's image-encoder attention (Kirillov et al., 2023; itself from ViTDet / MViTv2) adds a decomposed
relative position bias to the image-to-image attention logits and, in most blocks, attends inside
14x14 windows. DIT-SAM (Huang et al.) prepends text tokens; following the authors' release the
relative bias is added only to the image-to-image block, text rows and columns get none.

The attention is computed by :func:`torch.nn.functional.scaled_dot_product_attention` without a
mask: the relative bias and the text padding are folded into extra query / key channels (see
``folded_attention.py``), so the fused kernels (flash, cuDNN) can run; in eager CPU inference
with the dense additive mask instead, which the fused CPU kernel runs faster there.
``attn_impl='naive'`` computes the same attention by hand from the dense mask (``attn_bias.py``;
the released code's way, the benchmark's reference). Parameter names
(``qkv``, ``proj``, ``rel_pos_h``, ``rel_pos_w``) are those of SAM and of mmpretrain's ``ViTSAM``,
so their checkpoints load unchanged.
"""
import contextlib
from typing import Iterator, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.backbones.vit_sam import window_partition, window_unpartition
from torch import Tensor

from .attn_bias import ATTN_IMPLS, build_attn_mask, decomposed_rel_pos_terms, naive_attention
from .folded_attention import fold_pays, folded_attention


class TextImageAttention(nn.Module):
    """SAM attention (relative position bias, optional windows) with text tokens in front.

    Args:
        embed_dims (int): Token channels.
        num_heads (int): Attention heads. Defaults to 8.
        qkv_bias (bool): Bias in the qkv projection. Defaults to True.
        use_rel_pos (bool): Add SAM's decomposed relative position bias to image-to-image logits.
            Defaults to False.
        input_size (tuple[int, int], optional): Grid the relative tables are sized for (the
            window for windowed blocks, the patch grid for global ones). Defaults to None.
        window_size (int): SAM window size; 0 means a global-attention block. Defaults to 0.
        attn_impl (str): ``'sdpa'`` (``F.scaled_dot_product_attention`` on folded channels) or
            ``'naive'`` (dense mask, hand-written logits + softmax, for reference measurements).
            Defaults to ``'sdpa'``.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int = 8,
                 qkv_bias: bool = True,
                 use_rel_pos: bool = False,
                 input_size: Optional[Tuple[int, int]] = None,
                 window_size: int = 0,
                 attn_impl: str = 'sdpa') -> None:
        super().__init__()
        if attn_impl not in ATTN_IMPLS:
            raise ValueError(f'attn_impl={attn_impl!r}: choose from {ATTN_IMPLS}')
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by '
                             f'num_heads ({num_heads})')
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.window_size = window_size
        self.attn_impl = attn_impl
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            if input_size is None:
                raise ValueError('input_size is needed when use_rel_pos=True')
            # SAM initialises the tables with zeros (its pre-trained values overwrite them).
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, self.head_dims))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, self.head_dims))

    def _split_heads(self, qkv: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        # (B, N, 3 * C) -> (B, N, 3, heads, head_dims) -> 3 x (B, heads, N, head_dims)
        B, N, _ = qkv.shape
        qkv = qkv.reshape(B, N, 3, self.num_heads, self.head_dims).permute(2, 0, 3, 1, 4)
        return qkv.unbind(0)

    def _rel_terms(self, q: Tensor, hw: Tuple[int, int]) -> Optional[Tuple[Tensor, Tensor]]:
        if not self.use_rel_pos:
            return None
        return decomposed_rel_pos_terms(q, self.rel_pos_h, self.rel_pos_w, hw)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, rel_terms: Optional[Tuple[Tensor, Tensor]],
                text_pad: Optional[Tensor], num_text: int, text_queries: bool) -> Tensor:
        """Attention of (B, heads, N_q, hd) queries over keys [T text; image] (B, heads, N_k, hd).

        ``rel_terms`` are the relative-bias factors of the image queries (or None), ``text_pad``
        (B, T) marks padded text keys, ``text_queries`` says whether the queries start with the
        T text tokens. Returns (B, heads, N_q, hd).
        """
        if self.attn_impl == 'sdpa' and fold_pays(q, k, v, rel_terms):
            return folded_attention(q, k, v, rel_terms, text_pad, num_text, text_queries)
        mask = build_attn_mask(rel_terms, text_pad, num_text, text_queries,
                               k.shape[2] - num_text, q.dtype, q.device)
        if self.attn_impl == 'naive':
            return naive_attention(q, k, v, mask)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    def forward(self,
                x: Tensor,
                hw: Tuple[int, int],
                num_text: int = 0,
                text_pad: Optional[Tensor] = None,
                use_window: bool = True) -> Tensor:
        """Attend over the tokens.

        Args:
            x (Tensor): Normalised tokens (B, T + H * W, C), the T text tokens first.
            hw (tuple[int, int]): Image grid (H, W).
            num_text (int): T. Defaults to 0.
            text_pad (Tensor, optional): (B, T) bool, True = padding key. Defaults to None.
            use_window (bool): Use window attention if this block is a windowed one; False runs
                it globally (its relative tables are then resized by ``rel_pos_table``).
                Defaults to True.

        Returns:
            Tensor: (B, T + H * W, C).
        """
        if self.window_size > 0 and use_window:
            out = self._window_attention(x, hw, num_text, text_pad)
        else:
            out = self._global_attention(x, hw, num_text, text_pad)
        return self.proj(out)

    def _global_attention(self, x: Tensor, hw: Tuple[int, int], num_text: int,
                          text_pad: Optional[Tensor]) -> Tensor:
        B, N, C = x.shape
        q, k, v = self._split_heads(self.qkv(x))  # 3 x (B, heads, N, head_dims)
        out = self._attend(q, k, v, self._rel_terms(q[:, :, num_text:], hw), text_pad, num_text,
                           True)
        # (B, heads, N, head_dims) -> (B, N, heads, head_dims) -> (B, N, C)
        return out.transpose(1, 2).reshape(B, N, C)

    def _window_attention(self, x: Tensor, hw: Tuple[int, int], num_text: int,
                          text_pad: Optional[Tensor]) -> Tensor:
        """SAM's window attention; each window also sees the T text keys, text queries see all."""
        B, N, C = x.shape
        H, W = hw
        ws = self.window_size
        text, img = x[:, :num_text], x[:, num_text:]
        # (B, H * W, C) -> (B, H, W, C), zero-padded to (B, Hp, Wp, C) like SAM: the padded
        # tokens take part as keys (their qkv is the bias), exactly as in SAM.
        img = img.reshape(B, H, W, C)
        pad_h, pad_w = (ws - H % ws) % ws, (ws - W % ws) % ws
        img = F.pad(img, (0, 0, 0, pad_w, 0, pad_h))
        qkv_img = self.qkv(img)  # (B, Hp, Wp, 3C)
        windows, pad_hw = window_partition(qkv_img, ws)  # (B * nW, ws, ws, 3C)
        num_win = windows.shape[0] // B
        # (B * nW, ws, ws, 3C) -> (B * nW, ws * ws, 3C) -> 3 x (B * nW, heads, ws * ws, hd)
        q_w, k_w, v_w = self._split_heads(windows.reshape(B * num_win, ws * ws, 3 * C))
        win_rel = self._rel_terms(q_w, (ws, ws))
        win_pad = None
        if num_text > 0:
            q_t, k_t, v_t = self._split_heads(self.qkv(text))  # 3 x (B, heads, T, hd)

            def per_window(t: Tensor) -> Tensor:
                # (B, ...) -> (B, nW, ...) -> (B * nW, ...); window_partition is batch-major.
                return t.unsqueeze(1).expand(B, num_win, *t.shape[1:]).reshape(
                    B * num_win, *t.shape[1:])

            k_w = torch.cat([per_window(k_t), k_w], dim=2)  # (B * nW, heads, T + ws*ws, hd)
            v_w = torch.cat([per_window(v_t), v_w], dim=2)
            win_pad = per_window(text_pad) if text_pad is not None else None
        out_w = self._attend(q_w, k_w, v_w, win_rel, win_pad, num_text, False)
        # (B * nW, heads, ws * ws, hd) -> (B * nW, ws, ws, C) -> (B, H, W, C) -> (B, H * W, C)
        out_w = out_w.transpose(1, 2).reshape(B * num_win, ws, ws, C)
        out_img = window_unpartition(out_w, ws, pad_hw, (H, W)).reshape(B, H * W, C)
        if num_text == 0:
            return out_img
        # Text queries attend globally over [text; unpadded image] keys (no relative bias).
        # (B, H, W, 3C) -> (B, H * W, 3C) -> 3 x (B, heads, H * W, hd)
        _, k_i, v_i = self._split_heads(qkv_img[:, :H, :W].reshape(B, H * W, 3 * C))
        out_t = self._attend(q_t, torch.cat([k_t, k_i], dim=2), torch.cat([v_t, v_i], dim=2),
                             None, text_pad, num_text, True)
        # (B, heads, T, hd) -> (B, T, C)
        out_t = out_t.transpose(1, 2).reshape(B, num_text, C)
        return torch.cat([out_t, out_img], dim=1)


@contextlib.contextmanager
def attention_impl(model: nn.Module, impl: str) -> Iterator[None]:
    """Run every :class:`TextImageAttention` of ``model`` with ``impl`` inside the context.

    Args:
        model (nn.Module): Any module holding DIT-SAM attention layers.
        impl (str): One of ``ATTN_IMPLS``.
    """
    if impl not in ATTN_IMPLS:
        raise ValueError(f'attn_impl={impl!r}: choose from {ATTN_IMPLS}')
    layers = [m for m in model.modules() if isinstance(m, TextImageAttention)]
    saved = [layer.attn_impl for layer in layers]
    for layer in layers:
        layer.attn_impl = impl
    try:
        yield
    finally:
        for layer, previous in zip(layers, saved):
            layer.attn_impl = previous

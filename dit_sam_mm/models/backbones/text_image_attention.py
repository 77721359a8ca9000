"""Multi-head attention of SAM's ViT over [text tokens; image tokens].

SAM's image-encoder attention (Kirillov et al., 2023; itself from ViTDet / MViTv2) adds a decomposed
relative position bias to the image-to-image attention logits and, in most blocks, attends inside
14x14 windows. DIT-SAM (Huang et al.) prepends text tokens; following the authors' release the
relative bias is added only to the image-to-image block, text rows and columns get none.

The logits are computed by :func:`torch.nn.functional.scaled_dot_product_attention`; the relative
bias and the text-padding mask are folded into one additive float ``attn_mask`` so the fused kernels
can run on GPU. Parameter names (``qkv``, ``proj``, ``rel_pos_h``, ``rel_pos_w``) are those of SAM
and of mmpretrain's ``ViTSAM``, so their checkpoints load unchanged.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.backbones.vit_sam import (get_rel_pos, window_partition,
                                                 window_unpartition)
from torch import Tensor


def decomposed_rel_pos_bias(q: Tensor, rel_pos_h: Tensor, rel_pos_w: Tensor,
                            hw: Tuple[int, int]) -> Tensor:
    """Decomposed relative position bias of SAM / MViTv2 as an additive logit bias.

    Args:
        q (Tensor): Unscaled queries of the image tokens, (B, heads, H * W, head_dims).
        rel_pos_h (Tensor): Relative table along the height, (Lh, head_dims); linearly resized
            by SAM's ``get_rel_pos`` when Lh != 2 * H - 1.
        rel_pos_w (Tensor): Relative table along the width, (Lw, head_dims).
        hw (tuple[int, int]): The (H, W) grid of the tokens in ``q``.

    Returns:
        Tensor: (B, heads, H * W, H * W) bias for the image-to-image logits.
    """
    H, W = hw
    B, num_heads, _, head_dims = q.shape
    rh = get_rel_pos(H, H, rel_pos_h).to(q.dtype)  # (H, H, head_dims)
    rw = get_rel_pos(W, W, rel_pos_w).to(q.dtype)  # (W, W, head_dims)
    # (B, heads, H * W, head_dims) -> (B, heads, H, W, head_dims)
    r_q = q.reshape(B, num_heads, H, W, head_dims)
    rel_h = torch.einsum('bnhwc,hkc->bnhwk', r_q, rh)  # (B, heads, H, W, H_k)
    rel_w = torch.einsum('bnhwc,wkc->bnhwk', r_q, rw)  # (B, heads, H, W, W_k)
    # (B, heads, H, W, H_k, 1) + (B, heads, H, W, 1, W_k) -> (B, heads, H * W, H_k * W_k)
    bias = rel_h[..., :, None] + rel_w[..., None, :]
    return bias.reshape(B, num_heads, H * W, H * W)


def build_attn_bias(img_bias: Optional[Tensor], text_pad: Optional[Tensor], num_text: int,
                    text_queries: bool, batch: int, num_image: int,
                    dtype: torch.dtype, device: torch.device) -> Optional[Tensor]:
    """Compose the additive mask over keys [text; image] from the image bias and text padding.

    Args:
        img_bias (Tensor, optional): (B, heads, N_img_q, N_img) relative bias or None.
        text_pad (Tensor, optional): (B, T) bool, True = padding key to mask out, or None.
        num_text (int): Number of text tokens T in front of the keys (and of the queries when
            ``text_queries``).
        text_queries (bool): Whether the queries also start with the T text tokens.
        batch (int): Batch size B (rows of ``text_pad``).
        num_image (int): Number of image keys (used only when ``img_bias`` is None).
        dtype, device: Of the attention inputs.

    Returns:
        Tensor or None: (B, heads, N_q, T + N_img) when ``img_bias`` is given, else
        (B, 1, 1, T + N_img) broadcast over heads and queries; None when nothing is to be added.
    """
    key_bias = None
    if text_pad is not None and num_text > 0:
        # (B, T) bool -> (B, T) additive: 0 for real tokens, dtype minimum for padding.
        key_bias = torch.zeros(text_pad.shape, dtype=dtype, device=device).masked_fill(
            text_pad, torch.finfo(dtype).min)
    if img_bias is None:
        if key_bias is None:
            return None
        # (B, T) -> (B, 1, 1, T + N_img): image keys get 0.
        return F.pad(key_bias, (0, num_image))[:, None, None, :]
    if num_text == 0:
        return img_bias
    # Text rows / columns carry no relative bias (DIT release): pad the image block with zeros.
    # (B, heads, N_img_q, N_img) -> (B, heads, [T +] N_img_q, T + N_img)
    bias = F.pad(img_bias, (num_text, 0, num_text if text_queries else 0, 0))
    if key_bias is not None:
        bias[..., :num_text] = key_bias[:, None, None, :]
    return bias


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
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int = 8,
                 qkv_bias: bool = True,
                 use_rel_pos: bool = False,
                 input_size: Optional[Tuple[int, int]] = None,
                 window_size: int = 0) -> None:
        super().__init__()
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by '
                             f'num_heads ({num_heads})')
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.window_size = window_size
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

    def _rel_bias(self, q: Tensor, hw: Tuple[int, int]) -> Optional[Tensor]:
        if not self.use_rel_pos:
            return None
        return decomposed_rel_pos_bias(q, self.rel_pos_h, self.rel_pos_w, hw)

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
                it globally (its relative tables are then resized by ``get_rel_pos``).
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
        img_bias = self._rel_bias(q[:, :, num_text:], hw)
        mask = build_attn_bias(img_bias, text_pad, num_text, True, B, N - num_text, q.dtype,
                               q.device)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
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
        win_bias = self._rel_bias(q_w, (ws, ws))  # (B * nW, heads, ws * ws, ws * ws)
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
        mask = build_attn_bias(win_bias, win_pad, num_text, False, B * num_win, ws * ws,
                               q_w.dtype, q_w.device)
        out_w = F.scaled_dot_product_attention(q_w, k_w, v_w, attn_mask=mask)
        # (B * nW, heads, ws * ws, hd) -> (B * nW, ws, ws, C) -> (B, H, W, C) -> (B, H * W, C)
        out_w = out_w.transpose(1, 2).reshape(B * num_win, ws, ws, C)
        out_img = window_unpartition(out_w, ws, pad_hw, (H, W)).reshape(B, H * W, C)
        if num_text == 0:
            return out_img
        # Text queries attend globally over [text; unpadded image] keys (no relative bias).
        # (B, H, W, 3C) -> (B, H * W, 3C) -> 3 x (B, heads, H * W, hd)
        _, k_i, v_i = self._split_heads(qkv_img[:, :H, :W].reshape(B, H * W, 3 * C))
        mask_t = build_attn_bias(None, text_pad, num_text, True, B, H * W, q_t.dtype,
                                 q_t.device)
        out_t = F.scaled_dot_product_attention(q_t, torch.cat([k_t, k_i], dim=2),
                                               torch.cat([v_t, v_i], dim=2), attn_mask=mask_t)
        # (B, heads, T, hd) -> (B, T, C)
        out_t = out_t.transpose(1, 2).reshape(B, num_text, C)
        return torch.cat([out_t, out_img], dim=1)

"""SAM's relative position bias with text tokens, and the dense-mask reference attention.

SAM's image encoder (Kirillov et al., 2023; from ViTDet / MViTv2) adds a *decomposed* relative
position bias to the image-to-image logits: for a query at (h, w) and a key at (h', w'),
``q . R_h[h - h'] + q . R_w[w - w']``. DIT-SAM prepends text tokens, whose rows and columns get no
bias (authors' release); padded text keys are masked out (unless the release is reproduced).

This module holds what both attention implementations (``ATTN_IMPLS``) share, the two factors of
the bias (:func:`decomposed_rel_pos_terms`), and the reference implementation ``'naive'``: the
bias and the padding written into one dense additive mask ``(B, heads, N_q, N_k)``
(:func:`build_attn_mask`) and the hand-written ``softmax(q k^T * scale + mask) v`` of the
released code (:func:`naive_attention`), kept as the benchmark's reference. ``'sdpa'`` folds the
bias into the dot product instead (``folded_attention.py``) and builds the mask only in eager
CPU inference, where SDPA's fused CPU kernel takes it.
"""
import functools
from typing import Any, Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

#: Attention implementations of :class:`TextImageAttention`.
ATTN_IMPLS = ('sdpa', 'naive')


def size_cached(builder: Callable[..., Any]) -> Callable[..., Any]:
    """Memoise a builder of constant tensors that depend only on its hashable arguments.

    For index and one-hot tensors that depend on the input size, dtype and device only (never
    on parameters), so eager calls stop rebuilding them. The cached tensors are shared: callers
    must not modify them in place. They are built outside inference mode, so a cache filled by
    an inference call also serves training (autograd may save them). While ``torch.compile``,
    ``torch.jit.trace`` or the ONNX exporter traces, the cache is neither read nor written (the
    tensors become constants of the traced graph).

    Args:
        builder (Callable): Function of hashable arguments returning tensors.

    Returns:
        Callable: The memoised function; ``cache_clear()`` empties its cache.
    """
    cached = functools.lru_cache(maxsize=64)(builder)

    @functools.wraps(builder)
    def wrapper(*args) -> Any:
        if (torch.compiler.is_compiling() or torch.jit.is_tracing()
                or torch.onnx.is_in_onnx_export()):
            return builder(*args)
        with torch.inference_mode(False):
            return cached(*args)

    wrapper.cache_clear = cached.cache_clear
    return wrapper


@size_cached
def _relative_index(q_size: int, k_size: int, device: torch.device) -> Tensor:
    """(q_size, k_size) long: the table row of every (query, key) pair, as SAM's get_rel_pos."""
    # Coordinates are scaled to the longer axis when the query and key sizes differ (as SAM).
    q_coords = torch.arange(q_size, device=device)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size, device=device)[None, :] * max(q_size / k_size, 1.0)
    relative = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return relative.long()


def rel_pos_table(q_size: int, k_size: int, rel_pos: Tensor) -> Tensor:
    """SAM's ``get_rel_pos``: the relative embedding of every (query, key) pair along one axis.

    Same result as ``segment_anything``'s (and mmpretrain's) function, but the index is built on
    the table's device once per size (:func:`size_cached`), so no index tensor is built or copied
    from the host in the forward pass.

    Args:
        q_size (int): Query positions along the axis.
        k_size (int): Key positions along the axis.
        rel_pos (Tensor): Relative table (L, C); linearly resized to ``2 * max(q, k) - 1`` rows
            when L differs.

    Returns:
        Tensor: (q_size, k_size, C).
    """
    max_rel_dist = 2 * max(q_size, k_size) - 1
    if rel_pos.shape[0] != max_rel_dist:
        # (L, C) -> (1, C, L) -> (1, C, max_rel_dist) -> (max_rel_dist, C)
        rel_pos = F.interpolate(
            rel_pos.t().unsqueeze(0), size=max_rel_dist, mode='linear').squeeze(0).t()
    return rel_pos[_relative_index(q_size, k_size, rel_pos.device)]


def decomposed_rel_pos_terms(q: Tensor, rel_pos_h: Tensor, rel_pos_w: Tensor,
                             hw: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
    """The two factors of SAM's decomposed relative position bias.

    Args:
        q (Tensor): Unscaled queries of the image tokens, (B, heads, H * W, head_dims).
        rel_pos_h (Tensor): Relative table along the height, (Lh, head_dims).
        rel_pos_w (Tensor): Relative table along the width, (Lw, head_dims).
        hw (tuple[int, int]): The (H, W) grid of the tokens in ``q``.

    Returns:
        Tuple[Tensor, Tensor]: ``rel_h`` (B, heads, H, W, H_k) and ``rel_w``
        (B, heads, H, W, W_k); the bias of query (h, w) and key (h', w') is
        ``rel_h[..., h, w, h'] + rel_w[..., h, w, w']``.
    """
    H, W = hw
    B, num_heads, _, head_dims = q.shape
    rh = rel_pos_table(H, H, rel_pos_h).to(q.dtype)  # (H, H_k, head_dims)
    rw = rel_pos_table(W, W, rel_pos_w).to(q.dtype)  # (W, W_k, head_dims)
    r_q = q.reshape(B, num_heads, H, W, head_dims)
    rel_h = torch.einsum('bnhwc,hkc->bnhwk', r_q, rh)
    rel_w = torch.einsum('bnhwc,wkc->bnhwk', r_q, rw)
    return rel_h, rel_w


def build_attn_mask(rel_terms: Optional[Tuple[Tensor, Tensor]], text_pad: Optional[Tensor],
                    num_text: int, text_queries: bool, num_image: int, dtype: torch.dtype,
                    device: torch.device) -> Optional[Tensor]:
    """The dense additive mask over keys [text; image]: relative bias plus text padding.

    Args:
        rel_terms (tuple[Tensor, Tensor], optional): ``(rel_h, rel_w)`` of
            :func:`decomposed_rel_pos_terms` for the image queries, or None (no relative bias).
        text_pad (Tensor, optional): (B, T) bool, True = padding key to mask out, or None.
        num_text (int): T, the text tokens in front of the keys (and of the queries when
            ``text_queries``).
        text_queries (bool): Whether the queries also start with the T text tokens.
        num_image (int): Image keys (used when ``rel_terms`` is None).
        dtype, device: Of the attention inputs.

    Returns:
        Tensor or None: (B, heads, [T +] H * W, T + H * W) with a relative bias, else
        (B, 1, 1, T + num_image); None when nothing is to be added.
    """
    has_pad = text_pad is not None and num_text > 0
    if rel_terms is None:
        if not has_pad:
            return None
        mask = torch.zeros(text_pad.shape[0], 1, 1, num_text + num_image, dtype=dtype,
                           device=device)
    else:
        rel_h, rel_w = rel_terms
        B, heads, H, W, _ = rel_h.shape
        num_q = (num_text if text_queries else 0) + H * W
        mask = torch.zeros(B, heads, num_q, num_text + H * W, dtype=dtype, device=device)
        # Image-to-image block (B, heads, H * W, H * W) seen as (B, heads, H, W, H_k, W_k):
        # written in place, text rows and columns stay 0 (no relative bias for text).
        image_block = mask[:, :, num_q - H * W:, num_text:].unflatten(3, (H, W)).unflatten(
            2, (H, W))
        image_block.copy_(rel_h.unsqueeze(-1))  # (B, heads, H, W, H_k, 1) broadcast over W_k
        image_block.add_(rel_w.unsqueeze(-2))  # (B, heads, H, W, 1, W_k) broadcast over H_k
    if has_pad:
        # (B, T) -> (B, 1, 1, T): the dtype's minimum on padding keys, for every query.
        # In-place add (the columns are 0 here): a slice assignment would fix the batch size in
        # an exported ONNX graph.
        mask[..., :num_text].add_(torch.zeros(
            text_pad.shape, dtype=dtype, device=device).masked_fill(
                text_pad, torch.finfo(dtype).min)[:, None, None, :])
    return mask


def naive_attention(q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor]) -> Tensor:
    """``softmax(q k^T / sqrt(d) + mask) v`` written out, as the released code does.

    Args:
        q (Tensor): Queries (B, heads, N_q, d).
        k (Tensor): Keys (B, heads, N_k, d).
        v (Tensor): Values (B, heads, N_k, d).
        mask (Tensor, optional): Additive mask broadcastable to (B, heads, N_q, N_k).

    Returns:
        Tensor: (B, heads, N_q, d).
    """
    logits = (q * q.shape[-1]**-0.5) @ k.transpose(-2, -1)  # (B, heads, N_q, N_k)
    if mask is not None:
        logits = logits + mask
    return logits.softmax(dim=-1) @ v

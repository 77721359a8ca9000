"""SAM's relative position bias and the text padding folded into the attention dot product.

SAM's decomposed bias of a query at (h, w) and a key at (h', w') is ``rel_h[h'] + rel_w[w']``,
where ``rel_h`` (H_k values) and ``rel_w`` (W_k values) belong to the query
(:func:`~.attn_bias.decomposed_rel_pos_terms`). A sum of per-query values picked by the key's
position is a dot product with the key's one-hot position, so with

    q' = [q * scale, rel_h, rel_w],    k' = [k, onehot(h'), onehot(w')]

``q' . k' = scale * q . k + rel_h[h'] + rel_w[w']``: the logits of SAM's attention, computed by
``F.scaled_dot_product_attention(q', k', v, scale=1)`` without any mask. This is a known identity,
used to run a decomposed relative-position bias on mask-free fused (flash) kernels. The
gradients reach ``q`` and the relative tables through ``rel_h`` / ``rel_w`` by ordinary autograd;
the one-hot channels are constants.

Text tokens (DIT-SAM) carry zeros in these channels: no bias for text, as in the authors'
release. Padded text keys get one more channel, 1 for every query and the dtype's minimum for a
padded key (0 for the others), so their logits are the dtype's minimum and their softmax weights
exactly 0, as with the reference's additive mask, and their zero weights give zero gradients.
``1 * min`` is finite, so no NaN or inf enters (checked on CPU in float32 and bfloat16); a GPU
kernel that rescales the logits may turn it into ``-inf``, which softmax kernels treat as a
masked entry, and no row is fully masked (every query sees the image keys).

Channel layout (width rounded up to a multiple of 8 with zero channels, which the fused CUDA
kernels want; zeros change nothing): ``[head_dims | H_k + W_k | zeros | pad]``, e.g. 64 + 32 + 32
(+ 1, rounded to 136) for ViT-B's global blocks at 512 input, 64 + 14 + 14 + 1 -> 96 in its
14x14 windows. The values are zero-padded to the same width and the output is cut back to
``head_dims``: the flash kernels of CUDA and CPU need q, k and v of one width (the memory-
efficient and cuDNN kernels accept a narrower v). No backend is forced: without a mask PyTorch's
own order (torch 2.13) picks, in half precision on CUDA, cuDNN attention on Hopper when the width
is at most 128 (the limit with the cuDNN 9.20 it ships), else flash attention (widths up to 256);
in float32 the memory-efficient kernel; on CPU its fused kernel, never the math path.

Where the fold is used (:func:`fold_pays`): on CUDA; on CPU when autograd records through the
attention (the fused CPU kernel takes an additive mask but cannot return its gradient, so a
trained bias sends SDPA to its math path, which keeps the (N_q, N_k) probabilities); and in
anything traced or compiled (ONNX export, ``torch.compile``). Only in eager CPU inference is the
dense mask kept: the fused CPU kernel with the mask at the head width costs less there than with
the folded width (docs/en/benchmark.md has the measurement).

The constant channels depend only on the sizes, dtype and device and are built once per size
(:func:`~.attn_bias.size_cached`).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .attn_bias import size_cached

_CHANNEL_ALIGN = 8  # the fused CUDA kernels need head widths that are multiples of 8


def folded_width(head_dims: int, rel_channels: int, pad_channel: bool) -> int:
    """Channels of q' and k': ``head_dims + rel_channels (+ 1)`` rounded up to a multiple of 8.

    Args:
        head_dims (int): Channels of q, k and v per head.
        rel_channels (int): ``H_k + W_k`` with a relative bias, else 0.
        pad_channel (bool): Whether there is a padding channel.

    Returns:
        int: The folded width.
    """
    width = head_dims + rel_channels + int(pad_channel)
    return (width + _CHANNEL_ALIGN - 1) // _CHANNEL_ALIGN * _CHANNEL_ALIGN


@size_cached
def _constant_channels(num_text: int, key_hw: Optional[Tuple[int, int]], head_dims: int,
                       pad_channel: bool, dtype: torch.dtype,
                       device: torch.device) -> Tuple[Tensor, Tensor]:
    """The constant channels after q's and k's own: ``(query_tail, key_extra)``.

    Args:
        num_text (int): T, the text keys in front of the image keys.
        key_hw (tuple[int, int], optional): (H_k, W_k) grid of the image keys with a relative
            bias; None without one.
        head_dims (int): Channels of q and k per head.
        pad_channel (bool): Whether the last channel masks padded text keys.
        dtype, device: Of the attention inputs.

    Returns:
        Tuple[Tensor, Tensor]: ``query_tail`` (Z [+ 1],): the alignment zeros (and the padding
        channel's 1) that follow the queries' relative channels; ``key_extra``
        (T + H_k * W_k, H_k + W_k + Z): zero rows for text keys, ``[onehot(h'), onehot(w')]``
        for image key (h', w'), then Z zero columns; without a relative bias (1, Z) zeros, to
        broadcast over the keys.
    """
    h_k, w_k = key_hw or (0, 0)
    width = folded_width(head_dims, h_k + w_k, pad_channel)
    zeros = width - head_dims - h_k - w_k - int(pad_channel)
    # Built from whole tensors, without in-place writes (those would export as ScatterND).
    query_tail = torch.cat([torch.zeros(zeros, dtype=dtype, device=device),
                            torch.ones(int(pad_channel), dtype=dtype, device=device)])
    if key_hw is None:  # zeros only: one row, broadcast over the keys
        return query_tail, torch.zeros(1, zeros, dtype=dtype, device=device)
    pos = torch.arange(h_k * w_k, device=device)  # image key (h', w') at h' * W_k + w'
    # (H_k * W_k, H_k + W_k) one-hot codes -> (T + H_k * W_k, H_k + W_k + Z): text rows in
    # front and the alignment columns after are zeros
    onehot = torch.cat([F.one_hot(pos // w_k, h_k), F.one_hot(pos % w_k, w_k)], dim=1)
    return query_tail, F.pad(onehot.to(dtype), (0, zeros, num_text, 0))


def fold_pays(q: Tensor, k: Tensor, v: Tensor,
              rel_terms: Optional[Tuple[Tensor, Tensor]]) -> bool:
    """Whether to fold (else: SDPA with the dense additive mask); see the module docstring.

    Args:
        q, k, v (Tensor): The attention inputs.
        rel_terms (tuple[Tensor, Tensor], optional): The relative-bias factors, or None.

    Returns:
        bool: False only in eager CPU inference (no input requires a gradient).
    """
    if (q.device.type != 'cpu' or torch.compiler.is_compiling() or torch.jit.is_tracing()
            or torch.onnx.is_in_onnx_export()):
        return True
    return any(t.requires_grad for t in (q, k, v, *(rel_terms or ())))


def folded_attention(q: Tensor, k: Tensor, v: Tensor, rel_terms: Optional[Tuple[Tensor, Tensor]],
                     text_pad: Optional[Tensor], num_text: int, text_queries: bool) -> Tensor:
    """Attention with SAM's relative bias and the text padding, through SDPA without a mask.

    Computes what the reference (:func:`~.attn_bias.build_attn_mask` +
    :func:`~.attn_bias.naive_attention`) computes, see the module docstring.

    Args:
        q (Tensor): Queries (B, heads, N_q, d): ``[T text;] H * W image`` tokens.
        k (Tensor): Keys (B, heads, N_k, d): T text, then the image tokens.
        v (Tensor): Values (B, heads, N_k, d).
        rel_terms (tuple[Tensor, Tensor], optional): ``(rel_h, rel_w)`` of the image queries,
            (B, heads, H, W, H_k) and (B, heads, H, W, W_k); None without a relative bias.
        text_pad (Tensor, optional): (B, T) bool, True = padding key to mask out, or None.
        num_text (int): T.
        text_queries (bool): Whether the queries start with the T text tokens.

    Returns:
        Tensor: (B, heads, N_q, d).
    """
    has_pad = text_pad is not None and num_text > 0
    if rel_terms is None and not has_pad:
        return F.scaled_dot_product_attention(q, k, v)
    B, heads, num_q, head_dims = q.shape
    num_k = k.shape[2]
    q_parts = [q * head_dims**-0.5]
    key_hw = None
    if rel_terms is not None:
        rel_h, rel_w = rel_terms
        key_hw = (rel_h.shape[-1], rel_w.shape[-1])
        # (B, heads, H, W, H_k) + (B, heads, H, W, W_k) -> (B, heads, H * W, H_k + W_k)
        rel = torch.cat([rel_h.flatten(2, 3), rel_w.flatten(2, 3)], dim=-1)
        if text_queries:  # text queries get no bias: zero rows in front
            rel = F.pad(rel, (0, 0, num_text, 0))
        q_parts.append(rel)
    query_tail, key_extra = _constant_channels(num_text, key_hw, head_dims, has_pad, q.dtype,
                                               q.device)
    # Explicit sizes (no -1) and no empty pieces: both trouble the ONNX export.
    if query_tail.numel():
        q_parts.append(query_tail.expand(B, heads, num_q, query_tail.shape[0]))
    k_parts = [k]
    if key_extra.numel():
        k_parts.append(key_extra.expand(B, heads, num_k, key_extra.shape[1]))
    if has_pad:
        # (B, T) -> (B, N_k) -> (B, heads, N_k, 1): the minimum on padded text keys, else 0
        pad = torch.zeros(text_pad.shape, dtype=k.dtype, device=k.device).masked_fill(
            text_pad, torch.finfo(k.dtype).min)
        pad = F.pad(pad, (0, num_k - num_text))
        k_parts.append(pad[:, None, :, None].expand(B, heads, num_k, 1))
    q_folded = torch.cat(q_parts, dim=-1)  # (B, heads, N_q, width)
    k_folded = torch.cat(k_parts, dim=-1)  # (B, heads, N_k, width)
    v_folded = F.pad(v, (0, q_folded.shape[-1] - head_dims))  # (B, heads, N_k, width)
    out = F.scaled_dot_product_attention(q_folded, k_folded, v_folded, scale=1.0)
    return out[..., :head_dims]

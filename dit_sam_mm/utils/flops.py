"""FLOP counting with ``torch.utils.flop_counter.FlopCounterMode``, attention included.

``FlopCounterMode`` intercepts aten operators and counts the multiply-adds of matrix products as
2 FLOPs each: ``mm``/``addmm``/``bmm``/``baddbmm`` (so ``nn.Linear``, ``matmul`` and
``einsum``), convolutions (transposed ones too) and the fused attention kernels of CUDA (flash,
memory-efficient, cuDNN: ``4 * B * heads * N_q * N_k * d``, the two products, forward; their
backward formulas for a backward pass). Element-wise work (norms, softmax, activations, the mask
addition) is not counted, the usual convention of "model FLOPs".

PyTorch's table lacks the CPU fused attention kernel
(``_scaled_dot_product_flash_attention_for_cpu``), which ``F.scaled_dot_product_attention`` runs on
CPU, so attention would silently count as 0 there. :func:`count_flops` adds it with the same
formulas as the CUDA kernels, so a count does not depend on the device or on the attention
implementation (``'sdpa'`` or ``'naive'``: the latter's two ``matmul``s give the same number).
"""
from typing import Any, Callable, Dict, Sequence, Tuple

import torch
from torch.utils import flop_counter

Shape = Sequence[int]

_aten = torch.ops.aten


def _sdpa_cpu_flop(query_shape: Shape, key_shape: Shape, value_shape: Shape, *args,
                   **kwargs) -> int:
    """Forward FLOPs of the CPU fused attention kernel (the CUDA kernels' formula)."""
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _sdpa_cpu_backward_flop(grad_out_shape: Shape, query_shape: Shape, key_shape: Shape,
                            value_shape: Shape, *args, **kwargs) -> int:
    """Backward FLOPs of the CPU fused attention kernel (the CUDA kernels' formula)."""
    return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape,
                                                 value_shape)


#: Operators added to PyTorch's FLOP table; FlopCounterMode passes them shapes, not tensors.
EXTRA_FLOP_FORMULAS: Dict[Any, Callable[..., int]] = {
    _aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_flop,
    _aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_cpu_backward_flop,
}


def count_flops(fn: Callable[[], Any]) -> Tuple[int, Any]:
    """Run ``fn()`` once and count the FLOPs of its tensor operations.

    Args:
        fn (Callable): What to count, e.g. ``lambda: model(**data, mode='tensor')``; a backward
            pass inside ``fn`` is counted too.

    Returns:
        Tuple[int, Any]: The total FLOPs and ``fn``'s return value.
    """
    with flop_counter.FlopCounterMode(
            display=False, custom_mapping=EXTRA_FLOP_FORMULAS) as counter:
        out = fn()
    return counter.get_total_flops(), out

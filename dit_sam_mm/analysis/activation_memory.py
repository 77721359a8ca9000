"""Activation memory of a training forward, counted from autograd's saved tensors (any device).

``tools/analysis_tools/benchmark.py --mode activations`` runs one training forward (losses
included, under bf16 autocast with ``amp='bf16'``) of a random-weights model at batch B and at
batch B + 1 and adds up the bytes of every storage that autograd saves for the backward pass
(``torch.autograd.graph.saved_tensors_hooks``), each storage once and the parameters left out.
The difference of the two is the activation memory one more sample costs, which is what decides
the largest batch that fits: ``per_sample = saved(B + 1) - saved(B)``. With activation
checkpointing (``with_cp=True``) only a block's inputs are saved, and the count shows it.

What it does not see: the transient peak of the backward pass (a block's recomputation, the
gradients being formed), the allocator's fragmentation and the weights, gradients and optimiser
state (the ``train`` mode's ``base_mem_mb`` on CUDA). With ``attn_impl='sdpa'`` the encoder's
attention has no mask and runs SDPA's fused kernel on CPU as on CUDA, which saves its inputs (the
folded q' and k', the zero-padded v), its output and the log-sum-exp of every row, so a CPU count
stands for a CUDA run's; the reference (``'naive'``) saves the dense (N_q, N_k) mask-sized
probabilities of every block.
"""
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import nn

from .benchmark import prepare_model, synthetic_batch


def saved_tensor_bytes(fn: Callable[[], object], exclude: nn.Module) -> Tuple[int, object]:
    """Bytes of the storages autograd saves while ``fn()`` runs, without ``exclude``'s
    parameters; also returns ``fn()``'s output (keep it alive to keep the graph)."""
    params = {p.untyped_storage().data_ptr() for p in exclude.parameters()}
    saved: Dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        output = fn()
    return sum(saved.values()), output


def benchmark_activations(model_cfg: dict, batch_size: int, device: str,
                          amp: Optional[str] = None, reference: bool = False,
                          **unused) -> Dict[str, object]:
    """Saved-tensor bytes of a training forward at ``batch_size`` and ``batch_size + 1``.

    Args:
        model_cfg (dict): ``cfg.model``.
        batch_size (int): The smaller of the two batches.
        device (str): ``'cpu'`` or ``'cuda'``.
        amp (str, optional): ``'bf16'`` for bfloat16 autocast. Defaults to None (float32).
        reference (bool): The released code's attention, float32. Defaults to False.
        **unused: The timing settings of the other modes (ignored).

    Returns:
        dict: ``saved_mb`` at both batch sizes and ``saved_mb_per_sample``.
    """
    model, vocab, size, flops = prepare_model(model_cfg, device, reference, amp)
    model.train()
    saved_mb = {}
    for batch in (batch_size, batch_size + 1):
        data = model.data_preprocessor(synthetic_batch(batch, size, vocab), True)

        def forward() -> object:
            with torch.autocast(device.split(':')[0], dtype=torch.bfloat16,
                                enabled=amp == 'bf16'):
                return model(**data, mode='loss')

        nbytes, losses = saved_tensor_bytes(forward, exclude=model)
        del losses
        saved_mb[batch] = nbytes / 2**20
    return dict(mode='activations', flops_per_sample=flops,
                saved_mb=saved_mb[batch_size], saved_mb_next=saved_mb[batch_size + 1],
                saved_mb_per_sample=saved_mb[batch_size + 1] - saved_mb[batch_size])

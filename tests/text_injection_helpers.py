"""Helpers shared by the backbone and text-injection tests."""
import torch
from torch import nn


def perturb(model: nn.Module, std: float = 0.3) -> None:
    """Give the zero-initialised text injections (and the zero rel-pos tables) random values."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith('text_injections') or 'rel_pos' in name:
                p.normal_(0, std)


def loss_of(out: torch.Tensor) -> torch.Tensor:
    """A fixed random linear read-out of ``out``.

    The SAM neck ends in a LayerNorm, so ``out.sum()`` would have no gradient.
    """
    g = torch.Generator().manual_seed(123)
    return (out * torch.randn(out.shape, generator=g)).sum()

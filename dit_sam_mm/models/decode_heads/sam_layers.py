"""Small layers shared by SAM's mask decoder: channel LayerNorm, MLP block, MLP.

The parameter names (``weight``/``bias``, ``lin1``/``lin2``, ``layers.<i>``) follow SAM's
``segment_anything/modeling/common.py`` and ``mask_decoder.py`` (Kirillov et al., 2023) so that an
official SAM checkpoint loads into these modules by name.
"""
from typing import Type

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel dimension of a (B, C, H, W) tensor.

    Args:
        num_channels (int): The number of channels C.
        eps (float): Added to the variance. Defaults to 1e-6 (SAM's value).
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        """Normalise every pixel's C-vector of (B, C, H, W) ``x``; statistics in float32.

        Under bfloat16 autocast the input is bfloat16 (a transposed convolution's output) and
        these element-wise ops are not autocast, so the statistics are computed in float32
        explicitly; the result is returned in the input's dtype.
        """
        x32 = x.float()
        mean = x32.mean(dim=1, keepdim=True)
        var = (x32 - mean).pow(2).mean(dim=1, keepdim=True)
        x32 = (x32 - mean) / torch.sqrt(var + self.eps)
        return (self.weight[:, None, None] * x32 + self.bias[:, None, None]).to(x.dtype)


class MLPBlock(nn.Module):
    """The two-layer feed-forward block of a transformer layer.

    Args:
        embedding_dim (int): Input and output channels.
        mlp_dim (int): Hidden channels.
        activation (Type[nn.Module]): Activation between the two layers.
            Defaults to ``nn.GELU``.
    """

    def __init__(self,
                 embedding_dim: int,
                 mlp_dim: int,
                 activation: Type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.lin1 = nn.Linear(embedding_dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, embedding_dim)
        self.act = activation()

    def forward(self, x: Tensor) -> Tensor:
        return self.lin2(self.act(self.lin1(x)))


class MLP(nn.Module):
    """A plain MLP with ReLU between layers (SAM's hypernetwork and IoU heads).

    Args:
        input_dim (int): Input channels.
        hidden_dim (int): Channels of every hidden layer.
        output_dim (int): Output channels.
        num_layers (int): The number of linear layers (>= 1).
        sigmoid_output (bool): Apply a sigmoid to the output. Defaults to False.
    """

    def __init__(self,
                 input_dim: int,
                 hidden_dim: int,
                 output_dim: int,
                 num_layers: int,
                 sigmoid_output: bool = False) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f'MLP needs at least one layer, got num_layers={num_layers}')
        in_dims = [input_dim] + [hidden_dim] * (num_layers - 1)
        out_dims = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(
            nn.Linear(in_dim, out_dim) for in_dim, out_dim in zip(in_dims, out_dims))
        self.sigmoid_output = sigmoid_output

    def forward(self, x: Tensor) -> Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = F.relu(x)
        return torch.sigmoid(x) if self.sigmoid_output else x

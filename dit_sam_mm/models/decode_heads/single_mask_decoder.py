"""SAM's mask decoder, reduced to its single-mask output and batched one prompt set per image.

SAM (Kirillov et al., 2023) prepends an IoU token and 1 + ``num_multimask_outputs`` mask tokens to
the sparse prompts, runs the two-way transformer against the image embedding, upscales the image
tokens 4x and turns each mask token into a mask with a hypernetwork MLP. With
``multimask_output=False`` SAM returns only the first mask token's mask. This module computes only
that mask, and differs from SAM in three ways:

- one prompt set per image: prompt set b goes with image b (SAM's predictor repeats every image
  embedding once per prompt set, a B x B blow-up for a batch of images);
- padded prompt tokens are masked out as attention keys (``sparse_prompt_mask``);
- parameters that could not receive a gradient are not built, so DDP needs no
  ``find_unused_parameters``: the IoU prediction head and the hypernetwork MLPs of mask tokens
  1..num_multimask_outputs. The IoU token and all mask tokens are still built and used as tokens,
  because they take part in attention and so change the first mask.

Kept parameter names equal those of SAM's ``MaskDecoder``.
"""
from typing import Optional, Tuple, Type, Union

import torch
from torch import Tensor, nn

from .sam_layers import MLP, LayerNorm2d


class SingleMaskDecoder(nn.Module):
    """Predicts one mask per image from an image embedding and (padded) sparse prompts.

    Args:
        transformer_dim (int): Channels of the transformer (SAM: 256); divisible by 8.
        transformer (nn.Module): A ``TwoWayTransformer`` of that width.
        num_multimask_outputs (int): SAM's number of multimask tokens. Their tokens are kept
            (they change the single mask through attention); their hypernetworks are not built.
            Defaults to 3 (SAM).
        activation (Type[nn.Module]): Activation of the upscaling path. Defaults to ``nn.GELU``.
    """

    def __init__(self,
                 *,
                 transformer_dim: int,
                 transformer: nn.Module,
                 num_multimask_outputs: int = 3,
                 activation: Type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        if transformer_dim % 8 != 0:
            raise ValueError(f'transformer_dim must be divisible by 8, got {transformer_dim}')
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs

        self.iou_token = nn.Embedding(1, transformer_dim)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)

        # Indices 0..4 as in SAM: 2x up, norm, act, 2x up, act.
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            activation(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            activation(),
        )
        # Only the first mask token's hypernetwork (SAM's single-mask output); a ModuleList so the
        # name stays ``output_hypernetworks_mlps.0``.
        self.output_hypernetworks_mlps = nn.ModuleList(
            [MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)])

    def forward(self,
                *,
                image_embeddings: Tensor,
                image_pe: Tensor,
                sparse_prompt_embeddings: Tensor,
                dense_prompt_embeddings: Tensor,
                sparse_prompt_mask: Optional[Tensor] = None,
                return_tokens: bool = False) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Predict the single-mask logits.

        Args:
            image_embeddings (Tensor): (B, C, h, w).
            image_pe (Tensor): (1 or B, C, h, w) positional encoding of the grid.
            sparse_prompt_embeddings (Tensor): (B, N, C) prompt tokens for image b.
            dense_prompt_embeddings (Tensor): (B, C, h, w), added to the image embedding.
            sparse_prompt_mask (Tensor, optional): (B, N) bool, True = real prompt token;
                None means all are real.
            return_tokens (bool): Also return the transformer's outputs of the IoU token and
                the first mask token. Defaults to False.

        Returns:
            Tensor | Tuple[Tensor, Tensor]: low-resolution mask logits (B, 1, 4h, 4w); with
            ``return_tokens``, also the IoU and first mask token outputs (B, 2, C).
        """
        b, c, h, w = image_embeddings.shape
        # (1 + M, C) -> (B, 1 + M, C): IoU token, then the mask tokens
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        output_tokens = output_tokens.unsqueeze(0).expand(b, -1, -1)
        tokens = torch.cat([output_tokens, sparse_prompt_embeddings], dim=1)  # (B, 1 + M + N, C)

        token_mask = None
        if sparse_prompt_mask is not None:
            output_mask = sparse_prompt_mask.new_ones((b, output_tokens.shape[1]), dtype=torch.bool)
            token_mask = torch.cat([output_mask, sparse_prompt_mask.bool()], dim=1)

        src = image_embeddings + dense_prompt_embeddings
        pos_src = image_pe.expand(b, -1, -1, -1)
        hs, src = self.transformer(src, pos_src, tokens, token_mask)
        first_mask_token = hs[:, 1, :]  # (B, C); index 0 is the IoU token

        # (B, h*w, C) -> (B, C, h, w) -> (B, C/8, 4h, 4w)
        src = src.transpose(1, 2).reshape(b, c, h, w)
        upscaled = self.output_upscaling(src)
        hyper_in = self.output_hypernetworks_mlps[0](first_mask_token)  # (B, C/8)
        _, c_up, h_up, w_up = upscaled.shape
        # (B, 1, C/8) @ (B, C/8, 4h*4w) -> (B, 1, 4h, 4w)
        masks = hyper_in.unsqueeze(1) @ upscaled.reshape(b, c_up, h_up * w_up)
        masks = masks.reshape(b, 1, h_up, w_up)
        return (masks, hs[:, :2, :]) if return_tokens else masks

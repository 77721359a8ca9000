"""Per-layer text injections of DIT-SAM: how text tokens enter a ViT block.

The DIT paper (Huang et al., "Deep Instruction Tuning for Segment Anything", sec. 3.2-3.3) places
projected text tokens in front of the image tokens of SAM's ViT. Before block ``i`` the backbone
(:class:`~dit_sam_mm.models.backbones.DITSAMViT`) asks its ``i``-th injection module for the text
tokens that block will see. The paper's default is a zero-initialised linear projection
(:class:`LinearTextInjection`); its Table 4 compares cross-attention and cross-attention + FFN
injections, which other code (e.g. ``projects/``) can add by subclassing
:class:`BaseTextInjection` and registering the class in ``mmseg.registry.MODELS``.

Call contract of an injection module (what the backbone guarantees and expects)::

    tokens = injection(text, text_mask=text_mask, image_tokens=image_tokens, hw=(H, W))

- ``text``: (B, L, in_dims). In L-DIT (``text_mode='layerwise'``) and for block 0 of E-DIT it is
  the text encoder's features (``in_dims = text_dims``); for block ``i > 0`` of E-DIT it is the
  text tokens block ``i - 1`` produced (``in_dims = embed_dims``, static prompts included).
- ``text_mask``: (B, L) bool, True = real token, False = padding; None when every token is real.
- ``image_tokens``: (B, H * W, embed_dims), the image tokens that enter block ``i`` (after the
  absolute position embedding for block 0). Read-only: the injection must not modify them.
- ``hw``: the (H, W) patch grid of ``image_tokens``.
- returns (B, L, embed_dims): the text tokens block ``i`` sees. The token count L must be kept
  (the padding mask of the backbone refers to these positions); the backbone adds no position
  embedding to them.

Constructor contract: the backbone builds every injection from the ``injection`` config dict after
setting ``in_dims`` and ``embed_dims`` in it (and ``num_heads``, the block's head count, so that
attention-based injections can match the ViT); unknown extra keys are an error of the subclass.
"""
from typing import Optional, Tuple

import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor


class BaseTextInjection(BaseModule):
    """Base class of the modules that put text tokens into a DIT-SAM ViT block.

    See the module docstring for the call contract shared by every injection.

    Args:
        in_dims (int): Channels of the incoming text tokens.
        embed_dims (int): Channels of the ViT tokens (the output channels).
        num_heads (int): Attention heads of the ViT block the tokens go to; unused here, given to
            every injection so attention-based ones can use it. Defaults to 1.
        init_cfg (dict, optional): MMEngine initialisation config. Defaults to None.
    """

    def __init__(self,
                 in_dims: int,
                 embed_dims: int,
                 num_heads: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_dims = in_dims
        self.embed_dims = embed_dims
        self.num_heads = num_heads

    def forward(self,
                text: Tensor,
                text_mask: Optional[Tensor] = None,
                image_tokens: Optional[Tensor] = None,
                hw: Optional[Tuple[int, int]] = None) -> Tensor:
        """Return the (B, L, embed_dims) text tokens for one block; see the module docstring."""
        raise NotImplementedError


@MODELS.register_module()
class LinearTextInjection(BaseTextInjection):
    """Zero-initialised ``Linear(in_dims -> embed_dims)`` followed by dropout (DIT paper, eq. 4).

    The projection's weight and bias start at zero (as in the authors' release), so at the start of
    fine-tuning every text token is the zero vector and SAM's pre-trained features are barely
    disturbed; the gradient still reaches the weight because the zero tokens take part in the
    block's attention. The image tokens and the mask are not used.

    Args:
        in_dims (int): Channels of the incoming text tokens.
        embed_dims (int): Channels of the ViT tokens.
        num_heads (int): Unused (see :class:`BaseTextInjection`). Defaults to 1.
        drop_rate (float): Dropout after the projection. Defaults to 0.1.
        zero_init (bool): Zero the weight and bias at construction and in ``init_weights`` (so an
            ``init_cfg`` of an enclosing module does not override it). Defaults to True.
        init_cfg (dict, optional): MMEngine initialisation config. Defaults to None.
    """

    def __init__(self,
                 in_dims: int,
                 embed_dims: int,
                 num_heads: int = 1,
                 drop_rate: float = 0.1,
                 zero_init: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(in_dims, embed_dims, num_heads, init_cfg=init_cfg)
        self.zero_init = zero_init
        self.proj = nn.Linear(in_dims, embed_dims)
        self.drop = nn.Dropout(drop_rate)
        if zero_init:
            self._zero()

    def _zero(self) -> None:
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def init_weights(self) -> None:
        """Apply ``init_cfg`` (if any), then re-zero the projection when ``zero_init``."""
        super().init_weights()
        if self.zero_init:
            self._zero()

    def forward(self,
                text: Tensor,
                text_mask: Optional[Tensor] = None,
                image_tokens: Optional[Tensor] = None,
                hw: Optional[Tuple[int, int]] = None) -> Tensor:
        """Project (B, L, in_dims) text to (B, L, embed_dims)."""
        return self.drop(self.proj(text))

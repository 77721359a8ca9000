"""Binary cross-entropy of one-channel mask logits, without host-device synchronisation."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class MaskBCELoss(nn.Module):
    """Sigmoid binary cross-entropy averaged over the non-ignored pixels.

    The value equals mmseg's ``CrossEntropyLoss(use_sigmoid=True, avg_non_ignore=True)`` on
    (B, 1, H, W) logits, but mmseg 1.2.2's ``binary_cross_entropy`` reads the device twice per
    call: it asserts ``label[label != ignore_index].max() <= 1`` (a boolean-mask index, i.e. a
    ``nonzero`` with a data-dependent shape, then a Python ``bool`` of a tensor) and takes
    ``valid_mask.sum().item()`` as the averaging factor. Here the label is only compared with 1
    and the ignore index, and the mean is a division by the device-side pixel count, so the
    training step never waits for the GPU. The loss is computed in float32 whatever the logits'
    dtype (bfloat16 under autocast).

    Args:
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        loss_name (str): Name of the loss in the losses dict; must start with ``loss_`` to be
            back-propagated by MMEngine. Defaults to ``'loss_ce'``.
    """

    def __init__(self, loss_weight: float = 1.0, loss_name: str = 'loss_ce') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): Logits (B, 1, H, W) or (B, H, W).
            target (Tensor): Labels (B, H, W): 1 = foreground, ``ignore_index`` = ignored, any
                other value = background.
            weight (Tensor, optional): Per-pixel weight (B, H, W). Defaults to None.
            ignore_index (int): Label of ignored pixels. Defaults to 255.
            **kwargs: Other arguments mmseg's heads pass to losses (unused).

        Returns:
            Tensor: The scalar loss (float32).
        """
        logits = pred.float().reshape(target.shape)
        valid = (target != ignore_index).float()
        loss = F.binary_cross_entropy_with_logits(
            logits, (target == 1).float(), reduction='none') * valid
        if weight is not None:
            loss = loss * weight.float()
        return self.loss_weight * loss.sum() / valid.sum().clamp(min=1.0)

    @property
    def loss_name(self) -> str:
        """Name of the loss in the losses dict."""
        return self._loss_name

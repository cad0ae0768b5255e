"""Losses: the paper's 1/2 (Dice loss + MSE) on the sigmoid output (Sec. 3.2, after Savioli et al.)."""

from __future__ import annotations

import torch
from monai.losses import DiceLoss
from torch.nn.modules.loss import _Loss

__all__ = ["DiceMSELoss"]


class DiceMSELoss(_Loss):
    """``0.5 * (DiceLoss(sigmoid(x), y) + MSE(sigmoid(x), y))`` for logits ``x`` and a binary ``y``.

    The Dice term is MONAI's :class:`~monai.losses.DiceLoss`; with ``batch=True`` (default) it
    is computed over the whole batch, so a BAC-free image in the batch does not produce an
    undefined per-image Dice. Both terms see the same sigmoid probabilities. With ``sigmoid=False``
    the input is taken as probabilities already (a validation loss computed after ``Activationsd``).
    """

    def __init__(self, dice_weight: float = 0.5, mse_weight: float = 0.5, batch: bool = True,
                 smooth_nr: float = 1e-5, smooth_dr: float = 1e-5, sigmoid: bool = True) -> None:
        super().__init__()
        self.sigmoid = sigmoid
        self.dice = DiceLoss(sigmoid=False, batch=batch, smooth_nr=smooth_nr, smooth_dr=smooth_dr)
        self.dice_weight, self.mse_weight = float(dice_weight), float(mse_weight)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        prob = torch.sigmoid(input.float()) if self.sigmoid else input.float()
        target = target.float()
        return self.dice_weight * self.dice(prob, target) + self.mse_weight * torch.nn.functional.mse_loss(prob, target)

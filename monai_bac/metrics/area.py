"""Area Dice of two (H, W) masks as a float: MONAI's ``compute_dice`` for numpy masks.

For scripts and reports that compare two masks outside a MONAI workflow (label correction
against the truth, int8 against float32, ...). Empty cases as MONAI's ``ignore_empty=False``:
both empty 1, one empty 0.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.metrics import compute_dice

__all__ = ["mask_dice"]


def mask_dice(y_pred, y) -> float:
    """Dice of two (H, W) masks (nonzero is foreground)."""
    a = torch.as_tensor(np.asarray(y_pred) > 0)[None, None]
    b = torch.as_tensor(np.asarray(y) > 0)[None, None]
    return float(compute_dice(a, b, ignore_empty=False))

"""MONAI metrics of monai-bac: length-based Dice (Dice^L, Eq. 6) and centreline Dice (clDice).

Area Dice is MONAI's own ``monai.metrics.DiceMetric``; these metrics add the length view of
Sec. 3.4 of the paper, in mm.
"""

from monai_bac.metrics.area import mask_dice
from monai_bac.metrics.cldice import CLDiceMetric, compute_cldice
from monai_bac.metrics.length_dice import SPACING_KEY, LengthDiceMetric, compute_length_dice, resolve_spacing

__all__ = [
    "SPACING_KEY",
    "CLDiceMetric",
    "LengthDiceMetric",
    "compute_cldice",
    "compute_length_dice",
    "mask_dice",
    "resolve_spacing",
]

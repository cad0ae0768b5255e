"""Ignite handlers of monai-bac: Dice^L and clDice (like ``monai.handlers.MeanDice``) and the
validation threshold sweep of Sec. 4.3 (:class:`ThresholdSweep`, read back with
:func:`read_threshold`)."""

from monai_bac.handlers.checkpoint import ResumableCheckpointSaver, ResumableEarlyStopHandler
from monai_bac.handlers.cldice import CLDice
from monai_bac.handlers.length_dice import LengthDice
from monai_bac.handlers.threshold_sweep import (
    DEFAULT_THRESHOLDS,
    ThresholdSweep,
    read_threshold,
    threshold_counts,
    write_threshold,
)

__all__ = [
    "CLDice",
    "DEFAULT_THRESHOLDS",
    "LengthDice",
    "ResumableCheckpointSaver",
    "ResumableEarlyStopHandler",
    "ThresholdSweep",
    "read_threshold",
    "threshold_counts",
    "write_threshold",
]

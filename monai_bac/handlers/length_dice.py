"""Ignite handler for Dice^L (Eq. 6 of Wang et al.), like ``monai.handlers.MeanDice``."""

from __future__ import annotations

from collections.abc import Callable

from monai.handlers.ignite_metric import IgniteMetricHandler
from monai.utils import MetricReduction

from monai_bac.metrics.length_dice import LengthDiceMetric
from monai_bac.ops.length_dice import DEFAULT_TOLERANCE_MM

__all__ = ["LengthDice"]


class LengthDice(IgniteMetricHandler):
    """Length-based Dice (bounded Eq. 6) of every validation image, averaged over the epoch.

    Attach to an evaluator like ``MeanDice``; the value lands in ``engine.state.metrics[name]``
    and, with ``save_details``, the per-image scores in ``engine.state.metric_details[name]``.
    The pixel spacing is read from the MetaTensor meta (``"spacing_mm"``) of the prediction or
    label unless ``spacing_mm`` is given.

    Args:
        spacing_mm: (row, col) spacing in mm, or None to read ``meta["spacing_mm"]``.
        tolerance_mm: width (mm) of the band around the annotation skeleton, default 2.1.
        threshold: cut-off applied to probability predictions (``>= threshold``).
        include_background: False drops channel 0 (one-hot inputs).
        reduction: MONAI reduction of the per-image values, default ``"mean"`` (nan ignored).
        ignore_empty: empty annotation -> nan, excluded from the mean (True), or 1/0 (False).
        bounded: ``min(1, Eq. 6)`` (True) or Eq. (6) as printed (False).
        backend: ``"auto"`` (torch on CUDA tensors, numpy otherwise), ``"numpy"`` or ``"torch"``.
        output_transform: extracts ``(y_pred, y)`` from ``engine.state.output``, e.g.
            ``monai.handlers.from_engine(["pred", "label"])``.
        save_details: keep the per-image values in ``engine.state.metric_details``.

    Example::

        evaluator = SupervisedEvaluator(..., key_val_metric={
            "val_length_dice": LengthDice(output_transform=from_engine(["pred", "label"]))})
    """

    def __init__(
        self,
        spacing_mm=None,
        tolerance_mm: float = DEFAULT_TOLERANCE_MM,
        threshold: float = 0.5,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        ignore_empty: bool = True,
        bounded: bool = True,
        backend: str = "auto",
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
    ) -> None:
        metric_fn = LengthDiceMetric(
            spacing_mm=spacing_mm,
            tolerance_mm=tolerance_mm,
            threshold=threshold,
            include_background=include_background,
            reduction=reduction,
            ignore_empty=ignore_empty,
            bounded=bounded,
            backend=backend,
        )
        super().__init__(metric_fn=metric_fn, output_transform=output_transform, save_details=save_details)

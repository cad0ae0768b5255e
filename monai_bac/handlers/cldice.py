"""Ignite handler for centreline Dice (clDice, lengths in mm), like ``monai.handlers.MeanDice``."""

from __future__ import annotations

from collections.abc import Callable

from monai.handlers.ignite_metric import IgniteMetricHandler
from monai.utils import MetricReduction

from monai_bac.metrics.cldice import CLDiceMetric

__all__ = ["CLDice"]


class CLDice(IgniteMetricHandler):
    """clDice (Shit et al. 2021, skeleton lengths in mm) of every validation image, averaged.

    Args:
        spacing_mm: (row, col) spacing in mm, or None to read ``meta["spacing_mm"]``.
        threshold: cut-off applied to probability predictions (``>= threshold``).
        include_background: False drops channel 0 (one-hot inputs).
        reduction: MONAI reduction of the per-image values, default ``"mean"`` (nan ignored).
        ignore_empty: empty annotation -> nan, excluded from the mean (True), or 1/0 (False).
        backend: ``"auto"``, ``"numpy"`` or ``"torch"``.
        output_transform: extracts ``(y_pred, y)`` from ``engine.state.output``.
        save_details: keep the per-image values in ``engine.state.metric_details``.
    """

    def __init__(
        self,
        spacing_mm=None,
        threshold: float = 0.5,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        ignore_empty: bool = True,
        backend: str = "auto",
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
    ) -> None:
        metric_fn = CLDiceMetric(
            spacing_mm=spacing_mm,
            threshold=threshold,
            include_background=include_background,
            reduction=reduction,
            ignore_empty=ignore_empty,
            backend=backend,
        )
        super().__init__(metric_fn=metric_fn, output_transform=output_transform, save_details=save_details)

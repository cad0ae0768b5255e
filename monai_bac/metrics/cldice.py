"""Centreline Dice (clDice, Shit et al., CVPR 2021) as a MONAI metric, measured in mm.

clDice is the established skeleton metric for tubular structures, offered here so users can
compare it with Dice^L::

    Tprec = L(S_pred inside Y) / L(S_pred),  Tsens = L(S_label inside P) / L(S_label)
    clDice = 2 * Tprec * Tsens / (Tprec + Tsens)

with skeleton *lengths* in mm (geodesic, :mod:`monai_bac.ops.skeleton`) in place of the
original pixel counts, so the score does not depend on the pixel size or on the staircase
pattern of diagonal vessels. Inputs, spacing, backends and empty cases as
:mod:`monai_bac.metrics.length_dice`.
"""

from __future__ import annotations

import torch
from monai.utils import MetricReduction

from monai_bac.metrics.length_dice import _LengthMetricBase, _pick_backend, _to_output, batched_length_terms
from monai_bac.ops import length_dice as ld_ops

__all__ = ["compute_cldice", "CLDiceMetric"]


def compute_cldice(
    y_pred,
    y,
    spacing_mm=None,
    threshold: float = 0.5,
    ignore_empty: bool = True,
    backend: str = "auto",
    include_background: bool = True,
) -> torch.Tensor:
    """clDice (lengths in mm) of every image and channel of a batch.

    Args:
        y_pred: (B, C, H, W) prediction: bool/integer mask (nonzero) or floats cut at ``threshold``.
        y: (B, C, H, W) annotation: bool/integer (nonzero) or float (``>= 0.5``) mask.
        spacing_mm: (row, col) in mm, one pair per image, or None to read ``meta["spacing_mm"]``.
        threshold: cut-off applied to float predictions (``>= threshold`` is foreground).
        ignore_empty: empty annotation -> nan (True) or 1/0 by the prediction (False).
        backend: ``"auto"``, ``"numpy"`` or ``"torch"``.
        include_background: False drops channel 0 (one-hot inputs).

    Returns:
        (B, C) float32 tensor on ``y_pred``'s device.
    """
    t = batched_length_terms("cldice", y_pred, y, spacing_mm, threshold, include_background, backend=backend)
    values = ld_ops.cldice_from_terms(t[..., 2], t[..., 3], t[..., 0], t[..., 1], ignore_empty=ignore_empty)
    return _to_output(values, y_pred)


class CLDiceMetric(_LengthMetricBase):
    """clDice (lengths in mm) over iterations, with ``aggregate``/``reduction`` like ``DiceMetric``.

    Args:
        spacing_mm: (row, col) in mm, one pair per image, or None (MetaTensor meta).
        threshold: cut-off for float predictions.
        include_background: False drops channel 0.
        reduction: MONAI :class:`~monai.utils.MetricReduction` for :meth:`aggregate`.
        get_not_nans: :meth:`aggregate` also returns the count of non-nan values.
        ignore_empty: empty annotation -> nan (True) or 1/0 by the prediction (False).
        backend: ``"auto"``, ``"numpy"`` or ``"torch"``.
    """

    def __init__(
        self,
        spacing_mm=None,
        threshold: float = 0.5,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
        ignore_empty: bool = True,
        backend: str = "auto",
    ) -> None:
        super().__init__(spacing_mm, reduction, get_not_nans)
        _pick_backend(backend)
        self.threshold = threshold
        self.include_background = include_background
        self.ignore_empty = ignore_empty
        self.backend = backend

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor | None = None, spacing_mm=None
    ) -> torch.Tensor:
        return compute_cldice(
            y_pred,
            y,
            spacing_mm if spacing_mm is not None else self.spacing_mm,
            threshold=self.threshold,
            ignore_empty=self.ignore_empty,
            backend=self.backend,
            include_background=self.include_background,
        )

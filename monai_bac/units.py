"""Pixel spacing in mm: the one place that reads and checks it.

Every physical threshold in monai-bac is in mm (or mm^-1) and is converted to pixels with the
pixel spacing ``(row_mm, col_mm)``. The spacing comes from an explicit ``spacing_mm`` argument,
else from the image's metadata (``meta["spacing_mm"]``, filled by the loader from
ImagerPixelSpacing (0018,1164) / PixelSpacing (0028,0030)). :func:`as_spacing` checks a given
value; :func:`resolve_spacing` picks the argument or the metadata. Both raise
:class:`SpacingError` (a ``ValueError``) naming the source and the argument that fixes it.
MONAI's spatial transforms (``Resize``, ``Spacing``, ``Zoom``, ``Rotate90``) update a MetaTensor's
affine but not ``meta["spacing_mm"]``: where the two disagree, :func:`resolve_spacing` (and the
metrics, through :func:`affine_spacing`) take the affine's pixel size and warn
(:class:`StaleSpacingWarning`).
:func:`odd_footprint` turns a square of a given side in mm into a centred filter size in pixels.

The plausible range (:data:`MIN_SPACING_MM` .. :data:`MAX_SPACING_MM`) spans every full-field
mammography detector (0.05-0.1 mm) and the coarse working grids the library resamples to (up to
a few mm); far outside it a value is a unit error (m instead of mm) or a corrupt tag, and the
cost of the morphology grows as spacing^-2. ``check_range=False`` skips that check.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["SpacingError", "StaleSpacingWarning", "affine_spacing", "as_spacing", "resolve_spacing", "odd_footprint",
           "warn_stale_spacing", "MIN_SPACING_MM", "MAX_SPACING_MM"]

#: smallest and largest pixel spacing (mm) accepted without ``check_range=False``
MIN_SPACING_MM = 0.01
MAX_SPACING_MM = 10.0


class SpacingError(ValueError):
    """A pixel spacing that is missing, malformed, non-positive or implausible."""


class StaleSpacingWarning(UserWarning):
    """``meta["spacing_mm"]`` disagrees with the image's affine: a spatial transform changed the grid
    after loading (``monai_bac.transforms.UpdateSpacingd`` after it brings the two in step)."""


#: relative difference at which the metadata's spacing and the affine's disagree
SPACING_RTOL = 1e-3


def affine_spacing(affine: Any) -> tuple[float, float] | None:
    """``(row_mm, col_mm)``: the pixel size a 2D image's affine gives (MONAI's ``affine_to_spacing``:
    the steps of a row index and a column index), or None for no affine, a batch of them, or MONAI's
    identity default (which says nothing about the grid)."""
    if affine is None:
        return None
    from monai.data.utils import affine_to_spacing  # what UpdateSpacingd writes back, too

    a = np.asarray(affine.detach().cpu() if hasattr(affine, "detach") else affine, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 3 or np.allclose(a, np.eye(a.shape[0])):
        return None
    row, col = affine_to_spacing(a, r=2, suppress_zeros=False)
    return (float(row), float(col)) if row > 0 and col > 0 else None


def as_spacing(spacing_mm: Any, where: str = "spacing_mm", check_range: bool = True) -> tuple[float, float]:
    """``(row_mm, col_mm)`` from one number (isotropic) or two; raises :class:`SpacingError`.

    Args:
        spacing_mm: a number, or a sequence / array of two numbers (row, col), in mm.
        where: what the value is, for the message (e.g. ``"case.dcm: ImagerPixelSpacing"``).
        check_range: refuse values outside ``[MIN_SPACING_MM, MAX_SPACING_MM]``.
    """
    try:
        if hasattr(spacing_mm, "detach"):  # a torch tensor
            spacing_mm = spacing_mm.detach().cpu().numpy()
        values = [float(v) for v in np.atleast_1d(np.asarray(spacing_mm, dtype=np.float64)).ravel()]
    except (TypeError, ValueError):
        raise SpacingError(f"{where}: spacing must be one or two numbers in mm (row, col), got {spacing_mm!r}") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or not all(math.isfinite(v) and v > 0 for v in values):
        raise SpacingError(f"{where}: spacing must be one or two positive finite numbers in mm (row, col), "
                           f"got {spacing_mm!r}")
    if check_range and not all(MIN_SPACING_MM <= v <= MAX_SPACING_MM for v in values):
        raise SpacingError(f"{where}: pixel spacing {values[0]:g} x {values[1]:g} mm is outside the plausible range "
                           f"{MIN_SPACING_MM:g}-{MAX_SPACING_MM:g} mm for a mammogram (a unit error or a corrupt tag?)")
    return values[0], values[1]


def resolve_spacing(meta: Mapping | None, spacing_mm: Any = None, who: str = "this function",
                    check_range: bool = True) -> tuple[float, float]:
    """The spacing to use: ``spacing_mm`` when given, else ``meta["spacing_mm"]``, unless the meta's
    ``affine`` (a MetaTensor's) gives another pixel size: then the affine's, with a
    :class:`StaleSpacingWarning`.

    Args:
        meta: the image's metadata (a MetaTensor's ``.meta``), or None.
        spacing_mm: an explicit spacing (wins over the metadata).
        who: the function or transform asking, named in the message with its ``spacing_mm`` argument.
        check_range: see :func:`as_spacing`.
    """
    meta = meta or {}
    source = str(meta.get("filename_or_obj") or "image")
    if spacing_mm is not None:
        return as_spacing(spacing_mm, f"{who}: spacing_mm", check_range)
    value = meta.get("spacing_mm")
    if value is None:
        raise SpacingError(f"{source}: the pixel spacing is missing from the image metadata ('spacing_mm', from "
                           f"ImagerPixelSpacing (0018,1164) / PixelSpacing (0028,0030)); pass "
                           f"spacing_mm=(row_mm, col_mm) to {who}")
    spacing = as_spacing(value, f"{source}: meta['spacing_mm']", check_range)
    current = affine_spacing(meta.get("affine"))
    if current is None or np.allclose(spacing, current, rtol=SPACING_RTOL, atol=0):
        return spacing
    warn_stale_spacing(source, spacing, current, who, stacklevel=4)
    return as_spacing(current, f"{source}: the affine's pixel size", check_range)


def warn_stale_spacing(source: str, stored: Any, current: Any, who: str, stacklevel: int = 3) -> None:
    """The :class:`StaleSpacingWarning` of ``source`` whose ``meta["spacing_mm"]`` (``stored``, row and
    col mm) disagrees with its affine's pixel size (``current``), which ``who`` uses."""
    (sr, sc), (cr, cc) = (tuple(float(v) for v in np.ravel(x)[:2]) for x in (stored, current))
    warnings.warn(
        f"{source}: meta['spacing_mm'] {sr:g} x {sc:g} mm disagrees with the image's affine, {cr:g} x {cc:g} mm: a "
        f"spatial transform (Resize, Spacing, Zoom, Rotate90, ...) changed the grid after loading; {who} uses the "
        "affine's pixel size. Put monai_bac.transforms.UpdateSpacingd after the spatial transform, or pass "
        "spacing_mm=, to say which", StaleSpacingWarning, stacklevel=stacklevel)


def odd_footprint(size_mm: float, spacing_mm: tuple[float, float]) -> tuple[int, int]:
    """A square of side ``size_mm`` as a filter size in pixels (rows, cols): the nearest odd count
    per axis, at least 1, so that the filter is centred on its pixel."""
    return tuple(max(1, int(round(size_mm / s)) | 1) for s in spacing_mm)

"""The exposed field of a raw mammogram: the image without the collimator's unexposed border.

A mammography unit collimates the beam to the detector, and a raw image often keeps a band along
one or more of its edges that no x-ray reached: under a blade the raw value is the detector offset
plus electronic noise, far darker than anything behind tissue (behind the densest tissue of a
thick breast some per cent of the direct exposure still arrive). Such a band touches the breast in
an MLO (the axilla and the muscle run to the top edge) and is darker than any tissue, so analysed
as part of the image it reads as tissue: the breast swallows it, the muscle's edge is not where
the search looks, and no unexposed strip is left for DensityMap's offset estimate. BreastRegion
analyses the exposed field only and gives the band the background code.
"""

from __future__ import annotations

import numpy as np

from monai_bac.units import as_spacing

__all__ = ["UNEXPOSED_FRACTION", "MAX_BLADE_MM", "BLADE_MARGIN_MM", "exposed_field"]

#: An image line (row or column) from an edge inwards is under a blade when 95 % of its pixels lie
#: below this fraction of the darkest exposed level (the 1st percentile of the pixels further than
#: ``MAX_BLADE_MM`` from every edge); the line-wise test needs no knowledge of the offset.
UNEXPOSED_FRACTION = 0.5
#: The deepest a blade's band is looked for, mm from the edge.
MAX_BLADE_MM = 30.0
#: Lines next to a blade's band that are left out of the analysis too (the blade's penumbra, a
#: few detector pixels) and take the codes of the first line analysed.
BLADE_MARGIN_MM = 1.0


def _band_lines(lines: np.ndarray, limit: float) -> int:
    """How many of ``lines`` (first axis: from the edge inwards) lie under a blade, from the first."""
    if lines.shape[0] == 0 or np.percentile(lines[0], 95) >= limit:
        return 0  # the usual case: one line read
    below = np.percentile(lines, 95, axis=1) < limit
    return int(below.size if below.all() else np.argmin(below))


def exposed_field(image: np.ndarray, spacing_mm, fraction: float = UNEXPOSED_FRACTION, max_mm: float = MAX_BLADE_MM,
                  margin_mm: float = BLADE_MARGIN_MM) -> tuple[tuple[slice, slice], tuple[int, int, int, int]]:
    """The exposed field of ``image`` (raw values linear in exposure).

    Returns:
        ``(box, band)``: ``box`` the (row, column) slices of the field the analysis should run on
        (the blades' bands and ``margin_mm`` beside each left out), ``band`` the number of unexposed
        lines at the top, bottom, left and right edges (all zero: no collimator border, ``box`` the
        whole image).
    """
    img = np.asarray(image)
    h, w = img.shape
    sr, sc = as_spacing(spacing_mm)
    kr, kc = int(max_mm / sr), int(max_mm / sc)
    whole = (slice(0, h), slice(0, w))
    inner = img[kr:h - kr:4, kc:w - kc:4]
    if inner.size < 100:
        return whole, (0, 0, 0, 0)
    limit = fraction * float(np.percentile(inner, 1))
    band = (_band_lines(img[:kr], limit), _band_lines(img[::-1][:kr], limit),
            _band_lines(img[:, :kc].T, limit), _band_lines(img[:, ::-1][:, :kc].T, limit))
    if not any(band):
        return whole, band
    mr, mc = max(1, int(round(margin_mm / sr))), max(1, int(round(margin_mm / sc)))
    top, bottom, left, right = (n + (m if n else 0) for n, m in zip(band, (mr, mr, mc, mc)))
    return (slice(top, h - bottom), slice(left, w - right)), band

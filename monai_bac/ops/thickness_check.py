"""The compressed thickness the image itself implies, to check the unit's BodyPartThickness.

The thickness readout of a mammography unit is a paddle-position sensor, and it is often wrong:
on 12 units of three manufacturers it differed from the true thickness by up to 14 % with rigid
and 26 % with flexible paddles (Hauge et al., Med Phys 39:263, 2012); DensityMap's VBD moves by
up to ~4 points with a 20 % error (docs/TRANSFORMS.md, DensityMap). The image carries its own
measure of the thickness, in physical units, that needs no detector calibration: the contrast
between the direct exposure beside the breast and the fatty tissue under the paddle, a *ratio*
of two signals of the same exposure. Behind a breast of thickness H whose fattiest tissue is
adipose between two skin layers of thickness s,

    ln P_air - ln P_fat = ln S(0, 0) - ln S(H - 2 s, 2 s)

with ``S(a, g)`` the detector signal behind ``a`` mm of adipose and ``g`` mm of glandular-like
tissue (:class:`monai_bac.physics.TransmittedBeam`: the tube's SpekPy spectrum, xraydb
attenuation, the detector's absorption; the polyenergetic form of the fat-plateau reasoning of
Highnam & Brady, "Mammographic Image Analysis", 1999). ``P_fat`` is DensityMap's fatty reference
after the detector offset and the scatter are removed (:func:`monai_bac.ops.primary.fat_reference_trend`),
per column along the heel axis; ``P_air`` is the direct exposure at least ``air_margin_mm`` from
any tissue, per column, fitted with a line in ``ln`` along the same axis (the heel effect scales
both alike, so their difference does not depend on it). The skin is taken as glandular-like
tissue, ``SKIN_MM`` = 1.45 mm on each side (the mean skin thickness measured by breast CT, Huang
et al., Med Phys 35:1199, 2008).

What it cannot see, and what it leaves to the user: a detector offset left in the image (no
collimated border to read it from, none given: it lifts the fat more than the air, and the
thickness reads low, 2-3 % on the realistic phantoms), a breast with no fatty cell under the paddle
(P_fat too low: the thickness comes out too large), a spectrum unlike SpekPy's for the header's
kVp/anode/filter (an effective attenuation k % off moves the thickness about k %), and a paddle
whose attenuation differs between the breast and the direct exposure beside it. A direct exposure
clipped at the detector's maximum, or none far enough from the breast, gives no estimate.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from monai_bac.ops.resample import block_factors
from monai_bac.units import as_spacing

__all__ = ["SKIN_MM", "AIR_MARGIN_MM", "IMAGE_THICKNESS_AGREE_MM", "IMAGE_THICKNESS_PASSES", "PROVISIONAL_THICKNESS_MM",
           "ThicknessMismatchWarning",
           "thickness_from_contrast", "thickness_curve", "fat_contrast", "air_trend"]

#: Skin thickness on each side of the compressed breast, mm (breast CT: 1.45 +/- 0.30 mm,
#: Huang et al., Med Phys 35:1199, 2008).
SKIN_MM = 1.45
#: The direct exposure is read this far from any tissue: the breast's scatter reaches into the air
#: beside it, and the skin line's blur and the breast map's edge stay clear of it.
AIR_MARGIN_MM = 10.0
#: Samples of the direct exposure (one per ``sample_mm`` cell) needed for an estimate.
MIN_AIR_SAMPLES = 200
#: Where the compressed thickness is taken from the image, the scatter removed before the fatty
#: reference is read depends on it: the two are made again until they agree within this (mm), at
#: most this many times more (the scatter's share of the fatty reference changes with the thickness
#: about a quarter as fast as the thickness the contrast gives: each pass cuts the gap ~4-fold).
IMAGE_THICKNESS_AGREE_MM = 0.5
IMAGE_THICKNESS_PASSES = 4
#: The first scatter estimate of that iteration needs a thickness: the header's when there is one,
#: else this (the middle of the 30-80 mm of most compressed breasts).
PROVISIONAL_THICKNESS_MM = 50.0


class ThicknessMismatchWarning(UserWarning):
    """The image's BodyPartThickness (or the thickness given) and the thickness its air-to-fat
    contrast implies differ by more than DensityMap's ``thickness_tolerance``."""


def thickness_curve(beam, skin_mm: float = SKIN_MM, max_mm: float = 150.0, step_mm: float = 0.25):
    """(H, ln S(0, 0) - ln S(H - 2 skin, 2 skin)): the air-to-fat contrast of a breast of each
    thickness H in [2 skin, ``max_mm``], rising strictly with H (invert with ``np.interp``)."""
    h = np.arange(2.0 * skin_mm, float(max_mm) + step_mm / 2, step_mm)
    return h, beam.log_signal(0.0) - beam.log_signal(h - 2.0 * skin_mm, 2.0 * skin_mm)


def thickness_from_contrast(
    image: np.ndarray,
    tissue: np.ndarray,
    log_fat: np.ndarray,
    columns: np.ndarray,
    spacing_mm,
    beam,
    offset: float = 0.0,
    skin_mm: float = SKIN_MM,
    air_margin_mm: float = AIR_MARGIN_MM,
    sample_mm: float = 1.0,
    air: tuple | None = None,
) -> tuple[float | None, dict]:
    """The compressed thickness (mm) that the image's air-to-fat contrast implies, or None.

    Args:
        image: (H, W) raw values linear in exposure (the offset not yet removed).
        tissue: (H, W) bool, everything that is not air (the breast map's non-zero codes).
        log_fat: ln P_fat at ``columns``: the fatty reference with offset and scatter removed
            (DensityMap's trend along the chest-wall -> nipple axis).
        columns: the image columns of ``log_fat``.
        spacing_mm: (row, col) pixel spacing.
        beam: :class:`monai_bac.physics.TransmittedBeam` of the image's tube set-up and detector.
        offset: the detector offset (raw value at zero exposure) subtracted from the air.
        skin_mm, air_margin_mm: see :data:`SKIN_MM`, :data:`AIR_MARGIN_MM`.
        sample_mm: the air is read on one pixel per cell of this size (a strided view: cheap).
        air: :func:`air_trend` of this image and tissue, when the caller has it already.

    Returns:
        (thickness mm or None, info: ``contrast`` (ln units), ``n_air`` (samples), ``reason`` why
        there is no estimate ("" when there is one)).
    """
    info: dict = dict(contrast=float("nan"), n_air=0, reason="")
    if air is None:
        air = air_trend(image, tissue, spacing_mm, offset, air_margin_mm, sample_mm)
    line, info["n_air"], info["reason"] = air
    if line is None:
        return None, info
    slope, intercept = line
    contrast = float(np.median(intercept + slope * np.asarray(columns, np.float64) - np.asarray(log_fat)))
    info["contrast"] = contrast
    h, curve = thickness_curve(beam, skin_mm)
    if not math.isfinite(contrast) or contrast <= curve[0]:
        info["reason"] = "the fatty tissue is as bright as the direct exposure"
        return None, info
    if contrast >= curve[-1]:
        info["reason"] = f"contrast beyond a {h[-1]:g} mm breast"
        return None, info
    return float(np.interp(contrast, curve, h)), info


def fat_contrast(beam, thickness_mm: float, skin_mm: float = SKIN_MM) -> float:
    """ln S(0, 0) - ln S(H - 2 skin, 2 skin): how far fat through the compressed thickness lies
    below the direct exposure, in ln units (one point of :func:`thickness_curve`)."""
    h = max(float(thickness_mm), 2.0 * skin_mm)
    return float(beam.log_signal(0.0) - beam.log_signal(h - 2.0 * skin_mm, 2.0 * skin_mm))


def air_trend(image: np.ndarray, tissue: np.ndarray, spacing_mm, offset: float = 0.0,
              air_margin_mm: float = AIR_MARGIN_MM, sample_mm: float = 1.0) -> tuple[tuple[float, float] | None, int, str]:
    """The direct exposure as a line along the image's columns: ``((slope, intercept), n, "")`` with
    ln(air - offset) = intercept + slope * column, read on ``n`` samples further than ``air_margin_mm``
    from ``tissue`` (one pixel per ``sample_mm`` cell) - or ``(None, n, why not)``."""
    sr, sc = as_spacing(spacing_mm)
    kr, kc = block_factors((sr, sc), sample_mm)
    img = np.asarray(image)[::kr, ::kc]
    near = np.asarray(tissue, bool)[::kr, ::kc]
    # any sample within the margin of tissue (or of a tissue pixel between samples: the margin is
    # much larger than a cell) is out
    far = ndimage.distance_transform_edt(~near, sampling=(kr * sr, kc * sc)) >= air_margin_mm
    values = img[far].astype(np.float64)
    none_far = f"no direct exposure {air_margin_mm:g} mm from the breast"
    if values.size < MIN_AIR_SAMPLES:
        return None, 0, none_far
    # the direct exposure is the brightest population of what is not breast; a fold of abdomen, a
    # paddle rim or a collimated strip beside it is darker (the heel effect, 10-20 % less fluence
    # at the nipple side, stays within the 0.7)
    air = far & (img > 0.7 * np.percentile(values, 99.5))
    if np.mean(img[air] >= img.max()) > 0.2:
        return None, 0, "direct exposure clipped at the image's maximum value"
    counts = air.sum(axis=0)
    cols = np.flatnonzero(counts >= 10)
    n_air = int(counts[cols].sum())
    if n_air < MIN_AIR_SAMPLES or cols.size < 2:
        return None, n_air, none_far
    # each column's median of its air samples, all columns at once: the others sort to the end
    ranked = np.sort(np.where(air[:, cols], img[:, cols], np.inf), axis=0)
    k = counts[cols]
    level = 0.5 * (ranked[(k - 1) // 2, np.arange(cols.size)].astype(np.float64)
                   + ranked[k // 2, np.arange(cols.size)]) - float(offset)
    if not np.all(level > 0):
        return None, n_air, "direct exposure not above the detector offset"
    slope, intercept = np.polyfit(cols * kc, np.log(level), 1)
    return (float(slope), float(intercept)), n_air, ""

"""Automatic correction of BAC annotations (the paper's Sec. 3.3, Fig. 6).

An annotation (e.g. a third-party annotation, TPA) is split into connected components
(8-connectivity). A component is removed when

* its skeleton is shorter than ``min_length_mm`` (geodesic length of the one-pixel skeleton,
  :mod:`monai_bac.ops.skeleton`): stand-alone micro-calcifications and small specks ("short");
* its calcification thickness ``h_calc`` (Eq. 5, mm) is below ``min_mean_calc_mm``: linear dense
  tissue and the edges of dense tissue, which look like a vessel but carry no calcium
  ("low_calc").

Both thresholds are physical (mm), so they do not change with the pixel spacing.

How a component's calcification is measured (``measure``)
----------------------------------------------------------
``"mean"`` is the paper's wording: the mean of h_calc over the component's pixels. Two effects
that have nothing to do with calcium move that mean, and the default measure removes them:

1. *Brush width.* Annotators paint with a brush wider than the vessel (1-3 mm for a 1-2 mm
   vessel), so the plain mean is the vessel's calcium diluted by however much uncalcified tissue
   the brush covered. The default takes the mean over the component's *core*: the pixels within
   ``core_mm`` (0.5 mm) of its skeleton, i.e. a ~1 mm wide track along the annotation's
   centreline.
2. *Textured background.* Eq. (5) estimates the background tissue with a grey opening; in dense,
   textured tissue, ridges of dense tissue narrower than the opening also survive as positive
   h_calc (a strand lying in dense tissue can show more apparent "calcium" than a thin-walled
   calcified vessel in fat). The default subtracts the local level of h_calc in the *unannotated*
   breast tissue around the core: the mean of h_calc over the unannotated breast pixels of a
   ``2 ring_mm`` square around each core pixel (``ring_mm`` = 3 mm), averaged over the core.

``"core_excess"`` (default) = mean h_calc over the core - mean local background level over the core:
the calcification the annotation's centreline carries *above* its surroundings, in mm.
Every removed component reports both measures (``mean_calc_mm`` and ``core_excess_calc_mm``).

Calibration of the defaults
---------------------------
The defaults were calibrated on the phantom's simulated TPA by
``benchmarks/calibrate_label_correction.py`` (see docs/TRANSFORMS.md): full-size phantoms
(0.1 mm) of both vendors, CC/MLO and L/R, seeds disjoint from the validation set. For every TPA
component the script records its skeleton length, its calcification measures from the image
(DensityMap -> CalcificationThickness with their defaults, not from the truth) and its type (the
majority of the phantom's ``tpa_source`` codes: BAC stroke, micro-calcification cluster, dense
strand, dense edge). It scans both thresholds on a grid and keeps the pair that removes the most
false-positive components while keeping at least 98 % of the true BAC length the TPA covers (a
margin over the 95 % acceptance figure), preferring the smallest thresholds among ties. The script
prints the table it chose from, so the calibration can be repeated for another detector or
another annotation team.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from monai_bac.ops.skeleton import skeleton_length_mm, thin_mask

__all__ = ["DEFAULT_MIN_LENGTH_MM", "DEFAULT_MIN_MEAN_CALC_MM", "DEFAULT_CORE_MM", "DEFAULT_RING_MM", "MEASURES",
           "label_components", "local_background", "component_features", "correct_bac_label"]

#: calibrated on the phantom TPA (benchmarks/calibrate_label_correction.py)
DEFAULT_MIN_LENGTH_MM = 8.0
#: calibrated on the phantom TPA for the default measure "core_excess" (benchmarks/calibrate_label_correction.py)
DEFAULT_MIN_MEAN_CALC_MM = 0.04
#: half-width of the core track around a component's skeleton, mm
DEFAULT_CORE_MM = 0.5
#: half-side of the square over which the surrounding tissue's h_calc is averaged, mm
DEFAULT_RING_MM = 3.0
#: the calcification measures a component can be tested with
MEASURES = ("core_excess", "mean")

_EIGHT = np.ones((3, 3), dtype=bool)


def _spacing(spacing_mm) -> tuple[float, float]:
    if np.isscalar(spacing_mm):
        return float(spacing_mm), float(spacing_mm)
    sr, sc = (float(v) for v in spacing_mm)
    if not (sr > 0 and sc > 0):
        raise ValueError(f"spacing_mm must be positive (row_mm, col_mm), got {spacing_mm}")
    return sr, sc


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a binary (H, W) mask: (int32 labels, count)."""
    labels, n = ndimage.label(np.asarray(mask) > 0, structure=_EIGHT)
    return labels.astype(np.int32, copy=False), int(n)


def local_background(calc: np.ndarray, annotated: np.ndarray, breast: np.ndarray | None, spacing_mm,
                     ring_mm: float = DEFAULT_RING_MM, box: tuple[slice, slice] | None = None) -> np.ndarray:
    """Mean h_calc of the unannotated breast pixels in a ``2 ring_mm`` square around each pixel.

    Computed with separable box sums (cost independent of ``ring_mm``) on ``box`` only (the
    result is zero elsewhere); pixels with no unannotated breast pixel around get 0.
    """
    sr, sc = _spacing(spacing_mm)
    out = np.zeros(calc.shape, np.float32)
    if box is None:
        box = (slice(0, calc.shape[0]), slice(0, calc.shape[1]))
    kr, kc = int(round(ring_mm / sr)), int(round(ring_mm / sc))
    # the box sums need the neighbourhood of the box
    ext = (slice(max(box[0].start - kr, 0), min(box[0].stop + kr, calc.shape[0])),
           slice(max(box[1].start - kc, 0), min(box[1].stop + kc, calc.shape[1])))
    valid = ~np.asarray(annotated, dtype=bool)[ext]
    if breast is not None:
        valid &= np.asarray(breast, dtype=bool)[ext]
    w = valid.astype(np.float32)
    v = np.where(valid, np.asarray(calc, dtype=np.float32)[ext], np.float32(0.0))
    size = (2 * kr + 1, 2 * kc + 1)
    num = ndimage.uniform_filter(v, size, mode="constant")
    den = ndimage.uniform_filter(w, size, mode="constant")
    bg = np.divide(num, den, out=np.zeros_like(num), where=den > 1e-6)
    out[ext] = bg
    return out


def component_features(labels: np.ndarray, n: int, calc_thickness: np.ndarray | None, spacing_mm,
                       breast: np.ndarray | None = None, core_mm: float = DEFAULT_CORE_MM,
                       ring_mm: float = DEFAULT_RING_MM) -> dict:
    """Per-component measurements, arrays indexed 0..n-1 (component id - 1).

    Keys: ``pixels``, ``area_mm2``, ``length_mm`` (skeleton, geodesic), ``mean_calc_mm`` (mean
    h_calc over the component), ``core_calc_mm`` (mean over the core), ``background_calc_mm``
    (mean local background over the core), ``core_excess_calc_mm`` (the difference; the calc
    values are nan without ``calc_thickness``), ``bbox`` ((r0, c0, r1, c1) half-open, pixels) and
    ``centroid`` ((row, col), pixels). Each component is measured on its own bounding box, so the
    cost grows with the annotated area, not with the image.
    """
    sr, sc = _spacing(spacing_mm)
    pixels = np.zeros(n, np.int64)
    length = np.zeros(n)
    mean_calc, core_calc, bg_calc = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    bbox: list[tuple[int, int, int, int]] = []
    centroid: list[tuple[float, float]] = []
    calc = None if calc_thickness is None else np.asarray(calc_thickness, dtype=np.float32)
    slices = ndimage.find_objects(labels, max_label=n)
    background = None
    if calc is not None and n:
        r0 = min(b[0].start for b in slices if b is not None)
        r1 = max(b[0].stop for b in slices if b is not None)
        c0 = min(b[1].start for b in slices if b is not None)
        c1 = max(b[1].stop for b in slices if b is not None)
        background = local_background(calc, labels > 0, breast, (sr, sc), ring_mm, (slice(r0, r1), slice(c0, c1)))
    for i, box in enumerate(slices):
        if box is None:  # pragma: no cover - ndimage.label numbers components densely
            bbox.append((0, 0, 0, 0))
            centroid.append((float("nan"), float("nan")))
            continue
        comp = labels[box] == i + 1
        rr, cc = np.nonzero(comp)
        pixels[i] = rr.size
        skel = thin_mask(comp)
        length[i] = skeleton_length_mm(skel, (sr, sc))
        if calc is not None:
            values = calc[box]
            mean_calc[i] = float(values[comp].mean(dtype=np.float64))
            if skel.any():
                near = ndimage.distance_transform_edt(~skel, sampling=(sr, sc)) <= core_mm
                core = comp & near
            else:
                core = comp
            core_calc[i] = float(values[core].mean(dtype=np.float64))
            bg_calc[i] = float(background[box][core].mean(dtype=np.float64))
        bbox.append((box[0].start, box[1].start, box[0].stop, box[1].stop))
        centroid.append((float(rr.mean() + box[0].start), float(cc.mean() + box[1].start)))
    return dict(pixels=pixels, area_mm2=pixels * sr * sc, length_mm=length, mean_calc_mm=mean_calc,
                core_calc_mm=core_calc, background_calc_mm=bg_calc, core_excess_calc_mm=core_calc - bg_calc,
                bbox=bbox, centroid=centroid)


def correct_bac_label(
    label: np.ndarray,
    calc_thickness: np.ndarray | None,
    spacing_mm,
    min_length_mm: float | None = DEFAULT_MIN_LENGTH_MM,
    min_mean_calc_mm: float | None = DEFAULT_MIN_MEAN_CALC_MM,
    measure: str = "core_excess",
    breast_mask: np.ndarray | None = None,
    core_mm: float = DEFAULT_CORE_MM,
    ring_mm: float = DEFAULT_RING_MM,
) -> tuple[np.ndarray, dict]:
    """Remove false-positive components from a BAC annotation (Sec. 3.3).

    Args:
        label: (H, W) binary annotation (any non-zero value is annotated).
        calc_thickness: (H, W) h_calc in mm (Eq. 5, :func:`monai_bac.ops.density.calcification_thickness`);
            required unless ``min_mean_calc_mm`` is None.
        spacing_mm: (row, col) pixel spacing, mm.
        min_length_mm: components with a shorter skeleton are removed ("short"); None disables it.
        min_mean_calc_mm: components whose calcification (``measure``) is lower are removed
            ("low_calc"); None disables the test.
        measure: ``"core_excess"`` (default; see the module docstring) or ``"mean"`` (the plain mean
            over the component, the paper's wording). The default threshold is calibrated for
            ``"core_excess"``; recalibrate it when using ``"mean"``.
        breast_mask: (H, W) bool; restricts the background level to breast tissue (recommended).
        core_mm: half-width of the core track around the skeleton, mm.
        ring_mm: half-side of the square of surrounding tissue for the background level, mm.

    Returns:
        (uint8 (H, W) corrected mask, report). The report holds the settings, the numbers of
        components before/kept/removed (and removed per reason), the total skeleton length
        before and after (mm), and ``removed``: one dict per removed component with ``id``,
        ``bbox`` ((r0, c0, r1, c1), pixels, half-open), ``centroid`` ((row, col), pixels),
        ``centroid_mm``, ``pixels``, ``area_mm2``, ``length_mm``, ``mean_calc_mm``,
        ``core_excess_calc_mm`` and ``reason`` ("short", "low_calc" or "short+low_calc"). An empty
        label gives an empty mask and a report with zero components.
    """
    lab = np.asarray(label)
    if lab.ndim != 2:
        raise ValueError(f"label must be (H, W), got shape {lab.shape}")
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")
    if calc_thickness is None and min_mean_calc_mm is not None:
        raise ValueError("calc_thickness is required when min_mean_calc_mm is set (pass min_mean_calc_mm=None "
                         "to correct by length only)")
    if calc_thickness is not None and np.shape(calc_thickness) != lab.shape:
        raise ValueError(f"calc_thickness shape {np.shape(calc_thickness)} differs from the label's {lab.shape}")
    sr, sc = _spacing(spacing_mm)
    labels, n = label_components(lab)
    feats = component_features(labels, n, calc_thickness, (sr, sc), breast_mask, core_mm, ring_mm)
    calc_value = feats["core_excess_calc_mm"] if measure == "core_excess" else feats["mean_calc_mm"]
    short = feats["length_mm"] < min_length_mm if min_length_mm is not None else np.zeros(n, bool)
    low = (calc_value < min_mean_calc_mm) if min_mean_calc_mm is not None else np.zeros(n, bool)
    remove = short | low
    keep_lut = np.concatenate([[False], ~remove])
    out = keep_lut[labels].astype(np.uint8)
    removed = []
    for i in np.flatnonzero(remove):
        r, c = feats["centroid"][i]
        removed.append(dict(
            id=int(i + 1), bbox=tuple(int(v) for v in feats["bbox"][i]), centroid=(round(r, 1), round(c, 1)),
            centroid_mm=(round(r * sr, 2), round(c * sc, 2)), pixels=int(feats["pixels"][i]),
            area_mm2=round(float(feats["area_mm2"][i]), 4), length_mm=round(float(feats["length_mm"][i]), 3),
            mean_calc_mm=round(float(feats["mean_calc_mm"][i]), 5),
            core_excess_calc_mm=round(float(feats["core_excess_calc_mm"][i]), 5),
            reason="+".join(name for name, flag in (("short", short[i]), ("low_calc", low[i])) if flag),
        ))
    length = feats["length_mm"]
    report = dict(
        min_length_mm=min_length_mm, min_mean_calc_mm=min_mean_calc_mm, measure=measure, core_mm=float(core_mm),
        ring_mm=float(ring_mm), spacing_mm=(sr, sc),
        n_components=n, n_kept=int(n - remove.sum()), n_removed=int(remove.sum()),
        n_removed_short=int((short & ~low).sum()), n_removed_low_calc=int((low & ~short).sum()),
        n_removed_both=int((short & low).sum()),
        length_before_mm=float(length.sum()), length_after_mm=float(length[~remove].sum()),
        pixels_before=int(feats["pixels"].sum()), pixels_after=int(feats["pixels"][~remove].sum()),
        removed=removed,
    )
    return out, report

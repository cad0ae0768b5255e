"""Length-based Dice (Dice^L, Eq. 6 of Wang et al.) and centreline Dice (clDice), in mm.

Pure numpy functions on 2D masks (H, W); the MONAI metric classes in :mod:`monai_bac.metrics`
wrap them (batched, numpy or torch, and a torch path for GPU tensors).

Dice^L (Sec. 3.4, Eq. 6)::

    Dice^L = 2 * L(S_pred inside B) / (L(S_pred) + L(S_label))

with ``S_pred`` and ``S_label`` the skeletons of prediction and annotation, ``B`` the
"temporary ground truth": the annotation skeleton dilated to ``tolerance_mm`` total width
(2.1 mm, the typical width of a breast artery), and ``L`` the geodesic length in mm
(:mod:`monai_bac.ops.skeleton`). A pixel belongs to ``B`` when its centre lies within
``tolerance_mm / 2`` (physical distance, anisotropic spacing respected) of the centre of an
annotation skeleton pixel, i.e. ``distance_transform_edt(~S_label, sampling=spacing) <= tolerance / 2``.

Bounded variant (the default, ``bounded=True``): ``min(1, Eq. 6)``. Eq. (6) as printed exceeds 1
when the prediction's skeleton inside the band is longer than the annotation's own skeleton by
more than the prediction's length outside the band, which happens when the band bridges gaps
of an under-segmented annotation and the prediction runs through them (the paper's Fig. 7), or
when a wide prediction has short side branches that stay inside the band. In both cases the
prediction covers the whole annotated trace, the "complete match" the paper gives a score of 1
(Sec. 3.4: "ranges between 0 and 1 where 1 being a complete match"). Clipping is the only
definition that equals Eq. (6) exactly wherever Eq. (6) <= 1; it is continuous and monotone in
the numerator. The alternative numerator ``min(L(S_pred in B), L(S_label near S_pred))`` was
rejected: it differs from Eq. (6) even when Eq. (6) <= 1 and it penalises a prediction for
bridging the annotation's gaps, the case Fig. 7 rewards. ``bounded=False`` gives Eq. (6) as
printed. The symmetric term ``label_in_band`` (annotation skeleton within the tolerance of the
prediction skeleton) is returned by :func:`length_dice_terms` for diagnostics.

clDice (Shit et al., CVPR 2021), measured with skeleton length in mm instead of pixel counts::

    Tprec = L(S_pred inside Y) / L(S_pred),  Tsens = L(S_label inside P) / L(S_label)
    clDice = 2 * Tprec * Tsens / (Tprec + Tsens)

Empty cases (both metrics), in line with MONAI's ``ignore_empty``: "empty" means a skeleton of
zero length (no foreground, or only isolated single-pixel specks, which have no length).
Empty annotation: ``nan`` when ``ignore_empty`` (excluded from averages, like
``monai.metrics.DiceMetric``), otherwise 1.0 if the prediction is empty too, else 0.0.
Empty prediction with a non-empty annotation: 0.0.

Skeletons are Guo-Hall thinnings (:func:`monai_bac.ops.skeleton.thin_mask`, identical to
``skimage.morphology.thin``), which the torch path reproduces pixel for pixel.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from monai_bac.ops.skeleton import mask_skeleton_points
from monai_bac.units import as_spacing

__all__ = [
    "DEFAULT_TOLERANCE_MM",
    "LengthDiceTerms",
    "CLDiceTerms",
    "band_radius_mm",
    "skeleton_band",
    "points_within",
    "length_dice_terms",
    "length_dice_from_terms",
    "length_dice",
    "cldice_terms",
    "cldice_from_terms",
    "cldice",
]

#: Width (mm) of the band around the annotation skeleton: the typical breast artery (Sec. 3.4).
DEFAULT_TOLERANCE_MM = 2.1

_REL_SLACK = 1e-9  # relative slack on the band radius, absorbs rounding of sqrt(dr^2 sr^2 + dc^2 sc^2)


@dataclass(frozen=True)
class LengthDiceTerms:
    """Lengths (mm) behind Dice^L for one image (Eq. 6)."""

    pred_length: float  #: L(S_pred)
    label_length: float  #: L(S_label)
    pred_in_band: float  #: L(S_pred inside the band around S_label): Eq. (6)'s numerator / 2
    label_in_band: float  #: L(S_label within the tolerance of S_pred) (diagnostic, length recall)

    def __iter__(self):
        return iter(astuple(self))


@dataclass(frozen=True)
class CLDiceTerms:
    """Lengths (mm) behind the length-measured clDice for one image."""

    pred_length: float  #: L(S_pred)
    label_length: float  #: L(S_label)
    pred_in_label: float  #: L(S_pred inside the annotation mask Y)
    label_in_pred: float  #: L(S_label inside the prediction mask P)

    def __iter__(self):
        return iter(astuple(self))


def _as_mask(x) -> np.ndarray:
    """bool view of a mask: nonzero = foreground (no copy when already bool)."""
    x = np.asarray(x)
    return x if x.dtype == bool else x != 0


def band_radius_mm(tolerance_mm: float = DEFAULT_TOLERANCE_MM) -> float:
    """Half the band width (mm), with a 1e-9 relative slack so that exact ties are inside."""
    tolerance_mm = float(tolerance_mm)
    if not tolerance_mm >= 0:
        raise ValueError(f"tolerance_mm must be >= 0 (mm), got {tolerance_mm}.")
    return 0.5 * tolerance_mm * (1.0 + _REL_SLACK)


def skeleton_band(skel: np.ndarray, spacing_mm, tolerance_mm: float = DEFAULT_TOLERANCE_MM) -> np.ndarray:
    """The "temporary ground truth" of Eq. (6): a skeleton dilated to ``tolerance_mm`` total width.

    ``distance_transform_edt(~skel, sampling=spacing_mm) <= tolerance_mm / 2``, computed on the
    skeleton's bounding box grown by the radius. For display and checks; the metric itself tests
    only the prediction's skeleton pixels (:func:`points_within`), which gives the same answer.
    """
    skel = np.asarray(skel, dtype=bool)
    sr, sc = as_spacing(spacing_mm)
    radius = band_radius_mm(tolerance_mm)
    band = np.zeros(skel.shape, bool)
    rows, cols = np.nonzero(skel)
    if rows.size == 0:
        return band
    mr, mc = int(np.ceil(radius / sr)) + 1, int(np.ceil(radius / sc)) + 1
    r0, r1 = max(rows.min() - mr, 0), min(rows.max() + mr + 1, skel.shape[0])
    c0, c1 = max(cols.min() - mc, 0), min(cols.max() + mc + 1, skel.shape[1])
    dist = ndi.distance_transform_edt(~skel[r0:r1, c0:c1], sampling=(sr, sc))
    band[r0:r1, c0:c1] = dist <= radius
    return band


def points_within(rows, cols, ref_rows, ref_cols, spacing_mm, radius_mm: float) -> np.ndarray:
    """Which pixels (rows, cols) have a pixel of (ref_rows, ref_cols) within ``radius_mm`` (bool).

    Physical distances between pixel centres, exact (k-d tree); equals looking the pixels up in
    the band ``distance_transform_edt(~ref, sampling=spacing_mm) <= radius_mm``.
    """
    sr, sc = as_spacing(spacing_mm)
    rows = np.asarray(rows)
    if rows.size == 0 or np.size(ref_rows) == 0:
        return np.zeros(rows.shape, bool)
    ref = np.column_stack([np.asarray(ref_rows) * sr, np.asarray(ref_cols) * sc])
    pts = np.column_stack([rows * sr, np.asarray(cols) * sc])
    dist, _ = cKDTree(ref).query(pts, k=1, distance_upper_bound=radius_mm * (1 + 1e-6))
    return dist <= radius_mm


def length_dice_terms(
    pred: np.ndarray, label: np.ndarray, spacing_mm, tolerance_mm: float = DEFAULT_TOLERANCE_MM
) -> LengthDiceTerms:
    """Skeletonise both 2D binary masks and measure the lengths (mm) of Eq. (6).

    Args:
        pred: predicted mask (H, W), nonzero = BAC.
        label: annotation mask (H, W), nonzero = BAC.
        spacing_mm: (row, col) pixel spacing in mm.
        tolerance_mm: total width (mm) of the band around the annotation skeleton.
    """
    pred, label = _as_mask(pred), _as_mask(label)
    if pred.shape != label.shape or pred.ndim != 2:
        raise ValueError(f"pred and label must be 2D masks of the same shape, got {pred.shape} and {label.shape}.")
    spacing = as_spacing(spacing_mm)
    radius = band_radius_mm(tolerance_mm)
    pr, pc, pw = mask_skeleton_points(pred, spacing)
    lr, lc, lw = mask_skeleton_points(label, spacing)
    pred_in = points_within(pr, pc, lr, lc, spacing, radius)
    label_in = points_within(lr, lc, pr, pc, spacing, radius)
    return LengthDiceTerms(float(pw.sum()), float(lw.sum()), float(pw[pred_in].sum()), float(lw[label_in].sum()))


def _empty_rules(value, pred_length, label_length, ignore_empty: bool) -> np.ndarray:
    """Apply the empty-case convention (module docstring) to a score computed from lengths."""
    empty_label = label_length <= 0
    empty_pred = pred_length <= 0
    both = np.where(empty_pred, 1.0, 0.0)
    value = np.where(empty_label, np.nan if ignore_empty else both, value)
    return np.where(~empty_label & empty_pred, 0.0, value)


def length_dice_from_terms(
    pred_in_band, pred_length, label_length, ignore_empty: bool = True, bounded: bool = True
) -> np.ndarray:
    """Dice^L from its lengths (mm); arrays broadcast, so a batch is one call.

    ``2 * pred_in_band / (pred_length + label_length)`` (Eq. 6), clipped to 1 when ``bounded``,
    with the empty-case convention of the module docstring.
    """
    a, lp, la = (np.asarray(v, dtype=np.float64) for v in (pred_in_band, pred_length, label_length))
    denom = lp + la
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(denom > 0, 2.0 * a / np.where(denom > 0, denom, 1.0), 0.0)
    if bounded:
        value = np.minimum(value, 1.0)
    return _empty_rules(value, lp, la, ignore_empty)


def length_dice(
    pred: np.ndarray,
    label: np.ndarray,
    spacing_mm,
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
    ignore_empty: bool = True,
    bounded: bool = True,
) -> float:
    """Dice^L (Eq. 6, bounded to [0, 1] unless ``bounded=False``) of two 2D binary masks.

    See the module docstring for the definition, the bound and the empty cases.

    Example::

        length_dice(pred_mask, gt_mask, spacing_mm=(0.1, 0.1))  # 2.1 mm band
    """
    t = length_dice_terms(pred, label, spacing_mm, tolerance_mm)
    return float(length_dice_from_terms(t.pred_in_band, t.pred_length, t.label_length, ignore_empty, bounded))


def cldice_terms(pred: np.ndarray, label: np.ndarray, spacing_mm) -> CLDiceTerms:
    """Skeletonise both 2D binary masks and measure the lengths (mm) of the clDice terms."""
    pred, label = _as_mask(pred), _as_mask(label)
    if pred.shape != label.shape or pred.ndim != 2:
        raise ValueError(f"pred and label must be 2D masks of the same shape, got {pred.shape} and {label.shape}.")
    spacing = as_spacing(spacing_mm)
    pr, pc, pw = mask_skeleton_points(pred, spacing)
    lr, lc, lw = mask_skeleton_points(label, spacing)
    return CLDiceTerms(
        float(pw.sum()), float(lw.sum()), float(pw[label[pr, pc]].sum()), float(lw[pred[lr, lc]].sum())
    )


def cldice_from_terms(pred_in_label, label_in_pred, pred_length, label_length, ignore_empty: bool = True) -> np.ndarray:
    """clDice from its lengths (mm): harmonic mean of topology precision and sensitivity."""
    a, b, lp, la = (np.asarray(v, dtype=np.float64) for v in (pred_in_label, label_in_pred, pred_length, label_length))
    with np.errstate(divide="ignore", invalid="ignore"):
        tprec = np.where(lp > 0, a / np.where(lp > 0, lp, 1.0), 0.0)
        tsens = np.where(la > 0, b / np.where(la > 0, la, 1.0), 0.0)
        s = tprec + tsens
        value = np.where(s > 0, 2.0 * tprec * tsens / np.where(s > 0, s, 1.0), 0.0)
    return _empty_rules(value, lp, la, ignore_empty)


def cldice(pred: np.ndarray, label: np.ndarray, spacing_mm, ignore_empty: bool = True) -> float:
    """Centreline Dice (Shit et al. 2021) of two 2D binary masks, with skeleton lengths in mm."""
    t = cldice_terms(pred, label, spacing_mm)
    return float(cldice_from_terms(t.pred_in_label, t.label_in_pred, t.pred_length, t.label_length, ignore_empty))


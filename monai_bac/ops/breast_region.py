"""Breast region map of a raw mammogram: background, periphery, compressed region, pectoral muscle.

All three normalisations of the paper (Wang et al., Sec. 3.1, Fig. 2; Eq. 2-4) work inside a
segmentation map that VolparaDensity produced for the authors. This module builds the same map
by classical image analysis, from the raw image *linear in exposure* (breast = LOW values, the
direct-exposure background = high values; what :func:`monai_bac.data.load_mammogram` returns):

====  ===========================================================================
code  region
====  ===========================================================================
0     background (direct exposure, or nothing found)
1     periphery: the uncompressed rim where the thickness falls off to the skin line
2     compressed region: in contact with the paddle, thickness = paddle separation H0
3     pectoral muscle (MLO views)
====  ===========================================================================

Steps (most work is done on a block-averaged copy of about ``work_spacing_mm``):

0. **Exposed field**: a collimator's unexposed band along an image edge (raw values at the
   detector offset, darker than anything behind tissue; :mod:`monai_bac.ops.exposed_field`) is
   left out and coded background, so that it is neither tissue nor in the way of the muscle search.
1. **Flat field**: a residual linear non-uniformity of the exposure (heel effect), fitted to
   ln P of the direct exposure within 40 mm of a first outline, is subtracted (``flat_field``)
   *before* the skin line is drawn: the skin threshold is a level of ln P, and a 20 % heel
   effect moves the air level by more than the threshold's distance from it.
2. **Breast / background.** Otsu on ln(P) separates air from tissue; the air level (median) and
   the tissue level give the contrast ``C``. The skin line is the iso-line ``ln P = air -
   skin_fraction * C``: close to the air level, because a compressed breast's thickness rises
   steeply (like sqrt(distance)) from the skin line, so a mid-way (Otsu) threshold would cut
   millimetres of thin skin-side tissue off. Structures narrower than 4 mm are opened away (an
   MLO's paddle rim seen edge-on: a line across the field), the largest component is kept, a
   body attached to it only through thinner tissue and reaching the image edge (an MLO's
   abdominal fold) is cut off along the thinnest tissue (watershed), and so is a fold thin all
   over, wider than the breast's own thin band along its skin line, that enters across the top or
   bottom edge (it can meet the breast where the breast is already thick); holes are filled. An image
   whose two Otsu classes are not separated by much more than the air noise (from neighbouring
   pixels, so a field gradient is no noise) has no breast: all zeros.
3. **Chest-wall side**: the image edge (first or last columns) the breast touches most; the
   laterality tag is not trusted. The analysis runs in a canonical frame with the chest wall
   on the left and is mirrored back at the end.
4. **Periphery width** from the thickness fall-off towards the skin line. When the compressed
   thickness H0 is known (``thickness_mm``, DICOM BodyPartThickness), a scatter estimate
   (:func:`monai_bac.ops.primary.estimate_scatter`, Boone & Cooper 2000, the one DensityMap
   removes) is subtracted inside the breast first: behind a grid the scatter-to-primary ratio
   rises from a few percent at the skin line to 0.2-0.3 in the middle of a 50-70 mm breast, a
   slow brightening of ln P towards the middle that reads as the fall-off flattening early (a
   too narrow periphery) or, where dense tissue lowers the middle, as a long tail (a too wide
   one). With ``d`` the
   distance to the skin line, the upper envelope ``U(d)`` (``envelope_percentile`` of ln P per
   distance bin: the fatty pixels; dense tissue and muscle only lower P) follows Beer-Lambert,
   ``U(d) = air - A * t(d / w)`` with ``A = mu_fat * H0`` and ``t`` the relative thickness of
   the uncompressed edge (:func:`~monai_bac.ops.periphery_fit.edge_profile`; ``t = 1`` from ``d = w`` on, where the paddle
   touches). ``w`` (mm), ``A`` and the profile's shape (quarter ellipse, the classical model
   of a compressed breast's edge, or a steeper/linear/parabolic variant, :data:`~monai_bac.ops.periphery_fit.EDGE_SHAPES`)
   are fitted by a robust high-quantile regression over all distance bins (points below the
   model cost less than points above). The periphery is ``d < w``. Fitting the profile,
   rather than thresholding the envelope at "plateau within a tolerance", removes the bias
   of a threshold on a profile that meets the plateau tangentially (the tolerance-crossing
   of the quarter ellipse lies ~10 % of ``w`` inside the contact edge).
5. **Pectoral muscle** (``view="MLO"``, or ``view=None`` with stricter checks), on the image
   with the fitted fall-off removed (so the bright periphery does not compete): a Hough
   transform of the gradient of the smoothed ln(P), restricted to edges that get *brighter*
   away from the upper chest-wall corner, each vote capped at the gradient of the faintest
   muscle edge accepted (so a long faint edge beside dense tissue is not outvoted by the
   short strong edges of dense clumps), finds the muscle's straight edge; it is
   validated (angle, it must cut off the corner of the breast, enough support and contrast
   along it) and refined into a slightly curved edge (quadratic offset from the line, robust
   fit of the gradient maxima along it). When none passes and the view is known, a line of
   either polarity is searched once more (dense tissue beside the muscle can attenuate more
   than the muscle itself, so the step changes sign along the edge); the check then asks for
   the step's magnitude. When no line passes (a low-contrast muscle whose edge
   tapers over millimetres, or a curved one), :func:`~monai_bac.ops.pectoral.find_pectoral_curve` searches quadratic
   edges from the top to the chest wall for the largest integral of the derivative of ln P
   across them, deeper than the periphery, with the same checks.
5b. **A breast implant** (with the thickness and the tube set-up, ``beam``): no tissue attenuates
   more than glandular tissue through H0; a silicone implant's shadow does
   (:mod:`monai_bac.ops.implant`, read against fat through H0 as the direct exposure and the
   spectrum place it). The shadow is kept out of the scatter anchor, the muscle is searched again
   on a fall-off fitted without it, and step 6 fits one width without it, on the plateau the
   physics places (``PLATEAU_FROM_AIR``): what tissue is left beside an implant is often only the rim.
6. The width is refitted without the muscle, then per angular sector around the chest-wall
   midpoint, smoothed across sectors and bounded, so that a periphery that is wider at the nipple
   than near the chest wall is followed; each breast pixel takes the width interpolated, at the
   angle of its nearest skin point, between the windows' centres. The windows are one sector
   (``pi / n_sectors``) wide and centred ``sector_overlap`` (2) times per sector angle: as many pixels
   per fit as disjoint sectors, but the width sampled twice as often (eight disjoint sectors given
   the true width of each still left the compressed region of thick breasts at 0.90-0.97 Dice: the
   width changes between their centres). A window ("sector" below) first fits its own amplitude and
   edge shape, and keeps them when its fat plateau lies higher (smaller ``A``) than the global one
   or deeper by at most ``deeper_plateau_tolerance`` (0.05 ln units, about 1 mm of fat: what
   scatter and heel residue leave between sectors); a plateau deeper still is dense tissue under
   the fat, and the sector falls back to the global amplitude, with its edge shape fitted again
   under it: the plateau ``A = mu_fat * H0`` is the same all round the outline (one paddle
   separation), the fall-off shape of the uncompressed rim is not (it varies with the local rim
   width). A sector whose plateau now agrees with the global one (within ``plateau_tolerance``, ln
   units, 0.02 ~ 0.5 mm of fat, on either side; a fallen-back sector always) keeps the global
   shape unless its own fits the sector's envelope clearly better (the pinball loss lower by
   more than ``shape_margin``, 5 %): on a sector's fewer pixels shape and width trade off (on an
   ideal phantom with a 17.5 mm quarter-ellipse rim all round, a (1.5, 2) profile 14 mm wide fitted
   within 1-4 % of the loss and made the compressed region 2 % too large). Reason: the global
   envelope (a high percentile over the whole outline at each distance) follows the brightest, i.e.
   the widest part of the rim, and its plateau is pulled too deep by what only lowers the signal
   (dense tissue under the subcutaneous fat, scatter from the rim into the compressed edge); a
   sector whose own plateau is higher was then pushed to a too wide periphery (thick, 70-80 mm
   breasts whose rim width varies round the outline: the compressed region came out up to 2x too
   small). For the same reason the sector widths are bounded to ``sector_bounds`` = 0.5-1.1 times
   the global width (the global fit is close to the widest sector, not the mean), and a sector
   holding too little of the fall-off to fit (beside an MLO's pectoral muscle) takes the width of
   its fitted neighbours, not the global one (a window is fitted when its pixels within the global
   width cover ``min_window_arc_mm`` x that width). Where the global plateau lies deeper than the
   third shallowest window's (neighbouring windows share pixels: the plateau must be seen beyond one
   window's neighbours) by more than ``global_plateau_tolerance`` (0.1 ln units, ~2 mm of fat), a
   dense centre has dragged it (the deep distance bins hold no fat at all): that window plateau is
   taken as the breast's and the global width refitted on it before the windows are decided. Only
   windows seen to reach their plateau vote: one whose width ran into its bound (a rim wider than
   the bound, or no plateau in it), or whose envelope ends less than ``min_plateau_mm`` (10 mm)
   beyond its fitted width (``EdgeFit.reach_mm``: the nipple windows of a wide rim, whose fall-off
   still runs at their deepest pixels), fitted the amplitude of wherever its fall-off had got to. A window's
   envelope (a high percentile per distance) follows the widest rim within its angle, so with
   ``align_windows`` a second pass puts each pixel on its window centre's width (distance x
   w(centre) / w(the pixel's own angle), w from the first pass) and fits the windows again. Last,
   every fitted width (per window, or the global one with ``n_sectors=1``) is drawn
   ``width_margin`` wider (:data:`WIDTH_MARGIN`: 8 % in CC views, 2 % in MLO views): on realistic
   images the windows come out short, mostly by what the scatter step leaves (step 4;
   scatter-free twins of 64-80 mm phantoms are fitted to within 2 % of the true width, the same
   images with scatter and the step 4-12 % short; docs/design-log/breast_region.md, "Where the remaining misses
   come from"), CC views more than MLO views. 0 for a simulation without scatter.
7. **Full resolution.** Codes are upsampled by nearest neighbour; along the skin line every
   full-resolution pixel is re-thresholded, so the outline is exact to the input's pixel.

The fall-off model and its fit live in :mod:`monai_bac.ops.periphery_fit`, the windows of step 6
in :mod:`monai_bac.ops.periphery_windows`, the muscle search in :mod:`monai_bac.ops.pectoral`; this
module is the driver.
Every length a user can set is in mm; pixel counts are derived from ``spacing_mm`` (row, col).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from monai.transforms.utils import get_largest_connected_component_mask
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.morphology import skeletonize
from skimage.segmentation import watershed

from monai_bac.ops.exposed_field import exposed_field
from monai_bac.ops.implant import bound_thicknesses, glandular_bound, shadow_over_bounds, thinnest_readout
from monai_bac.ops.pectoral import PectoralEdge, find_pectoral, find_pectoral_curve, pectoral_mask
from monai_bac.ops.periphery_fit import EDGE_SHAPES, EdgeFit, edge_profile, periphery_width
from monai_bac.ops.periphery_windows import PeripheryWindows, WindowRules, skin_point_angle, window_centres
from monai_bac.ops.primary import estimate_scatter
from monai_bac.ops.resample import block_factors, block_mean
from monai_bac.ops.thickness_check import fat_contrast
from monai_bac.units import as_spacing

__all__ = [
    "BACKGROUND",
    "PERIPHERY",
    "COMPRESSED",
    "PECTORAL",
    "BreastRegionResult",
    "PectoralEdge",
    "breast_region_map",
    "analyse_breast_region",
    "breast_mask",
    "chest_wall_side",
    # defined in monai_bac.ops.pectoral, .periphery_fit and .periphery_windows, importable from here as before
    "find_pectoral",
    "find_pectoral_curve",
    "periphery_width",
    "edge_profile",
    "EdgeFit",
    "EDGE_SHAPES",
    "WIDTH_MARGIN",
    "skin_point_angle",
    "window_centres",
]

from monai_bac.breast_map import BACKGROUND, COMPRESSED, PECTORAL, PERIPHERY  # noqa: F401  (the one set of codes)


#: How much wider than fitted the periphery is drawn, by view (step 6). With no margin the
#: windows of 60-80 mm development images come out short, CC views more than MLO views: median
#: fitted / true width 0.91 and 0.94 (308 images of the accord, pledge, covenant and charter sets
#: made with the phantom of 6320785); these margins gave their compressed region the best Dice
#: (docs/design-log/breast_region.md, "A margin per view").
WIDTH_MARGIN = {"CC": 0.08, "MLO": 0.02}
#: An implant's shadow is looked for this far (mm) inside the skin line: the periphery's last
#: millimetres fall off faster than anything behind them.
IMPLANT_SKIN_MM = 5.0
#: With an implant's shadow the plateau's depth below the air is this fraction of the air-to-fat
#: contrast of H0 (:func:`~monai_bac.ops.thickness_check.fat_contrast`): the images' own plateau over
#: the physics' on ten realistic phantoms without an implant (seeds 58050-58059) read 0.948-0.996,
#: median 0.978 (what the scatter step leaves, and the envelope's percentile).
PLATEAU_FROM_AIR = 0.98
#: Beside an implant's shadow the pectoral muscle's edge is read no nearer than this (mm): the
#: shadow found may fall short of the implant, whose own edge is a step the muscle search would take.
MUSCLE_CLEAR_OF_SHADOW_MM = 5.0


@dataclass
class BreastRegionResult:
    """Everything :func:`analyse_breast_region` found; ``breast_map`` is in the input's orientation."""

    breast_map: np.ndarray  # uint8 (H, W), codes BACKGROUND/PERIPHERY/COMPRESSED/PECTORAL
    found: bool  # a breast was found
    chest_wall: str | None = None  # "left" or "right" (image columns), None when no breast
    periphery_width_mm: float = float("nan")  # global fit
    edge_shape: tuple[float, float] = (float("nan"), float("nan"))  # (a, b) of the fitted edge_profile
    # per sector window (n_sectors x sector_overlap, from the top of the chest wall round to the bottom)
    sector_widths_mm: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pectoral: PectoralEdge | None = None
    air_level: float = float("nan")  # ln(P + 1) of the direct exposure
    plateau_level: float = float("nan")  # ln(P + 1) of fat in the compressed region (air - A)
    skin_threshold: float = float("nan")  # linear-domain threshold used for the skin line
    work_spacing_mm: tuple[float, float] = (float("nan"), float("nan"))
    # the (row, column) slices of the exposed field analysed (step 0); ``pectoral`` is in its frame
    exposed_box: tuple[slice, slice] | None = None
    implant_shadow_mm2: float = 0.0  # area of an implant's shadow (step 5b), 0 when none was found


# ----------------------------------------------------------------------------- small helpers
def _edge_band(mask: np.ndarray) -> np.ndarray:
    """Pixels within one 4-neighbour step of the mask's edge: its cross dilation minus its cross
    erosion (``scipy.ndimage.binary_dilation`` & ~``binary_erosion``, zero outside), by array shifts."""
    p = np.pad(mask, 1)
    centre, up, down, left, right = p[1:-1, 1:-1], p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]
    return (centre | up | down | left | right) & ~(centre & up & down & left & right)


def breast_mask(
    log_img: np.ndarray,
    spacing_mm,
    skin_fraction: float = 0.1,
    min_breast_area_mm2: float = 500.0,
    min_contrast: float = 0.05,
    thin_mm: float = 4.0,
    body_fractions: tuple[float, ...] = (0.3, 0.4, 0.5, 0.7),
    min_body_mm2: float = 100.0,
    refine: bool = True,
    thin_body_fraction: float = 0.5,
    thin_body_radius_mm: float = 5.0,
) -> tuple[np.ndarray, float, float, float]:
    """Breast (True) vs direct-exposure background of a ln(P + 1) image.

    Returns ``(mask, threshold, air_level, tissue_level)`` in the log domain. The mask is all
    False (and the levels NaN) when no breast is found: the Otsu classes are not separated by
    ``max(min_contrast, 10 * air noise)``, or the largest component is smaller than
    ``min_breast_area_mm2``. Tissue narrower than ``thin_mm`` is opened away (the paddle's rim
    seen edge-on in an MLO view: a line across the field), and a body attached to the breast
    only through thinner tissue is cut off (the abdominal
    fold below an MLO's breast; ``body_fractions``: the levels tried, as fractions of the
    contrast), see :func:`_cut_attached_bodies`; a fold thin all over, joined to the breast where
    the breast is already thick, is cut off by :func:`_cut_thin_bodies` (``thin_body_fraction``;
    ``thin_body_radius_mm``, the smallest disc the fold must hold - larger where the breast's own
    thin band along the skin line is wide). ``refine=False``: every pixel below the threshold, as is (no
    opening, component, cut or hole filling; only the air is needed).
    """
    sr, sc = as_spacing(spacing_mm)
    empty = (np.zeros(log_img.shape, bool), float("nan"), float("nan"), float("nan"))
    v = log_img.ravel()
    lo, hi = np.percentile(v, [0.5, 99.9])
    if not np.isfinite(hi - lo) or hi - lo <= 1e-6:
        return empty
    t = float(threshold_otsu(np.clip(v, lo, hi), nbins=256))
    bright, dark = v[v > t], v[v <= t]
    if bright.size == 0 or dark.size == 0:
        return empty
    air = float(np.median(bright))
    # the air's noise from neighbouring pixels: a field gradient (heel effect) is no noise
    pair = (log_img[:, 1:] > t) & (log_img[:, :-1] > t)
    steps = np.diff(log_img, axis=1)[pair] if pair.any() else bright - air
    sigma = 1.4826 * float(np.median(np.abs(steps))) / math.sqrt(2.0 if pair.any() else 1.0)
    tissue = float(np.median(dark))
    contrast = air - tissue
    if contrast < max(min_contrast, 10.0 * sigma):
        return empty
    thr = air - skin_fraction * contrast
    if not refine:
        return log_img < thr, thr, air, tissue
    tissue_px = _open_mm(log_img < thr, (sr, sc), thin_mm / 2.0)
    if not tissue_px.any():
        return empty
    mask = np.asarray(get_largest_connected_component_mask(tissue_px, connectivity=1))
    mask = _cut_attached_bodies(mask, log_img, air, contrast, (sr, sc), min_body_mm2, body_fractions)
    mask = _cut_thin_bodies(mask, log_img, air - thin_body_fraction * contrast, (sr, sc), thin_body_radius_mm,
                            min_body_mm2)
    mask = ndimage.binary_fill_holes(mask)
    if mask.sum() * sr * sc < min_breast_area_mm2:
        return empty
    return mask, thr, air, tissue


def _open_mm(mask: np.ndarray, spacing_mm, radius_mm: float) -> np.ndarray:
    """Binary opening by a square of half-side ``radius_mm`` (separable minimum and maximum
    filters): removes structures thinner than ``2 radius_mm`` (a line across the field). The
    image edges are extended, not zero, so the breast is not eaten where the detector cuts it
    (chest wall, axilla)."""
    sr, sc = spacing_mm
    ky, kx = 2 * int(radius_mm / sr) + 1, 2 * int(radius_mm / sc) + 1
    if ky == 1 and kx == 1:
        return mask
    m = mask.view(np.uint8)
    m = ndimage.minimum_filter1d(ndimage.minimum_filter1d(m, ky, axis=0, mode="nearest"), kx, axis=1, mode="nearest")
    m = ndimage.maximum_filter1d(ndimage.maximum_filter1d(m, ky, axis=0, mode="nearest"), kx, axis=1, mode="nearest")
    return m.view(bool)


def _cut_attached_bodies(mask: np.ndarray, log_img: np.ndarray, air: float, contrast: float, spacing_mm,
                         min_body_mm2: float, fractions=(0.3, 0.4, 0.5, 0.7)) -> np.ndarray:
    """Remove bodies that only touch the breast through thinner tissue (an MLO's abdominal fold).

    At a level ``air - f * contrast`` of ln P (``f`` in ``fractions``, thinnest first) the thick
    parts of the mask fall into separate components where the tissue between them is thinner;
    the largest is the breast. Another thick part of at least ``min_body_mm2`` that reaches the
    image edge (the abdomen enters the field from outside) is a body of its own: the mask is
    split between them along the thinnest tissue (watershed of ln P from the thick parts) and
    that body's side is dropped. The compressed breast is one thick part at every level used
    (its paddle-contact region is the thickest tissue and connected)."""
    sr, sc = spacing_mm
    for f in fractions:
        cores, n = ndimage.label(mask & (log_img < air - f * contrast))
        if n < 2:
            continue
        areas = np.bincount(cores.ravel(), minlength=n + 1) * (sr * sc)
        areas[0] = 0.0
        main = int(np.argmax(areas))
        border = np.zeros(n + 1, bool)
        for edge in (cores[0], cores[-1], cores[:, 0], cores[:, -1]):
            border[np.unique(edge)] = True
        others = np.flatnonzero((areas >= min_body_mm2) & border)
        others = others[others != main]
        if others.size == 0:
            continue
        markers = np.zeros(mask.shape, np.int32)
        markers[cores == main] = 1
        markers[np.isin(cores, others)] = 2
        return mask & (watershed(log_img, markers, mask=mask) == 1)
    return mask


#: the thin-fold cut's disc is at least this many times the breast's own thin band's half-width
THIN_BAND_FACTOR = 1.5


def _cut_thin_bodies(mask: np.ndarray, log_img: np.ndarray, thin_level: float, spacing_mm, radius_mm: float,
                     min_body_mm2: float) -> np.ndarray:
    """Remove a body that is thin all over and enters the field across the top or bottom image edge
    (an MLO's abdominal fold beside a thick breast).

    :func:`_cut_attached_bodies` needs thinner tissue between the breast and the body, but a fold
    can meet the breast where the breast is already thick: a compressed breast's edge rises like a
    semicircle, to 15-20 % of H0 within half a millimetre of the skin line, under one pixel of the
    working grid. What sets such a fold apart is its extent: the breast's own thin tissue
    (``ln P > thin_level``, thinner than half its typical tissue) is a band along the skin line
    (holding discs of at most 4.6 mm on 768 realistic phantoms), while the fold is thin over a
    region that holds a disc of ``radius_mm``. The union of such discs (an opening by a disc, from
    the distance transform) that reaches the top or bottom edge with at least ``min_body_mm2`` is
    dropped, and the largest component of what is left kept.

    How wide the band is depends on how the breast's edge meets the paddle (a linear or sine
    fall-off leaves a band of 10-17 mm where the phantom's tangent edge leaves 3): the disc is
    therefore at least ``THIN_BAND_FACTOR`` times the band's own half-width, the median over the
    skeleton of the thin tissue of its distance to the border (the band is long, a fold short,
    so the median is the band's). On 36 ideal phantoms re-formed with other edge profiles the band
    held discs of at most 1.25 times that median; the folds of the tests hold discs of 11-13 mm
    beside a band of 0.4 mm."""
    sr, sc = spacing_mm
    thin = mask & (log_img > thin_level)
    half_width = ndimage.distance_transform_edt(thin, sampling=(sr, sc))
    skeleton = skeletonize(thin)
    if skeleton.any():
        radius_mm = max(radius_mm, THIN_BAND_FACTOR * float(np.median(half_width[skeleton])))
    wide = half_width >= radius_mm
    if not wide.any():
        return mask
    opened = thin & (ndimage.distance_transform_edt(~wide, sampling=(sr, sc)) <= radius_mm)
    parts, n = ndimage.label(opened)
    areas = np.bincount(parts.ravel(), minlength=n + 1) * (sr * sc)
    at_edge = np.zeros(n + 1, bool)
    at_edge[np.unique(parts[[0, -1]])] = True
    drop = np.flatnonzero(at_edge & (areas >= min_body_mm2))
    drop = drop[drop > 0]
    if drop.size == 0:
        return mask
    return np.asarray(get_largest_connected_component_mask(mask & ~np.isin(parts, drop), connectivity=1))


def chest_wall_side(mask: np.ndarray, spacing_mm=(1.0, 1.0), edge_mm: float = 3.0) -> str | None:
    """Which image edge the chest wall is on: ``"left"`` (column 0) or ``"right"``.

    The breast is cut by the detector edge at the chest wall, so it touches that edge over its
    whole height; the side with more breast pixels within ``edge_mm`` of the edge wins. When
    it touches neither edge the side nearer to the breast's centroid is taken (the breast is
    widest at its base). ``None`` for an empty mask. The DICOM laterality is not used.
    """
    mask = np.asarray(mask, bool)
    if not mask.any():
        return None
    _, sc = as_spacing(spacing_mm)
    k = max(1, int(round(edge_mm / sc)))
    left, right = int(mask[:, :k].sum()), int(mask[:, -k:].sum())
    if left != right:
        return "left" if left > right else "right"
    cols = np.nonzero(mask.any(0))[0]
    centroid = float(np.nonzero(mask)[1].mean())
    return "left" if centroid - cols[0] <= cols[-1] - centroid else "right"


# -------------------------------------------------------------------------------------- driver
def _field_plane(lg: np.ndarray, air: np.ndarray, spacing_mm, max_points: int = 20000) -> np.ndarray | None:
    """A residual field non-uniformity (heel effect) of ln P: a plane fitted robustly to the
    direct exposure ``air``, zero at the image centre; None when there is nothing to fit. A slope
    is only fitted along an axis the air region spans by >= 30 mm (no extrapolation from a strip)."""
    sr, sc = spacing_mm
    ys, xs = np.nonzero(air)
    if ys.size < 100:
        return None
    step = max(1, ys.size // max_points)
    ys, xs = ys[::step], xs[::step]
    v = lg[ys, xs].astype(np.float64)
    cols = [np.ones_like(v)]
    use_y = np.ptp(ys) * sr >= 30.0
    use_x = np.ptp(xs) * sc >= 30.0
    if use_y:
        cols.append(ys * sr)
    if use_x:
        cols.append(xs * sc)
    if len(cols) == 1:
        return None
    X = np.stack(cols, 1)
    keep = np.ones(v.size, bool)
    coef = np.zeros(X.shape[1])
    for _ in range(3):
        coef, *_ = np.linalg.lstsq(X[keep], v[keep], rcond=None)
        res = v - X @ coef
        mad = 1.4826 * np.median(np.abs(res[keep] - np.median(res[keep]))) + 1e-9
        keep = np.abs(res) < 3 * mad
    slope_y = coef[1] if use_y else 0.0
    slope_x = coef[-1] if use_x else 0.0
    yy = np.arange(lg.shape[0])[:, None] * sr
    xx = np.arange(lg.shape[1])[None, :] * sc
    return (slope_y * (yy - yy.mean()) + slope_x * (xx - xx.mean())).astype(np.float32)


def _without_scatter(coarse: np.ndarray, lg: np.ndarray, mask: np.ndarray, field, depth: np.ndarray, spacing_mm,
                     thickness_mm: float, spr_scale: float = 1.0, shadow: np.ndarray | None = None,
                     grid: bool = True) -> np.ndarray:
    """ln(P + 1) with a scatter estimate for ``thickness_mm`` removed inside ``mask`` (the SPR
    is anchored in the breast's deep half, where ``depth``, the distance to the skin line, is over
    half its largest value); ``field`` (the flat-field plane, or None) stays removed. The air is
    left as it is: it is the direct beam, scatter adds a percent or two there. An implant's
    ``shadow`` is kept out of the anchor (its primary is a fraction of the scatter in it)."""
    # "local": the setting this step was chosen with (5d13115); the homogeneous reference that
    # DensityMap uses lowered the compressed-region Dice here (docs/design-log/breast_region.md, the scatter step)
    centre = depth > 0.5 * depth.max()
    if shadow is not None:
        centre &= ~shadow
    est, _ = estimate_scatter(coarse, mask, centre, spacing_mm, thickness_mm,
                              spr_scale=spr_scale, spr_reference="local", grid=grid)
    # the iteration keeps the primary >= 5 % of the measured value; the floor only guards the log
    clean = np.log(np.maximum(coarse - est, 0.05 * coarse) + 1.0)
    if field is not None:
        clean -= field
    return np.where(mask, clean, lg).astype(np.float32)


def _find_implant(coarse: np.ndarray, mask: np.ndarray, field, depth: np.ndarray, air: float, spacing_mm,
                  thickness_mm: float, beam, implant_expected: bool, grid: bool = True) -> np.ndarray | None:
    """Step 5b: the shadow of an implant (:func:`monai_bac.ops.implant.implant_shadow`) in ``mask``
    (the breast without its muscle), or None. The excess is read against the direct exposure: fat
    through ``thickness_mm`` (and its skin) lies :func:`~monai_bac.ops.thickness_check.fat_contrast`
    below the ``air`` level, glandular tissue ``L_g(H0)`` of ``beam`` below that; the image's fatty
    envelope cannot serve, as in a CC view the deep half of the breast is the implant. The scatter is
    removed with the homogeneous reference (DensityMap's), which an implant in the middle does not
    scale down. The thicknesses of :func:`~monai_bac.ops.implant.bound_thicknesses` are read in
    turn (:func:`~monai_bac.ops.implant.shadow_over_bounds`), each with its own scatter (what the
    verdict measured; DensityMap keeps the scatter removed for the thickness in use: made the same
    way here, the saline readings moved both ways and the mean error under a readout 25 % high rose
    0.2 pp, docs/design-log/breast_region.md)."""
    look = mask & (depth > IMPLANT_SKIN_MM)

    def excesses():
        for h in bound_thicknesses(thickness_mm, implant_expected):
            est, _ = estimate_scatter(coarse, mask, depth > 0.5 * depth.max(), spacing_mm, h,
                                      spr_reference="homogeneous", grid=grid)
            clean = np.log(np.maximum(coarse - est, 0.05 * coarse) + 1.0)
            if field is not None:
                clean -= field
            yield (clean - (air - fat_contrast(beam, h))) / glandular_bound(beam, h)

    return shadow_over_bounds(excesses(), look, spacing_mm)[0]


def analyse_breast_region(
    image_hw,
    spacing_mm,
    view: str | None = None,
    *,
    work_spacing_mm: float = 0.5,
    skin_fraction: float = 0.1,
    min_breast_area_mm2: float = 500.0,
    n_sectors: int = 8,
    sector_overlap: int = 2,
    sector_bounds: tuple[float, float] = (0.5, 1.1),
    envelope_percentile: float = 97.0,
    edge_shapes=EDGE_SHAPES,
    flat_field: bool = True,
    flat_field_reach_mm: float = 40.0,
    pectoral: bool | None = None,
    plateau_tolerance: float = 0.02,
    shape_margin: float = 0.05,
    deeper_plateau_tolerance: float = 0.05,
    global_plateau_tolerance: float = 0.1,
    min_window_arc_mm: float = 10.0,
    min_plateau_mm: float = 10.0,
    align_windows: bool = True,
    width_margin: float | None = None,
    thickness_mm: float | None = None,
    scatter: bool = True,
    spr_scale: float = 1.0,
    unexposed_border: bool = True,
    beam=None,
    implant_expected: bool = False,
    grid: bool = True,
) -> BreastRegionResult:
    """Breast region map and the quantities found on the way (see the module docstring).

    Args:
        image_hw: raw image linear in exposure, (H, W); breast = low values.
        spacing_mm: pixel spacing (row, col) in mm, or one number.
        view: DICOM ViewPosition: "CC" (and "XCCL", ...: no pectoral search), "MLO" (or "ML",
            "LM", "LMO"); None or anything else: unknown, a pectoral muscle is looked for with
            stricter checks.
        work_spacing_mm: spacing of the block-averaged copy the analysis runs on.
        skin_fraction: the skin line is at ``air - skin_fraction * (air - tissue)`` in ln P.
        min_breast_area_mm2: smaller objects are not a breast (result: all background).
        n_sectors: angular sectors (around the chest-wall midpoint) for the periphery width;
            1 fits one width for the whole breast.
        sector_overlap: sector windows per sector angle: the width is fitted in windows one
            sector (``pi / n_sectors``) wide whose centres lie ``pi / (n_sectors *
            sector_overlap)`` apart (module docstring, step 6); 1: disjoint sectors.
        sector_bounds: sector widths are kept within these multiples of the global width
            (which follows the widest part of the rim, see the module docstring, step 6).
        envelope_percentile: percentile of ln P per distance bin taken as the fat envelope.
        edge_shapes: edge-profile shapes ``(a, b)`` tried (see :func:`edge_profile`);
            ``[(2, 2)]`` keeps the quarter ellipse only.
        flat_field: remove a residual linear field non-uniformity (heel effect), fitted to the
            direct exposure within ``flat_field_reach_mm`` of the breast, before the skin line is
            drawn (the skin threshold is a level of ln P), the periphery fit and the pectoral search.
        pectoral: force (True) or skip (False) the pectoral search; default: from ``view``.
        plateau_tolerance: a sector whose fat plateau depth ``A`` is within this (ln units) of
            the global one (a sector that fell back to the global ``A`` always is) keeps the global
            edge shape unless its own fits clearly better (``shape_margin``; module docstring,
            step 6); 0: every sector keeps its own best shape.
        shape_margin: such a sector (its plateau within ``plateau_tolerance`` of the global one)
            keeps the global edge shape unless its own shape lowers the fit's loss by more than
            this fraction (module docstring, step 6); 0 takes the sector's own best shape.
        deeper_plateau_tolerance: a sector's own plateau may lie this much (ln units) deeper
            than the global one and still be its own (module docstring, step 6).
        global_plateau_tolerance: when the global plateau lies more than this (ln units, ~2 mm
            of fat) deeper than the third shallowest window's (of those not fitted at their
            width limit, ``EdgeFit.at_limit``; the second with disjoint sectors), a dense centre
            has dragged it: that window plateau replaces it and the global width is refitted
            (step 6).
        min_window_arc_mm: a window is fitted when its pixels within the global width cover at
            least this length of outline times that width (mm^2); else it takes its fitted
            neighbours' width.
        min_plateau_mm: a window votes in the dense-centre test (``global_plateau_tolerance``)
            only when its envelope reaches at least this far beyond its fitted width
            (``EdgeFit.reach_mm``): its plateau is seen, not extrapolated from a fall-off that
            still runs at its deepest pixels (step 6).
        align_windows: refit each window with its pixels put on its centre's width (step 6).
        width_margin: draw the periphery this fraction wider than fitted, per window or globally
            (what the scatter step leaves, step 6); None: :data:`WIDTH_MARGIN` of the view (an
            image of unknown view whose pectoral muscle is found counts as MLO); 0 for a
            simulated image without scatter.
        thickness_mm: compressed breast thickness H0 (mm); with ``scatter`` a scatter estimate
            for it is removed before the periphery is fitted (module docstring, step 4).
            None (unknown, e.g. a file with no header): no scatter removal.
        scatter: remove the scatter estimate when ``thickness_mm`` is given.
        spr_scale: the scatter estimate's scatter-to-primary ratio times this (step 4).
        unexposed_border: analyse the exposed field only: a collimator's unexposed band along an
            edge (:func:`monai_bac.ops.exposed_field.exposed_field`) is background (step 0).
        beam: the image's :class:`~monai_bac.physics.TransmittedBeam`; with ``thickness_mm`` and
            ``scatter`` an implant's shadow is looked for (step 5b) and kept out of the scatter
            step's anchor and the periphery fits. None: not looked for.
        implant_expected: the header says an implant is present (BreastImplantPresent (0028,1300)
            YES): when no shadow passes the bound at ``thickness_mm``, or one only just passes, look
            again at the bound of the thinnest breast its readout allows
            (:func:`monai_bac.ops.implant.shadow_over_bounds`).
        grid: the image was taken behind an anti-scatter grid (the published SPR of the scatter
            steps, :func:`monai_bac.ops.primary.published_spr`); False for one taken without (most
            tomosynthesis projections).
    """
    img = np.asarray(image_hw)
    if img.ndim != 2:
        raise ValueError(f"expected an (H, W) image, got shape {img.shape}")
    if not np.issubdtype(img.dtype, np.number) or np.issubdtype(img.dtype, np.complexfloating):
        raise TypeError(f"expected a real-valued image, got dtype {img.dtype}")
    sr, sc = as_spacing(spacing_mm)
    if not work_spacing_mm > 0:
        raise ValueError(f"work_spacing_mm must be > 0 (mm), got {work_spacing_mm}")
    if int(n_sectors) < 1 or int(sector_overlap) < 1:
        raise ValueError(f"n_sectors and sector_overlap must be >= 1, got {n_sectors} and {sector_overlap}")
    if width_margin is not None and not 0.0 <= float(width_margin) < 0.5:
        raise ValueError(f"width_margin must lie in [0, 0.5) (a fraction of the width), got {width_margin}")
    if not float(min_window_arc_mm) > 0:
        raise ValueError(f"min_window_arc_mm must be > 0 (mm), got {min_window_arc_mm}")
    if not float(min_plateau_mm) >= 0:
        raise ValueError(f"min_plateau_mm must be >= 0 (mm), got {min_plateau_mm}")
    shape = img.shape
    box, band = exposed_field(img, (sr, sc)) if unexposed_border else ((slice(0, shape[0]), slice(0, shape[1])), (0,) * 4)
    if any(band):  # step 0: the collimator's unexposed border is background
        img = img[box]
    fr, fc = block_factors((sr, sc), work_spacing_mm)
    spacing = (sr * fr, sc * fc)  # of the working grid
    empty = BreastRegionResult(np.zeros(shape, np.uint8), False, work_spacing_mm=spacing, exposed_box=box)

    coarse = block_mean(img, fr, fc)
    if not np.all(np.isfinite(coarse)):  # NaN / inf pixels count as direct exposure
        finite = coarse[np.isfinite(coarse)]
        top = float(finite.max()) if finite.size else 0.0
        np.nan_to_num(coarse, copy=False, nan=top, posinf=top, neginf=0.0)
    outline = _outline(np.log(np.maximum(coarse, 0.0) + 1.0), spacing, skin_fraction, min_breast_area_mm2,
                       flat_field, flat_field_reach_mm)
    if outline is None:
        return empty
    lg, mask, thr, air, field = outline
    side = chest_wall_side(mask, spacing)
    k = max(1, int(round(3.0 / spacing[1])))
    if min(mask[:, :k].mean(), mask[:, -k:].mean()) > 0.25:
        warnings.warn(
            "breast_region: the low-valued region touches both the left and the right image edge; the input "
            "should be linear in exposure with the breast darker than the direct exposure (invert "
            "MONOCHROME1 stored values first, as monai_bac.data.load_mammogram does)",
            stacklevel=2,
        )
    flip = side == "right"
    if flip:  # step 3: the canonical frame, chest wall on the left
        lg, mask = lg[:, ::-1].copy(), mask[:, ::-1].copy()
    # the raw cells and flat-field plane in that frame (views), for the scatter steps 4 and 5b
    canonical = coarse[:, ::-1] if flip else coarse
    flat = None if field is None else (field[:, ::-1] if flip else field)

    dist, inds = ndimage.distance_transform_edt(mask, sampling=spacing, return_indices=True)
    if scatter and thickness_mm is not None and float(thickness_mm) > 0:  # in the canonical frame: mirror-exact
        lg = _without_scatter(canonical, lg, mask, flat, dist, spacing, float(thickness_mm), float(spr_scale),
                              grid=grid)
    # distance outside the breast (chessboard metric: only used to pick air pixels)
    dout = ndimage.distance_transform_cdt(~mask, metric="chessboard").astype(np.float32) * min(spacing)
    # local air level: the direct exposure within a few mm of the skin line
    near = (dout > 1.0) & (dout < 15.0)
    air_local = float(np.median(lg[near])) if near.sum() > 20 else air

    # --- step 4: periphery width of the whole breast (the muscle only lowers the envelope, like dense
    # tissue); it flattens the thickness fall-off for the pectoral search
    fit_kw = dict(shapes=edge_shapes, bin_mm=max(spacing), envelope_percentile=envelope_percentile)
    fit = periphery_width(dist[mask], lg[mask], air_local, **fit_kw)

    # --- step 5: pectoral muscle, searched on the thickness-equalised image
    view_u = str(view).upper().strip() if view is not None else ""
    is_mlo = "MLO" in view_u or view_u in ("ML", "LM", "LMO")
    is_cc = not is_mlo and "CC" in view_u
    search = pectoral if pectoral is not None else not is_cc
    pect_edge, pect = None, np.zeros(mask.shape, bool)
    if search:
        pect_edge = _find_muscle(lg, mask, dist, spacing, fit, strict=not is_mlo and not pectoral)
        if pect_edge is not None:
            pect = pectoral_mask(pect_edge, mask, spacing)

    # --- step 5b: an implant's shadow takes no part in the scatter anchor nor in the fits
    shadow = None
    if beam is not None and scatter and thickness_mm is not None and float(thickness_mm) > 0:
        shadow = _find_implant(canonical, mask & ~pect, flat, dist, air_local, spacing, float(thickness_mm), beam,
                               implant_expected, grid)
        if shadow is not None:
            lg = _without_scatter(canonical, lg, mask, flat, dist, spacing, float(thickness_mm), float(spr_scale),
                                  shadow, grid)
            if search:  # the muscle was searched on a fall-off the shadow drew: search again
                outside = mask & ~shadow
                fit = periphery_width(dist[outside], lg[outside], air_local, **fit_kw)
                strict = not is_mlo and not pectoral
                pect_edge = _find_muscle(lg, mask, dist, spacing, fit, strict=strict)
                if pect_edge is None:  # over an implant the muscle's edge is no step: read it clear of the
                    # shadow, and carry it across
                    away = ndimage.distance_transform_edt(~shadow, sampling=spacing)
                    clear = mask & (away > MUSCLE_CLEAR_OF_SHADOW_MM)
                    pect_edge = _find_muscle(lg, mask, dist, spacing, fit, strict=strict, clear=clear)
                pect = pectoral_mask(pect_edge, mask, spacing) if pect_edge is not None else np.zeros(mask.shape, bool)
                shadow &= ~pect

    # --- step 6: periphery width without the muscle: global, then per angular window of the nearest skin point
    tissue_px = mask & ~pect
    if shadow is not None:
        tissue_px &= ~shadow
    d_t, v_t = dist[tissue_px], lg[tissue_px]
    if pect.any() or shadow is not None:
        # the first fit guides the search, unless an implant's shadow drew it
        hint = fit.width_mm if np.isfinite(fit.width_mm) and shadow is None else None
        # with a shadow the plateau is placed by the physics, between the thinnest breast the readout
        # allows and the thickness read (a readout too thick put it too deep, and the periphery too wide)
        plateau = None if shadow is None else tuple(PLATEAU_FROM_AIR * fat_contrast(beam, h) for h in (
            thinnest_readout(float(thickness_mm)), float(thickness_mm)))
        fit = periphery_width(d_t, v_t, air_local, width_hint_mm=hint, amplitude=plateau, **fit_kw)
    w_glob, amp = (fit.width_mm, fit.amplitude) if np.isfinite(fit.width_mm) else (0.0, float("nan"))
    sector_w = np.full(int(n_sectors) * (int(sector_overlap) if n_sectors > 1 else 1), w_glob)
    windowed = n_sectors > 1 and w_glob > 0 and shadow is None
    if windowed:
        phi = skin_point_angle(mask, inds, spacing)
        rules = WindowRules(sector_bounds, plateau_tolerance, shape_margin, deeper_plateau_tolerance,
                            global_plateau_tolerance, min_window_arc_mm, min_plateau_mm, align_windows)
        windows = PeripheryWindows(phi[tissue_px], d_t, v_t, n_sectors, sector_overlap, air_local, spacing, fit_kw,
                                   rules)
        fit, sector_w = windows.decide(fit, d_t, v_t)
        w_glob, amp = fit.width_mm, fit.amplitude
    # every fitted width, per window or for the whole breast, is drawn wider by the margin
    if width_margin is None:
        width_margin = WIDTH_MARGIN["MLO" if is_mlo or (not is_cc and bool(pect.any())) else "CC"]
    sector_w = sector_w * (1.0 + float(width_margin))
    wpix = (np.interp(phi, windows.centres, sector_w).astype(np.float32) if windowed
            else np.full(mask.shape, sector_w[0], np.float32))

    codes = np.zeros(mask.shape, np.uint8)
    codes[mask] = PERIPHERY
    codes[mask & (dist >= wpix)] = COMPRESSED
    codes[pect] = PECTORAL
    if flip:
        codes, mask = codes[:, ::-1], mask[:, ::-1]
    thr_lin = float(np.exp(thr) - 1.0)
    return BreastRegionResult(
        breast_map=_into_image(_full_resolution(codes, mask, img, (fr, fc), thr, thr_lin, field), box, band, shape),
        found=True,
        chest_wall=side,
        periphery_width_mm=float(w_glob),
        edge_shape=(fit.a, fit.b),
        sector_widths_mm=np.asarray(sector_w, dtype=np.float64),
        pectoral=pect_edge,
        air_level=air_local,
        plateau_level=float(air_local - amp) if np.isfinite(amp) else float("nan"),
        skin_threshold=thr_lin,
        work_spacing_mm=spacing,
        exposed_box=box,
        implant_shadow_mm2=0.0 if shadow is None else float(shadow.sum() * spacing[0] * spacing[1]),
    )


def _into_image(codes: np.ndarray, box: tuple[slice, slice], band: tuple[int, int, int, int],
                shape: tuple[int, int]) -> np.ndarray:
    """Step 0 undone: the exposed field's ``codes`` in an image of ``shape`` whose unexposed bands
    (``band`` lines at the top, bottom, left, right) are background; the lines between a band and
    the field (the blade's penumbra) take the codes of the field's first line."""
    if not any(band):
        return codes
    out = np.zeros(shape, np.uint8)
    rs, cs = box
    out[rs, cs] = codes
    top, bottom, left, right = band
    out[top:rs.start, cs] = out[rs.start, cs]
    out[rs.stop:shape[0] - bottom, cs] = out[rs.stop - 1, cs]
    rows = slice(top, shape[0] - bottom)
    out[rows, left:cs.start] = out[rows, cs.start][:, None]
    out[rows, cs.stop:shape[1] - right] = out[rows, cs.stop - 1][:, None]
    return out


def _outline(lg: np.ndarray, spacing_mm, skin_fraction: float, min_breast_area_mm2: float, flat_field: bool,
             flat_field_reach_mm: float):
    """Steps 1-2 on the working grid: ``(lg, mask, threshold, air_level, field)`` - ln(P + 1)
    with the flat-field plane (``field``, or None) removed, the breast mask drawn on it, its skin
    threshold and air level in ln P - or None when there is no breast."""
    mask, thr, air, _ = breast_mask(lg, spacing_mm, skin_fraction, min_breast_area_mm2, refine=not flat_field)
    if not mask.any():
        return None
    field = None
    if flat_field:
        # the skin threshold is a level of ln P: a heel effect across the field must be gone
        # before it is drawn, so the plane is fitted to the air near the first outline and the
        # outline drawn again on the flattened image
        dout = ndimage.distance_transform_cdt(~mask, metric="chessboard").astype(np.float32) * min(spacing_mm)
        field = _field_plane(lg, (dout > 2.0) & (dout < flat_field_reach_mm), spacing_mm)
        if field is not None:
            lg = (lg - field).astype(np.float32)
        mask, thr, air, _ = breast_mask(lg, spacing_mm, skin_fraction, min_breast_area_mm2)
        if not mask.any():
            return None
    return lg, mask, thr, air, field


def _find_muscle(lg: np.ndarray, mask: np.ndarray, dist: np.ndarray, spacing_mm, fit: EdgeFit,
                 strict: bool, clear: np.ndarray | None = None) -> PectoralEdge | None:
    """Step 5: the pectoral edge, searched on ln P with the fitted fall-off ``fit`` removed (so the
    bright periphery does not compete): a Hough line of the expected polarity, then (unless
    ``strict``: view unknown) of either polarity, then a curved edge; each read where ``clear``
    (default: the whole breast) and carried across the rest."""
    lg_eq = lg
    if np.isfinite(fit.width_mm) and fit.width_mm > 0:
        fall_off = fit.amplitude * (1.0 - edge_profile(dist / fit.width_mm, fit.a, fit.b))
        lg_eq = np.where(mask, lg - fall_off, lg).astype(np.float32)
    edge = find_pectoral(lg_eq, mask, dist, spacing_mm, strict=strict, clear=clear)
    if edge is None and not strict:  # dense tissue beside the muscle denser than the muscle
        edge = find_pectoral(lg_eq, mask, dist, spacing_mm, polarity="either", clear=clear)
    if edge is None:  # a curved or low-contrast edge the Hough line misses
        edge = find_pectoral_curve(lg_eq, mask, dist, spacing_mm, strict=strict, clear=clear,
                                   periphery_mm=0.8 * fit.width_mm if np.isfinite(fit.width_mm) else 0.0)
    return edge


def _full_resolution(codes: np.ndarray, mask: np.ndarray, img: np.ndarray, factors: tuple[int, int], thr: float,
                     thr_lin: float, field: np.ndarray | None) -> np.ndarray:
    """Step 7: the working grid's ``codes`` on the input's grid - nearest codes, and along the skin
    line every full-resolution pixel of ``img`` thresholded again (``thr_lin``; with the flat
    field, ``exp(thr + field) - 1`` of its block)."""
    h, w = img.shape
    fr, fc = factors
    if fr == 1 and fc == 1:
        return codes.copy()
    out = np.repeat(np.repeat(codes, fr, axis=0)[:h], fc, axis=1)[:, :w]
    band = _edge_band(mask)
    bi, bj = np.nonzero(band)
    own = codes[bi, bj]
    nb = np.where(own > 0, own, ndimage.maximum_filter(codes, size=3)[bi, bj])
    rr = np.minimum(bi[:, None, None] * fr + np.arange(fr)[None, :, None], h - 1)
    cc = np.minimum(bj[:, None, None] * fc + np.arange(fc)[None, None, :], w - 1)
    rr, cc = np.broadcast_arrays(rr, cc)
    vals = img[rr, cc]
    thr_px = thr_lin if field is None else (np.exp(thr + field[bi, bj]) - 1.0)[:, None, None]
    out[rr, cc] = np.where(vals < thr_px, nb[:, None, None], BACKGROUND).astype(np.uint8)
    return np.ascontiguousarray(out)


def breast_region_map(image_hw, spacing_mm, view: str | None = None, **kwargs) -> np.ndarray:
    """Breast region map (uint8 (H, W): 0 background, 1 periphery, 2 compressed, 3 pectoral) of a
    raw mammogram linear in exposure. See :func:`analyse_breast_region` for the arguments."""
    return analyse_breast_region(image_hw, spacing_mm, view, **kwargs).breast_map

"""Dense-tissue thickness (Eq. 4), volumetric breast density and calcification thickness (Eq. 5).

All functions work on (H, W) numpy arrays of a raw image *linear in exposure* (what the loader
returns for a "FOR PROCESSING" mammogram), with thicknesses in mm and attenuation in mm^-1
(:class:`monai_bac.physics.Attenuation`).

Model (Highnam & Brady 1999; the paper's Sec. 3.1 and 3.3). Behind a column of fat, dense
tissue and calcium of total thickness H, a raw pixel value is
``P = P_air * exp(-[mu_fat (H - h_dt - h_calc) + mu_dt h_dt + mu_calc h_calc])``. In the
compressed region H is the compressed thickness H0, so relative to a purely fatty pixel
``P_fat = P_air exp(-mu_fat H0)``:

* Eq. (4): ``h_dt = ln(P / P_fat) / (mu_fat - mu_dt)``;
* Eq. (5): a calcification adds ``(mu_calc - mu_fat) / (mu_dt - mu_fat) * h_calc`` of apparent
  dense tissue on top of a smooth background ``h_bkg``, hence
  ``h_calc = (mu_dt - mu_fat) (h_dt - h_bkg) / mu_calc`` (the paper's form; the exact
  denominator is ``mu_calc - mu_fat`` or ``mu_calc - mu_dt`` depending on the displaced tissue,
  a 2-4 % difference at mammographic energies).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from monai_bac.physics import Attenuation
from monai_bac.ops.implant import bound_thicknesses, glandular_bound, implant_shadow_in_image
from monai_bac.ops.resample import block_factors, block_mean, bounding_box, upsample_cells
from monai_bac.units import as_spacing, odd_footprint

__all__ = [
    "BACKGROUND",
    "PERIPHERY",
    "COMPRESSED",
    "PECTORAL",
    "fat_reference",
    "fat_cells",
    "density_map",
    "volumetric_breast_density",
    "background_opening",
    "calcification_thickness",
    "image_thickness",
]

from monai_bac.breast_map import BACKGROUND, COMPRESSED, PECTORAL, PERIPHERY  # noqa: F401  (the one set of codes)
from monai_bac.ops.thickness_check import (  # noqa: E402
    IMAGE_THICKNESS_AGREE_MM,
    IMAGE_THICKNESS_PASSES,
    PROVISIONAL_THICKNESS_MM,
    air_trend,
    fat_contrast,
    thickness_from_contrast,
)
from monai_bac.ops.primary import (  # noqa: E402
    chest_wall_side,
    estimate_offset,
    estimate_scatter,
    fat_cells,  # noqa: F401  (re-exported: the fatty reference's cell grid)
    fat_reference_trend,
)

#: ``thickness_from_image``'s reason where an implant's shadow leaves no fat to read beside it: the
#: fatty reference is then fat through the thickness in use as the direct exposure places it, and
#: the air-to-fat contrast would only give that thickness back.
NO_FAT_BESIDE_IMPLANT = ("no fat beside the implant's shadow: the fatty reference is fat through the thickness in "
                         "use, placed by the direct exposure, so the image cannot check that thickness")


def _erode_mm(mask: np.ndarray, spacing: tuple[float, float], erode_mm: float) -> np.ndarray:
    """Pixels of ``mask`` further than ``erode_mm`` from its outside (exact Euclidean, in mm)."""
    if erode_mm <= 0:
        return mask.copy()
    out = np.zeros_like(mask)
    box = bounding_box(mask, pad=1)
    if box is None:
        return out
    sub = np.pad(mask[box], 1)  # so the image border counts as outside
    dist = ndimage.distance_transform_edt(sub, sampling=spacing)[1:-1, 1:-1]
    out[box] = dist > erode_mm
    return out


def fat_reference(
    image: np.ndarray,
    compressed_mask: np.ndarray,
    spacing_mm,
    erode_mm: float = 5.0,
    block_mm: float = 1.0,
    percentile: float = 99.0,
    offset: float = 0.0,
    return_info: bool = False,
):
    """The fatty reference P_fat of Eq. (4): a robust brightest level in the compressed region.

    The image is averaged over ``block_mm`` x ``block_mm`` cells lying entirely in the compressed
    region (paddle contact, constant thickness H0), the cells closer than ``erode_mm`` to the
    region's edge are dropped (away from the periphery, where the breast is thinner and brighter;
    the erosion is done on the cell grid, so it is exact to about one cell), and P_fat is the
    ``percentile`` of the remaining cell means.

    Why not the maximum pixel (OpenBreast's choice): the maximum of N noisy pixels sits about
    3-4 noise standard deviations above the fatty level (at 0.1 mm and ~1000 quanta per pixel
    that is +10 % in P, i.e. ~4 mm of dense tissue at 20 keV), and a single bad pixel or skin
    fold moves it further. Averaging 1 mm cells (100 pixels at 0.1 mm) cuts the noise tenfold,
    and a high percentile instead of the maximum ignores the brightest 1 % of cells (residual
    noise, artefacts) while still landing in fatty tissue whenever at least ~1 % of the eroded
    compressed region is fatty. The estimate is resolution independent (cells are in mm).

    If the eroded region holds no full cell the erosion is halved, then dropped, then the cells
    shrink to single pixels; ``info["fallback"]`` says what was used.

    Args:
        image: (H, W) raw image linear in exposure.
        compressed_mask: (H, W) bool, the compressed region (breast-map code 2).
        spacing_mm: (row, col) pixel spacing in mm.
        erode_mm: distance from the region's edge, mm.
        block_mm: cell size, mm.
        percentile: percentile of the cell means (100 = brightest cell).
        offset: detector offset subtracted from the image (raw value of no exposure).
        return_info: also return a dict (number of cells, erosion used, fallback).

    Returns:
        P_fat (float), or (P_fat, info). ``nan`` when the compressed region is empty.
    """
    spacing = as_spacing(spacing_mm)
    mask = np.asarray(compressed_mask, dtype=bool)
    info = dict(erode_mm=float(erode_mm), block_mm=float(block_mm), percentile=float(percentile), n_cells=0,
                fallback=None)
    if not mask.any():
        info["fallback"] = "empty compressed region"
        return (float("nan"), info) if return_info else float("nan")
    box = bounding_box(mask)
    img = np.asarray(image, dtype=np.float32)[box]
    mask = mask[box]
    tries = [(erode_mm, block_mm), (erode_mm / 2, block_mm), (0.0, block_mm), (0.0, 0.0)]
    for k, (e, b) in enumerate(tries):
        grid = fat_cells(img, mask, spacing, e, b)
        if grid is None:
            continue
        means = grid[0][grid[1]]
        p_fat = float(np.percentile(means, percentile)) - float(offset)
        info.update(n_cells=int(means.size), erode_mm_used=float(e), block_mm_used=float(b))
        if k:
            info["fallback"] = f"erosion {e:g} mm, cells {b:g} mm"
        return (p_fat, info) if return_info else p_fat
    info["fallback"] = "no usable pixel"
    return (float("nan"), info) if return_info else float("nan")


def density_map(
    image: np.ndarray,
    breast_map: np.ndarray,
    attenuation: Attenuation,
    spacing_mm,
    p_fat: float | None = None,
    erode_mm: float = 5.0,
    block_mm: float = 1.0,
    percentile: float = 99.0,
    offset: float = 0.0,
    smooth_mm: float = 0.1,
) -> tuple[np.ndarray, dict]:
    """Dense-tissue thickness h_dt in mm, Eq. (4): ``ln(P / P_fat) / (mu_fat - mu_dt)``.

    Eq. (4) is applied to every breast pixel (codes 1-3). It is exact where the breast has the
    compressed thickness H0 (code 2). In the periphery (code 1) the breast is thinner than H0,
    so Eq. (4) returns the dense-equivalent of the *missing* fat as a negative thickness; these
    values are kept (Eq. 5 needs them to find calcifications near the skin) and
    :func:`volumetric_breast_density` treats the periphery separately. In the pectoral muscle
    (code 3) the value is the muscle's dense-equivalent thickness. Background pixels are 0.

    Args:
        image: (H, W) raw image linear in exposure.
        breast_map: (H, W) uint8 with the docs/ARCHITECTURE.md codes.
        attenuation: mu_fat and mu_dt (mm^-1) at the image's effective energy.
        spacing_mm: (row, col) mm.
        p_fat: the fatty reference; found by :func:`fat_reference` when None.
        erode_mm, block_mm, percentile: passed to :func:`fat_reference`.
        offset: detector offset subtracted from the image first.
        smooth_mm: Gaussian sigma (mm) applied to the raw values before Eq. (4), 0 for none. At
            0.1 mm a raw pixel carries ~1000 quanta, i.e. ~3 % quantum noise, which Eq. (4)
            turns into ~1 mm of h_dt noise per pixel (more behind dense tissue); a sigma of one
            detector pixel (0.1 mm, the scale of the detector's own blur) cuts it about 3.5-fold
            and leaves structures of a calcified vessel's size (1-2 mm) intact. Widths below a
            third of a pixel are skipped (coarse images are left as they are).

    Returns:
        (float32 (H, W) h_dt in mm, info dict with ``p_fat`` and the fat-reference details).
        With no compressed region (or no breast) the map is all zeros and ``info["empty"]``
        is True.
    """
    bmap = np.asarray(breast_map)
    img = np.asarray(image, dtype=np.float32)
    if bmap.shape != img.shape:
        raise ValueError(f"breast map shape {bmap.shape} differs from the image's {img.shape}")
    info: dict = {}
    if p_fat is None:
        p_fat, info = fat_reference(img, bmap == COMPRESSED, spacing_mm, erode_mm, block_mm, percentile, offset,
                                    return_info=True)
    else:
        info = dict(fallback=None, given=True)
    breast = bmap > 0
    info["p_fat"] = float(p_fat)
    if not (np.isfinite(p_fat) and p_fat > 0) or not breast.any():
        info["empty"] = True
        return np.zeros(img.shape, np.float32), info
    info["empty"] = False
    scale = np.float32(1.0 / (attenuation.mu_fat - attenuation.mu_dt))
    out = np.zeros(img.shape, np.float32)
    box = bounding_box(breast)
    sub = img[box] - np.float32(offset) if offset else img[box].copy()
    sr, sc = as_spacing(spacing_mm)
    if smooth_mm and smooth_mm / max(sr, sc) >= 1.0 / 3.0:
        sub = ndimage.gaussian_filter(sub, (smooth_mm / sr, smooth_mm / sc), mode="nearest", truncate=3.0)
    np.maximum(sub, np.float32(1e-6 * p_fat), out=sub)  # dead or saturated-dark pixels stay finite
    sub *= np.float32(1.0 / p_fat)
    np.log(sub, out=sub)
    sub *= scale
    sub[~breast[box]] = 0.0
    out[box] = sub
    return out, info


def volumetric_breast_density(
    h_dt: np.ndarray,
    image: np.ndarray,
    breast_map: np.ndarray,
    thickness_mm: float,
    attenuation: Attenuation,
    p_fat: float,
    spacing_mm=None,
    offset: float = 0.0,
) -> dict:
    """Volumetric breast density: dense volume / breast volume, in percent (pectoral excluded).

    * Compressed region (code 2): the breast is ``thickness_mm`` (H0) thick and holds
      ``clip(h_dt, 0, H0)`` of dense tissue.
    * Periphery (code 1): the local thickness follows from fat-only Beer-Lambert,
      ``H = H0 - ln(P / P_fat) / mu_fat`` (clipped to [0, H0]), and the tissue is taken as fat
      (Volpara's assumption: the uncompressed rim is mostly subcutaneous fat).
    * Pectoral muscle (code 3) and background are excluded.

    Returns:
        dict with ``vbd_percent``, ``dense_volume_cm3``, ``breast_volume_cm3`` (volumes need
        ``spacing_mm``; None without it) and the per-region sums (mm^3 per pixel area).
    """
    bmap = np.asarray(breast_map)
    comp, peri = bmap == COMPRESSED, bmap == PERIPHERY
    h0 = float(thickness_mm)
    if not h0 > 0:
        raise ValueError(f"thickness_mm must be > 0, got {thickness_mm}")
    dense_sum = float(np.clip(np.asarray(h_dt)[comp], 0.0, h0).sum(dtype=np.float64))
    vol_comp = h0 * float(comp.sum())
    vol_peri = 0.0
    if peri.any() and np.isfinite(p_fat) and p_fat > 0:
        p = np.maximum(np.asarray(image, dtype=np.float64)[peri] - offset, 1e-6 * p_fat)
        vol_peri = float(np.clip(h0 - np.log(p / p_fat) / attenuation.mu_fat, 0.0, h0).sum())
    volume = vol_comp + vol_peri
    out = dict(vbd_percent=100.0 * dense_sum / volume if volume > 0 else float("nan"),
               dense_sum_mm=dense_sum, breast_sum_mm=volume, compressed_sum_mm=vol_comp, periphery_sum_mm=vol_peri,
               dense_volume_cm3=None, breast_volume_cm3=None)
    if spacing_mm is not None:
        sr, sc = as_spacing(spacing_mm)
        out["dense_volume_cm3"] = dense_sum * sr * sc / 1000.0
        out["breast_volume_cm3"] = volume * sr * sc / 1000.0
    return out


def background_opening(
    h_dt: np.ndarray,
    spacing_mm,
    opening_mm: float = 3.0,
    smooth_mm: float = 0.2,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Background tissue h_bkg of Eq. (5): a grey opening with a flat ``opening_mm`` square.

    The opening (erosion then dilation, each a separable running min/max whose cost grows with
    the logarithm of the footprint's side) removes every bright structure narrower than the footprint - a
    calcified vessel is at most ~2 mm wide, hence the 3 mm default - and keeps the broader
    tissue. A square of side s does not fit inside a band narrower than s in any orientation.

    Before the opening the map is smoothed with a Gaussian of ``smooth_mm`` (sigma): the
    erosion takes a minimum, and over a 3 mm square of noisy pixels that minimum sits several
    noise standard deviations low, which would add a positive bias to ``h_dt - h_bkg``
    everywhere; smoothing first reduces that bias to a few hundredths of a mm of dense tissue.
    Pixels outside ``mask`` (the breast) are set to the map's maximum so that they never pull
    the erosion down at the skin line (the opening is then effectively restricted to the mask).
    """
    sr, sc = as_spacing(spacing_mm)
    h = np.asarray(h_dt, dtype=np.float32)
    box = bounding_box(mask, pad=int(math.ceil(opening_mm / min(sr, sc)))) if mask is not None else (slice(None), slice(None))
    out = np.zeros(h.shape, np.float32)
    if box is None:
        return out
    sub = h[box]
    if smooth_mm and smooth_mm > 0:
        sub = ndimage.gaussian_filter(sub, (smooth_mm / sr, smooth_mm / sc), mode="nearest", truncate=3.0)
    else:
        sub = sub.copy()
    if mask is not None:
        m = np.asarray(mask, dtype=bool)[box]
        if m.any():  # (np.copyto with where=: no boolean-indexed copies of the box)
            np.copyto(sub, sub.max(where=m, initial=-np.inf), where=~m)
    out[box] = _opening_by_rectangle(sub, odd_footprint(opening_mm, (sr, sc)))
    return out


def _opening_by_rectangle(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Grey opening of a 2D float array by a flat ``size`` rectangle, edges "nearest":
    ``ndimage.maximum_filter(ndimage.minimum_filter(a, size), size)``, bit for bit for finite input.

    Each filter is a running extreme along the rows, then down the columns, of the array padded
    with its edge values (:func:`_window_extreme`)."""
    pad = [(s // 2, s - 1 - s // 2) for s in size]  # scipy's window for an even side too
    eroded = _window_extreme(np.pad(a, pad, mode="edge"), size, np.minimum)
    return np.ascontiguousarray(_window_extreme(np.pad(eroded, pad, mode="edge"), size, np.maximum))


def _window_extreme(padded: np.ndarray, size: tuple[int, int], extreme) -> np.ndarray:
    """``extreme`` (``np.minimum`` or ``np.maximum``) over every ``size`` window of a 2D array:
    out[i, j] = extreme of ``padded[i : i + size[0], j : j + size[1]]``, shape ``padded.shape -
    size + 1``, a view into scratch space (``padded`` is overwritten).

    By doubling, along one axis at a time: after ``m`` passes each element holds the extreme of
    the next ``2^m`` elements, so a 31-pixel window takes 5 whole-array passes (1, 2, 4, 8, 16,
    then 15 more). Each pass reads two shifted slices of one array, where scipy's
    ``minimum_filter1d`` walks every line through a buffer (and down the columns of a C array
    about twice as slowly as along its rows): a 3 mm opening of a full-size map 1.6 x faster
    (docs/PERFORMANCE.md, twenty-eighth session). An extreme is exact in any order, so the
    values are scipy's."""
    cur, spare = padded, np.empty_like(padded)
    rows, cols = padded.shape
    for axis in (1, 0):
        n, span = (cols, rows)[axis == 0], 1
        while span < size[axis]:
            step = min(span, size[axis] - span)
            n -= step
            if axis:
                extreme(cur[:, :n], cur[:, step:step + n], out=spare[:, :n])
            else:
                extreme(cur[:n], cur[step:step + n], out=spare[:n])
            cur, spare = spare, cur
            span += step
    return cur[: rows - size[0] + 1, : cols - size[1] + 1]


def calcification_thickness(
    h_dt: np.ndarray,
    attenuation: Attenuation,
    spacing_mm,
    opening_mm: float = 3.0,
    smooth_mm: float = 0.2,
    breast_mask: np.ndarray | None = None,
    clip_negative: bool = False,
) -> np.ndarray:
    """Calcification thickness h_calc in mm, Eq. (5): ``(mu_dt - mu_fat)(h_dt - h_bkg) / mu_calc``.

    ``h_bkg`` is :func:`background_opening` of ``h_dt`` (flat square of ``opening_mm``, wider
    than a calcified vessel). Quantum noise in ``h_dt`` passes through as zero-mean noise
    (negative values are noise; ``clip_negative`` sets them to 0, which biases means upwards).
    Outside ``breast_mask`` the result is 0.

    Args:
        h_dt: (H, W) dense-tissue thickness, mm (:func:`density_map`).
        attenuation: mu_fat, mu_dt, mu_calc in mm^-1.
        spacing_mm: (row, col) mm.
        opening_mm: side of the opening's square footprint, mm.
        smooth_mm: Gaussian sigma (mm) applied before the opening only (see there).
        breast_mask: (H, W) bool; None = everywhere.
        clip_negative: set negative thicknesses to 0.
    """
    if not opening_mm > 0:
        raise ValueError(f"opening_mm must be > 0, got {opening_mm}")
    h = np.asarray(h_dt, dtype=np.float32)
    mask = None if breast_mask is None else np.asarray(breast_mask, dtype=bool)
    if mask is not None and not mask.any():
        return np.zeros(h.shape, np.float32)
    bkg = background_opening(h, spacing_mm, opening_mm, smooth_mm, mask)
    out = h - bkg
    out *= np.float32((attenuation.mu_dt - attenuation.mu_fat) / attenuation.mu_calc)
    if mask is not None:
        out[~mask] = 0.0
    if clip_negative:
        np.maximum(out, 0.0, out=out)
    return out


# ------------------------------------------------------------------ polyenergetic, with scatter
def _envelope(log_p: np.ndarray, mask: np.ndarray, spacing: tuple[float, float], size_mm: float,
              cell_mm: float = 0.5) -> np.ndarray:
    """Upper envelope of ``log_p`` inside ``mask``: a grey closing (running max, then running min)
    with a flat ``size_mm`` square, on ``cell_mm`` cells (the mean of the mask's pixels in each
    cell: the envelope of the mean level, not of the noise), interpolated back to the pixels.
    Cells outside the mask take the nearest inside cell's value first, so that the bright
    background beyond the skin line never enters the envelope and the skin line is not pulled
    down either."""

    fr, fc = block_factors(spacing, cell_mm)
    frac = block_mean(mask.astype(np.float32), fr, fc)
    mean = block_mean(np.where(mask, log_p, np.float32(0.0)), fr, fc) / np.maximum(frac, 1e-12)
    inside = frac > 0
    if not inside.all():
        _, (ir, ic) = ndimage.distance_transform_edt(~inside, return_indices=True)
        mean = mean[ir, ic]
    size = odd_footprint(size_mm, (fr * spacing[0], fc * spacing[1]))
    ndimage.maximum_filter(mean, size=size, output=mean, mode="nearest")
    ndimage.minimum_filter(mean, size=size, output=mean, mode="nearest")
    return upsample_cells(mean, log_p.shape, fr, fc)


def _deep_compressed(comp: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """The middle of the compressed region: its deepest fifth by distance to the region's edge,
    computed on a coarse (>= 2 mm) grid - where a published SPR applies (the breast's centre)."""
    f = max(1, int(round(2.0 / min(spacing))))
    small = comp[::f, ::f]
    if not small.any():
        return comp
    dist = ndimage.distance_transform_edt(np.pad(small, 1))[1:-1, 1:-1]
    deep = dist >= 0.8 * dist.max()
    if f == 1:
        return deep & comp
    up = np.repeat(np.repeat(deep, f, axis=0), f, axis=1)[: comp.shape[0], : comp.shape[1]]
    return up & comp


def density_map_polyenergetic(
    image: np.ndarray,
    breast_map: np.ndarray,
    beam,
    thickness_mm: float,
    spacing_mm,
    offset: float = 0.0,
    scatter: bool = True,
    spr: float | None = None,
    spr_scale: float = 1.0,
    heel: bool = True,
    side: int = 1,
    erode_mm: float = 5.0,
    block_mm: float = 1.0,
    percentile: float = 99.0,
    smooth_mm: float = 0.1,
    envelope_mm: float = 8.0,
    lower_mm: float = -1.0,
    p_fat: float | None = None,
    fit_thickness: bool = False,
    thickness_only: bool = False,
    find_implant: bool = True,
    implant_expected: bool = False,
    grid: bool = True,
) -> tuple[np.ndarray, dict]:
    """Dense-tissue thickness h_dt (mm) of a raw image with a polyenergetic beam and scatter.

    Eq. (4) inverts ``P = P_fat exp(-(mu_dt - mu_fat) h_dt)`` with one attenuation coefficient
    and a scatter-free ``P``. Here, per pixel:

    1. ``P = image - offset - scatter`` (:func:`monai_bac.ops.primary.estimate_scatter` when
       ``scatter``; behind an anti-scatter grid unless ``grid`` is False), smoothed by
       ``smooth_mm`` as in :func:`density_map`;
    2. ``P_fat(x)``: the fatty envelope of the compressed region as a trend along the
       chest-wall -> nipple axis (:func:`monai_bac.ops.primary.fat_reference_trend`; ``heel``
       False: one level, as Eq. 4);
    3. compressed region: h_dt solves ``ln(P / P_fat) = L(h_dt)``, the
       polyenergetic curve of ``beam`` (:meth:`monai_bac.physics.TransmittedBeam.glandular_curve`:
       glandular tissue replacing fat in a breast of the compressed thickness, detector-weighted
       spectrum, so the effective attenuation of the transmitted, hardened spectrum);
    4. periphery (thinner than the compressed thickness): the local fatty level is the upper
       envelope of ln P (grey closing, ``envelope_mm`` square, on 0.5 mm cells: it follows the
       fall-off of thickness towards the skin and bridges dense structures narrower than the square),
       never below ``ln P_fat(x)`` (no tissue is thicker than the compressed thickness, so fat
       there is at least as bright as fat at H0: a dense region wider than the square is measured
       against that level); the local thickness H follows from it by the fat-only curve, and h_dt
       is the dip below the envelope divided by the effective attenuation difference at H; the pectoral muscle (not
       breast tissue: no h_dt in the truth) is read the same way against its own envelope, so it
       reads ~0 and what lies on it keeps its contrast for Eq. (5);
    5. h_dt is bounded to ``[lower_mm, H]`` (H the compressed thickness, or the periphery's
       local thickness): physically 0 <= h_dt <= H; ``lower_mm`` (-1 mm) leaves room for noise
       so that fatty tissue stays unbiased on average;
    6. with ``find_implant``, the shadow of something denser than breast tissue (a silicone
       implant: :func:`monai_bac.ops.implant.implant_shadow`, beyond the glandular bound ``L(H0)``
       of step 3) keeps the bound H in the map but is left out of the volumetric density, which is
       then the density of the tissue beside the implant. With ``implant_expected`` (the header
       says an implant is present) and no shadow at H, it is looked for again at the bound of the
       thinnest breast H's readout allows (:func:`monai_bac.ops.implant.bound_thicknesses`); a
       shadow that only just passes at H (the implant's middle under a readout too thick) is
       drawn out by that bound's (:func:`monai_bac.ops.implant.shadow_over_bounds`).

    Returns:
        (float32 (H, W) h_dt mm, info: ``p_fat`` at the chest wall, ``heel_slope_per_100mm``,
        ``spr``, ``scatter_fraction_centre``, ``attenuation`` (the effective coefficients behind
        the compressed thickness), ``local_thickness`` (float32 map, mm), ``empty``, ``fallback``,
        ``thickness_from_image``: (mm or None, info) the compressed thickness the air-to-fat contrast
        implies (:func:`monai_bac.ops.thickness_check.thickness_from_contrast`), a check on
        ``thickness_mm``; ``thickness_mm``, the compressed thickness the map was made with;
        ``implant_shadow``: bool (H, W) mask of step 6, or None; ``implant_bound_thickness_mm``: the
        thickness whose glandular bound it passed, nan when there is none).

    With ``fit_thickness`` the compressed thickness is the image's own: ``thickness_mm`` is only the
    first guess, and steps 1-2 (the scatter removed depends on the thickness) are made again at the
    image's thickness until the two agree within ``IMAGE_THICKNESS_AGREE_MM`` (at most
    ``IMAGE_THICKNESS_PASSES`` times more); an image that gives no thickness gives an empty map
    with ``fallback`` saying why. ``thickness_only`` stops before the map is made (an all-zero map;
    the ``info`` up to ``thickness_mm``): :func:`image_thickness`.
    """

    bmap = np.asarray(breast_map)
    img = np.asarray(image, dtype=np.float32)
    if bmap.shape != img.shape:
        raise ValueError(f"breast map shape {bmap.shape} differs from the image's {img.shape}")
    spacing = as_spacing(spacing_mm)
    h0 = float(thickness_mm)
    breast = bmap > 0
    comp = bmap == COMPRESSED
    info: dict = dict(p_fat=float("nan"), heel_slope_per_100mm=0.0, spr=0.0, scatter_fraction_centre=0.0,
                      attenuation=beam.effective(h0), empty=True, fallback=None, local_thickness=None,
                      thickness_from_image=(None, dict(reason="no fatty reference")), thickness_mm=h0,
                      implant_shadow=None, implant_bound_thickness_mm=float("nan"))
    out = np.zeros(img.shape, np.float32)
    if not comp.any() or not breast.any():
        info["fallback"] = "empty compressed region"
        return out, info
    box = bounding_box(breast)
    b_box, c_box = breast[box], comp[box]
    columns = np.arange(box[1].start, box[1].stop)

    air = air_trend(img, breast, spacing, offset)  # the direct exposure: the thickness check's and step 6's

    def log_fat_from_air(h: float) -> np.ndarray:
        """ln P_fat per column of the box: fat through ``h`` as the direct exposure and the spectrum
        place it (:func:`~monai_bac.ops.thickness_check.fat_contrast`), the heel's slope the air's."""
        slope, intercept = air[0]
        return intercept + slope * columns - fat_contrast(beam, h)

    def fat_beside_implant(h: float):
        """P_fat(x) where an implant's shadow leaves no fat at the compressed thickness to read: the
        reference step 6 read the shadow against."""
        trend = np.exp(log_fat_from_air(h))
        chest = 0 if side > 0 else -1
        per_100mm = float(np.expm1(air[0][0] * side * 100.0 / spacing[1]))
        return trend, dict(p_fat=float(trend[chest]), slope_per_100mm=per_100mm, n_bands=0,
                           source="direct exposure (no fat beside the implant)")

    def find_shadow(sub: np.ndarray, h: float) -> np.ndarray | None:
        """Step 6's shadow, read against :func:`log_fat_from_air`: the image's own fat cannot serve, as
        an implant can fill the compressed region all but a rim."""
        if air[0] is None:
            return None
        tried = bound_thicknesses(h, implant_expected)
        shadow, k = implant_shadow_in_image(sub, [(log_fat_from_air(t), glandular_bound(beam, t)) for t in tried],
                                            b_box & (bmap[box] != PECTORAL), spacing)
        info["implant_bound_thickness_mm"] = tried[k] if shadow is not None else float("nan")
        return shadow

    def primary_and_fat(h: float):
        """Steps 1-2 at compressed thickness ``h``: the box's primary (offset and scatter removed,
        smoothed), P_fat(x), the thickness the image implies and an implant's shadow (step 6: found
        here, as the fatty reference must not be read in it); None for P_fat when unusable."""
        sub = img[box] - np.float32(offset) if offset else img[box].copy()
        if scatter:
            tissue = b_box & (bmap[box] != PECTORAL) | (bmap[box] == PECTORAL)
            s, sinfo = estimate_scatter(sub, tissue, _deep_compressed(c_box, spacing), spacing, h, spr=spr,
                                        spr_scale=spr_scale, grid=grid)
            sub -= s
            info.update(spr=sinfo["spr"], scatter_fraction_centre=sinfo.get("scatter_fraction_centre", 0.0))
        if smooth_mm and smooth_mm / max(spacing) >= 1.0 / 3.0:
            sub = ndimage.gaussian_filter(sub, (smooth_mm / spacing[0], smooth_mm / spacing[1]), mode="nearest",
                                          truncate=3.0)
        shadow = find_shadow(sub, h) if find_implant else None
        fat_region = c_box if shadow is None else c_box & ~shadow
        if p_fat is not None:
            trend, tinfo = np.full(sub.shape[1], float(p_fat)), dict(p_fat=float(p_fat), slope_per_100mm=0.0)
        else:
            trend, tinfo = fat_reference_trend(sub, fat_region, spacing, side if heel else 1, erode_mm, block_mm,
                                               percentile, band_mm=10.0 if heel else 1e9)
        own_fat = trend is not None
        if not own_fat and shadow is not None:  # a shadow was read against the direct exposure
            trend, tinfo = fat_beside_implant(h)
        if trend is None or not np.all(np.isfinite(trend)) or trend.min() <= 0:
            return sub, None, tinfo, (None, dict(reason="no fatty reference")), shadow
        if not own_fat:  # the reference is fat through h itself: the contrast would only give h back
            return sub, trend, tinfo, (None, dict(reason=NO_FAT_BESIDE_IMPLANT)), shadow
        return (sub, trend, tinfo,
                thickness_from_contrast(img, breast, np.log(trend), columns, spacing, beam, offset, air=air), shadow)

    sub, trend, tinfo, found, shadow = primary_and_fat(h0)
    for _ in range(IMAGE_THICKNESS_PASSES if fit_thickness and trend is not None else 0):
        if found[0] is None:
            info.update(thickness_from_image=found, fallback=f"no thickness from the image ({found[1]['reason']})")
            return out, info
        if abs(found[0] - h0) <= IMAGE_THICKNESS_AGREE_MM:
            break
        h0 = found[0]
        sub, trend, tinfo, found, shadow = primary_and_fat(h0)
    info["thickness_from_image"] = found
    if trend is None:
        info["fallback"] = "no usable fatty reference"
        return out, info
    if thickness_only:
        info["thickness_mm"] = h0
        return out, info
    att0 = beam.effective(h0)
    info.update(p_fat=float(tinfo["p_fat"]), heel_slope_per_100mm=float(tinfo["slope_per_100mm"]), empty=False,
                attenuation=att0, thickness_mm=h0)
    floor = np.float32(1e-4 * float(trend.max()))
    np.maximum(sub, floor, out=sub)
    log_p = np.log(sub)
    log_trend = np.log(trend).astype(np.float32)[None, :]  # ln P_fat(x), (1, W)
    log_ratio = log_p - log_trend  # ln(P / P_fat(x))
    h_dt = np.zeros(sub.shape, np.float32)
    local = np.zeros(sub.shape, np.float32)

    # compressed region and pectoral muscle: the polyenergetic inverse at the compressed thickness
    core = bmap[box] == COMPRESSED
    g, curve = beam.glandular_curve(h0)
    r = log_ratio[core]
    inv = np.interp(-r, -curve, g).astype(np.float32)
    brighter = r > 0  # brighter than fat: thinner tissue, read with the slope at fat
    inv[brighter] = -r[brighter] / np.float32(att0.mu_dt - att0.mu_fat)
    h_dt[core] = inv
    local[core] = h0

    # pectoral muscle: not breast tissue (no h_dt in it), and thinner than H0 where the breast
    # thins towards the axilla; read it against its own envelope, as the periphery, so that what
    # lies on it (vessels) keeps its contrast and the muscle itself reads ~0
    pect = bmap[box] == PECTORAL
    if pect.any():
        pb = bounding_box(pect)
        env_m = _envelope(log_p[pb], pect[pb], spacing, envelope_mm)
        inside = pect[pb]
        h_dt[pb][inside] = (env_m[inside] - log_p[pb][inside]) / np.float32(att0.mu_dt - att0.mu_fat)
        local[pb][inside] = h0

    # periphery: envelope -> local thickness -> dip below the envelope
    peri = bmap[box] == PERIPHERY
    if peri.any():
        # no tissue is thicker than the compressed thickness, so fat anywhere in the periphery is at
        # least as bright as fat at H0: dense tissue wider than the closing's square (which pulls
        # the envelope below that level) is measured against P_fat(x) there
        env = np.maximum(_envelope(log_p, b_box, spacing, envelope_mm), log_trend)
        a, fat_curve = beam.fat_thickness_curve(h0)
        rel = (env - log_trend)[peri] + np.float32(fat_curve[-1])
        thick = np.interp(-rel, -fat_curve, a).astype(np.float32)  # fat-only thickness of the envelope
        hs = np.linspace(0.0, h0, 33)
        dmu = np.array([max(e.mu_dt - e.mu_fat, 1e-6) for e in map(beam.effective, hs)])
        h_dt[peri] = (env[peri] - log_p[peri]) / np.interp(thick, hs, dmu).astype(np.float32)
        local[peri] = thick
    # the volumetric density sums the unclipped values: zero-mean noise cancels in the sum, where
    # clipping it at 0 would add ~0.4 noise sigmas of 'dense tissue' to every fatty pixel
    tissue = b_box & (bmap[box] != PECTORAL)
    if shadow is not None:
        tissue &= ~shadow
        info["implant_shadow"] = np.zeros(img.shape, bool)
        info["implant_shadow"][box] = shadow
    dense = float(np.minimum(h_dt[tissue], local[tissue]).sum(dtype=np.float64))
    volume = float(local[tissue].sum(dtype=np.float64))
    sr, sc = spacing
    info.update(vbd_percent=100.0 * dense / volume if volume > 0 else float("nan"),
                dense_volume_cm3=dense * sr * sc / 1000.0, breast_volume_cm3=volume * sr * sc / 1000.0)
    np.clip(h_dt, np.float32(lower_mm), local, out=h_dt)
    h_dt[~b_box] = 0.0
    out[box] = h_dt
    full_local = np.zeros(img.shape, np.float32)
    full_local[box] = local
    info["local_thickness"] = full_local
    return out, info


def image_thickness(image: np.ndarray, breast_map: np.ndarray, beam, spacing_mm, laterality: str | None = None,
                    first_mm: float | None = None, grid: bool = True) -> tuple[float | None, str]:
    """The compressed thickness (mm) of a raw image from its own air-to-fat contrast, or (None, why not).

    What ``DensityMap(thickness_mm="image")`` finds, with its default settings: the detector offset
    read from an unexposed border (:func:`~monai_bac.ops.primary.estimate_offset`, 0 without one),
    and the scatter estimate and the fatty reference made again at the image's thickness
    (:func:`~monai_bac.ops.thickness_check.thickness_from_contrast`) until the two agree
    (:func:`density_map_polyenergetic` with ``fit_thickness``), without the density map itself.
    ``first_mm`` is the first guess (:data:`~monai_bac.ops.thickness_check.PROVISIONAL_THICKNESS_MM`
    when None). BreastRegion's scatter step uses it on an image without BodyPartThickness. ``grid``:
    the image was taken behind an anti-scatter grid (the scatter estimate's SPR).
    """
    bmap = np.asarray(breast_map)
    breast = bmap > 0
    offset = estimate_offset(image, breast, spacing_mm) or 0.0
    _, info = density_map_polyenergetic(image, bmap, beam, first_mm or PROVISIONAL_THICKNESS_MM, spacing_mm,
                                        offset=offset, side=chest_wall_side(breast, laterality), fit_thickness=True,
                                        thickness_only=True, grid=grid)
    found, check = info["thickness_from_image"]
    if found is None:
        return None, str(check["reason"] or info.get("fallback") or "no thickness from the image")
    return float(info["thickness_mm"]), ""


def volumetric_breast_density_local(h_dt: np.ndarray, local_thickness: np.ndarray, breast_map: np.ndarray,
                                    spacing_mm=None) -> dict:
    """VBD from an h_dt map and the local thickness map of :func:`density_map_polyenergetic`:
    dense volume ``sum clip(h_dt, 0, H)`` over breast volume ``sum H`` (compressed region and
    periphery; pectoral muscle and background excluded)."""
    bmap = np.asarray(breast_map)
    tissue = (bmap == COMPRESSED) | (bmap == PERIPHERY)
    hloc = np.asarray(local_thickness, dtype=np.float64)[tissue]
    dense = float(np.clip(np.asarray(h_dt, dtype=np.float64)[tissue], 0.0, hloc).sum())
    volume = float(hloc.sum())
    out = dict(vbd_percent=100.0 * dense / volume if volume > 0 else float("nan"), dense_sum_mm=dense,
               breast_sum_mm=volume, dense_volume_cm3=None, breast_volume_cm3=None)
    if spacing_mm is not None:
        sr, sc = as_spacing(spacing_mm)
        out["dense_volume_cm3"] = dense * sr * sc / 1000.0
        out["breast_volume_cm3"] = volume * sr * sc / 1000.0
    return out

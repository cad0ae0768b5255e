"""The primary signal of a raw mammogram: detector offset, scatter and the heel effect.

Eq. (4) of the paper assumes that a raw value is the *primary* x-ray signal, proportional to
the fluence that crossed the breast without interacting. A real raw image adds three things
this module estimates from the image and its acquisition metadata alone:

* a detector **offset** (the raw value at zero exposure): :func:`estimate_offset` reads it from
  an unexposed (collimated) border when the image has one;
* **scatter** behind the anti-scatter grid, or without one (most tomosynthesis units retract
  it): :func:`estimate_scatter` follows the convolution model of Boone & Cooper (Med Phys
  27:1818, 2000): scatter is the primary of the scattering tissue convolved with a broad scatter
  point-spread function, scaled so that the scatter-to-primary ratio (SPR) at the centre of the
  breast is the published value for the compressed thickness (:func:`published_spr`);
* the **heel effect** (10-20 % less fluence at the nipple than at the chest wall on
  mammography units, anode-cathode axis along the chest-wall -> nipple direction):
  :func:`fat_reference_trend` fits the fatty envelope of the compressed region with a smooth
  (log-linear) trend along that axis instead of one constant P_fat.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage, signal

from monai_bac.ops.resample import block_factors, block_mean, upsample_cells
from monai_bac.units import as_spacing

__all__ = [
    "SPR_GRID_PER_MM",
    "SPR_GRID_INTERCEPT",
    "SCATTER_RANGE_PER_MM",
    "GRID_SCATTER_TRANSMISSION",
    "published_spr",
    "spr_behind_grid",
    "estimate_offset",
    "estimate_scatter",
    "chest_wall_side",
    "fat_reference_trend",
    "fat_cells",
]

#: Scatter-to-primary ratio behind a mammography grid at the centre of the breast, linear in the
#: compressed thickness H: SPR = SPR_GRID_INTERCEPT + SPR_GRID_PER_MM * H. The no-grid SPR of
#: a breast rises about linearly with thickness (Boone & Cooper 2000; Boone et al., Med Phys
#: 27:2408, 2000; Sechopoulos et al., Med Phys 34:564, 2007: roughly 0.3-0.4 at 4 cm and
#: 0.6-0.8 at 7-8 cm for a full field) and mammography grids pass scatter at a third to a half
#: of the rate they pass primary (Boone et al., Radiology 222:519, 2002), which gives the
#: published 0.1-0.4 behind the grid; the constants below put 0.13 at 30 mm, 0.22 at 50 mm and
#: 0.31 at 70 mm.
SPR_GRID_INTERCEPT = 0.0
SPR_GRID_PER_MM = 0.0044
#: The share of the scatter a mammography grid passes relative to its share of the primary: "a
#: third to a half" (Boone et al., Radiology 222:519, 2002). Without a grid the SPR is the one
#: behind it divided by this. 0.45 puts that no-grid SPR at 0.39 at 40 mm and 0.68 at 70 mm, within
#: the published no-grid values (0.3-0.4 at 4 cm, 0.6-0.8 at 7-8 cm; Boone & Cooper 2000,
#: Sechopoulos et al. 2007); a third would put it above them (0.53 and 0.92).
GRID_SCATTER_TRANSMISSION = 0.45
#: Range of the scatter point-spread function per mm of thickness: exp(-r / (k H)) / r, k = 1
#: (steep near the origin with a tail of several cm: the shape of the scatter PSFs of Boone &
#: Cooper 2000; scatter spreads further through a thicker breast).
SCATTER_RANGE_PER_MM = 1.0


def spr_behind_grid(thickness_mm, scale: float = 1.0):
    """Published scatter-to-primary ratio behind the grid at the centre of a breast of
    ``thickness_mm`` (see :data:`SPR_GRID_PER_MM`), times ``scale``."""
    t = np.asarray(thickness_mm, dtype=np.float64)
    if np.any(t < 0) or np.any(t > 150):
        raise ValueError(f"thickness_mm must be within 0-150 mm, got {thickness_mm}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"spr_scale must be a positive number, got {scale} (scatter='none' skips the scatter step)")
    return scale * (SPR_GRID_INTERCEPT + SPR_GRID_PER_MM * t)


def published_spr(thickness_mm, scale: float = 1.0, grid: bool = True):
    """Published scatter-to-primary ratio at the centre of a breast of ``thickness_mm``: behind the
    grid (:func:`spr_behind_grid`), or without one (``grid`` False: divided by
    :data:`GRID_SCATTER_TRANSMISSION`), times ``scale``."""
    spr = spr_behind_grid(thickness_mm, scale)
    return spr if grid else spr / GRID_SCATTER_TRANSMISSION


def estimate_offset(image: np.ndarray, breast_mask: np.ndarray, spacing_mm, border_mm: float = 2.0,
                    dark_fraction: float = 0.25) -> float | None:
    """The detector offset from an unexposed (collimated) image border, or None without one.

    A border strip (``border_mm`` wide, holding no breast) counts as unexposed when its median
    is below ``dark_fraction`` of the darkest breast level (1st percentile of the breast): even
    behind the densest tissue some x-rays arrive, under a collimator blade none do. The offset
    is the median of all unexposed strips. Images exposed to the edge (no collimation visible,
    as the phantom's) have none: the offset must then come from the detector's documentation
    (``offset=``)."""
    img = np.asarray(image, dtype=np.float32)
    breast = np.asarray(breast_mask, dtype=bool)
    if not breast.any():
        return None
    sr, sc = as_spacing(spacing_mm)
    nr, nc = max(1, int(round(border_mm / sr))), max(1, int(round(border_mm / sc)))
    step = max(1, int(round(math.sqrt(img.size / 250000))))  # a subsample is plenty for a percentile
    darkest = float(np.percentile(img[::step, ::step][breast[::step, ::step]], 1.0)) if breast[::step, ::step].any() \
        else float(np.percentile(img[breast], 1.0))
    strips = [(img[:nr], breast[:nr]), (img[-nr:], breast[-nr:]), (img[:, :nc], breast[:, :nc]),
              (img[:, -nc:], breast[:, -nc:])]
    dark = [v for v, b in strips if not b.any() and float(np.median(v)) < dark_fraction * darkest]
    if not dark:
        return None
    return float(np.median(np.concatenate([v.ravel() for v in dark])))


def fat_cells(image: np.ndarray, mask: np.ndarray, spacing: tuple[float, float], erode_mm: float, block_mm: float):
    """(cell means, cells to use, cell size (rows, cols) in pixels) of ``block_mm`` cells lying
    entirely in ``mask`` and more than ``erode_mm`` from its edge, or None when there is none.

    The erosion is done on the cell grid (cheap): a cell is kept when its centre is more than
    ``erode_mm`` + half a cell from the centre of any cell not entirely in the region."""
    kr, kc = block_factors(spacing, block_mm)
    h, w = (mask.shape[0] // kr) * kr, (mask.shape[1] // kc) * kc
    if h == 0 or w == 0:
        return None
    cells_in = mask[:h, :w].reshape(h // kr, kr, w // kc, kc).all(axis=(1, 3))
    if erode_mm > 0 and cells_in.any():
        cell = (kr * spacing[0], kc * spacing[1])
        dist = ndimage.distance_transform_edt(np.pad(cells_in, 1), sampling=cell)[1:-1, 1:-1]
        cells_in &= dist > erode_mm + 0.5 * max(cell)
    if not cells_in.any():
        return None
    means = np.asarray(image)[:h, :w].reshape(h // kr, kr, w // kc, kc).mean(axis=(1, 3), dtype=np.float64)
    return means, cells_in, (kr, kc)


def _scatter_kernel(range_mm: float, cell: tuple[float, float]) -> np.ndarray:
    """exp(-r / range) / r on the cell grid, out to 4 ranges, normalised to sum 1; the singular
    centre cell holds the kernel's integral over a disc of the cell's area."""
    nr, nc = (int(math.ceil(4 * range_mm / c)) for c in cell)
    y = np.arange(-nr, nr + 1)[:, None] * cell[0]
    x = np.arange(-nc, nc + 1)[None, :] * cell[1]
    r = np.hypot(y, x)
    with np.errstate(divide="ignore"):
        k = np.exp(-r / range_mm) / r * (cell[0] * cell[1])
    r_cell = math.sqrt(cell[0] * cell[1] / math.pi)  # 2 pi range (1 - exp(-r_cell / range))
    k[nr, nc] = 2 * math.pi * range_mm * (1 - math.exp(-r_cell / range_mm))
    return k / k.sum()


def estimate_scatter(
    image: np.ndarray,
    tissue_mask: np.ndarray,
    centre_mask: np.ndarray,
    spacing_mm,
    thickness_mm: float,
    spr: float | None = None,
    spr_scale: float = 1.0,
    cell_mm: float = 4.0,
    iterations: int = 3,
    spr_reference: str = "homogeneous",
    grid: bool = True,
) -> tuple[np.ndarray, dict]:
    """Scatter in a raw image (offset removed), after Boone & Cooper (2000).

    The scatter is the primary of the tissue convolved with a broad point-spread function
    (:data:`SCATTER_RANGE_PER_MM`), scaled by ``spr`` (default :func:`published_spr` of the
    compressed thickness, behind the grid unless ``grid`` is False, times ``spr_scale``), the
    published SPR at the middle of the compressed breast (``centre_mask``). How the scale is tied
    to that SPR (``spr_reference``):

    * ``"homogeneous"`` (default): the published SPR is measured on homogeneous breast phantoms,
      so the point-spread function gets the amplitude that gives a *homogeneous* breast of this
      outline that SPR over ``centre_mask`` (the amplitude divided by the tissue's share of the
      kernel there, a matter of geometry only). Dense tissue under the centre then lowers the
      scatter only through the primary it spreads, as in the convolution model;
    * ``"local"``: the estimated S/P itself is ``spr`` over ``centre_mask`` (median). A denser
      than average centre (low primary there) scales the whole scatter field down.

    The primary is not known in advance: the estimate iterates ``primary = image -
    scatter(primary)`` (``iterations`` times; it contracts, SPR < 1). Everything runs on a grid
    of ``cell_mm`` cells (scatter has no detail finer than a centimetre) and is interpolated back.

    Returns:
        (scatter (H, W) float32 in the image's units, info with ``spr`` used and ``cell_mm``).
    """
    if spr_reference not in ("homogeneous", "local"):
        raise ValueError(f"spr_reference must be 'homogeneous' or 'local', got {spr_reference!r}")
    img = np.asarray(image, dtype=np.float32)
    spacing = as_spacing(spacing_mm)
    spr = float(published_spr(thickness_mm, spr_scale, grid)) if spr is None else float(spr)
    info = dict(spr=spr, cell_mm=float(cell_mm), spr_range_mm=SCATTER_RANGE_PER_MM * float(thickness_mm))
    if spr <= 0 or not np.any(tissue_mask):
        return np.zeros(img.shape, np.float32), info
    fr, fc = block_factors(spacing, cell_mm)
    tissue = np.asarray(tissue_mask, bool)
    frac = block_mean(tissue.astype(np.float32), fr, fc)
    # the tissue's own mean in each cell: where a cell straddles the skin line, the direct
    # exposure beside the breast (10-50 x brighter) is no scattering primary
    meas = block_mean(np.where(tissue, img, np.float32(0.0)), fr, fc) / np.maximum(frac, np.float32(1e-6))
    centre = block_mean(np.asarray(centre_mask, np.float32), fr, fc) > 0.5
    if not centre.any():
        centre = frac >= frac.max() * 0.999
    kernel = _scatter_kernel(max(SCATTER_RANGE_PER_MM * float(thickness_mm), cell_mm), (fr * spacing[0], fc * spacing[1]))
    primary = meas / (1.0 + spr)
    scatter = meas - primary
    if spr_reference == "homogeneous":  # S / P of a uniform primary: the kernel's share in the tissue
        ratio = float(np.median(signal.fftconvolve(frac, kernel, mode="same")[centre]))
    for _ in range(max(1, iterations)):
        spread = signal.fftconvolve(primary * frac, kernel, mode="same")
        if spr_reference == "local":
            ratio = float(np.median(spread[centre] / np.maximum(primary[centre], 1e-12)))
        scatter = spread * (spr / max(ratio, 1e-12))
        primary = np.maximum(meas - scatter, 0.05 * meas)
    info["scatter_fraction_centre"] = float(np.median(scatter[centre] / np.maximum(meas[centre], 1e-12)))
    return upsample_cells(scatter, img.shape, fr, fc), info


def chest_wall_side(breast_mask: np.ndarray, laterality: str | None = None) -> int:
    """+1 when the chest wall is at column 0 (the breast touches the left edge), -1 when at the
    last column; from the breast's contact with the two side edges, else the laterality
    (L: chest wall on the left, the project's display convention)."""
    m = np.asarray(breast_mask, dtype=bool)
    left, right = int(m[:, :2].sum()), int(m[:, -2:].sum())
    if left != right:
        return 1 if left > right else -1
    return -1 if str(laterality or "L").upper().startswith("R") else 1


def fat_reference_trend(
    image: np.ndarray,
    compressed_mask: np.ndarray,
    spacing_mm,
    side: int = 1,
    erode_mm: float = 5.0,
    block_mm: float = 1.0,
    percentile: float = 99.0,
    band_mm: float = 10.0,
    min_cells: int = 30,
    max_drop_per_100mm: float = 0.35,
) -> tuple[np.ndarray | None, dict]:
    """The fatty reference P_fat as a log-linear trend along the chest-wall -> nipple axis.

    The compressed region (eroded by ``erode_mm``) is cut into ``block_mm`` cells; the cells are
    grouped in ``band_mm`` bands of distance from the chest wall, and each band's fatty level is
    the ``percentile`` of its cell means. A line ln P_fat = a + b x (x: mm from the chest wall)
    is fitted to the bands' levels as an *upper* envelope - bands lying more than 3 % below the
    line (no fat in them: dense tissue fills the band) are dropped and the line refitted - and
    its slope is held to the heel effect's physical range (a drop of at most
    ``max_drop_per_100mm`` per 100 mm, no rise beyond 5 %). With fewer than two usable bands,
    the slope is 0 (one P_fat, as Eq. 4).

    Returns:
        (per-column P_fat (W,) float64, or None with no usable cell; info with ``p_fat`` at the
        chest wall, ``slope_per_100mm`` (relative change), ``n_bands``).
    """
    spacing = as_spacing(spacing_mm)
    mask = np.asarray(compressed_mask, dtype=bool)
    img = np.asarray(image, dtype=np.float32)
    info: dict = dict(n_bands=0, slope_per_100mm=0.0, p_fat=float("nan"))
    if not mask.any():
        return None, info

    for e in (erode_mm, erode_mm / 2, 0.0):
        grid = fat_cells(img, mask, spacing, e, block_mm)
        if grid is not None:
            break
    if grid is None:
        return None, info
    means, keep, (kr, kc) = grid
    cell = (kr * spacing[0], kc * spacing[1])
    rows, cols = np.nonzero(keep)
    vals = means[rows, cols]
    ok = vals > 0
    rows, cols, vals = rows[ok], cols[ok], vals[ok]
    if vals.size == 0:
        return None, info
    n_cols = keep.shape[1]
    x_cell = (cols + 0.5) * cell[1] if side > 0 else (n_cols - cols - 0.5) * cell[1]
    band = np.floor(x_cell / band_mm).astype(int)
    levels, centres, counts = [], [], []
    for b in np.unique(band):
        sel = band == b
        if sel.sum() >= min_cells:
            levels.append(math.log(float(np.percentile(vals[sel], percentile))))
            centres.append(float(np.mean(x_cell[sel])))
            counts.append(int(sel.sum()))
    x_cols = (np.arange(img.shape[1]) + 0.5) * spacing[1]
    if side < 0:
        x_cols = x_cols[::-1]
    overall = math.log(float(np.percentile(vals, percentile)))
    if len(levels) < 2:
        info.update(n_bands=len(levels), p_fat=math.exp(overall))
        return np.full(img.shape[1], math.exp(overall)), info
    xs, ys, ws = np.array(centres), np.array(levels), np.sqrt(np.array(counts, float))
    use = np.ones(xs.size, bool)
    lo, hi = math.log(1.0 - max_drop_per_100mm) / 100.0, math.log(1.05) / 100.0
    for _ in range(3):
        slope, icpt = np.polyfit(xs[use], ys[use], 1, w=ws[use]) if use.sum() >= 2 else (0.0, float(np.max(ys)))
        slope = float(np.clip(slope, lo, hi))
        icpt = float(np.average(ys[use] - slope * xs[use], weights=ws[use]))
        new = ys - (icpt + slope * xs) > math.log(0.97)
        if new.sum() < 2 or np.array_equal(new, use):
            break
        use = new
    info.update(n_bands=int(use.sum()), slope_per_100mm=math.expm1(100.0 * slope), p_fat=math.exp(icpt))
    return np.exp(icpt + slope * x_cols), info

"""How strongly a map forms a ridge *along an annotated path* (label correction, issue 13).

A calcified artery is a track of calcium that runs along the annotator's stroke: across the path
h_calc (Eq. 5) falls off on both sides, along it h_calc stays level. What else a stroke carries
calcium-equivalent from - a dense blob or a strand's knot that Eq. (5)'s opening leaves in
dense tissue, a cluster's specks - curves as much along the path as across it, or forms its ridge
across the stroke. The measure is Lindeberg's scale-normalised ridge strength (Lindeberg 1998,
"Edge detection and ridge detection with automatic scale selection", Int. J. Comput. Vis. 30)
taken in the path's own frame instead of the Hessian's eigenframe:

    R = sigma^2 * ( -d2h/dn2 - |d2h/dt2| )

with ``t`` the path's tangent and ``n`` its normal, on ``h`` smoothed by a Gaussian of ``sigma``
(mm). ``R`` is a thickness in the map's unit (mm of h_calc): about the height of a ridge of width
~sigma along the path, zero or negative for a blob or a ridge that crosses the path.

The Hessian is read on ~``sigma / 3`` cells (:func:`monai_bac.ops.resample.block_mean`): the
Gaussian of ``sigma`` leaves nothing finer, and the full-resolution filters would cost several
times the label correction itself.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from monai_bac.ops.resample import block_factors, block_mean

__all__ = ["path_tangents", "path_ridge_strength"]


def path_tangents(rows: np.ndarray, cols: np.ndarray, order: np.ndarray, branch: np.ndarray,
                  spacing: tuple[float, float], half_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit tangents (row, col components, in mm) of skeleton pixels along their branch.

    ``order`` lists the branch pixels branch after branch, each along its path (the label
    correction's depth-first order); the tangent at a pixel is the chord between the pixels
    ``half_mm`` before and after it on the same branch (clipped at the branch's ends). Pixels
    not in ``order`` (junctions) get (0, 0).
    """
    n = rows.size
    ty, tx = np.zeros(n), np.zeros(n)
    if order.size == 0:
        return ty, tx
    br = branch[order]
    idx = np.arange(order.size)
    new = np.flatnonzero(np.diff(br)) + 1
    starts, ends = np.r_[0, new], np.r_[new, order.size] - 1
    run = np.repeat(np.arange(starts.size), ends - starts + 1)
    k = max(1, int(round(half_mm / min(spacing))))
    lo, hi = np.maximum(idx - k, starts[run]), np.minimum(idx + k, ends[run])
    dy = (rows[order[hi]] - rows[order[lo]]) * spacing[0]
    dx = (cols[order[hi]] - cols[order[lo]]) * spacing[1]
    length = np.hypot(dy, dx)
    length[length == 0] = 1.0
    ty[order], tx[order] = dy / length, dx / length
    return ty, tx


def path_ridge_strength(image: np.ndarray, px_rows: np.ndarray, px_cols: np.ndarray, ty: np.ndarray,
                        tx: np.ndarray, spacing: tuple[float, float], sigma_mm: float) -> np.ndarray:
    """Scale-normalised ridge strength along a path (module docstring) at the given pixels.

    Args:
        image: (H, W) map (h_calc, mm).
        px_rows, px_cols: the pixels to read.
        ty, tx: unit tangent of the path at each pixel (mm frame; :func:`path_tangents`).
        spacing: (row, col) mm.
        sigma_mm: Gaussian scale, mm (about half the width of the ridge sought).

    Returns:
        float64 array, one value per pixel: ``sigma^2 (-d2h/dn2 - |d2h/dt2|)``.
    """
    if px_rows.size == 0:
        return np.zeros(0)
    fr, fc = block_factors(spacing, sigma_mm / 3.0)
    cr, cc = fr * spacing[0], fc * spacing[1]  # cell size, mm
    pad = int(np.ceil(4.0 * sigma_mm / min(cr, cc))) + 2  # cells: the filter's reach and the differences'
    h, w = image.shape
    r0 = max(int(px_rows.min()) - pad * fr, 0) // fr * fr
    c0 = max(int(px_cols.min()) - pad * fc, 0) // fc * fc
    r1, c1 = min(int(px_rows.max()) + 1 + pad * fr, h), min(int(px_cols.max()) + 1 + pad * fc, w)
    cells = block_mean(image[r0:r1, c0:c1], fr, fc)
    smooth = ndimage.gaussian_filter(cells, (sigma_mm / cr, sigma_mm / cc), mode="nearest", truncate=3.0)
    s = np.pad(smooth, 1, mode="edge")
    i, j = (px_rows - r0) // fr + 1, (px_cols - c0) // fc + 1
    hrr = (s[i + 1, j] - 2.0 * s[i, j] + s[i - 1, j]) / cr**2
    hcc = (s[i, j + 1] - 2.0 * s[i, j] + s[i, j - 1]) / cc**2
    hrc = (s[i + 1, j + 1] - s[i + 1, j - 1] - s[i - 1, j + 1] + s[i - 1, j - 1]) / (4.0 * cr * cc)
    along = ty * ty * hrr + 2.0 * ty * tx * hrc + tx * tx * hcc
    across = tx * tx * hrr - 2.0 * ty * tx * hrc + ty * ty * hcc
    return sigma_mm**2 * (-across - np.abs(along))

"""The pectoral muscle's edge in an MLO view (step 5 of :mod:`monai_bac.ops.breast_region`).

Everything here works in the canonical frame of a breast (chest wall at column 0, axilla up, mm):
:func:`find_pectoral` finds the muscle's straight edge by a Hough transform of the gradient of
ln P (each pixel's vote capped at the gradient of the faintest muscle edge accepted, so votes count
an edge's length rather than its strength; edges of either polarity on request) and refines it
into a slightly curved one; :func:`find_pectoral_curve` searches quadratic edges directly where
no line passes (a low-contrast muscle, a curved edge);
:func:`pectoral_mask` turns an edge into the muscle's pixels. Both searches check that what they
found is a plausible muscle (angle, cut-off corner, support and contrast along the edge).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from monai_bac.units import as_spacing

__all__ = ["PectoralEdge", "find_pectoral", "find_pectoral_curve", "pectoral_mask"]


@dataclass
class PectoralEdge:
    """The pectoral muscle's edge in the canonical frame (chest wall at x = 0, row y down, mm).

    The straight line is ``x cos(theta) + y sin(theta) = rho``; the edge is offset from it along
    the normal (pointing away from the corner) by ``offset(s) = polyval(coeffs, s)`` mm, where
    ``s`` is the arc length along the line from its top intercept. Muscle: ``t < offset(s)``.
    """

    theta: float  # rad, normal direction (0 = along +x)
    rho: float  # mm
    coeffs: np.ndarray  # quadratic offset polynomial (np.polyval order), mm
    length_mm: float  # length of the line between the top edge and the chest wall
    contrast: float  # ln(P) step across the edge (breast side - muscle side), 75th percentile along it
    support: float  # fraction of the edge length with a consistent gradient maximum

    @property
    def top_intercept_mm(self) -> float:
        return self.rho / math.cos(self.theta)

    @property
    def chest_wall_intercept_mm(self) -> float:
        return self.rho / math.sin(self.theta)


def _curve_geometry(x_top, y_cw, sag, n_pts: int):
    """Sample points (mm, canonical frame), unit normals pointing away from the upper chest-wall
    corner, and arc-length steps (mm) of candidate pectoral edges: the chord from the top
    intercept ``(x_top, 0)`` to the chest-wall intercept ``(0, y_cw)``, bowed away from the corner
    by ``sag`` mm at its middle (a quadratic offset; negative: a concave edge). Inputs are (K,)
    arrays; outputs (K, n_pts)."""
    length = np.hypot(x_top, y_cw)
    ux, uy = (-x_top / length)[:, None], (y_cw / length)[:, None]  # along the chord, top -> chest wall
    nx, ny = (y_cw / length)[:, None], (x_top / length)[:, None]  # chord normal, away from the corner
    f = (np.arange(n_pts) + 0.5) / n_pts
    s = f[None, :] * length[:, None]
    off = 4.0 * sag[:, None] * f * (1.0 - f)
    slope = 4.0 * sag[:, None] * (1.0 - 2.0 * f) / length[:, None]  # d offset / d s
    px = x_top[:, None] + s * ux + off * nx
    py = s * uy + off * ny
    cx, cy = nx - slope * ux, ny - slope * uy
    norm = np.hypot(cx, cy)
    return px, py, cx / norm, cy / norm, (length[:, None] / n_pts) * norm


def _curve_scores(gx, gy, inside, spacing_mm, x_top, y_cw, sag, n_pts: int, read=None):
    """Integral (ln units) of the derivative of ln P across each candidate edge, towards the
    breast, over the part of the edge inside the breast (and in ``read``, where given); and the
    fraction of the edge inside the breast."""
    sr, sc = spacing_mm
    h, w = inside.shape
    px, py, cx, cy, ds = _curve_geometry(x_top, y_cw, sag, n_pts)
    r, c = np.rint(py / sr).astype(np.int64), np.rint(px / sc).astype(np.int64)
    ok = (r >= 0) & (r < h) & (c >= 0) & (c < w)
    r, c = np.clip(r, 0, h - 1), np.clip(c, 0, w - 1)
    ok &= inside[r, c]
    scored = ok if read is None else ok & read[r, c]
    step = gx[r, c] * cx + gy[r, c] * cy
    return np.where(scored, step * ds, 0.0).sum(1), ok.mean(1)


def _search_curves(gx, gy, inside, spacing_mm, x_tops, y_cws, sag_fractions, n_pts, min_inside=0.7, read=None):
    """Best ``(x_top, y_cw, sag)`` over the grid of candidate edges (see :func:`_curve_scores`)."""
    xt, yc, fr = (a.ravel() for a in np.meshgrid(x_tops, y_cws, sag_fractions, indexing="ij"))
    sag = fr * np.hypot(xt, yc)
    score, frac = _curve_scores(gx, gy, inside, spacing_mm, xt, yc, sag, n_pts, read)
    score = np.where(frac >= min_inside, score, -np.inf)
    i = int(np.argmax(score))
    return float(xt[i]), float(yc[i]), float(sag[i]), float(score[i])


def _muscle_frame(log_img: np.ndarray, mask: np.ndarray, spacing_mm):
    """What both pectoral searches start from: the chest-wall rows of the breast, its depth
    (mm), the median tissue level and the air-to-tissue contrast of ln P; None without a breast
    at the chest wall."""
    if not mask.any():
        return None
    cw_rows = np.nonzero(mask[:, 0])[0]
    if cw_rows.size == 0:
        return None
    depth_mm = (np.nonzero(mask.any(0))[0][-1] + 1) * spacing_mm[1]
    air = float(np.median(log_img[~mask])) if (~mask).any() else float(log_img.max())
    tissue = float(np.median(log_img[mask]))
    return cw_rows, depth_mm, tissue, max(air - tissue, 1e-6)


def _cuts_off_corner(x_top, y_cw, depth_mm: float, y_lim_mm: float):
    """Whether a line with these intercepts (mm; top edge, chest wall) cuts off the breast's upper
    chest-wall corner, as a pectoral edge does (arrays broadcast)."""
    return (0 < x_top) & (x_top < depth_mm) & (0 < y_cw) & (y_cw < y_lim_mm + 5.0)


def _plausible_muscle(edge: PectoralEdge, mask: np.ndarray, spacing_mm, min_area_mm2: float, strict: bool) -> bool:
    """The muscle cut off by ``edge`` is at least ``min_area_mm2`` and at most half the breast;
    with the view unknown (``strict``) it must reach the top image edge over >= 5 mm, as the
    axillary tail of an MLO does."""
    sr, sc = spacing_mm
    muscle = pectoral_mask(edge, mask, (sr, sc))
    area = float(muscle.sum() * sr * sc)
    if area < min_area_mm2 or area > 0.5 * mask.sum() * sr * sc:
        return False
    return not (strict and muscle[0].sum() * sc < 5.0)


def find_pectoral(
    log_img: np.ndarray,
    mask: np.ndarray,
    dist_mm: np.ndarray,
    spacing_mm,
    *,
    strict: bool = False,
    theta_range_deg: tuple[float, float] = (3.0, 65.0),
    smooth_mm: float = 1.0,
    skin_margin_mm: float = 4.0,
    search_mm: float = 8.0,
    min_area_mm2: float = 200.0,
    min_relative_contrast: float | None = None,
    min_support: float | None = None,
    max_sagitta: float = 0.06,
    polarity: str = "brighter",
    clear: np.ndarray | None = None,
) -> PectoralEdge | None:
    """Find the pectoral muscle edge in the canonical frame (chest wall at column 0, axilla up).

    A Hough transform over the breast's upper chest-wall part: every pixel whose gradient of the
    smoothed ln(P) reaches half of ``g_min`` votes for the lines within 15 deg of its gradient's
    normal, with its gradient's component along the line's normal capped at ``g_min``, the
    peak gradient of the faintest step the contrast check accepts
    (``min_relative_contrast * breast contrast / (sqrt(2 pi) smooth_mm)``). Capped votes count
    the length of an edge: a muscle edge of 0.05 in ln P beside a dense plateau is not outvoted by
    the short edges of dense clumps eight times stronger, as it was when only the strongest 20 %
    of the gradients voted, each with its full strength (tests/test_pectoral.py;
    docs/validation/realistic_writ.md).

    Args:
        log_img: ln(P + 1), (H, W), chest wall on the left.
        mask: breast mask (bool).
        dist_mm: distance to the skin line (mm), 0 outside the breast.
        spacing_mm: (row, col) spacing of these arrays.
        strict: the view is unknown: also require the muscle to reach the top image edge
            (over >= 5 mm, the axillary tail of an MLO view) and ask for more contrast/support.
        theta_range_deg: allowed angle of the edge's normal from the x axis (0 = vertical edge).
        smooth_mm: Gaussian smoothing before the gradient.
        skin_margin_mm: edges closer than this to the skin line are ignored.
        search_mm: half-width of the band around the Hough line searched for the curved edge.
        min_area_mm2: smaller muscle regions are rejected.
        min_relative_contrast: minimum ln(P) step across the edge as a fraction of the breast's
            air-to-tissue contrast (default 0.02, 0.04 when ``strict``).
        min_support: minimum fraction of the edge with a consistent gradient maximum (default
            0.3, 0.4 when ``strict``).
        max_sagitta: largest departure of the curved edge from a straight line, as a fraction of
            its length (at least 3 mm).
        polarity: "brighter": ln P rises across the edge towards the breast (the muscle
            attenuates more than the tissue beside it); "either": the step may change sign along
            the edge (dense tissue beside the muscle attenuating more than the muscle itself) -
            votes, the refinement and the contrast check take the step's magnitude.
        clear: where the edge may be read (bool, default: the whole breast). Votes, the edge's
            offsets, its support and its contrast come from these pixels alone, and the edge is
            carried across the rest as fitted there, bowed no more than ``max_sagitta`` over its
            whole length: over a breast implant the muscle's edge is no step (the implant
            attenuates as much as the muscle; docs/design-log/breast_region.md).

    Returns:
        the :class:`PectoralEdge`, or None when no edge passes the checks.
    """
    if polarity not in ("brighter", "either"):
        raise ValueError(f"find_pectoral: polarity must be 'brighter' or 'either', got {polarity!r}")
    either = polarity == "either"
    sr, sc = as_spacing(spacing_mm)
    min_relative_contrast = (0.04 if strict else 0.02) if min_relative_contrast is None else min_relative_contrast
    min_support = (0.4 if strict else 0.3) if min_support is None else min_support
    h, w = mask.shape
    frame = _muscle_frame(log_img, mask, (sr, sc))
    if frame is None:
        return None
    cw_rows, depth_mm, tissue, breast_contrast = frame

    g = np.where(mask, log_img, tissue).astype(np.float32)
    g = ndimage.gaussian_filter(g, (smooth_mm / sr, smooth_mm / sc))
    gy, gx = np.gradient(g, sr, sc)

    # --- Hough transform of the oriented gradient, votes capped ------------------------------
    y_lim = (cw_rows[-1] + 1) * sr
    x_lim = 0.8 * depth_mm
    yy = np.arange(h, dtype=np.float32)[:, None] * sr
    xx = np.arange(w, dtype=np.float32)[None, :] * sc
    roi = mask & (dist_mm > skin_margin_mm) & (yy < y_lim) & (xx < x_lim)
    if clear is not None:
        roi &= clear
    mag = np.hypot(gx, gy)
    if roi.sum() < 50:
        return None
    # every pixel that could lie on the weakest edge the contrast check accepts votes, with at most
    # that edge's peak gradient: votes then count an edge's length, not its strength, so the short
    # strong edges of dense tissue cannot outvote a long, faint muscle edge beside them
    g_min = min_relative_contrast * breast_contrast / (math.sqrt(2.0 * math.pi) * smooth_mm)
    roi &= mag > 0.5 * g_min
    py, px = np.nonzero(roi)
    ys, xs = py * sr, px * sc
    gxs, gys, ms = gx[roi], gy[roi], mag[roi]
    thetas = np.deg2rad(np.arange(theta_range_deg[0], theta_range_deg[1] + 0.5, 1.0))
    rho_step = 1.0
    rho_max = float(np.hypot(h * sr, w * sc))
    n_rho = int(rho_max / rho_step) + 2
    cos_t, sin_t = np.cos(thetas), np.sin(thetas)
    if either:  # the line's normal then points either way: take the gradient's sense nearer to it
        # (one sense only can lie within the vote's 15 deg of an angle while the range spans < 150 deg)
        mid = np.deg2rad(0.5 * (theta_range_deg[0] + theta_range_deg[1]))
        flip = gxs * math.cos(mid) + gys * math.sin(mid) < 0
        gxs, gys = np.where(flip, -gxs, gxs), np.where(flip, -gys, gys)
    p_idx, t_idx, proj = _voting_pairs(gxs, gys, ms, theta_range_deg[0], cos_t, sin_t)
    rho = xs[p_idx] * cos_t[t_idx] + ys[p_idx] * sin_t[t_idx]
    cell = t_idx * n_rho + np.clip(np.rint(rho / rho_step).astype(np.int64), 0, n_rho - 1)
    votes = np.minimum(proj, g_min)
    acc = np.bincount(cell, weights=votes, minlength=len(thetas) * n_rho).reshape(len(thetas), n_rho)
    acc = ndimage.uniform_filter1d(acc, 3, axis=1)
    if clear is not None:  # few votes are left on the muscle's edge: the best line that cuts off the corner
        rho_grid = np.arange(n_rho)[None, :] * rho_step
        acc = np.where(_cuts_off_corner(rho_grid / cos_t[:, None], rho_grid / sin_t[:, None], depth_mm, y_lim),
                       acc, 0.0)
    ti, ri = np.unravel_index(int(np.argmax(acc)), acc.shape)
    if acc[ti, ri] <= 0:
        return None
    theta, rho0 = float(thetas[ti]), float(ri * rho_step)

    # --- refine: gradient maxima along the normal, robust quadratic offset ------------------
    ct, st = math.cos(theta), math.sin(theta)
    x_top, y_cw = rho0 / ct, rho0 / st
    if not _cuts_off_corner(x_top, y_cw, depth_mm, y_lim):
        return None
    length = float(math.hypot(x_top, y_cw))
    s = np.arange(0.0, length, max(1.0, 2 * max(sr, sc)))
    dirx, diry = -x_top / length, y_cw / length  # along the line, from top intercept to chest wall
    offs = np.arange(-search_mm, search_mm + 1e-6, 0.25 * min(sr, sc) + 0.25)
    bx = x_top + s[:, None] * dirx + offs[None, :] * ct
    by = s[:, None] * diry + offs[None, :] * st
    coords = np.stack([by / sr, bx / sc])
    dgrad = (ndimage.map_coordinates(gx, coords, order=1, mode="nearest") * ct
             + ndimage.map_coordinates(gy, coords, order=1, mode="nearest") * st)
    inside = ndimage.map_coordinates(dist_mm, coords, order=1, mode="constant", cval=0.0) > skin_margin_mm
    span = None  # the arc lengths over which the edge's bow is bounded: where it was read
    if clear is not None:  # where it is drawn: the line's whole extent in the breast
        span = s[inside[:, len(offs) // 2]]
        inside &= ndimage.map_coordinates(clear.astype(np.float32), coords, order=0, mode="constant") > 0
    if either:
        dgrad = np.abs(dgrad)
    dgrad = np.where(inside, dgrad, -np.inf)
    best = np.argmax(dgrad, axis=1)
    peak = dgrad[np.arange(len(s)), best]
    line_inside = inside[:, len(offs) // 2]
    # a maximum at the end of the search window is no edge
    valid = np.isfinite(peak) & (peak > 0) & (best > 0) & (best < len(offs) - 1) & line_inside
    if line_inside.sum() < 5 or valid.sum() < 5:
        return None
    t_star = offs[best]
    tol = max(1.5, 2 * max(sr, sc))
    keep, coeffs = _robust_edge_fit(s, t_star, peak, valid, tol, max_sagitta_mm=max(3.0, max_sagitta * length),
                                    span=span)
    if keep is None:
        return None
    support = float(keep.sum() / line_inside.sum())
    # contrast across the fitted edge, 3 mm each side
    t_fit = np.polyval(coeffs, s[keep])
    ex, ey = x_top + s[keep] * dirx, s[keep] * diry
    side = []
    for sign in (-1.0, 1.0):
        cx = ex + (t_fit + sign * 3.0) * ct
        cy = ey + (t_fit + sign * 3.0) * st
        side.append(ndimage.map_coordinates(g, np.stack([cy / sr, cx / sc]), order=1, mode="nearest"))
    # the step across the edge where it borders fat (dense tissue next to the muscle lowers it)
    step = side[1] - side[0]
    contrast = float(np.percentile(np.abs(step) if either else step, 75))
    if support < min_support or contrast < min_relative_contrast * breast_contrast:
        return None
    edge = PectoralEdge(theta, rho0, coeffs, length, contrast, support)
    return edge if _plausible_muscle(edge, mask, (sr, sc), min_area_mm2, strict) else None


def _voting_pairs(gx, gy, mag, theta0_deg: float, cos_t, sin_t, window_deg: float = 15.0):
    """The (pixel, angle) pairs of the Hough vote: the line normals (angles ``theta0_deg``,
    ``theta0_deg + 1``, ... deg) within ``window_deg`` of each pixel's gradient, and the gradient's
    component along each. Only the angles within one degree more than the window are computed
    (not every pixel against every angle); the pairs come pixel by pixel, angles ascending."""
    n_t = len(cos_t)
    phi = np.degrees(np.arctan2(gy, gx)) - theta0_deg  # the gradient's direction, in angle steps
    lo = np.clip(np.floor(phi - window_deg - 1.0), 0, n_t).astype(np.int64)
    hi = np.clip(np.ceil(phi + window_deg + 1.0) + 1, 0, n_t).astype(np.int64)
    n = np.maximum(hi - lo, 0)
    p_idx = np.repeat(np.arange(len(gx)), n)
    t_idx = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n - lo, n)
    proj = gx[p_idx] * cos_t[t_idx] + gy[p_idx] * sin_t[t_idx]
    keep = proj > np.cos(np.deg2rad(window_deg)) * mag[p_idx]
    return p_idx[keep], t_idx[keep], proj[keep]


def find_pectoral_curve(
    log_img: np.ndarray,
    mask: np.ndarray,
    dist_mm: np.ndarray,
    spacing_mm,
    *,
    strict: bool = False,
    coarse_smooth_mm: float = 3.0,
    smooth_mm: float = 1.5,
    skin_margin_mm: float = 4.0,
    max_sagitta: float = 0.08,
    periphery_mm: float = 0.0,
    min_area_mm2: float = 200.0,
    min_relative_contrast: float | None = None,
    min_support: float | None = None,
    clear: np.ndarray | None = None,
) -> PectoralEdge | None:
    """Find the pectoral muscle edge in the canonical frame (chest wall at column 0, axilla up).

    The muscle attenuates more than the breast tissue beside it, so ln(P) rises across its edge
    towards the breast. Candidate edges are quadratic curves from a top intercept to a
    chest-wall intercept (a straight chord bowed by up to ``max_sagitta`` of its length, convex
    or concave); each is scored by the integral along it of the derivative of the smoothed
    ln(P) across it, towards the breast (an active-contour energy restricted to this family:
    an edge of low contrast but long extent outscores the short, strong edges of dense tissue,
    whose derivative changes sign along any curve). The search runs on a grid at the scale of
    ``coarse_smooth_mm`` (a muscle edge that tapers over several mm is still one step there)
    and is refined at ``smooth_mm``; the result is then checked (contrast, support, area).

    Args:
        log_img: ln(P + 1), (H, W), chest wall on the left, thickness fall-off removed.
        mask: breast mask (bool).
        dist_mm: distance to the skin line (mm), 0 outside the breast.
        spacing_mm: (row, col) spacing of these arrays.
        strict: the view is unknown: also require the muscle to reach the top image edge
            (over >= 5 mm, the axillary tail of an MLO view) and ask for more contrast/support.
        coarse_smooth_mm, smooth_mm: Gaussian scales of the coarse search and of the refinement.
        skin_margin_mm: the edge is scored only deeper than this inside the breast.
        max_sagitta: largest bow of the edge, as a fraction of its chord.
        periphery_mm: the edge is scored only deeper than this either (the periphery width: what
            is left there of the thickness fall-off after its removal runs along the skin line
            and would pull the edge along it).
        min_area_mm2: smaller muscle regions are rejected.
        min_relative_contrast: minimum ln(P) step across the edge as a fraction of the breast's
            air-to-tissue contrast (default 0.02, 0.04 when ``strict``).
        min_support: minimum fraction of the edge where ln(P) rises towards the breast
            (default 0.6, 0.75 when ``strict``).
        clear: where the edge may be read (bool, default: the whole breast): the score, support
            and contrast come from the edge's part in it, and the edge is carried across the
            rest (as in :func:`find_pectoral`).

    Returns:
        the :class:`PectoralEdge`, or None when no edge passes the checks.
    """
    sr, sc = as_spacing(spacing_mm)
    min_relative_contrast = (0.04 if strict else 0.02) if min_relative_contrast is None else min_relative_contrast
    min_support = (0.75 if strict else 0.6) if min_support is None else min_support
    frame = _muscle_frame(log_img, mask, (sr, sc))
    if frame is None:
        return None
    cw_rows, depth_mm, tissue, breast_contrast = frame
    filled = np.where(mask, log_img, tissue).astype(np.float32)
    inside = mask & (dist_mm > max(skin_margin_mm, periphery_mm))
    y_lim = (cw_rows[-1] + 1) * sr
    x_lim = 0.8 * depth_mm
    if y_lim < 20.0 or x_lim < 10.0:
        return None

    # coarse: every chord on a 4 mm grid of intercepts, five bows, at a large scale
    g = ndimage.gaussian_filter(filled, (coarse_smooth_mm / sr, coarse_smooth_mm / sc))
    gy, gx = np.gradient(g, sr, sc)
    bows = np.linspace(-max_sagitta, max_sagitta, 5)
    x_top, y_cw, sag, score = _search_curves(gx, gy, inside, (sr, sc), np.arange(5.0, x_lim, 4.0),
                                             np.arange(15.0, y_lim + 1e-6, 4.0), bows, 48, read=clear)
    if not np.isfinite(score) or score <= 0:
        return None
    # refine: 1 mm steps around the coarse edge, finer bows, at the edge's own scale
    g = ndimage.gaussian_filter(filled, (smooth_mm / sr, smooth_mm / sc))
    gy, gx = np.gradient(g, sr, sc)
    length = math.hypot(x_top, y_cw)
    n_pts = int(max(48, length / max(sr, sc)))
    x_top, y_cw, sag, score = _search_curves(
        gx, gy, inside, (sr, sc), np.arange(max(2.0, x_top - 4.0), x_top + 4.5, 1.0),
        np.arange(max(5.0, y_cw - 5.0), y_cw + 5.5, 1.0),
        np.clip(sag / length + np.linspace(-0.03, 0.03, 5), -max_sagitta, max_sagitta), n_pts, read=clear)
    if not np.isfinite(score) or score <= 0:
        return None

    # checks: where ln P rises towards the breast (support), the step 3 mm each side (contrast)
    length = math.hypot(x_top, y_cw)
    px, py, cx, cy, _ = _curve_geometry(np.array([x_top]), np.array([y_cw]), np.array([sag]), n_pts)
    px, py, cx, cy = px[0], py[0], cx[0], cy[0]
    read = inside if clear is None else inside & clear
    on = ndimage.map_coordinates(read.astype(np.float32), np.stack([py / sr, px / sc]), order=0,
                                 mode="constant") > 0
    if on.sum() < 5:
        return None
    deriv = (ndimage.map_coordinates(gx, np.stack([py / sr, px / sc]), order=1, mode="nearest") * cx
             + ndimage.map_coordinates(gy, np.stack([py / sr, px / sc]), order=1, mode="nearest") * cy)
    support = float((deriv[on] > 0).mean())
    sides = [ndimage.map_coordinates(g, np.stack([(py + k * cy) / sr, (px + k * cx) / sc]), order=1, mode="nearest")
             for k in (-3.0, 3.0)]
    contrast = float(np.percentile((sides[1] - sides[0])[on], 75))
    if support < min_support or contrast < min_relative_contrast * breast_contrast:
        return None
    theta = math.atan2(x_top, y_cw)
    coeffs = np.array([-4.0 * sag / length**2, 4.0 * sag / length, 0.0])
    edge = PectoralEdge(theta, x_top * y_cw / length, coeffs, length, contrast, support)
    return edge if _plausible_muscle(edge, mask, (sr, sc), min_area_mm2, strict) else None


def _robust_edge_fit(s, t, weight, valid, tol, max_sagitta_mm, span=None):
    """Robust fit of the edge offsets ``t(s)`` found along the Hough line: a straight line first
    (inliers within ``tol`` mm, starting from the offsets near the Hough line), then a quadratic
    on its inliers, kept when its sagitta stays below ``max_sagitta_mm`` over ``span`` (the arc
    lengths the edge is drawn over; default: its inliers') and it does not lose inliers. Returns
    ``(inliers, coeffs)`` or ``(None, None)``."""

    def fit(keep, deg):
        c = np.polyfit(s[keep], t[keep], deg, w=np.sqrt(weight[keep]))
        return np.r_[np.zeros(3 - len(c)), c]

    keep = valid & (np.abs(t) < 2 * tol)
    if keep.sum() < 5:
        return None, None
    coeffs = fit(keep, 1)
    for _ in range(5):
        new_keep = valid & (np.abs(t - np.polyval(coeffs, s)) < tol)
        if new_keep.sum() < 5:
            break
        changed = not np.array_equal(new_keep, keep)
        keep = new_keep
        coeffs = fit(keep, 1)
        if not changed:
            break
    if keep.sum() >= 8:
        quad = fit(keep, 2)
        s_in = s[keep] if span is None or len(span) == 0 else span
        chord = np.polyval(fit(keep, 1), s_in)  # sagitta: largest departure from the straight fit
        sagitta = float(np.max(np.abs(np.polyval(quad, s_in) - chord)))
        keep_q = valid & (np.abs(t - np.polyval(quad, s)) < tol)
        if sagitta <= max_sagitta_mm and keep_q.sum() >= keep.sum():
            keep, coeffs = keep_q, quad
    return keep, coeffs


def pectoral_mask(edge: PectoralEdge, mask: np.ndarray, spacing_mm) -> np.ndarray:
    """Muscle pixels (canonical frame) on the corner side of the curved edge, within the breast."""
    sr, sc = spacing_mm
    h, w = mask.shape
    ct, st = math.cos(edge.theta), math.sin(edge.theta)
    x_top, y_cw = edge.top_intercept_mm, edge.chest_wall_intercept_mm
    margin = float(np.max(np.abs(np.polyval(edge.coeffs, [0.0, edge.length_mm / 2, edge.length_mm])))) + 2.0
    r1 = min(h, int(math.ceil((y_cw + margin / st) / sr)) + 2)
    c1 = min(w, int(math.ceil((x_top + margin / ct) / sc)) + 2)
    out = np.zeros(mask.shape, bool)
    if r1 <= 0 or c1 <= 0:
        return out
    y = np.arange(r1, dtype=np.float64)[:, None] * sr
    x = np.arange(c1, dtype=np.float64)[None, :] * sc
    t = x * ct + y * st - edge.rho
    # arc length of the foot point along the line (direction from top intercept to chest wall)
    s = (x - x_top) * (-x_top / edge.length_mm) + y * (y_cw / edge.length_mm)
    off = np.polyval(edge.coeffs, np.clip(s, 0.0, edge.length_mm))
    out[:r1, :c1] = (t < off) & mask[:r1, :c1]
    return out

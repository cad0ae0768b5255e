"""The fall-off of the uncompressed rim and its fit (steps 4 and 6 of :mod:`monai_bac.ops.breast_region`).

The fat envelope ``U(d)`` of ln P at distance ``d`` from the skin line follows Beer-Lambert,
``U(d) = air - A * t(d / w; a, b)`` (:func:`edge_profile`); :func:`periphery_width` fits the width
``w``, the plateau ``A`` and the shape ``(a, b)`` by a robust high-quantile regression.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = ["EDGE_SHAPES", "EdgeFit", "edge_profile", "periphery_width"]


#: Shapes ``(a, b)`` of the edge profile tried by :func:`periphery_width`: (2, 2) is the quarter
#: ellipse (a half-ellipse bulge), (1, 2) a square root, (1, 1) a linear ramp, (2, 1) a parabola.
#: Profiles that meet the plateau more slowly than a parabola (a > 2) are left out on purpose:
#: they would also fit the slow tail that scatter adds to the compressed region's edge, and
#: push the periphery inwards (see the validation notes).
EDGE_SHAPES = tuple((a, b) for a in (1.0, 1.5, 2.0) for b in (1.0, 1.5, 2.0, 2.5, 3.0))
def edge_profile(s: np.ndarray, a: float = 2.0, b: float = 2.0) -> np.ndarray:
    """Relative thickness ``T / H0`` of the uncompressed edge at relative distance ``s = d / w``
    from the skin line: ``(1 - (1 - s)^a)^(1/b)`` for ``0 <= s < 1`` and 1 beyond.

    ``a = b = 2`` is the quarter ellipse ``sqrt(1 - (1 - s)^2)`` of a breast edge bulging as a
    half-ellipse of height H0 and depth ``w``; ``a`` sets how the profile meets the plateau
    (1: with a kink, 2 and more: tangentially), ``b`` how steeply it rises at the skin line.
    """
    s = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
    base = np.clip(1.0 - (1.0 - s) ** a, 0.0, 1.0)
    if b == 2.0:
        return np.sqrt(base)
    return base if b == 1.0 else base ** (1.0 / b)


class EdgeFit(NamedTuple):
    """Result of :func:`periphery_width`."""

    width_mm: float  # periphery width w: the profile reaches the plateau at d = w
    amplitude: float  # A = air - plateau level, ln units (mu_fat * H0 for pure fat)
    a: float  # profile shape, see edge_profile
    b: float
    loss: float = float("nan")  # the fit's weighted pinball loss (comparable between fits of the same pixels)
    #: the width is within one grid step of the largest one searched (``max_width_mm``, or the farthest
    #: distance seen): the fall-off had not ended there, and ``amplitude`` is where it had got to, not
    #: the plateau
    at_limit: bool = False
    #: the mean skin distance of the deepest distance bin the envelope holds (mm): how far beyond
    #: ``width_mm`` the plateau was seen
    reach_mm: float = float("nan")


def _envelope(d: np.ndarray, v: np.ndarray, bin_mm: float, q: float, min_count: int, trend=None,
              fine_until_mm: float = 30.0, coarse_factor: int = 4):
    """Per distance bin: mean distance, the ``q`` quantile of ``v`` there, and the bin's width
    (only bins with at least ``min_count`` pixels). Bins are ``bin_mm`` wide up to
    ``fine_until_mm`` from the skin line and ``coarse_factor`` times wider beyond.

    Within a bin ``v`` still changes with ``d`` (steeply near the skin line), so a plain
    quantile picks the bin's skin-side pixels and biases the envelope towards smaller
    distances. With ``trend`` (a callable, the current model of the envelope) the quantile is
    taken of ``v - trend(d) + trend(mean d)``: the values moved along the model to the bin's
    mean distance.
    """
    n_fine = int(math.ceil(fine_until_mm / bin_mm))
    k = np.floor(d / bin_mm).astype(np.int64)
    far = k >= n_fine
    k[far] = n_fine + (k[far] - n_fine) // coarse_factor
    n = np.bincount(k)
    dm = np.bincount(k, weights=d, minlength=n.size) / np.maximum(n, 1)
    if trend is not None:
        v = v - trend(d) + trend(dm)[k]
    # sorted by value, then (stably, a radix sort of the small bin numbers) by bin: each bin's
    # values in order, and its quantile one index (a selection per bin in a Python loop was slower)
    order = np.argsort(v)
    kb = k[order]
    order = order[np.argsort(kb.astype(np.uint16) if n.size < 65536 else kb, kind="stable")]
    ok = np.flatnonzero(n >= min_count)
    first = np.cumsum(n)[ok] - n[ok]
    env = v[order[first + np.floor(q * (n[ok] - 1)).astype(np.int64)]]
    width = np.where(np.arange(n.size) < n_fine, bin_mm, coarse_factor * bin_mm)
    return dm[ok], env, width[ok]


def _quantile_fit_amplitude(ratio: np.ndarray, weight: np.ndarray, tau: float) -> np.ndarray:
    """Row-wise weighted ``1 - tau`` quantile of ``ratio`` (the amplitude A minimising the pinball
    loss of ``U = air - A g`` with ``U``-residuals above the model weighted ``tau``)."""
    order = np.argsort(ratio, axis=1)
    cw = np.cumsum(np.take_along_axis(weight, order, 1), axis=1)
    target = (1.0 - tau) * cw[:, -1:]
    rows = np.arange(ratio.shape[0])
    return ratio[rows, order[rows, np.argmax(cw >= target, axis=1)]]


def _fit_grid(d, U, wb, air_level, widths, shapes, amplitude, tau, noise=0.01, dd_mm=0.25):
    """Best (loss, w, A, a, b) over a grid of widths and shapes: pinball loss of the envelope
    points ``(d, U)``, weighted by their bin widths ``wb`` and scaled by their uncertainty
    ``sqrt(noise^2 + (slope * dd_mm)^2)``: where the envelope is steep (near the skin line), a
    distance error of a fraction of a pixel (``dd_mm``) already moves it a lot, so those points
    count less (see periphery_width). Ties go to the first shape, then the smallest width."""
    depth = air_level - U[None, :]
    a0 = (float(np.max(amplitude)) if amplitude is not None  # the deepest plateau allowed
          else max(float(air_level - np.median(U[-max(3, U.size // 4):])), 1e-3))
    s = np.clip(d[None, :] / widths[:, None], 0.0, 1.0)  # (n_w, n_bins)
    one_minus = 1.0 - s
    n_w = len(widths)
    g_all = np.empty((len(shapes), n_w, d.size))
    wgt_all = np.empty_like(g_all)
    floor = np.maximum(one_minus, 1e-9)
    by_a = {}  # (1 - s)^a and its base, once per exponent a (the shapes share three)
    for k, (a, b) in enumerate(shapes):  # scalar exponents, shape by shape (numpy's fast paths)
        if a not in by_a:
            ra = one_minus**a
            by_a[a] = (np.clip(1.0 - ra, 1e-9, 1.0), ra / floor)
        base, ra_floor = by_a[a]
        g = base ** (1.0 / b)  # edge_profile
        # d g / d d = a / (b w) (1 - s)^(a - 1) base^(1/b - 1)
        slope = a0 * (a / b) * ra_floor * (g / base) / widths[:, None]
        g_all[k] = g
        wgt_all[k] = wb[None, :] / np.sqrt(noise**2 + (slope * dd_mm) ** 2)
    g, wgt = g_all.reshape(-1, d.size), wgt_all.reshape(-1, d.size)  # one row per (shape, width)
    if amplitude is None or isinstance(amplitude, tuple):
        gg = np.maximum(g, 1e-3)
        A = _quantile_fit_amplitude(depth / gg, gg * wgt, tau)
        if amplitude is not None:
            A = np.clip(A, *amplitude)
    else:
        A = np.full(g.shape[0], float(amplitude))
    r = U[None, :] - (air_level - A[:, None] * g)
    loss = (np.where(r > 0, tau * r, (tau - 1.0) * r) * wgt).sum(1)
    loss[np.isnan(loss)] = np.inf
    i = int(np.argmin(loss))
    if not np.isfinite(loss[i]):
        return (np.inf, np.nan, np.nan, 2.0, 2.0)
    a, b = shapes[i // n_w]
    return (float(loss[i]), float(widths[i % n_w]), float(A[i]), float(a), float(b))


def periphery_width(
    dist_mm: np.ndarray,
    log_values: np.ndarray,
    air_level: float,
    *,
    amplitude: float | tuple[float, float] | None = None,
    shapes=EDGE_SHAPES,
    bin_mm: float = 0.5,
    envelope_percentile: float = 90.0,
    tau: float = 0.9,
    min_count: int = 10,
    max_width_mm: float = 150.0,
    step_mm: float | None = None,
    width_hint_mm: float | None = None,
    distance_uncertainty_mm: float = 0.05,
) -> EdgeFit:
    """Fit the periphery width ``w`` (mm) of the fat envelope ``U(d) = air - A * t(d / w; a, b)``.

    ``U(d)`` is the ``envelope_percentile`` of ln(P + 1) of the pixels at distance ``d`` from
    the skin line (fatty pixels: dense tissue only lowers P), ``t`` is :func:`edge_profile`.
    ``A`` (for a given ``w`` and shape: a weighted quantile, closed form), ``w`` (grid, coarse
    then fine) and the shape ``(a, b)`` (over ``shapes``) minimise a pinball loss that weights
    envelope points above the model by ``tau`` and below it by ``1 - tau``.

    Args:
        dist_mm: distance to the skin line (mm) of breast pixels (1D).
        log_values: their ln(P + 1).
        air_level: ln(P + 1) of the direct exposure next to the breast.
        amplitude: fixed ``A`` (e.g. from a global fit, for a sector); fitted when None, or
            within ``(low, high)``.
        shapes: profile shapes ``(a, b)`` to try (e.g. ``[(2, 2)]``: the quarter ellipse only).
        bin_mm: width of the distance bins.
        envelope_percentile: percentile of ln P per bin taken as the fat envelope.
        tau: weight of residuals above the model; ``1 - tau`` below. A high value (0.9) keeps
            the model under the envelope's slow tails (scatter, dense tissue) and on its fat level.
        min_count: bins with fewer pixels are ignored.
        max_width_mm: largest width tried.
        step_mm: final grid step of the width (default ``bin_mm / 2``).
        width_hint_mm: search only within +-10 mm of this width (e.g. a previous fit); a hint
            more than that beyond 98 % of the farthest distance seen starts the fine search from
            that widest width.
        distance_uncertainty_mm: uncertainty of the distance to the skin line; each envelope
            point's residual is scaled by ``1 / sqrt(0.01^2 + (slope * this)^2)``, so that the
            steep part next to the skin line, where a tiny distance error moves the envelope a
            lot, does not dominate the fit.

    Returns:
        :class:`EdgeFit` ``(width_mm, amplitude, a, b, loss, at_limit)``; NaN width and amplitude
        when there are too few distance bins.
    """
    dist_mm = np.asarray(dist_mm, np.float64)
    log_values = np.asarray(log_values, np.float64)
    shapes = [tuple(map(float, ab)) for ab in shapes]
    nan_fit = EdgeFit(float("nan"), float("nan"), 2.0, 2.0)
    step = step_mm or bin_mm / 2
    fit, trend = nan_fit, None
    for rep in range(2):  # second pass: envelope de-trended along the first fit
        d, U, wb = _envelope(dist_mm, log_values, bin_mm, envelope_percentile / 100.0, min_count, trend)
        if d.size < 6:
            return nan_fit
        w_hi = max(min(max_width_mm, 0.98 * float(d.max())), 3 * bin_mm)
        if rep == 0:  # coarse widths, all shapes
            lo, hi = 2 * bin_mm, w_hi
            if width_hint_mm is not None:
                lo, hi = max(lo, width_hint_mm - 10.0), min(hi, width_hint_mm + 10.0)
            _, w0, *_ = _fit_grid(d, U, wb, air_level, np.arange(lo, max(hi, lo + 1.0), max(4 * step, 2.0)), shapes,
                                  amplitude, tau, dd_mm=distance_uncertainty_mm)
        else:
            w0 = fit.width_mm
        lo, hi = max(2 * bin_mm, w0 - 3.0), min(w_hi, w0 + 3.0)
        lo = min(lo, hi)  # a hint beyond the farthest distance seen: start from the widest width allowed
        loss, w, A, a, b = _fit_grid(d, U, wb, air_level, np.arange(lo, hi + step / 2, step), shapes, amplitude,
                                     tau, dd_mm=distance_uncertainty_mm)
        fit = EdgeFit(w, A, a, b, loss, at_limit=bool(w > w_hi - step), reach_mm=float(d.max()))
        trend = (lambda x, f=fit: air_level - f.amplitude * edge_profile(x / f.width_mm, f.a, f.b))
    return fit

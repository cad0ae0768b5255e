"""Intensity normalisations of raw mammograms: simple gamma (Eq. 1-2) and self-adaptive gamma (Eq. 3).

Both work on the breast region only (Sec. 3.1): the log image ``ln(I + 1)`` (Eq. 1) is min-max
scaled with the minimum and maximum *inside the breast* to ``Y`` in [0, 1], then raised to a
power. Pixels outside the breast get one defined constant (``background``), so the output does
not depend on what the collimator or the air looked like.

Self-adaptive contrast (Eq. 3): a deviation from the printed formula
-------------------------------------------------------------------------
The paper iterates ``gamma_{i+1} = gamma_i * ln(Ybar - Ybar_i)`` (Eq. 3a) and
``Y_{i+1} = Y_i ** gamma_{i+1}`` (Eq. 3b), starting from ``gamma_0 = 1``. As printed, Eq. (3a)
is undefined as soon as the mean overshoots (``Ybar - Ybar_i <= 0``) and, since
``ln(x) < 0`` for ``0 < x < 1``, it flips the sign of gamma whenever the remaining gap is
below 1, which is always the case for images in [0, 1]. It cannot be implemented as printed.

What Eq. (3b) composes is a single power: after n steps ``Y_n = Y_0 ** G`` with
``G = prod(gamma_i)``. :func:`auto_gamma` therefore solves ``m(G) = Ybar`` for the total exponent
``G`` directly, where ``m(G)`` is the mean of ``Y ** G`` in the breast: a bracket on ``log G`` is
found by doubling steps from ``G = 1`` (like the paper), then SciPy's Brent method
(``scipy.optimize.brentq``) finds the root in it.

Why it converges for every reachable target (proof sketch):

1. For ``Y`` in [0, 1], ``d/dG Y**G = Y**G ln Y <= 0``, with strict inequality where
   ``0 < Y < 1``. So ``m`` is continuous and strictly decreasing in ``G > 0`` as soon as one
   breast pixel lies strictly between the minimum and the maximum.
2. ``m(G) -> P(Y > 0)`` as ``G -> 0`` and ``m(G) -> P(Y = 1)`` as ``G -> inf``. With min-max
   scaling only the extreme pixels sit at 0 and 1, so every target in
   ``(P(Y = 1), P(Y > 0))``, i.e. practically every target in (0, 1), has exactly one
   solution ``G*``.
3. Bracketing: stepping away from ``G = 1`` in ``log G`` with a step that doubles each time
   (G = 2, 8, 128, ... or 1/2, 1/8, ...) crosses ``G*`` after finitely many steps because of the
   limits in 2. From then on the iteration keeps a bracket ``[G_lo, G_hi]`` with
   ``m(G_lo) > Ybar > m(G_hi)``; Brent's method converges on a bracketed root of a continuous
   function (it falls back to bisection whenever interpolation does not shrink the bracket), so
   ``m(G) -> Ybar`` and ``|m(G) - Ybar| <= tol`` is met after finitely many evaluations.

Targets outside the reachable range are clamped to it and reported as not converged.

The mean ``m(G)`` is evaluated on a fine histogram of ``Y`` (per-bin mean values, 4096 bins),
so each iteration costs O(bins) instead of O(pixels). The histogram mean is itself a positive
combination of ``c ** G`` with ``0 < c <= 1``, hence continuous and strictly decreasing, so the
argument above applies to it unchanged; it differs from the exact mean by ~1e-5, the solver aims
at ``tol / 2``, and the final image is computed once and its exact breast mean is what is
reported (and checked against ``tol``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from monai_bac.ops.resample import bounding_box

__all__ = ["log_image", "minmax_in_mask", "log_gamma", "auto_gamma", "AutoGammaResult", "as_breast_mask",
           "solve_exponent"]


def as_breast_mask(breast: np.ndarray, regions=(1, 2, 3)) -> np.ndarray:
    """Bool (H, W) breast mask from a boolean mask or a breast map (docs/ARCHITECTURE.md codes).

    A boolean array is returned as is; an integer map is compared against ``regions``.
    """
    breast = np.asarray(breast)
    if breast.dtype == bool:
        return breast
    if breast.dtype == np.uint8:  # a lookup table: several times faster than np.isin on a full image
        table = np.zeros(256, bool)
        table[[r for r in regions if 0 <= r < 256]] = True
        return table[breast]
    return np.isin(breast, np.asarray(regions, dtype=breast.dtype))


def log_image(image: np.ndarray) -> np.ndarray:
    """Eq. (1): ``ln(I + 1)`` in float32 (negative raw values are clipped to 0 first).

    ``log(I + 1)`` rather than ``log1p``: raw values are counts (``I + 1`` is exact), and numpy's
    vectorised float32 ``log`` is ~5x faster than its ``log1p``.
    """
    out = np.maximum(np.asarray(image, dtype=np.float32), np.float32(0.0), dtype=np.float32)
    out += np.float32(1.0)
    return np.log(out, out=out)


def minmax_in_mask(values: np.ndarray, mask: np.ndarray, percentiles=(0.0, 100.0)) -> tuple[np.ndarray, float, float]:
    """Min-max scale ``values`` to [0, 1] with the range found inside ``mask`` (Eq. 2's bracket).

    Returns (scaled float32 clipped to [0, 1] inside the mask, undefined outside, lo, hi).
    ``percentiles`` other than (0, 100) replace the minimum and maximum by robust percentiles.
    """
    inside = values[mask]
    if percentiles[0] <= 0.0 and percentiles[1] >= 100.0:
        lo, hi = float(inside.min()), float(inside.max())
    else:
        lo, hi = (float(v) for v in np.percentile(inside, percentiles))
    scale = np.float32(1.0 / (hi - lo)) if hi > lo else np.float32(0.0)
    y = (values - np.float32(lo)) * scale
    np.clip(y, 0.0, 1.0, out=y)
    return y, lo, hi


def _scaled_log_in_breast(image: np.ndarray, breast_mask: np.ndarray, background: float, percentiles):
    """The start both normalisations share: Eq. (1), then Eq. (2)'s min-max inside the breast.

    Works in the breast's bounding box only. Returns (output filled with ``background``, the box
    (None when there is no breast pixel), the breast mask in the box, the scaled log image in the
    box, lo, hi).
    """
    mask = as_breast_mask(breast_mask)
    if mask.shape != np.shape(image):
        raise ValueError(f"breast mask shape {mask.shape} differs from the image's {np.shape(image)}")
    out = np.full(mask.shape, background, np.float32)
    box = bounding_box(mask)
    if box is None:
        return out, None, None, None, None, None
    m = mask[box]
    y, lo, hi = minmax_in_mask(log_image(np.asarray(image)[box]), m, percentiles)
    return out, box, m, y, lo, hi


def log_gamma(
    image: np.ndarray,
    breast_mask: np.ndarray,
    gamma: float = 0.5,
    background: float = 0.0,
    percentiles=(0.0, 100.0),
) -> tuple[np.ndarray, dict]:
    """Simple gamma correction, Eq. (1)-(2) of the paper.

    ``out = [(ln(I+1) - min) / (max - min)] ** gamma`` inside the breast, where min and max are
    taken inside the breast; ``background`` outside. The paper's exponent is 1/2.

    Args:
        image: (H, W) raw image, linear in exposure.
        breast_mask: (H, W) bool mask, or a breast map (any non-zero code counts).
        gamma: the exponent (0.5 in the paper).
        background: value given to every pixel outside the breast.
        percentiles: (low, high) percentiles replacing the minimum and maximum (default: the
            plain minimum and maximum, as in the paper).

    Returns:
        (float32 (H, W) image in [0, 1] inside the breast, info dict with ``log_min``,
        ``log_max``, ``gamma``, ``breast_mean`` and ``empty``). With no breast pixel at all
        the whole image is ``background`` and ``info["empty"]`` is True.
    """
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    out, box, m, y, lo, hi = _scaled_log_in_breast(image, breast_mask, background, percentiles)
    if box is None:
        return out, dict(gamma=float(gamma), log_min=None, log_max=None, breast_mean=None, empty=True)
    if gamma == 0.5:
        np.sqrt(y, out=y)
    elif gamma != 1.0:
        np.power(y, np.float32(gamma), out=y)
    y[~m] = background
    out[box] = y
    return out, dict(gamma=float(gamma), log_min=lo, log_max=hi, breast_mean=float(y[m].mean()), empty=False)


@dataclass
class AutoGammaResult:
    """What :func:`auto_gamma` did: total exponent, iterations, reached mean, convergence."""

    gamma: float
    iterations: int
    breast_mean: float
    target_mean: float
    converged: bool
    reachable: tuple[float, float]
    log_min: float | None = None
    log_max: float | None = None

    def as_dict(self) -> dict:
        return dict(gamma=self.gamma, iterations=self.iterations, breast_mean=self.breast_mean,
                    target_mean=self.target_mean, converged=self.converged, reachable=self.reachable,
                    log_min=self.log_min, log_max=self.log_max)


_BINS = 4096
_G_MIN, _G_MAX = 1e-12, 1e12  # exponents searched


def _histogram_mean_fn(y: np.ndarray):
    """m(G) evaluated from a histogram of y in [0, 1] with per-bin mean values."""
    idx = np.minimum((y * _BINS).astype(np.int32), _BINS - 1)
    counts = np.bincount(idx, minlength=_BINS).astype(np.float64)
    sums = np.bincount(idx, weights=y, minlength=_BINS)
    keep = counts > 0
    counts, centres = counts[keep], sums[keep] / counts[keep]
    n = counts.sum()
    n_zero = float(np.count_nonzero(y <= 0.0))
    n_one = float(np.count_nonzero(y >= 1.0))
    pos = centres > 0

    def mean(g: float) -> float:
        return float((counts[pos] * np.power(centres[pos], g)).sum() / n)

    return mean, (n_one / n, (n - n_zero) / n)


def solve_exponent(mean_fn, target: float, reachable: tuple[float, float], tol: float, max_iter: int,
                   g0: float = 1.0) -> tuple[float, int, bool]:
    """Find G > 0 with ``mean_fn(G) = target`` for a continuous, strictly decreasing ``mean_fn``.

    Bracketing by doubling the step in ``log G`` away from ``g0``, then ``scipy.optimize.brentq``
    on ``log G`` (see the module docstring for why this converges).
    Returns (G, number of evaluations of ``mean_fn``, whether ``|mean - target| <= tol``).
    """
    lo_lim, hi_lim = reachable
    if not lo_lim < target < hi_lim:  # unreachable: clamp to the nearest end of the range
        return (_G_MIN if target >= hi_lim else _G_MAX), 0, False
    x_min, x_max = math.log(_G_MIN), math.log(_G_MAX)

    def f(x: float) -> float:
        return mean_fn(math.exp(x)) - target

    x = math.log(g0)
    fx = f(x)
    it = 1
    if abs(fx) <= tol:
        return math.exp(x), it, True
    # bracket [a, b] in x = log G with f(a) > 0 > f(b) (f is decreasing in x)
    step = math.log(2.0) if fx > 0 else -math.log(2.0)
    a, b = (x, None) if fx > 0 else (None, x)
    while a is None or b is None:
        if it >= max_iter or not x_min < x < x_max:
            return math.exp(x), it, False
        x = min(max(x + step, x_min), x_max)
        step *= 2.0
        fx = f(x)
        it += 1
        if abs(fx) <= tol:
            return math.exp(x), it, True
        if fx > 0:
            a = x
        else:
            b = x
    from scipy.optimize import brentq

    # f(log G) is continuous and changes sign on [a, b]: Brent's method, stopped when the mean is
    # within tol of the target (xtol of the exponent's log), or after the evaluations left
    calls = [0]

    def counted(x: float) -> float:
        calls[0] += 1
        return f(x)

    try:
        x, res = brentq(counted, a, b, xtol=1e-9, rtol=4 * np.finfo(float).eps, maxiter=max(max_iter - it, 1),
                        full_output=True, disp=False)
    except RuntimeError:  # pragma: no cover - disp=False reports non-convergence in ``res``
        x = 0.5 * (a + b)
    return math.exp(x), it + calls[0], abs(f(x)) <= tol


def auto_gamma(
    image: np.ndarray,
    breast_mask: np.ndarray,
    target_mean: float = 0.5,
    max_iter: int = 50,
    tol: float = 1e-3,
    background: float = 0.0,
    percentiles=(0.0, 100.0),
) -> tuple[np.ndarray, AutoGammaResult]:
    """Self-adaptive contrast adjustment, Eq. (3), with a convergent update (module docstring).

    ``Y = minmax_breast(ln(I + 1))`` (Eq. 1-2 with exponent 1), then the exponent ``G`` is found
    such that the mean of ``Y ** G`` inside the breast equals ``target_mean`` within ``tol``.

    Args:
        image: (H, W) raw image, linear in exposure.
        breast_mask: (H, W) bool mask, or a breast map (any non-zero code counts).
        target_mean: the target mean intensity in the breast, in (0, 1).
        max_iter: most evaluations of the mean (the paper's "set number of iterations").
        tol: stop when ``|mean - target_mean| <= tol``.
        background: value given to pixels outside the breast.
        percentiles: robust replacements of the breast min and max (default: min and max).

    Returns:
        (float32 (H, W) image, :class:`AutoGammaResult`). With no breast pixel the image is all
        ``background`` and the result has ``gamma = nan``, ``converged = False``.
    """
    if not 0.0 < target_mean < 1.0:
        raise ValueError(f"target_mean must be in (0, 1), got {target_mean}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    out, box, mask, y, lo, hi = _scaled_log_in_breast(image, breast_mask, background, percentiles)
    if box is None:
        return out, AutoGammaResult(float("nan"), 0, float("nan"), float(target_mean), False, (0.0, 0.0))
    inside = y[mask]
    mean_fn, reachable = _histogram_mean_fn(inside)
    # the histogram's mean approximates the exact mean to ~1e-5; aim a little inside tol
    g, iterations, ok = solve_exponent(mean_fn, float(target_mean), reachable, 0.5 * tol, max_iter)
    if g != 1.0:
        np.power(y, np.float32(g), out=y)
    y[~mask] = background
    reached = float(y[mask].mean(dtype=np.float64))
    out[box] = y
    converged = bool(ok and abs(reached - target_mean) <= tol)
    return out, AutoGammaResult(float(g), int(iterations), reached, float(target_mean), converged,
                              (float(reachable[0]), float(reachable[1])), lo, hi)

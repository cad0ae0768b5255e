"""The periphery width per angular window round the outline (step 6 of :mod:`monai_bac.ops.breast_region`,
whose module docstring gives the reasons for each rule below).

The breast's tissue pixels (the pectoral muscle left out) are ordered by the angle of their
nearest skin point round the chest-wall midpoint (:func:`skin_point_angle`) and cut into windows one
sector (``pi / n_sectors``) wide, centred ``sector_overlap`` times per sector angle
(:func:`window_centres`). Each window's fall-off is fitted with
:func:`~monai_bac.ops.periphery_fit.periphery_width`; the widths are then reconciled with the
global fit (fallbacks to the global plateau and shape, a vote against a plateau dragged deep by a
dense centre, neighbours for windows too short to fit, a median across windows, bounds), and with
``align`` the windows are fitted once more on distances put on their centre's width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from monai_bac.ops.periphery_fit import EdgeFit, periphery_width
from monai_bac.units import as_spacing

__all__ = ["WindowRules", "PeripheryWindows", "skin_point_angle", "window_centres"]


def skin_point_angle(mask: np.ndarray, skin_index: np.ndarray, spacing_mm) -> np.ndarray:
    """Angle (rad) of each pixel's nearest skin point round the chest-wall midpoint, in the
    canonical frame (chest wall at column 0): -pi/2 at the top of the chest wall, 0 towards the
    nipple, pi/2 at the bottom. ``skin_index`` is the (2, H, W) index of the nearest background
    pixel (``ndimage.distance_transform_edt(mask, return_indices=True)``); the windows group the
    pixels by this angle."""
    sr, sc = as_spacing(spacing_mm)
    rows_cw = np.nonzero(mask[:, 0])[0]
    y0 = (0.5 * (rows_cw[0] + rows_cw[-1]) if rows_cw.size else np.nonzero(mask)[0].mean()) * sr
    return np.arctan2(skin_index[0] * sr - y0, np.maximum(skin_index[1] * sc, 1e-3))


def window_centres(n_windows: int) -> np.ndarray:
    """Angles (rad, as :func:`skin_point_angle`) of the centres of ``n_windows`` sector windows
    spread evenly from the top of the chest wall to the bottom."""
    return -np.pi / 2 + (np.arange(n_windows) + 0.5) * np.pi / n_windows


@dataclass(frozen=True)
class WindowRules:
    """The settings of the window fits; :func:`~monai_bac.ops.breast_region.analyse_breast_region`
    documents each under the same name (``align`` is its ``align_windows``) and holds the defaults."""

    sector_bounds: tuple[float, float]
    plateau_tolerance: float
    shape_margin: float
    deeper_plateau_tolerance: float
    global_plateau_tolerance: float
    min_window_arc_mm: float
    min_plateau_mm: float
    align: bool


class PeripheryWindows:
    """The tissue pixels of one breast cut into overlapping angular windows, and their fits.

    Args:
        phi: angle of each tissue pixel's nearest skin point (:func:`skin_point_angle`), 1-D.
        dist: each tissue pixel's distance to the skin line, mm.
        lg: each tissue pixel's ln(P + 1) (scatter and flat field removed).
        n_sectors, sector_overlap: windows one sector (``pi / n_sectors``) wide, ``n_sectors x
            sector_overlap`` of them, centred at :func:`window_centres`.
        air: ln(P + 1) of the direct exposure beside the breast.
        spacing_mm: (row, col) spacing of the working grid, mm (the windows' arc test).
        fit_kw: ``shapes``, ``bin_mm`` and ``envelope_percentile`` for every
            :func:`~monai_bac.ops.periphery_fit.periphery_width` call.
        rules: the window rules.
    """

    def __init__(self, phi: np.ndarray, dist: np.ndarray, lg: np.ndarray, n_sectors: int, sector_overlap: int,
                 air: float, spacing_mm: tuple[float, float], fit_kw: dict, rules: WindowRules):
        self.n = int(n_sectors) * int(sector_overlap)
        self.sector_overlap = int(sector_overlap)
        self.centres = window_centres(self.n)
        order = np.argsort(phi, kind="stable")
        self.phi, self.dist, self.lg = phi[order], dist[order], lg[order]
        half = 0.5 * np.pi / n_sectors
        self.lo = np.searchsorted(self.phi, self.centres - half, side="left")
        self.hi = np.searchsorted(self.phi, self.centres + half, side="right")
        self.air, self.spacing_mm, self.fit_kw, self.rules = air, spacing_mm, fit_kw, rules

    def _lg(self, k: int) -> np.ndarray:
        return self.lg[self.lo[k]:self.hi[k]]

    def distances(self, widths: np.ndarray | None = None) -> list[np.ndarray]:
        """Each window's distances to the skin line; with ``widths`` (a first pass's, at the window
        centres) put on the window centre's width: d x w(centre) / w(the pixel's own angle)."""
        lo, hi = self.lo, self.hi
        if widths is None:
            return [self.dist[lo[k]:hi[k]] for k in range(self.n)]
        w_t = np.interp(self.phi, self.centres, widths)
        return [self.dist[lo[k]:hi[k]] * (widths[k] / w_t[lo[k]:hi[k]]) for k in range(self.n)]

    def fits(self, dists: list[np.ndarray], w_ref: float) -> list[EdgeFit | None]:
        """Each window's own plateau level and edge shape; None where too little of the fall-off
        (within the global width ``w_ref``) is seen in it."""
        sr, sc = self.spacing_mm
        fits: list[EdgeFit | None] = [None] * self.n
        for k in range(self.n):
            if (dists[k] < w_ref).sum() * sr * sc >= self.rules.min_window_arc_mm * w_ref:
                fits[k] = periphery_width(dists[k], self._lg(k), self.air, step_mm=self.fit_kw["bin_mm"],
                                          max_width_mm=self.rules.sector_bounds[1] * w_ref, **self.fit_kw)
        return fits

    def widths(self, dists: list[np.ndarray], own_fit: list[EdgeFit | None], glob: EdgeFit) -> np.ndarray:
        """The windows' widths (mm) from their fits against the global fit ``glob``: fallbacks to
        the global plateau, the shape margin, fitted neighbours, a median across windows, bounds."""
        rules, amp, w_glob = self.rules, glob.amplitude, glob.width_mm
        w_max = rules.sector_bounds[1] * w_glob
        own = np.full(self.n, np.nan)  # each window's fitted width; NaN where it cannot be fitted
        for k in range(self.n):
            if own_fit[k] is None:
                continue
            d_k, v_k, fk = dists[k], self._lg(k), own_fit[k]
            if not fk.amplitude < amp + rules.deeper_plateau_tolerance:
                # a deeper fat plateau (dense tissue under the fat): the global amplitude, every edge
                # shape; the shape margin below then weighs it against the global shape as for any
                # window on the global plateau (with the global shape forced here, MLO windows beside
                # the muscle came out up to 18 mm too wide: docs/design-log/breast_region.md)
                fk = periphery_width(d_k, v_k, self.air, amplitude=amp, max_width_mm=w_max, **self.fit_kw)
            if (rules.shape_margin > 0 and abs(fk.amplitude - amp) < rules.plateau_tolerance
                    and (fk.a, fk.b) != (glob.a, glob.b)):
                # the same plateau: the global shape unless the sector's own fits clearly better. The
                # two losses come from envelopes de-trended along each fit's own first pass; comparing
                # shapes inside one fit's grid instead (both passes) was tried and lost the ideal
                # table 1.9 points (seed 1041 MLO 0.996 -> 0.977)
                fg = periphery_width(d_k, v_k, self.air, amplitude=amp, max_width_mm=w_max,
                                     **{**self.fit_kw, "shapes": [(glob.a, glob.b)]})
                if not fk.loss < (1.0 - rules.shape_margin) * fg.loss:
                    fk = fg
            own[k] = fk.width_mm
        widths = np.full(self.n, w_glob)
        fitted = np.isfinite(own)
        if fitted.any():  # a window with too little fall-off (beside the muscle): its fitted neighbours'
            idx = np.arange(self.n)
            widths = np.interp(idx, idx[fitted], own[fitted])
        widths = ndimage.median_filter(widths, size=3, mode="nearest")
        return np.clip(widths, rules.sector_bounds[0] * w_glob, w_max)

    def decide(self, glob: EdgeFit, tissue_dist: np.ndarray, tissue_lg: np.ndarray) -> tuple[EdgeFit, np.ndarray]:
        """The windows' widths (mm, at :attr:`centres`) and the global fit they were decided
        against: ``glob``, or its refit on the windows' plateau when a dense centre dragged the
        global plateau deep (``tissue_dist``/``tissue_lg``: all tissue pixels, for that refit)."""
        rules = self.rules
        dists = self.distances()
        own_fit = self.fits(dists, glob.width_mm)
        # a window fitted at its width limit, or whose envelope ends less than ``min_plateau_mm`` beyond its
        # fitted width, has not been seen to reach its plateau: no vote; neighbouring windows share
        # pixels, so the plateau must be seen beyond one window's neighbours
        plateaus = np.sort([f.amplitude for f in own_fit if f is not None and np.isfinite(f.amplitude)
                            and not f.at_limit and f.reach_mm >= f.width_mm + rules.min_plateau_mm])
        voter = min(self.sector_overlap, 3)  # the vote needs >= 4 plateaus: index 3 at most
        if plateaus.size >= 4 and plateaus[voter] < glob.amplitude - rules.global_plateau_tolerance:
            # a dense centre dragged the global plateau deep: the breast's fat plateau is the
            # windows', and the global width is refitted on it - and the windows, whose fall-off
            # test and width bound read the global width, with it
            refit = periphery_width(tissue_dist, tissue_lg, self.air, amplitude=float(plateaus[voter]), **self.fit_kw)
            if np.isfinite(refit.width_mm):
                glob = refit
                own_fit = self.fits(dists, glob.width_mm)
        widths = self.widths(dists, own_fit, glob)
        if rules.align:
            # a window's envelope (a high percentile per distance) follows the widest rim within its
            # angle; on the first pass's widths every pixel is put on its window centre's width, and
            # the windows are fitted again (every edge shape: with the first pass's shape only, 17
            # instead of 13 of 263 thick development images came out under 0.90)
            dists = self.distances(widths)
            widths = self.widths(dists, self.fits(dists, glob.width_mm), glob)
        return glob, widths

"""Curvilinear structures: smooth random paths and their exact rasterisation.

Arteries, dense-tissue strands and annotation brush strokes are all polylines in mm. The
rasteriser returns, for every pixel within a distance of a polyline, the exact distance to it
and the arc length of the nearest point, so that tube-shaped objects can be drawn with their
physical cross-section (chord length through a cylinder) instead of painted intensities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monai_bac.phantom.grid import Grid

__all__ = ["PolylineBand", "random_path", "polyline_band", "path_length"]


def path_length(points: np.ndarray) -> float:
    return float(np.sum(np.linalg.norm(np.diff(points, axis=0), axis=1))) if len(points) > 1 else 0.0


def random_path(
    rng: np.random.Generator,
    start: tuple[float, float],
    heading: float,
    length_mm: float,
    inside,
    step_mm: float = 0.5,
    wander: float = 0.04,
    target: tuple[float, float] | None = None,
    pull: float = 0.0,
) -> np.ndarray:
    """A smooth random walk of points (y, x) in mm.

    The heading (radians, 0 = +x) changes by a correlated random turn each step (``wander``
    rad per sqrt(mm)); ``pull`` steers it towards ``target``. The walk stops at ``length_mm``
    or when ``inside(y, x)`` turns False.
    """
    n = max(2, int(length_mm / step_mm))
    pts = np.empty((n + 1, 2))
    pts[0] = start
    turn = 0.0
    kick = wander * np.sqrt(step_mm)
    for i in range(n):
        turn = 0.8 * turn + rng.normal(0.0, kick)
        heading += turn
        if target is not None and pull > 0:
            want = np.arctan2(target[0] - pts[i, 0], target[1] - pts[i, 1])
            heading += pull * np.angle(np.exp(1j * (want - heading))) * step_mm
        nxt = pts[i] + step_mm * np.array([np.sin(heading), np.cos(heading)])
        if not inside(nxt[0], nxt[1]):
            return pts[: i + 1]
        pts[i + 1] = nxt
    return pts


@dataclass
class PolylineBand:
    """Pixels within ``max_dist`` of a polyline: flat index, distance (mm) and arc length (mm)."""

    index: np.ndarray  # int64 flat indices into the grid, unique
    distance: np.ndarray  # float32, mm, >= 0
    arclength: np.ndarray  # float32, mm from the first point
    length: float  # total polyline length, mm

    def take(self, keep: np.ndarray) -> "PolylineBand":
        return PolylineBand(self.index[keep], self.distance[keep], self.arclength[keep], self.length)


def polyline_band(points_mm: np.ndarray, max_dist_mm: float, grid: Grid) -> PolylineBand:
    """Exact distance from pixel centres to a polyline, for all pixels within ``max_dist_mm``.

    Each segment is tested against a fixed window of pixels around it (vectorised over all
    segments); where windows overlap, the nearest segment wins.
    """
    pts = grid.to_pixels(points_mm)
    if len(pts) < 2:
        pts = np.vstack([pts, pts + 1e-6])
    a, b = pts[:-1], pts[1:]
    ab = b - a
    seg_len = np.linalg.norm(ab, axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg_len)]) * grid.spacing
    m = int(np.ceil(max_dist_mm / grid.spacing)) + 1
    size = int(np.ceil(seg_len.max())) + 2 * m + 2
    origin = np.floor(np.minimum(a, b)).astype(np.int64) - m
    off = np.arange(size)
    rows = origin[:, 0, None, None] + off[None, :, None]  # (S, size, 1)
    cols = origin[:, 1, None, None] + off[None, None, :]  # (S, 1, size)
    ay, ax = a[:, 0, None, None], a[:, 1, None, None]
    dy, dx = ab[:, 0, None, None], ab[:, 1, None, None]
    l2 = np.maximum(seg_len**2, 1e-12)[:, None, None]
    u = np.clip(((rows - ay) * dy + (cols - ax) * dx) / l2, 0.0, 1.0)
    dist = np.hypot(rows - (ay + u * dy), cols - (ax + u * dx)) * grid.spacing
    h, w = grid.shape
    ok = (dist <= max_dist_mm) & (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    seg = np.broadcast_to(np.arange(len(a))[:, None, None], ok.shape)[ok]
    flat = (np.broadcast_to(rows, ok.shape)[ok] * w + np.broadcast_to(cols, ok.shape)[ok]).astype(np.int64)
    dist = dist[ok]
    arc = cum[seg] + u[ok] * seg_len[seg] * grid.spacing
    order = np.lexsort((dist, flat))
    flat, dist, arc = flat[order], dist[order], arc[order]
    first = np.ones(len(flat), bool)
    first[1:] = flat[1:] != flat[:-1]
    return PolylineBand(flat[first], dist[first].astype(np.float32), arc[first].astype(np.float32), float(cum[-1]))

"""The pixel grid of a phantom: shape, spacing and the mm <-> pixel conversions."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["Grid"]

#: Smooth fields (outline distance, breast texture) are drawn on a grid of this spacing, then
#: interpolated: they carry no detail finer than a few mm, and it keeps a full-size phantom fast.
COARSE_SPACING_MM = 0.5
_ROW_BLOCK = 64  # rows per block of the full-size interpolation pass


@dataclass(frozen=True)
class Grid:
    """A 2D pixel grid; pixel (r, c) has its centre at (r * spacing, c * spacing) mm."""

    shape: tuple[int, int]
    spacing: float  # mm, isotropic

    @classmethod
    def from_fov(cls, fov_mm: tuple[float, float], spacing: float) -> "Grid":
        return cls((int(round(fov_mm[0] / spacing)), int(round(fov_mm[1] / spacing))), float(spacing))

    @property
    def extent_mm(self) -> tuple[float, float]:
        return self.shape[0] * self.spacing, self.shape[1] * self.spacing

    def axes_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """1D row and column coordinates in mm (float32)."""
        return (np.arange(self.shape[0], dtype=np.float32) * self.spacing,
                np.arange(self.shape[1], dtype=np.float32) * self.spacing)

    def mm_coords(self) -> tuple[np.ndarray, np.ndarray]:
        """Dense (H, W) row and column coordinates in mm."""
        y, x = self.axes_mm()
        return np.meshgrid(y, x, indexing="ij")

    def coarse(self) -> "Grid":
        """A grid covering the same field of view at about COARSE_SPACING_MM (never finer than self)."""
        factor = max(1, int(round(COARSE_SPACING_MM / self.spacing)))
        shape = (math.ceil(self.shape[0] / factor) + 1, math.ceil(self.shape[1] / factor) + 1)
        return Grid(shape, self.spacing * factor)

    def upsample(self, field: np.ndarray, coarse: "Grid") -> np.ndarray:
        """Bilinear interpolation of a field drawn on ``coarse`` onto this grid."""
        if coarse.shape == self.shape and coarse.spacing == self.spacing:
            return field
        factor = coarse.spacing / self.spacing
        rows = np.arange(self.shape[0], dtype=np.float32) / factor
        cols = np.arange(self.shape[1], dtype=np.float32) / factor
        # separable linear interpolation: two 1D passes are much cheaper than map_coordinates; the
        # second, full-size one in blocks of rows, so its temporaries are reused rather than fresh
        # memory (a full-size phantom spent much of its time faulting pages in)
        tmp = _interp_axis(field, rows, axis=0)
        out = np.empty(self.shape, tmp.dtype)
        for r in range(0, self.shape[0], _ROW_BLOCK):
            _interp_axis(tmp[r:r + _ROW_BLOCK], cols, axis=1, out=out[r:r + _ROW_BLOCK])
        return out

    def to_pixels(self, points_mm: np.ndarray) -> np.ndarray:
        return np.asarray(points_mm, dtype=np.float64) / self.spacing

    def contains_mm(self, y: float, x: float) -> bool:
        h, w = self.extent_mm
        return 0 <= y < h and 0 <= x < w


def _interp_axis(a: np.ndarray, pos: np.ndarray, axis: int, out: np.ndarray | None = None) -> np.ndarray:
    i0 = np.clip(np.floor(pos).astype(np.int64), 0, a.shape[axis] - 2)
    t = (pos - i0).astype(a.dtype)
    t = t[:, None] if axis == 0 else t[None, :]
    # in place: two arrays instead of five ("clip": the indices are in range, and it lets take
    # write straight into ``out``)
    out = np.take(a, i0, axis=axis, out=out, mode="clip")
    hi = np.take(a, i0 + 1, axis=axis, mode="clip")
    hi -= out
    hi *= t
    out += hi
    return out


def gaussian_blur(a: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur that is a no-op for negligible widths."""
    if sigma_px < 0.25:
        return a
    return ndimage.gaussian_filter(a, sigma_px, truncate=3.0)

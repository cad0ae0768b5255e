"""Skeletons and their geodesic length in mm: the measure behind Dice^L, label correction and
BAC quantification.

The length of a digital curve is the sum of its steps between 8-connected skeleton pixels:
a row step counts the column spacing, a column step the row spacing and a diagonal step
sqrt(sr^2 + sc^2). A diagonal step is skipped where one of the two pixels it cuts across is
also on the skeleton (the corner is already walked through that pixel), so staircases and
corners are not counted twice. Each step's length is shared half and half between its two
end pixels (:func:`length_density`), which makes "length inside a region" a plain sum.
An isolated skeleton pixel has no length.
"""

from __future__ import annotations

import numpy as np
from skimage.morphology import skeletonize

__all__ = ["skeletonize_mask", "length_density", "skeleton_length_mm", "component_skeleton_lengths"]


def skeletonize_mask(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide skeleton (bool) of a 2D binary mask, computed on the mask's bounding box only."""
    mask = np.asarray(mask, dtype=bool)
    out = np.zeros(mask.shape, dtype=bool)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return out
    r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, mask.shape[0])
    c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 2, mask.shape[1])
    out[r0:r1, c0:c1] = skeletonize(mask[r0:r1, c0:c1])
    return out


def _steps(skel: np.ndarray):
    """Boolean maps of the counted steps, each anchored at its upper/left pixel."""
    s = skel
    right = s[:, :-1] & s[:, 1:]
    down = s[:-1, :] & s[1:, :]
    diag = s[:-1, :-1] & s[1:, 1:] & ~s[:-1, 1:] & ~s[1:, :-1]
    anti = s[:-1, 1:] & s[1:, :-1] & ~s[:-1, :-1] & ~s[1:, 1:]
    return right, down, diag, anti


def length_density(skel: np.ndarray, spacing_mm=(1.0, 1.0)) -> np.ndarray:
    """Per-pixel share of the skeleton's length (mm, float32): half of each step it ends."""
    skel = np.asarray(skel, dtype=bool)
    sr, sc = float(spacing_mm[0]), float(spacing_mm[1])
    sd = float(np.hypot(sr, sc))
    right, down, diag, anti = _steps(skel)
    dens = np.zeros(skel.shape, np.float32)
    dens[:, :-1] += right * (sc / 2)
    dens[:, 1:] += right * (sc / 2)
    dens[:-1, :] += down * (sr / 2)
    dens[1:, :] += down * (sr / 2)
    dens[:-1, :-1] += diag * (sd / 2)
    dens[1:, 1:] += diag * (sd / 2)
    dens[:-1, 1:] += anti * (sd / 2)
    dens[1:, :-1] += anti * (sd / 2)
    return dens


def skeleton_length_mm(skel: np.ndarray, spacing_mm=(1.0, 1.0)) -> float:
    """Total geodesic length (mm) of a skeleton."""
    skel = np.asarray(skel, dtype=bool)
    sr, sc = float(spacing_mm[0]), float(spacing_mm[1])
    right, down, diag, anti = _steps(skel)
    return float(right.sum() * sc + down.sum() * sr + (diag.sum() + anti.sum()) * np.hypot(sr, sc))


def component_skeleton_lengths(labels: np.ndarray, spacing_mm=(1.0, 1.0), skel: np.ndarray | None = None) -> np.ndarray:
    """Skeleton length (mm) of every labelled component; index 0 is the background.

    ``labels`` is an integer label image (e.g. from ``skimage.measure.label``); the skeleton of
    the union is computed once when not given (components do not touch, so it splits cleanly).
    """
    labels = np.asarray(labels)
    if skel is None:
        skel = skeletonize_mask(labels > 0)
    dens = length_density(skel, spacing_mm)
    return np.bincount(labels.ravel(), weights=dens.ravel(), minlength=int(labels.max()) + 1)

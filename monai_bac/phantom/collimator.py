"""A collimator's unexposed border on a phantom image.

A unit collimates its beam to the detector, and a raw image often keeps a band along one or more
edges that no x-ray reached (never the chest-wall edge, which the detector's edge defines). Under
a blade the raw value is the detector's offset plus its electronic noise; across the blade's
penumbra the exposure rises to the full one. The phantom's images are exposed to the edge; this
adds such bands to an image linear in exposure, for tests and diagnoses of what reads the image
(BreastRegion's exposed field, DensityMap's offset estimate).
"""

from __future__ import annotations

import numpy as np

from monai_bac.phantom.detector import ELECTRONIC_NOISE
from monai_bac.units import as_spacing

__all__ = ["collimate"]


def _transmission(n: int, band_px: float, penumbra_px: float) -> np.ndarray:
    """Along ``n`` lines from an edge: 0 under the blade, rising linearly across the penumbra, then 1."""
    if band_px <= 0:
        return np.ones(n, np.float32)
    x = np.arange(n, dtype=np.float32) + 0.5
    return np.clip((x - band_px) / max(penumbra_px, 1e-6), 0.0, 1.0).astype(np.float32)


def collimate(linear: np.ndarray, spacing_mm, offset: float, bands_mm, rng: np.random.Generator,
              penumbra_mm: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """``linear`` (raw values linear in exposure, the detector ``offset`` included) with unexposed
    bands ``bands_mm`` = (top, bottom, left, right), mm from each edge.

    Returns:
        (the image, float32; ``exposed``: bool, the pixels beyond every band and its penumbra).
    """
    img = np.asarray(linear, np.float32)
    h, w = img.shape
    sr, sc = as_spacing(spacing_mm)
    top, bottom, left, right = (float(b) for b in bands_mm)
    rows = _transmission(h, top / sr, penumbra_mm / sr) * _transmission(h, bottom / sr, penumbra_mm / sr)[::-1]
    cols = _transmission(w, left / sc, penumbra_mm / sc) * _transmission(w, right / sc, penumbra_mm / sc)[::-1]
    t = rows[:, None] * cols[None, :]
    out = np.float32(offset) + (img - np.float32(offset)) * t
    out += (1.0 - t) * rng.normal(0.0, ELECTRONIC_NOISE, img.shape).astype(np.float32)
    return out, t >= 1.0

"""Breast outline, compressed thickness and pectoral muscle of the phantom.

All shapes are drawn in the canonical frame of a *left* breast: chest wall at column 0,
nipple towards increasing columns, rows downwards (y, in mm). Right breasts are mirrored at
the very end of :func:`monai_bac.phantom.make_phantom`.

The outline is a star-shaped curve around the middle of the chest wall; the thickness is the
paddle separation H0 inside the compressed (paddle-contact) region and falls off towards the
skin line on a circular profile in the periphery, as a compressed breast does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from monai_bac.phantom.grid import Grid

__all__ = ["BreastGeometry", "breast_geometry", "skin_path_mm", "SKIN_MM", "BACKGROUND", "PERIPHERY", "COMPRESSED",
           "PECTORAL"]

from monai_bac.breast_map import BACKGROUND, COMPRESSED, PECTORAL, PERIPHERY  # noqa: F401  (the one set of codes)
#: Mean breast skin thickness measured on breast CT (Huang et al., Med Phys 35:1199, 2008).
SKIN_MM = 1.45


@dataclass
class BreastGeometry:
    """Geometry of one breast on the image grid (canonical left orientation)."""

    inside: np.ndarray  # bool (H, W): breast tissue (incl. pectoral muscle)
    skin_distance_mm: np.ndarray  # float32 (H, W): distance to the skin line, >0 inside
    thickness_mm: np.ndarray  # float32 (H, W): breast thickness along the beam, 0 outside
    pectoral: np.ndarray  # bool (H, W)
    breast_map: np.ndarray  # uint8 (H, W): docs/ARCHITECTURE.md codes
    compressed_thickness_mm: float
    periphery_width_mm: float
    params: dict


def _outline_radius(phi: np.ndarray, a: float, b_up: float, b_down: float, harmonics) -> np.ndarray:
    """Radius (mm) of the breast outline in direction ``phi`` (0 = towards the nipple)."""
    b = np.where(np.sin(phi) < 0, b_up, b_down)
    r = 1.0 / np.sqrt((np.cos(phi) / a) ** 2 + (np.sin(phi) / b) ** 2)
    wobble = sum(eps * np.cos(k * phi + psi) for k, eps, psi in harmonics)
    return r * (1.0 + wobble)


def breast_geometry(rng: np.random.Generator, grid: Grid, view: str, thickness_mm: float) -> BreastGeometry:
    """Draw a random breast of compressed thickness ``thickness_mm`` for a CC or MLO view."""
    h_mm, w_mm = grid.extent_mm
    mlo = view.upper() == "MLO"
    if mlo:
        yc = h_mm * rng.uniform(0.5, 0.62)
        a = min(rng.uniform(80, 125), 0.92 * w_mm)
        b_up = yc + rng.uniform(20, 60)  # crosses the top edge: the axillary tail
        b_down = min(rng.uniform(70, 105), 0.95 * (h_mm - yc))
    else:
        yc = h_mm * rng.uniform(0.45, 0.55)
        a = min(rng.uniform(80, 150), 0.92 * w_mm)
        b_up = min(rng.uniform(70, 115), 0.95 * yc)
        b_down = min(rng.uniform(70, 115), 0.95 * (h_mm - yc))
    harmonics = [(k, rng.uniform(-0.03, 0.03), rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5)]

    # Signed distance to the skin line on a coarse grid (EDT), then bilinear up to full size:
    # the distance field is smooth, so this is exact to a fraction of a coarse pixel.
    coarse = grid.coarse()
    yy, xx = coarse.mm_coords()
    rr = np.hypot(yy - yc, xx)
    phi = np.arctan2(yy - yc, np.maximum(xx, 1e-6))
    inside_c = (rr < _outline_radius(phi, a, b_up, b_down, harmonics)) & (xx >= 0)
    sd_c = (ndimage.distance_transform_edt(inside_c) - ndimage.distance_transform_edt(~inside_c)) * coarse.spacing
    sd = grid.upsample(sd_c.astype(np.float32), coarse)
    inside = sd > 0

    h0 = float(thickness_mm)
    width = float(h0 * rng.uniform(0.35, 0.7))  # periphery width: where the thickness falls off
    s = np.clip(sd / width, 0.0, 1.0)
    thickness = (h0 * np.sqrt(np.clip(1.0 - (1.0 - s) ** 2, 0.0, 1.0))).astype(np.float32)
    thickness[~inside] = 0.0

    pectoral = np.zeros(grid.shape, bool)
    params = dict(view="MLO" if mlo else "CC", center_mm=yc, a_mm=a, b_up_mm=b_up, b_down_mm=b_down,
                  periphery_width_mm=width)
    if mlo:
        px = rng.uniform(25, 60)  # pectoral width along the top edge, mm
        py = rng.uniform(0.55, 0.85) * yc + rng.uniform(20, 50)  # length along the chest wall
        bow = rng.uniform(-0.25, 0.25)  # convex or concave muscle edge
        y1, x1 = grid.axes_mm()
        u, v = x1[None, :] / px, y1[:, None] / py
        pectoral = (u + v < 1.0 + bow * u * v) & inside
        params.update(pectoral_width_mm=px, pectoral_length_mm=py, pectoral_bow=bow)

    breast_map = np.zeros(grid.shape, np.uint8)
    breast_map[inside] = PERIPHERY
    breast_map[inside & (sd >= width)] = COMPRESSED
    breast_map[pectoral] = PECTORAL
    return BreastGeometry(inside, sd.astype(np.float32), thickness, pectoral, breast_map, h0, width, params)


def skin_path_mm(geo: BreastGeometry, skin_mm: float = SKIN_MM) -> np.ndarray:
    """Path length (mm) through the skin along the beam: 2 x skin where the paddles press the
    breast, rising to the whole thickness at the skin line (the bright rim of a mammogram).

    The tissue under the skin has the same circular fall-off as the breast, shrunk by the skin.
    """
    h0, w = geo.compressed_thickness_mm, geo.periphery_width_mm
    s = float(min(skin_mm, 0.45 * h0, 0.9 * w))
    out = np.where(geo.inside, np.float32(2 * s), np.float32(0.0))
    rim = np.flatnonzero(geo.inside & (geo.skin_distance_mm < w))  # only the periphery differs
    d = np.clip((geo.skin_distance_mm.reshape(-1)[rim] - s) / (w - s), 0.0, 1.0)
    inner = (h0 - 2 * s) * np.sqrt(np.clip(1.0 - (1.0 - d) ** 2, 0.0, 1.0))
    thick = geo.thickness_mm.reshape(-1)[rim]
    out.reshape(-1)[rim] = np.clip(thick - inner, 0.0, thick)
    return out

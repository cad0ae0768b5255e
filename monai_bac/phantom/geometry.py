"""Breast outline, compressed thickness and pectoral muscle of the phantom.

All shapes are drawn in the canonical frame of a *left* breast: chest wall at column 0,
nipple towards increasing columns, rows downwards (y, in mm). Right breasts are mirrored at
the very end of :func:`monai_bac.phantom.make_phantom`.

The outline is a star-shaped curve around the middle of the chest wall; the thickness is the
paddle separation H0 inside the compressed (paddle-contact) region and falls off towards the
skin line on a circular profile in the periphery, as a compressed breast does. With an
``edge_rng`` (the realistic phantom's ``edge`` effect) the periphery's width and the shape of its
fall-off vary smoothly round the outline (:func:`edge_variation`, docs/PHANTOM.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from monai_bac.phantom.grid import Grid

__all__ = ["BreastGeometry", "breast_geometry", "edge_profile", "edge_variation", "skin_path_mm", "SKIN_MM",
           "BACKGROUND", "PERIPHERY", "COMPRESSED", "PECTORAL"]

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
    periphery_width_mm: float  # the base (mean) width of the periphery
    params: dict
    #: float32 (H, W): the periphery's local width (mm) in each pixel's direction; None: the same
    #: ``periphery_width_mm`` all round (no ``edge`` variation)
    local_width_mm: np.ndarray | None = None
    #: float32 (H, W): the local exponent p of the fall-off :func:`edge_profile`; None: 1 (circular)
    profile_exponent: np.ndarray | None = None


def _outline_radius(phi: np.ndarray, a: float, b_up: float, b_down: float, harmonics) -> np.ndarray:
    """Radius (mm) of the breast outline in direction ``phi`` (0 = towards the nipple)."""
    b = np.where(np.sin(phi) < 0, b_up, b_down)
    r = 1.0 / np.sqrt((np.cos(phi) / a) ** 2 + (np.sin(phi) / b) ** 2)
    wobble = sum(eps * np.cos(k * phi + psi) for k, eps, psi in harmonics)
    return r * (1.0 + wobble)


#: Bounds of the local periphery width: a factor of the base width, and a fraction of H0.
EDGE_FACTOR_RANGE = (0.6, 1.5)
EDGE_WIDTH_RANGE_H0 = (0.25, 0.9)
#: Bounds of the fall-off exponent p (1: circular; < 1 flatter, a squarer shoulder; > 1 rounder).
EDGE_EXPONENT_RANGE = (0.7, 1.4)


def edge_profile(s: np.ndarray, p: np.ndarray | None = None) -> np.ndarray:
    """Thickness fraction at the normalised skin distance ``s`` in [0, 1] of the periphery:
    ``(1 - (1 - s)^2)^(p/2)``, the circular fall-off for p = 1 (None: exactly the circle)."""
    q = np.clip(1.0 - (1.0 - s) ** 2, 0.0, 1.0)
    return np.sqrt(q) if p is None else q ** (0.5 * p)


def edge_variation(rng: np.random.Generator, phi: np.ndarray, mlo: bool) -> tuple[np.ndarray, np.ndarray, dict]:
    """Width factor and fall-off exponent of the periphery in direction ``phi`` (0: the nipple,
    -pi/2: the top of the chest wall, where the axilla is in an MLO view).

    A modelling choice, not a fit to measured breast shapes: the periphery is widest where the
    compressed breast bulges towards the nipple and narrowest at the chest wall (and, in MLO, the
    axilla at the top): log factor = A (cos phi - 2/pi) + B sin phi + C cos(2 phi + psi), a few
    low harmonics only, so that it is smooth round the outline (its mean over phi is about 0: the
    base width stays the typical one); the exponent p = exp(D cos(phi + chi) + E cos(2 phi + omega))
    varies the fall-off between rounder and flatter. Both are clipped to
    :data:`EDGE_FACTOR_RANGE` / :data:`EDGE_EXPONENT_RANGE`; the width to
    :data:`EDGE_WIDTH_RANGE_H0` x H0 by :func:`breast_geometry`.
    """
    a = rng.uniform(0.45, 0.8)  # nipple-to-chest-wall contrast: e^A = 1.6-2.2 before clipping
    b = rng.uniform(0.05, 0.2) if mlo else rng.uniform(-0.1, 0.1)  # MLO: narrower towards the axilla (top)
    c, psi = rng.uniform(-0.1, 0.1), rng.uniform(0, 2 * np.pi)
    d, chi = rng.uniform(0.1, 0.3), rng.uniform(0, 2 * np.pi)
    e, omega = rng.uniform(0.0, 0.15), rng.uniform(0, 2 * np.pi)
    log_f = a * (np.cos(phi) - 2 / np.pi) + b * np.sin(phi) + c * np.cos(2 * phi + psi)
    factor = np.clip(np.exp(log_f), *EDGE_FACTOR_RANGE)
    p = np.clip(np.exp(d * np.cos(phi + chi) + e * np.cos(2 * phi + omega)), *EDGE_EXPONENT_RANGE)
    params = dict(edge_nipple_contrast=a, edge_vertical=b, edge_h2=c, edge_h2_phase=psi, edge_shape=d,
                  edge_shape_phase=chi, edge_shape_h2=e, edge_shape_h2_phase=omega)
    return factor.astype(np.float32), p.astype(np.float32), params


def breast_geometry(rng: np.random.Generator, grid: Grid, view: str, thickness_mm: float,
                    edge_rng: np.random.Generator | None = None, paddle_tilt_deg: float = 0.0) -> BreastGeometry:
    """Draw a random breast of compressed thickness ``thickness_mm`` for a CC or MLO view.

    ``edge_rng`` (the realistic ``edge`` effect) varies the periphery's width and fall-off round
    the outline (:func:`edge_variation`); its draws come from that generator only, so the breast
    drawn from ``rng`` (and every draw after it) is the same with or without it.

    ``paddle_tilt_deg``: the compression paddle tilted in the medial-lateral plane (along the image
    rows; positive: the paddles further apart towards the bottom rows). Measured on 42 paddles of
    three manufacturers, 0.04-0.69 deg (Ma et al., Br J Radiol 89:20150715, 2016): 0.7 deg over a
    200 mm breast is 2.4 mm of thickness. The whole thickness map is scaled row by row so that the
    separation is ``thickness_mm`` at the breast's centre row (what the readout reports) and the
    fall-off keeps its shape; the paddle-contact region is unchanged. 0 (default): parallel paddles.
    """
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
    local, p, edge_params = None, None, {}
    if edge_rng is not None:
        factor_c, p_c, edge_params = edge_variation(edge_rng, phi, mlo)
        lo, hi = EDGE_WIDTH_RANGE_H0
        local = grid.upsample(np.clip(width * factor_c, lo * h0, hi * h0).astype(np.float32), coarse)
        p = grid.upsample(p_c, coarse)
    w_here = width if local is None else local
    # the full thickness from the local width inwards, the fall-off computed on the periphery only
    thickness = np.where(inside, np.float32(h0), np.float32(0.0))
    rim = np.flatnonzero(inside & (sd < w_here))
    s = np.clip(sd.reshape(-1)[rim] / (w_here if local is None else local.reshape(-1)[rim]), 0.0, 1.0)
    thickness.reshape(-1)[rim] = h0 * edge_profile(s, None if p is None else p.reshape(-1)[rim])
    if paddle_tilt_deg:
        rows_mm = grid.axes_mm()[0]
        factor = 1.0 + (rows_mm - yc) * math.tan(math.radians(paddle_tilt_deg)) / h0
        if factor[inside.any(1)].min() <= 0.0:
            raise ValueError(f"paddle_tilt_deg={paddle_tilt_deg} closes the paddle on the detector inside a "
                             f"{h0:.0f} mm breast; tilt it less")
        thickness *= factor.astype(np.float32)[:, None]

    pectoral = np.zeros(grid.shape, bool)
    params = dict(view="MLO" if mlo else "CC", center_mm=yc, a_mm=a, b_up_mm=b_up, b_down_mm=b_down,
                  periphery_width_mm=width)
    if paddle_tilt_deg:
        params["paddle_tilt_deg"] = float(paddle_tilt_deg)
    if local is not None:
        rim = inside & (sd < local)  # the local width where the periphery is
        ws = local[rim] if rim.any() else local[inside]
        params.update(edge_params, periphery_width_min_mm=float(ws.min()), periphery_width_max_mm=float(ws.max()))
    if mlo:
        px = rng.uniform(25, 60)  # pectoral width along the top edge, mm
        py = rng.uniform(0.55, 0.85) * yc + rng.uniform(20, 50)  # length along the chest wall
        bow = rng.uniform(-0.25, 0.25)  # convex or concave muscle edge
        y1, x1 = grid.axes_mm()
        # u + v < 1 + bow u v has no solution u >= 0 where v >= 1 and bow v < 1: those rows are skipped
        v_all = y1 / py
        rows = np.flatnonzero((v_all < 1.0) | (bow * v_all >= 1.0))
        u, v = x1[None, :] / px, v_all[rows, None]
        pectoral[rows] = (u + v < 1.0 + bow * u * v) & inside[rows]
        params.update(pectoral_width_mm=px, pectoral_length_mm=py, pectoral_bow=bow)

    breast_map = np.zeros(grid.shape, np.uint8)
    breast_map[inside] = PERIPHERY
    breast_map[inside & (sd >= w_here)] = COMPRESSED
    breast_map[pectoral] = PECTORAL
    return BreastGeometry(inside, sd.astype(np.float32), thickness, pectoral, breast_map, h0, width, params,
                          local, p)


def skin_path_mm(geo: BreastGeometry, skin_mm: float = SKIN_MM) -> np.ndarray:
    """Path length (mm) through the skin along the beam: 2 x skin where the paddles press the
    breast, rising to the whole thickness at the skin line (the bright rim of a mammogram).

    The tissue under the skin has the same fall-off as the breast (:func:`edge_profile`, with the
    local width and exponent where the geometry has them), shrunk by the skin.
    """
    h0, w = geo.compressed_thickness_mm, geo.periphery_width_mm
    local = geo.local_width_mm
    w_min = w if local is None or not geo.inside.any() else float(local[geo.inside].min())
    s = float(min(skin_mm, 0.45 * h0, 0.9 * w_min))
    out = np.where(geo.inside, np.float32(2 * s), np.float32(0.0))
    rim = np.flatnonzero(geo.inside & (geo.skin_distance_mm < (w if local is None else local)))  # only the periphery
    w_rim = w if local is None else local.reshape(-1)[rim]
    p_rim = None if geo.profile_exponent is None else geo.profile_exponent.reshape(-1)[rim]
    d = np.clip((geo.skin_distance_mm.reshape(-1)[rim] - s) / (w_rim - s), 0.0, 1.0)
    inner = (h0 - 2 * s) * edge_profile(d, p_rim)
    thick = geo.thickness_mm.reshape(-1)[rim]
    out.reshape(-1)[rim] = np.clip(thick - inner, 0.0, thick)
    return out

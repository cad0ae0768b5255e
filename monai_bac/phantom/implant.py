"""A breast implant behind the glandular tissue, seen through a compressed breast.

Several per cent of the women screened carry breast implants, and their standard views are read
too. An implant lies behind the glandular tissue (or behind the pectoral muscle) against the chest
wall; compressed, it is a flattened lens, thick in the middle and falling off steeply at its rim,
and it displaces the tissue in front of it: the breast's thickness is tissue plus implant. A
silicone-gel implant (polydimethylsiloxane, 0.97 g/cm^3) attenuates about 2.5 times as much as
glandular tissue at mammographic energies, so its shadow is darker than any tissue of the
compressed thickness could be; a saline implant attenuates like water, just above glandular
tissue, and its shadow reads as dense tissue.

:func:`implant_path` draws one on the phantom's grid (canonical frame: chest wall at column 0);
``make_phantom(..., implant=...)`` puts it in the image formation.
"""

from __future__ import annotations

import numpy as np

from monai_bac.phantom.geometry import BreastGeometry
from monai_bac.phantom.grid import Grid, gaussian_blur

__all__ = ["IMPLANT_MATERIALS", "IMPLANT_TISSUE_MM", "implant_path"]

#: Implant fillings and their :data:`monai_bac.physics.COMPOSITIONS` names.
IMPLANT_MATERIALS = {"silicone": "silicone", "saline": "saline"}
#: Tissue that stays between the implant and each paddle (skin and a layer of fat and gland), mm.
IMPLANT_TISSUE_MM = 4.0
#: Flatness of the compressed lens: path = s_max (1 - rho^2)^FLATNESS (0.5: an ellipsoid).
FLATNESS = 0.25


def implant_path(rng: np.random.Generator, grid: Grid, geo: BreastGeometry,
                 muscle_mm: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Path length (mm) through an implant along the beam, float32 (H, W), and its parameters.

    The implant's outline is an ellipse centred on the breast's mid-row, a little in front of the
    chest wall (it runs off the image there, as a real one does), reaching 55-85 % of the way to
    the nipple and 60-90 % of the breast's height; its path is ``s_max (1 - rho^2)^0.25`` (a lens
    flattened by compression), ``s_max`` 35-60 % of the compressed thickness, and never more than
    the breast's local thickness less :data:`IMPLANT_TISSUE_MM` on each side and less the pectoral
    muscle (``muscle_mm`` along the beam) where it lies over the implant.
    """
    p = geo.params
    a, h0 = float(p["a_mm"]), geo.compressed_thickness_mm
    height = float(p["b_up_mm"] + p["b_down_mm"])
    centre_x = a * rng.uniform(0.05, 0.2)
    radius_x = a * rng.uniform(0.55, 0.85) - centre_x
    radius_y = 0.5 * height * rng.uniform(0.6, 0.9)
    centre_y = float(p["center_mm"]) + height * rng.uniform(-0.05, 0.05)
    s_max = h0 * rng.uniform(0.35, 0.6)
    y, x = grid.axes_mm()
    rho2 = ((y[:, None] - centre_y) / radius_y) ** 2 + ((x[None, :] - centre_x) / radius_x) ** 2
    path = s_max * np.clip(1.0 - rho2, 0.0, None) ** FLATNESS
    path = gaussian_blur(path.astype(np.float32), 0.3 / grid.spacing)  # the shell's rounded rim
    room = geo.thickness_mm - 2 * IMPLANT_TISSUE_MM
    if muscle_mm is not None:
        room = room - muscle_mm
    room = np.clip(room, 0.0, None)
    path = np.where(geo.inside, np.minimum(path, room), 0.0).astype(np.float32)
    params = dict(centre_mm=(float(centre_y), float(centre_x)), radii_mm=(float(radius_y), float(radius_x)),
                  max_path_mm=float(path.max(initial=0.0)), area_cm2=float((path > 0).sum() * grid.spacing**2 / 100))
    return path, params

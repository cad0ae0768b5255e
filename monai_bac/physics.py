"""X-ray physics for raw mammograms: attenuation of breast materials and effective energy.

Everything here is a pure function in physical units: energies in keV, thicknesses in mm and
linear attenuation coefficients in mm^-1 (tables are kept in cm^-1 as published and divided
by 10 once, at the boundary).

Sources
-------
* Adipose, glandular (Woodard) and calcium oxalate: VICTRE MC-GPU material files
  (DIDSR/VICTRE_MCGPU, ``example_simulations/material``), total attenuation incl. Rayleigh.
* Hydroxyapatite (rho 3.16 g/cm^3): computed with xraydb 4.5.8.
* The paper's own values at 18 keV (Wang et al., Sec. 3.3, after Johns & Yaffe 1987):
  mu_dt = 1.028 cm^-1 and mu_calc = 26.1 cm^-1.
* Effective energies: mean energies of VICTRE spectra (W/Rh 30 kVp = 19.3 keV) and the usual
  16-18 keV for Mo/Mo at 26-28 kVp; see :func:`effective_energy_kev`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

__all__ = [
    "MATERIALS",
    "PAPER_ENERGY_KEV",
    "HYDROXYAPATITE_DENSITY_MG_PER_MM3",
    "Attenuation",
    "MissingPhysicsError",
    "linear_attenuation",
    "effective_energy_kev",
    "attenuation_at",
    "paper_attenuation",
    "attenuation_from_meta",
]

#: The energy the paper quotes its coefficients at (Sec. 3.3).
PAPER_ENERGY_KEV = 18.0
#: Density of hydroxyapatite, Ca10(PO4)6(OH)2: 3.16 g/cm^3 = 3.16 mg/mm^3.
HYDROXYAPATITE_DENSITY_MG_PER_MM3 = 3.16

_TABLE_KEV = np.array([15.0, 17.5, 20.0, 22.0, 25.0, 28.0, 30.0])
# cm^-1, rows as in shared/reference/attenuation.md
_TABLE_CM = {
    "adipose": np.array([0.965, 0.675, 0.513, 0.431, 0.353, 0.304, 0.281]),
    "glandular": np.array([1.594, 1.075, 0.786, 0.642, 0.503, 0.418, 0.378]),
    "calcium_oxalate": np.array([22.0, 14.2, 9.75, 7.47, 5.24, 3.85, 3.21]),
    "hydroxyapatite": np.array([47.2, 30.4, 20.7, 15.8, 11.0, 8.02, 6.63]),
}
#: Material names accepted by :func:`linear_attenuation`, with aliases.
MATERIALS = {
    "fat": "adipose",
    "adipose": "adipose",
    "dense": "glandular",
    "glandular": "glandular",
    "fibroglandular": "glandular",
    "calcium_oxalate": "calcium_oxalate",
    "hydroxyapatite": "hydroxyapatite",
    "calcification": "hydroxyapatite",
}


class MissingPhysicsError(KeyError):
    """A physical quantity is neither in the image metadata nor given as an argument."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


def linear_attenuation(material: str, energy_kev: float) -> float:
    """Linear attenuation coefficient of ``material`` at ``energy_kev``, in mm^-1.

    Interpolates log(mu) against log(E) between the tabulated energies (15-30 keV) and
    extrapolates the same power law a little beyond them (12-40 keV accepted).
    """
    key = MATERIALS.get(str(material).lower())
    if key is None:
        raise ValueError(f"unknown material {material!r}; choose one of {sorted(MATERIALS)}")
    e = float(energy_kev)
    if not 12.0 <= e <= 40.0:
        raise ValueError(f"energy_kev={e} is outside the mammographic range 12-40 keV")
    log_e, log_mu = np.log(_TABLE_KEV), np.log(_TABLE_CM[key])
    if e <= _TABLE_KEV[0]:
        i = 0
    elif e >= _TABLE_KEV[-1]:
        i = len(_TABLE_KEV) - 2
    else:
        i = int(np.searchsorted(_TABLE_KEV, e)) - 1
    slope = (log_mu[i + 1] - log_mu[i]) / (log_e[i + 1] - log_e[i])
    mu_cm = math.exp(log_mu[i] + slope * (math.log(e) - log_e[i]))
    return mu_cm / 10.0


# Mean energy of the spectrum at a reference kVp and its slope per kV, by anode/filter.
# W/Rh at 30 kVp = 19.3 keV (VICTRE); Mo/Mo sits at 16-18 keV over 26-28 kVp; the others are
# placed between by their K-edges. About 0.3 keV per kV is the slope of the mean energy of
# these filtered spectra. An approximation, good to about 1 keV.
_SPECTRA = {
    ("MOLYBDENUM", "MOLYBDENUM"): (28.0, 16.9, 0.3),
    ("MOLYBDENUM", "RHODIUM"): (28.0, 17.6, 0.3),
    ("RHODIUM", "RHODIUM"): (29.0, 18.6, 0.3),
    ("TUNGSTEN", "RHODIUM"): (30.0, 19.3, 0.35),
    ("TUNGSTEN", "SILVER"): (30.0, 19.9, 0.35),
    ("TUNGSTEN", "ALUMINUM"): (30.0, 20.5, 0.4),
}
_ALIASES = {"MO": "MOLYBDENUM", "RH": "RHODIUM", "W": "TUNGSTEN", "AG": "SILVER",
            "AL": "ALUMINUM", "ALUMINIUM": "ALUMINUM"}


def _material_name(value: str | None) -> str | None:
    if value is None:
        return None
    name = str(value).strip().upper()
    return _ALIASES.get(name, name) or None


def effective_energy_kev(kvp: float | None, anode: str | None = None, filter: str | None = None) -> float:
    """Effective (mean) photon energy in keV from the tube voltage and anode/filter pair.

    ``kvp`` is DICOM KVP (0018,0060), ``anode`` AnodeTargetMaterial (0018,1191) and
    ``filter`` FilterMaterial (0018,7050). An unknown anode/filter pair falls back to W/Rh.
    With no kVp at all, the paper's 18 keV is returned.
    """
    if kvp is None:
        return PAPER_ENERGY_KEV
    kvp = float(kvp)
    if not 18.0 <= kvp <= 50.0:
        raise ValueError(f"KVP (0018,0060) = {kvp} is not a mammographic tube voltage (18-50 kV)")
    key = (_material_name(anode) or "TUNGSTEN", _material_name(filter) or "RHODIUM")
    ref_kvp, ref_e, slope = _SPECTRA.get(key, _SPECTRA[("TUNGSTEN", "RHODIUM")])
    return ref_e + slope * (kvp - ref_kvp)


@dataclass(frozen=True)
class Attenuation:
    """Effective linear attenuation coefficients (mm^-1) of the three materials of Eq. (4)-(5)."""

    mu_fat: float
    mu_dt: float
    mu_calc: float
    energy_kev: float | None = None

    def __post_init__(self):
        if not 0 < self.mu_fat < self.mu_dt < self.mu_calc:
            raise ValueError(
                f"expected 0 < mu_fat < mu_dt < mu_calc (mm^-1), got {self.mu_fat}, {self.mu_dt}, {self.mu_calc}"
            )


def attenuation_at(energy_kev: float, calcification: str = "hydroxyapatite") -> Attenuation:
    """Coefficients of fat, dense tissue and calcification at one energy, from the tables."""
    return Attenuation(
        mu_fat=linear_attenuation("adipose", energy_kev),
        mu_dt=linear_attenuation("glandular", energy_kev),
        mu_calc=linear_attenuation(calcification, energy_kev),
        energy_kev=float(energy_kev),
    )


def paper_attenuation() -> Attenuation:
    """The paper's 18 keV values: mu_dt = 1.028 cm^-1, mu_calc = 26.1 cm^-1 (Sec. 3.3).

    The paper does not quote mu_fat; the adipose table at 18 keV is used.
    """
    return Attenuation(
        mu_fat=linear_attenuation("adipose", PAPER_ENERGY_KEV),
        mu_dt=0.1028,
        mu_calc=2.61,
        energy_kev=PAPER_ENERGY_KEV,
    )


def attenuation_from_meta(
    meta: Mapping | None,
    mu_fat: float | None = None,
    mu_dt: float | None = None,
    mu_calc: float | None = None,
    energy_kev: float | None = None,
    source: str = "image",
) -> Attenuation:
    """Resolve the coefficients for one image: explicit arguments win, then the energy.

    The energy comes from ``energy_kev`` or else from the image's ``kvp``/``anode``/``filter``
    metadata. If any coefficient is missing and neither is available, a
    :class:`MissingPhysicsError` names the DICOM tag and the arguments that can replace it.
    """
    given = {"mu_fat": mu_fat, "mu_dt": mu_dt, "mu_calc": mu_calc}
    if all(v is not None for v in given.values()):
        return Attenuation(float(mu_fat), float(mu_dt), float(mu_calc), energy_kev)
    meta = meta or {}
    if energy_kev is None:
        kvp = meta.get("kvp")
        if kvp is None:
            missing = ", ".join(k for k, v in given.items() if v is None)
            raise MissingPhysicsError(
                f"{source}: KVP (0018,0060) is missing from the image metadata ('kvp'), so the effective "
                f"energy is unknown; pass energy_kev=... (e.g. 18.0, the paper's value) or {missing}=... (mm^-1)"
            )
        energy_kev = effective_energy_kev(kvp, meta.get("anode"), meta.get("filter"))
    table = attenuation_at(energy_kev)
    return Attenuation(
        mu_fat=float(mu_fat) if mu_fat is not None else table.mu_fat,
        mu_dt=float(mu_dt) if mu_dt is not None else table.mu_dt,
        mu_calc=float(mu_calc) if mu_calc is not None else table.mu_calc,
        energy_kev=float(energy_kev),
    )

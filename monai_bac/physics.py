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

The tables above are the *simple default* that the analysis (Eq. 4-5) and the ideal phantom use.
The field's own libraries give the same physics from first principles, and are what the
realistic phantom uses (``tests/test_physics_references.py`` checks one against the other):

* :func:`mu_xraydb`: elemental attenuation from xraydb (Elam tables) mixed by mass fraction:
  adipose and glandular tissue after Hammerstein et al. 1979, skin and skeletal muscle after
  ICRU Report 44, hydroxyapatite Ca10(PO4)6(OH)2 at 3.16 g/cm^3, amorphous selenium, aluminium.
  The tables agree with it to < 1 % for adipose and hydroxyapatite over 15-30 keV and for
  glandular tissue up to 22 keV; above, the VICTRE glandular row (Woodard, 1.06 g/cm^3) is up
  to 1.6 % above Hammerstein's (1.04 g/cm^3).
* :func:`tube_spectrum`: x-ray tube spectra from SpekPy (Poludniowski et al. 2021) for each
  anode/filter pair, cached; their mean energy and first half-value layer (mm Al, from xraydb
  attenuation and air kerma) agree with SpekPy's own to < 1 %.
* :func:`scatter_to_primary_ratio`: scatter behind an anti-scatter grid versus thickness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
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
    "COMPOSITIONS",
    "mu_xraydb",
    "TUBES",
    "Spectrum",
    "tube_spectrum",
    "scatter_to_primary_ratio",
    "detector_for",
    "TransmittedBeam",
    "transmitted_beam",
    "beam_from_meta",
    "behind_grid",
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


# ------------------------------------------------------------------------ library-backed physics
#: Elemental mass fractions and densities (g/cm^3). Adipose and glandular: Hammerstein et al.,
#: Radiology 130:485 (1979); skin and skeletal muscle: ICRU Report 44 (1989); hydroxyapatite as a
#: chemical formula; amorphous selenium (a-Se detectors) 4.28 g/cm^3; CsI (scintillator) 4.51;
#: breast implants: silicone gel as polydimethylsiloxane, saline as 0.9 % NaCl in water.
COMPOSITIONS: dict[str, tuple[dict[str, float] | str, float]] = {
    "adipose": (dict(H=0.112, C=0.619, N=0.017, O=0.251, P=0.001), 0.93),
    "glandular": (dict(H=0.102, C=0.184, N=0.032, O=0.677, P=0.005), 1.04),
    "skin": (dict(H=0.100, C=0.204, N=0.042, O=0.645, Na=0.002, P=0.001, S=0.002, Cl=0.003, K=0.001), 1.09),
    "muscle": (dict(H=0.102, C=0.143, N=0.034, O=0.710, Na=0.001, P=0.002, S=0.003, Cl=0.001, K=0.004), 1.05),
    "hydroxyapatite": ("Ca10(PO4)6(OH)2", 3.16),
    "selenium": ("Se", 4.28),
    "csi": ("CsI", 4.51),
    "aluminium": ("Al", 2.699),
    "polycarbonate": ("C16H14O3", 1.20),  # compression paddles
    "silicone": ("C2H6OSi", 0.97),  # breast-implant gel: polydimethylsiloxane
    "saline": (dict(H=0.1099, O=0.8811, Na=0.0035, Cl=0.0055), 1.005),  # breast-implant filling: 0.9 % NaCl
    "air": (dict(C=0.000124, N=0.755268, O=0.231781, Ar=0.012827), 0.001205),
}
_XRAYDB_ALIASES = {"fat": "adipose", "dense": "glandular", "fibroglandular": "glandular",
                   "calcification": "hydroxyapatite", "se": "selenium", "a-se": "selenium",
                   "al": "aluminium", "aluminum": "aluminium"}


def _composition(material: str) -> tuple[dict[str, float] | str, float]:
    key = _XRAYDB_ALIASES.get(str(material).lower(), str(material).lower())
    if key not in COMPOSITIONS:
        raise ValueError(f"unknown material {material!r}; choose one of {sorted(COMPOSITIONS)}")
    return COMPOSITIONS[key]


def mu_xraydb(material: str, energy_kev, kind: str = "total") -> np.ndarray:
    """Linear attenuation coefficient (mm^-1) of ``material`` at ``energy_kev`` (scalar or array),
    from xraydb's elemental cross sections mixed by mass fraction (see :data:`COMPOSITIONS`).

    ``kind`` is xraydb's: "total" (with coherent scatter, as the tables), "photo", "incoh", "coh".
    """
    import xraydb

    comp, rho = _composition(material)
    e_ev = np.asarray(energy_kev, dtype=np.float64) * 1000.0
    if isinstance(comp, str):
        mu_cm = xraydb.material_mu(comp, e_ev, density=rho, kind=kind)
    else:
        mu_cm = rho * sum(w * xraydb.mu_elam(el, e_ev, kind=kind) for el, w in comp.items()) / sum(comp.values())
    return np.asarray(mu_cm, dtype=np.float64) / 10.0


def _mu_en_air(energy_kev: np.ndarray) -> np.ndarray:
    """Mass energy-absorption coefficient of air (cm^2/g): photo-absorption plus the mean energy
    fraction handed to the Compton electron, (E/mc^2)/(1 + 2E/mc^2); within 0.5 % of NIST's
    mu_en/rho over 10-40 keV."""
    comp, rho = COMPOSITIONS["air"]
    k = np.asarray(energy_kev, dtype=np.float64) / 511.0
    return (mu_xraydb("air", energy_kev, "photo") + mu_xraydb("air", energy_kev, "incoh") * k / (1 + 2 * k)) * 10 / rho


#: Tube set-ups per (anode, filter): filter thickness in mm (typical: Mo 0.03, Rh 0.025-0.05,
#: Ag 0.05) and the vendors that use them (Hologic W/Rh, W/Ag; GE Mo/Mo, Mo/Rh, Rh/Rh; Siemens W/Rh).
TUBES: dict[tuple[str, str], float] = {
    ("TUNGSTEN", "RHODIUM"): 0.05,
    ("TUNGSTEN", "SILVER"): 0.05,
    ("TUNGSTEN", "ALUMINUM"): 0.7,
    ("MOLYBDENUM", "MOLYBDENUM"): 0.03,
    ("MOLYBDENUM", "RHODIUM"): 0.025,
    ("RHODIUM", "RHODIUM"): 0.025,
}
_SPEK_SYMBOL = {"TUNGSTEN": "W", "MOLYBDENUM": "Mo", "RHODIUM": "Rh", "SILVER": "Ag", "ALUMINUM": "Al"}
#: Tube defaults: anode angle (deg), beryllium exit window (mm, 0.5-1 mm is usual), source-image
#: distance (mm, 650-700 mm on mammography units).
ANODE_ANGLE_DEG, BE_WINDOW_MM, SOURCE_IMAGE_DISTANCE_MM = 16.0, 1.0, 650.0


@dataclass(frozen=True)
class Spectrum:
    """A filtered x-ray tube spectrum: photon fluence per energy bin at the detector distance."""

    energy_kev: np.ndarray  # bin centres, keV
    fluence: np.ndarray  # photons per mm^2 per mAs in each bin
    kvp: float
    anode: str
    filter: str
    filter_mm: float

    @property
    def mean_energy_kev(self) -> float:
        """Fluence-weighted mean photon energy (keV), as SpekPy's ``get_emean``."""
        return float(np.sum(self.energy_kev * self.fluence) / np.sum(self.fluence))

    def air_kerma(self, al_mm: float = 0.0) -> float:
        """Air kerma per mAs behind ``al_mm`` of aluminium (arbitrary but fixed units)."""
        e = self.energy_kev
        t = np.exp(-mu_xraydb("aluminium", e) * al_mm)
        return float(np.sum(self.fluence * e * _mu_en_air(e) * t))

    @property
    def hvl1_mm_al(self) -> float:
        """First half-value layer (mm Al) of air kerma, with xraydb's aluminium attenuation."""
        from scipy.optimize import brentq

        k0 = self.air_kerma()
        return float(brentq(lambda x: self.air_kerma(x) - 0.5 * k0, 0.0, 10.0, xtol=1e-6))


#: SpekPy's energy bin (keV) and attenuation data: NIST, as xraydb's Elam tables (its PENELOPE
#: default differs by ~1 % in HVL)
_SPEK_DK_KEV = 0.5
_SPEK_MU_DATA = "nist"


def _spek(kvp: float, anode: str, filter: str, filter_mm: float, anode_angle_deg: float, be_window_mm: float,
          distance_mm: float):
    import spekpy

    spek = spekpy.Spek(kvp=kvp, th=anode_angle_deg, targ=_SPEK_SYMBOL[anode], z=distance_mm / 10.0,
                       dk=_SPEK_DK_KEV, mu_data_source=_SPEK_MU_DATA)
    spek.filter("Be", be_window_mm).filter(_SPEK_SYMBOL[filter], filter_mm)
    return spek


def _spek_spectrum(kvp: float, anode: str, filter: str, filter_mm: float, anode_angle_deg: float,
                   be_window_mm: float, distance_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """SpekPy's spectrum (keV, photons / cm^2 / mAs / keV at the distance), from the disk cache
    (:mod:`monai_bac.disk_cache`) when the installed SpekPy version computed it before: importing
    SpekPy and computing a spectrum costs the first image of a process ~0.9 s."""
    from importlib.metadata import PackageNotFoundError, version

    from monai_bac.disk_cache import load_arrays, store_arrays

    try:
        key = dict(spekpy=version("spekpy"), kvp=kvp, anode=anode, filter=filter, filter_mm=filter_mm,
                   anode_angle_deg=anode_angle_deg, be_window_mm=be_window_mm, distance_mm=distance_mm,
                   dk_kev=_SPEK_DK_KEV, mu_data_source=_SPEK_MU_DATA)
    except PackageNotFoundError:
        key = None  # SpekPy missing: _spek names it below
    if key is not None:
        hit = load_arrays("spectrum", key, ("energy", "per_kev"))
        if hit is not None:
            energy, per_kev = hit["energy"], hit["per_kev"]
            if (energy.ndim == 1 and energy.shape == per_kev.shape and energy.size > 1
                    and np.all(np.isfinite(energy)) and np.all(np.isfinite(per_kev)) and np.all(per_kev >= 0)):
                return energy, per_kev
    energy, per_kev = (np.asarray(a) for a in _spek(kvp, anode, filter, filter_mm, anode_angle_deg,
                                                    be_window_mm, distance_mm).get_spectrum())
    if key is not None:
        store_arrays("spectrum", key, dict(energy=energy, per_kev=per_kev))
    return energy, per_kev


@lru_cache(maxsize=128)
def tube_spectrum(kvp: float, anode: str = "TUNGSTEN", filter: str = "RHODIUM", filter_mm: float | None = None,
                  anode_angle_deg: float = ANODE_ANGLE_DEG, be_window_mm: float = BE_WINDOW_MM,
                  distance_mm: float = SOURCE_IMAGE_DISTANCE_MM) -> Spectrum:
    """The spectrum of a mammography tube from SpekPy, cached per set-up (in the process, and on
    disk between processes: :mod:`monai_bac.disk_cache`).

    ``anode`` and ``filter`` take DICOM AnodeTargetMaterial / FilterMaterial terms or symbols
    (W, Mo, Rh, Ag, Al); ``filter_mm`` defaults to the pair's entry in :data:`TUBES`.
    """
    key = (_material_name(anode), _material_name(filter))
    if key not in TUBES:
        raise ValueError(f"no tube model for anode/filter {anode}/{filter}; choose one of {sorted(TUBES)}")
    kvp = float(kvp)
    if not 18.0 <= kvp <= 49.0:
        raise ValueError(f"KVP (0018,0060) = {kvp} is not a mammographic tube voltage (18-49 kV)")
    filter_mm = TUBES[key] if filter_mm is None else float(filter_mm)
    # photons / cm^2 / mAs / keV at the distance
    energy, per_kev = _spek_spectrum(kvp, key[0], key[1], filter_mm, float(anode_angle_deg), float(be_window_mm),
                                     float(distance_mm))
    fluence = per_kev * _SPEK_DK_KEV / 100.0  # per energy bin, per mm^2
    keep = fluence > 1e-6 * fluence.max()
    energy, fluence = np.asarray(energy[keep], np.float64), np.asarray(fluence[keep], np.float64)
    energy.setflags(write=False)
    fluence.setflags(write=False)
    return Spectrum(energy, fluence, kvp, key[0], key[1], filter_mm)


#: Scatter behind the grid: no-grid SPR rises linearly with thickness (Boone & Cooper, Med Phys
#: 27:1818, 2000; Sechopoulos et al., Med Phys 34:564, 2007), about 0.26 at 20 mm to 0.94 at
#: 80 mm for a full field; a mammography grid (linear 5:1 or cellular) passes scatter at about
#: 0.38 of the rate it passes primary (Boone et al., Radiology 222:519, 2002).
SPR_NO_GRID = (0.04, 0.0112)  # intercept, per mm
GRID_SCATTER_OVER_PRIMARY = 0.38


def scatter_to_primary_ratio(thickness_mm, grid: bool = True):
    """Scatter-to-primary ratio at the centre of a compressed breast of ``thickness_mm``.

    Behind the grid it spans about 0.1 (20 mm) to 0.36 (80 mm), the published 0.1-0.4.
    """
    t = np.asarray(thickness_mm, dtype=np.float64)
    if np.any(t < 0) or np.any(t > 150):
        raise ValueError(f"thickness_mm must be within 0-150 mm, got {thickness_mm}")
    spr = SPR_NO_GRID[0] + SPR_NO_GRID[1] * t
    return spr * GRID_SCATTER_OVER_PRIMARY if grid else spr


# ------------------------------------------------------------------ beam hardening, for the analysis
#: The converter of a detector, by DICOM DetectorType (0018,7004) or manufacturer: amorphous
#: selenium (direct conversion: Hologic Selenia 0.25 mm, Siemens Mammomat 0.2 mm) or CsI(Tl) on
#: amorphous silicon (indirect: GE Senographe / Pristina, about 0.1-0.2 mm).
DETECTORS: dict[str, tuple[str, float]] = {
    "DIRECT": ("selenium", 0.2),
    "SCINTILLATOR": ("csi", 0.15),
}


def detector_for(meta: Mapping | None) -> tuple[str, float]:
    """(material, thickness mm) of the image's converter: from ``meta["detector_type"]`` (DICOM
    DetectorType), else the manufacturer (GE: CsI, the others a-Se), else a-Se 0.2 mm."""
    meta = meta or {}
    kind = str(meta.get("detector_type") or "").upper()
    if kind in DETECTORS:
        return DETECTORS[kind]
    maker = str(meta.get("manufacturer") or "").upper().split()
    return DETECTORS["SCINTILLATOR"] if "GE" in maker else DETECTORS["DIRECT"]


@dataclass(frozen=True)
class TransmittedBeam:
    """A tube spectrum as an energy-integrating detector records it behind breast tissue.

    ``log_signal(a, g, c)`` is ln sum_E phi(E) E eta(E) exp(-mu_a a - mu_g g - mu_c c): the
    detector signal behind ``a`` mm of adipose, ``g`` mm of glandular tissue and ``c`` mm of
    hydroxyapatite (SpekPy spectrum, xraydb attenuation, a-Se or CsI absorption eta). Its slopes
    are the *effective* attenuation coefficients of the transmitted (hardened) spectrum, which
    fall as the breast gets thicker: that is beam hardening.
    """

    key: tuple
    energy_kev: np.ndarray
    weight: np.ndarray  # phi E eta, normalised to sum 1
    mu_fat: np.ndarray  # mm^-1 per energy bin
    mu_gland: np.ndarray
    mu_calc: np.ndarray

    def log_signal(self, a_mm, g_mm=0.0, c_mm=0.0) -> np.ndarray:
        a, g, c = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a_mm, g_mm, c_mm)))
        line = a[..., None] * self.mu_fat + g[..., None] * self.mu_gland + c[..., None] * self.mu_calc
        return np.log(np.exp(-line) @ self.weight)

    def _weights_behind(self, a_mm: float, g_mm: float = 0.0) -> np.ndarray:
        w = self.weight * np.exp(-a_mm * self.mu_fat - g_mm * self.mu_gland)
        return w / w.sum()

    def effective(self, fat_mm: float) -> Attenuation:
        """Effective mu_fat, mu_dt, mu_calc (mm^-1) = -d ln(signal)/d t of each material behind
        ``fat_mm`` of adipose tissue (the local slopes of :meth:`log_signal`)."""
        w = self._weights_behind(float(fat_mm))
        e = float(np.sum(w * self.energy_kev))
        return Attenuation(float(w @ self.mu_fat), float(w @ self.mu_gland), float(w @ self.mu_calc), e)

    def glandular_curve(self, thickness_mm: float, step_mm: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
        """(g, L): glandular thickness g in [0, thickness_mm] (the rest adipose) and
        L(g) = ln S(H - g, g) - ln S(H, 0), the log signal relative to all-fat tissue of the same
        thickness H. L falls strictly with g; ``np.interp(-L_measured, -L, g)`` inverts it."""
        h = float(thickness_mm)
        g = np.linspace(0.0, h, max(int(np.ceil(h / step_mm)), 1) + 1)
        return g, self.log_signal(h - g, g) - self.log_signal(h, 0.0)

    def fat_thickness_curve(self, max_mm: float, step_mm: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
        """(a, ln S(a, 0)): the log signal behind ``a`` mm of adipose tissue, a in [0, max_mm]."""
        a = np.linspace(0.0, float(max_mm), max(int(np.ceil(max_mm / step_mm)), 1) + 1)
        return a, self.log_signal(a)

    def calcium_curve(self, fat_mm: float, max_mm: float = 2.0, step_mm: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
        """(c, L): hydroxyapatite thickness c and L(c) = ln S(H, 0, c) - ln S(H, 0, 0) behind
        ``fat_mm`` of adipose tissue (the calcium displaces no tissue to first order)."""
        c = np.linspace(0.0, float(max_mm), int(round(max_mm / step_mm)) + 1)
        return c, self.log_signal(fat_mm, 0.0, c) - self.log_signal(fat_mm, 0.0, 0.0)


@lru_cache(maxsize=64)
def transmitted_beam(kvp: float, anode: str | None = None, filter: str | None = None,
                     detector: str = "selenium", detector_mm: float = 0.2) -> TransmittedBeam:
    """The detector-weighted spectrum of a tube set-up (:func:`tube_spectrum`) with xraydb's
    attenuation of adipose and glandular tissue (Hammerstein et al.) and hydroxyapatite, cached
    per (kVp, anode, filter, detector). An anode/filter pair without a tube model is refused."""
    spec = tube_spectrum(round(float(kvp), 1), _material_name(anode) or "TUNGSTEN", _material_name(filter) or "RHODIUM")
    e = spec.energy_kev
    eta = 1.0 - np.exp(-mu_xraydb(detector, e) * float(detector_mm))
    w = spec.fluence * e * eta
    w = w / w.sum()
    arrays = (e, w, mu_xraydb("adipose", e), mu_xraydb("glandular", e), mu_xraydb("hydroxyapatite", e))
    for a in arrays:
        a.setflags(write=False)
    return TransmittedBeam((spec.kvp, spec.anode, spec.filter, detector, float(detector_mm)), *arrays)


def behind_grid(meta: Mapping) -> bool:
    """Whether an image was taken behind an anti-scatter grid: unless ``meta["anti_scatter_grid"]``
    (from Grid (0018,1166)) says "NO", as a screening mammogram is; most tomosynthesis units take
    their projections without one."""
    return str(meta.get("anti_scatter_grid") or "").strip().upper() != "NO"


def beam_from_meta(meta: Mapping) -> TransmittedBeam:
    """:func:`transmitted_beam` of an image's metadata: ``kvp`` (KVP (0018,0060); the caller checks
    it is there), ``anode``, ``filter`` and the detector (:func:`detector_for`). Raises ValueError
    for a tube set-up without a model."""
    return transmitted_beam(float(meta["kvp"]), meta.get("anode"), meta.get("filter"), *detector_for(meta))


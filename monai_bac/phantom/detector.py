"""Image formation: Beer-Lambert attenuation, detector blur, quantum noise and digitisation.

The expected number of quanta reaching a pixel is

    q = q0 * exp(-[mu_fat (H - h_dt - h_calc - h_muscle) + mu_dt (h_dt + h_muscle) + mu_calc h_calc])

at the effective energy of the beam (muscle is attenuated as dense tissue). The detector
blurs q (a-Se point spread, sigma ~ 0.06 mm), adds quantum noise with variance equal to the
mean (Poisson statistics, drawn in the Gaussian limit: >100 quanta per pixel everywhere) and
electronic noise, and scales to detector units. The result is *linear in exposure*, like a
"FOR PROCESSING" raw image, which is what Eq. (4) of the paper assumes. There is no scatter.

Vendor profiles set the stored values: Hologic-like (14-bit, MONOCHROME2, W/Rh), GE-like
(16-bit, MONOCHROME1, Rh/Rh: stored = 65535 - linear value, which puts breast tissue near the
top of the range as in the paper's Fig. 3, e.g. [62299, 65415]) and Siemens-like (W/Rh).

This is the *ideal* physics (``make_phantom(physics="ideal")``); the polyenergetic one with
scatter, heel effect and detector gain/offset is :mod:`monai_bac.phantom.xray`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monai_bac import physics
from monai_bac.phantom.grid import gaussian_blur

__all__ = ["VendorProfile", "VENDORS", "Exposure", "choose_exposure", "form_image"]


@dataclass(frozen=True)
class VendorProfile:
    manufacturer: str
    bits_stored: int
    photometric: str
    anode: str
    filter: str
    kvp_at_50mm: float  # automatic exposure control: kVp for a 50 mm breast
    kvp_per_mm: float
    fat_signal: tuple[float, float]  # detector units behind fatty compressed tissue
    # used by the realistic physics (phantom/xray.py) and for the vendor's native pixel pitch:
    pixel_mm: float = 0.1  # ImagerPixelSpacing of the vendor's raw images
    detector_material: str = "selenium"  # a-Se (direct) or CsI (indirect), see physics.COMPOSITIONS
    detector_mm: float = 0.2  # converter thickness
    techniques: tuple = ()  # ((up to thickness mm, anode, filter), ...): the AEC's target/filter choice


VENDORS = {
    # Selenia Dimensions: 0.07 mm, 14-bit MONOCHROME2, a-Se; W/Rh, W/Ag for thick breasts (2D)
    "HOLOGIC": VendorProfile("HOLOGIC, Inc.", 14, "MONOCHROME2", "TUNGSTEN", "RHODIUM", 29.0, 0.12, (500.0, 900.0),
                             pixel_mm=0.07, detector_material="selenium", detector_mm=0.2,
                             techniques=((65.0, "TUNGSTEN", "RHODIUM"), (999.0, "TUNGSTEN", "SILVER"))),
    # Senographe / Pristina: 0.1 mm, 16-bit MONOCHROME1, CsI(Tl) on a-Si (thickness assumed);
    # Mo/Mo for thin, Mo/Rh for medium, Rh/Rh for thick breasts
    "GE": VendorProfile("GE MEDICAL SYSTEMS", 16, "MONOCHROME1", "RHODIUM", "RHODIUM", 29.0, 0.1, (1000.0, 3000.0),
                        pixel_mm=0.1, detector_material="csi", detector_mm=0.15,
                        techniques=((40.0, "MOLYBDENUM", "MOLYBDENUM"), (60.0, "MOLYBDENUM", "RHODIUM"),
                                    (999.0, "RHODIUM", "RHODIUM"))),
    # Mammomat: 0.085 mm, a-Se, W/Rh; 14-bit MONOCHROME2 assumed
    "SIEMENS": VendorProfile("SIEMENS", 14, "MONOCHROME2", "TUNGSTEN", "RHODIUM", 28.0, 0.12, (500.0, 900.0),
                             pixel_mm=0.085, detector_material="selenium", detector_mm=0.2,
                             techniques=((999.0, "TUNGSTEN", "RHODIUM"),)),
}

PSF_SIGMA_MM = 0.06
ELECTRONIC_NOISE = 2.0  # detector units


@dataclass(frozen=True)
class Exposure:
    kvp: float
    energy_kev: float
    attenuation: physics.Attenuation
    quanta_fat: float  # quanta per 0.1 mm pixel behind fatty compressed tissue
    gain: float  # detector units per quantum
    air_quanta: float  # quanta per pixel with no breast in the beam
    mas: float


def choose_exposure(rng: np.random.Generator, vendor: VendorProfile, thickness_mm: float, spacing: float,
                    kvp: float | None = None) -> Exposure:
    """Technique like an automatic exposure control: kVp rises with thickness, mAs keeps the
    signal behind fat near a vendor's target, and the unattenuated signal stays unsaturated."""
    if kvp is None:
        kvp = round(vendor.kvp_at_50mm + vendor.kvp_per_mm * (thickness_mm - 50.0) + rng.uniform(-1, 1))
    energy = physics.effective_energy_kev(kvp, vendor.anode, vendor.filter)
    att = physics.attenuation_at(energy)
    quanta_fat_01 = rng.uniform(800.0, 2000.0)  # per 0.1 mm pixel
    quanta_fat = quanta_fat_01 * (spacing / 0.1) ** 2
    air = quanta_fat * np.exp(att.mu_fat * thickness_mm)
    max_value = 2**vendor.bits_stored - 1
    fat_signal = min(rng.uniform(*vendor.fat_signal), 0.9 * max_value * quanta_fat / air)
    gain = fat_signal / quanta_fat
    mas = round(float(quanta_fat_01 * np.exp(att.mu_fat * thickness_mm) / 400.0), 1)
    return Exposure(float(kvp), energy, att, quanta_fat, gain, float(air), mas)


def form_image(rng: np.random.Generator, exposure: Exposure, vendor: VendorProfile, spacing: float,
               thickness: np.ndarray, h_dt: np.ndarray, h_calc: np.ndarray, h_muscle: np.ndarray) -> np.ndarray:
    """Raw detector image as stored (uint16), from the thickness maps in mm."""
    att = exposure.attenuation
    line = att.mu_fat * thickness
    line += (att.mu_dt - att.mu_fat) * (h_dt + h_muscle)
    line += (att.mu_calc - att.mu_fat) * h_calc
    q = exposure.air_quanta * np.exp(-line, dtype=np.float32)
    q = gaussian_blur(q, PSF_SIGMA_MM / spacing)
    # quantum (variance = mean, in quanta) and electronic noise are independent Gaussians: one draw
    g = np.float32(exposure.gain)
    sd = np.sqrt(q * (g * g) + np.float32(ELECTRONIC_NOISE**2))
    signal = rng.standard_normal(q.shape, dtype=np.float32)
    signal *= sd
    signal += q * g
    max_value = 2**vendor.bits_stored - 1
    np.clip(np.rint(signal, out=signal), 0, max_value, out=signal)
    if vendor.photometric == "MONOCHROME1":
        signal = max_value - signal
    return signal.astype(np.uint16)

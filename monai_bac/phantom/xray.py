"""Realistic image formation: polyenergetic x-rays, scatter, heel effect and a real detector.

Opt-in with ``make_phantom(..., physics="realistic")``; the ideal, monochromatic model stays in
:mod:`monai_bac.phantom.detector`. Per pixel, in keV absorbed by the detector:

    P(x) = mAs a_px T_grid heel(x) sum_E phi(E) E eta(E) exp(-sum_m mu_m(E) t_m(x))    (primary)
    S(x) = A(H0) K * [SPR(H) P]                                                       (scatter)
    raw  = g (1 + eps(x)) blur(P + S) + offset + noise

* phi(E): the tube spectrum from SpekPy (:func:`monai_bac.physics.tube_spectrum`), for the
  vendor's anode/filter chosen by thickness like an automatic exposure control;
  mu_m(E): xraydb attenuation of fat, glandular tissue, skin, muscle and hydroxyapatite.
  The polyenergetic sum puts beam hardening in the image: Eq. (4) of the paper is no longer exact.
* eta(E) = 1 - exp(-mu_det(E) t): absorption of the converter (a-Se 0.2 mm, or CsI); the signal
  is energy-integrating (weighted by E) and its quantum noise has variance sum N E^2 (Swank).
* Scatter behind the grid: scatter-to-primary ratio SPR(H) from
  :func:`monai_bac.physics.scatter_to_primary_ratio` (0.1-0.4 over 20-80 mm) at the centre of
  a homogeneous breast, spread by a broad kernel K (two Gaussians, sigma 0.5 H and 1.5 H) and
  sourced in the breast only, so it falls off towards the skin line and spills a little into
  the air beside it. The amplitude A is fixed on a homogeneous breast of the same outline
  (:func:`scatter_field`), so S/P rises behind dense tissue and falls behind fat.
* Heel effect along the anode-cathode axis (cathode at the chest wall): 10-20 % less fluence
  at the nipple than at the chest wall, continuing linearly across the field.
* MLO views: sometimes the compression paddle's upper rim (polycarbonate seen edge-on: a thin
  straight line across the field) and an abdominal fold (a dome of fat under skin at the bottom
  of the chest wall, outside the breast). Neither is breast, so neither is in the truth.
* Detector: gain, offset and a residual flat-field pattern (0.3 % RMS: smooth row and column
  gain profiles, what a flat-field correction leaves of gate and readout line gains), blur,
  quantum and electronic noise, digitisation.

Speed: the fat/glandular part of the transmission is a 2D table over the adipose- and
glandular-equivalent path lengths (skin and muscle are exact to 0.5 % as combinations of the
two, over the energies that pass a breast); pixels with calcium are summed over the spectrum exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from monai_bac import physics
from monai_bac.phantom.detector import ELECTRONIC_NOISE, PSF_SIGMA_MM, VendorProfile
from monai_bac.phantom.effects import Effects
from monai_bac.phantom.geometry import COMPRESSED, BreastGeometry
from monai_bac.phantom.grid import Grid, gaussian_blur

__all__ = ["Beam", "RealisticExposure", "beam", "mono_beam", "choose_technique", "choose_exposure", "form_image",
           "scatter_field", "homogeneous_primary", "GRID_PRIMARY_TRANSMISSION", "HEEL_FRACTION"]

GRID_PRIMARY_TRANSMISSION = 0.75  # mammography grids pass 0.7-0.8 of the primary
HEEL_FRACTION = (0.10, 0.20)  # fluence drop from the chest wall to the nipple
FLAT_FIELD_RMS = 0.003  # residual gain pattern after the vendor's flat-field correction
DETECTOR_OFFSET_DU = (20.0, 60.0)  # dark offset, detector units
QUANTA_FAT_PER_01MM = (4000.0, 10000.0)  # absorbed quanta behind fat per (0.1 mm)^2: the AEC target
SCATTER_GRID_MM = 2.0  # scatter is computed on a grid this coarse (it has no detail finer than cm)
SCATTER_KERNEL = ((0.5, 0.6), (1.5, 0.4))  # (sigma as a multiple of the thickness, weight)
_TABLE_STEP_MM = 0.25
_LOOKUP_BLOCK = 1 << 17  # pixels per block of the table lookup (_bilinear)
# MLO extras, drawn per image: the compression paddle's upper rim seen edge-on (a straight line
# across the field) and the abdominal fold below the breast at the chest wall
MLO_PADDLE_EDGE_P = 0.5
MLO_ABDOMEN_FOLD_P = 0.4
PADDLE_RIM_MM = (3.0, 8.0)  # polycarbonate path along the rim, over a 1 mm wide band


@dataclass(frozen=True)
class Beam:
    """One tube set-up seen through one detector: spectral weights and attenuation per energy bin."""

    spectrum: physics.Spectrum
    detector_material: str
    detector_mm: float
    n_abs: np.ndarray  # absorbed photons per bin, per mm^2 per mAs (no object)
    w1: np.ndarray  # absorbed energy per bin, keV per mm^2 per mAs
    mu_fat: np.ndarray  # mm^-1 per bin
    mu_gland: np.ndarray
    mu_calc: np.ndarray
    muscle: tuple[float, float]  # (adipose, glandular) equivalents of 1 mm of muscle
    skin: tuple[float, float]


def _equivalent(mu: np.ndarray, mu_a: np.ndarray, mu_g: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """Least-squares (alpha, beta) with mu(E) ~ alpha mu_adipose(E) + beta mu_glandular(E)."""
    w = np.sqrt(weights / weights.sum())
    coef, *_ = np.linalg.lstsq(np.column_stack([mu_a, mu_g]) * w[:, None], mu * w, rcond=None)
    return float(coef[0]), float(coef[1])


@lru_cache(maxsize=64)
def beam(kvp: float, anode: str, filter: str, detector_material: str = "selenium", detector_mm: float = 0.2) -> Beam:
    spec = physics.tube_spectrum(float(kvp), anode, filter)
    e = spec.energy_kev
    eta = 1.0 - np.exp(-physics.mu_xraydb(detector_material, e) * detector_mm)
    n_abs = spec.fluence * eta
    mu_a, mu_g = physics.mu_xraydb("adipose", e), physics.mu_xraydb("glandular", e)
    typical = n_abs * e * np.exp(-mu_a * 50.0)  # the spectrum behind a typical breast
    return Beam(spec, detector_material, float(detector_mm), n_abs, n_abs * e, mu_a, mu_g,
                physics.mu_xraydb("hydroxyapatite", e),
                _equivalent(physics.mu_xraydb("muscle", e), mu_a, mu_g, typical),
                _equivalent(physics.mu_xraydb("skin", e), mu_a, mu_g, typical))


@lru_cache(maxsize=64)
def mono_beam(kvp: float, anode: str, filter: str) -> Beam:
    """The ``spectrum`` effect switched off: one energy, the ideal mode's (the effective energy
    of the kVp and anode/filter, attenuation from the simple tables the analysis uses), on an
    ideal absorber; muscle attenuates as dense tissue, as in the ideal mode."""
    e_kev = physics.effective_energy_kev(kvp, anode, filter)
    att = physics.attenuation_at(e_kev)
    e = np.array([e_kev])
    photons = float(np.sum(physics.tube_spectrum(float(kvp), anode, filter).fluence))
    spec = physics.Spectrum(e, np.array([photons]), float(kvp), anode, filter, 0.0)
    skin_over_gland = float(physics.mu_xraydb("skin", e)[0] / physics.mu_xraydb("glandular", e)[0])
    return Beam(spec, "ideal absorber", 0.0, spec.fluence.copy(), spec.fluence * e, np.array([att.mu_fat]),
                np.array([att.mu_dt]), np.array([att.mu_calc]), (0.0, 1.0), (0.0, skin_over_gland))


@dataclass(frozen=True)
class _Table:
    step_a: float
    step_b: float
    log_s: np.ndarray  # (na, nb) float32: log absorbed energy per mm^2 per mAs
    e2: np.ndarray  # (na,) keV: sum N E^2 / sum N E along b = 0 (variance per unit signal)


def _transmission_table(b: Beam, a_max: float, b_max: float) -> _Table:
    na = int(np.ceil(a_max / _TABLE_STEP_MM)) + 2
    nb = int(np.ceil(b_max / _TABLE_STEP_MM)) + 2
    a = np.arange(na) * _TABLE_STEP_MM
    bb = np.arange(nb) * _TABLE_STEP_MM
    att = np.exp(-a[:, None, None] * b.mu_fat - bb[None, :, None] * b.mu_gland)  # (na, nb, E)
    log_s = np.log(np.maximum(att @ b.w1, 1e-300)).astype(np.float32)
    e = b.spectrum.energy_kev
    e2 = (att[:, 0] @ (b.w1 * e)) / (att[:, 0] @ b.w1)
    return _Table(_TABLE_STEP_MM, _TABLE_STEP_MM, log_s, e2.astype(np.float32))


def _bilinear(table: np.ndarray, a: np.ndarray, b: np.ndarray, step: float) -> np.ndarray:
    """Bilinear lookup of ``table`` (na, nb) at path lengths a, b (mm, >= 0), float32.

    Done in blocks of :data:`_LOOKUP_BLOCK` pixels: the nine temporaries of a block stay in cache
    and are reused, where whole-image ones would each be fresh memory (a full-size Hologic image
    spent most of its lookup faulting pages in)."""
    na, nb = table.shape
    flat = table.reshape(-1)
    out = np.empty(a.shape, np.float32)
    a1, b1, o1 = a.reshape(-1), b.reshape(-1), out.reshape(-1)
    inv = np.float32(1.0 / step)
    for start in range(0, a1.size, _LOOKUP_BLOCK):
        block = slice(start, start + _LOOKUP_BLOCK)
        fa = a1[block] * inv
        fb = b1[block] * inv
        ia = np.minimum(fa.astype(np.int32), na - 2)
        ib = np.minimum(fb.astype(np.int32), nb - 2)
        fa -= ia
        fb -= ib
        idx = ia * nb + ib
        v00 = np.take(flat, idx)
        idx += 1
        v01 = np.take(flat, idx)
        idx += nb
        v11 = np.take(flat, idx)
        idx -= 1
        v10 = np.take(flat, idx)
        v01 -= v00
        v01 *= fb
        v00 += v01  # top row
        v11 -= v10
        v11 *= fb
        v10 += v11  # bottom row
        v10 -= v00
        v10 *= fa
        np.add(v00, v10, out=o1[block])
    return out


@dataclass(frozen=True)
class RealisticExposure:
    kvp: float
    anode: str
    filter: str
    beam: Beam
    mas: float
    gain: float  # detector units per keV absorbed
    offset: float  # detector units
    heel_fraction: float
    quanta_fat: float  # absorbed quanta per pixel behind fatty compressed tissue (chest wall)
    energy_kev: float  # mean energy of the tube spectrum
    hvl_mm_al: float
    attenuation: physics.Attenuation  # effective (spectrum-weighted) mu behind the fat of the set thickness
    air_signal: float  # detector units of the unattenuated primary at the chest wall, without offset
    grid: bool = True  # taken behind the anti-scatter grid (False: a tomosynthesis projection's set-up)


def choose_technique(profile: VendorProfile, thickness_mm: float) -> tuple[str, str]:
    """Anode/filter for a compressed thickness, as the vendor's automatic exposure control picks it."""
    for up_to, anode, filt in profile.techniques:
        if thickness_mm <= up_to:
            return anode, filt
    return profile.anode, profile.filter


def choose_exposure(rng: np.random.Generator, profile: VendorProfile, thickness_mm: float, spacing: float,
                    kvp: float, spectrum: bool = True, grid: bool = True) -> RealisticExposure:
    """mAs for a target number of absorbed quanta behind fat, gain for the vendor's signal level.

    ``spectrum=False``: one energy (:func:`mono_beam`) with the vendor's default anode/filter, as
    the ideal mode. ``grid=False``: no anti-scatter grid (the primary is not attenuated by one, and
    the automatic exposure control gives fewer mAs for the same quanta)."""
    if spectrum:
        anode, filt = choose_technique(profile, thickness_mm)
        b = beam(float(kvp), anode, filt, profile.detector_material, profile.detector_mm)
    else:
        anode, filt = profile.anode, profile.filter
        b = mono_beam(float(kvp), anode, filt)
    t_fat = np.exp(-b.mu_fat * thickness_mm)
    px_area = spacing * spacing
    quanta_fat = rng.uniform(*QUANTA_FAT_PER_01MM) * (spacing / 0.1) ** 2
    per_mas = px_area * (GRID_PRIMARY_TRANSMISSION if grid else 1.0)
    mas = quanta_fat / (per_mas * float(np.sum(b.n_abs * t_fat)))
    fat_kev = mas * per_mas * float(np.sum(b.w1 * t_fat))
    air_kev = mas * per_mas * float(np.sum(b.w1))
    offset = rng.uniform(*DETECTOR_OFFSET_DU)
    max_value = 2**profile.bits_stored - 1
    fat_signal = min(rng.uniform(*profile.fat_signal), (0.85 * max_value - offset) * fat_kev / air_kev)
    gain = fat_signal / fat_kev
    w = b.w1 * t_fat  # effective mu = -d ln(signal) / d t at the fatty reference
    att = physics.Attenuation(*(float(np.sum(w * mu) / np.sum(w)) for mu in (b.mu_fat, b.mu_gland, b.mu_calc)),
                              energy_kev=b.spectrum.mean_energy_kev)
    return RealisticExposure(float(kvp), anode, filt, b, round(float(mas), 1), float(gain), float(offset),
                             float(rng.uniform(*HEEL_FRACTION)), float(quanta_fat), b.spectrum.mean_energy_kev,
                             b.spectrum.hvl1_mm_al, att, float(gain * air_kev), bool(grid))


def _middle(geo: BreastGeometry) -> np.ndarray:
    """The middle of the compressed breast: the deepest fifth of its distance to the skin."""
    compressed = geo.breast_map == COMPRESSED
    deepest = geo.skin_distance_mm.max(where=compressed, initial=0.0)
    if not deepest > 0:
        return geo.inside
    middle = geo.skin_distance_mm >= 0.8 * deepest
    middle &= compressed
    return middle


def homogeneous_primary(b: Beam, thickness_mm: np.ndarray, glandular_fraction: float) -> np.ndarray:
    """Transmission (energy absorbed, relative to the open beam) behind a homogeneous breast of
    ``thickness_mm`` with the tissue mixed to one ``glandular_fraction`` throughout: the kind of
    breast the published SPRs are measured on."""
    t = np.asarray(thickness_mm, np.float64)
    knots = np.linspace(0.0, float(t.max(initial=0.0)) + 1e-6, 256)
    g = float(np.clip(glandular_fraction, 0.0, 1.0))
    line = knots[:, None] * ((1.0 - g) * b.mu_fat + g * b.mu_gland)
    return np.interp(t, knots, np.exp(-line) @ b.w1 / b.w1.sum()).astype(np.float32)


def _spread(src: np.ndarray, h0_mm: float, spacing_mm: float) -> np.ndarray:
    """``src`` convolved with the scatter kernel (:data:`SCATTER_KERNEL`) of a breast ``h0_mm`` thick."""
    out = np.zeros_like(src)
    for sigma_h, weight in SCATTER_KERNEL:
        out += weight * ndimage.gaussian_filter(src, sigma_h * h0_mm / spacing_mm, mode="constant", truncate=3.0)
    return out


def scatter_field(primary: np.ndarray, geo: BreastGeometry, grid: Grid, b: Beam, glandular_fraction: float,
                  heel: np.ndarray | None = None, anti_scatter_grid: bool = True) -> np.ndarray:
    """Scatter behind the anti-scatter grid (same units as ``primary``; without one when
    ``anti_scatter_grid`` is False): SPR(H) x primary, sourced in the breast only and spread by a
    broad kernel, on a coarse grid.

    Each column of tissue scatters in proportion to the primary it passes (the convolution model
    of Boone & Cooper, Med Phys 27:1818, 2000, with the column taken as a slab of its own
    thickness). The kernel's amplitude is physics, not anatomy: it is set so that a *homogeneous*
    breast of this outline, thickness and overall ``glandular_fraction`` (:func:`homogeneous_primary`,
    the heel included) has the published SPR(H0) in the middle of its compressed part: the
    published values are measured on homogeneous breasts and depend little on their
    composition. Where this breast's tissue is denser than its mean (less primary) the ratio
    rises, where it is fattier it falls; towards the skin line less tissue scatters and the
    ratio falls. (The phantom used to set the amplitude on the image's own S/P in its middle, so
    dense tissue there scaled the scatter of the whole breast down: docs/design-log/breast_region.md.)"""
    f = max(1, int(round(SCATTER_GRID_MM / grid.spacing)))
    h = geo.thickness_mm[::f, ::f]
    weight = (physics.scatter_to_primary_ratio(h, anti_scatter_grid) * geo.inside[::f, ::f]).astype(np.float32)
    reference = homogeneous_primary(b, h, glandular_fraction)
    if heel is not None:
        reference *= heel[::f].astype(np.float32)[None, :]
    spacing = grid.spacing * f
    out = _spread(primary[::f, ::f] * weight, geo.compressed_thickness_mm, spacing)
    middle = _middle(geo)[::f, ::f]
    if middle.any():
        homogeneous = _spread(reference * weight, geo.compressed_thickness_mm, spacing)
        out *= float(physics.scatter_to_primary_ratio(geo.compressed_thickness_mm, anti_scatter_grid)) / float(
            np.median(homogeneous[middle] / reference[middle]))
    return grid.upsample(out, Grid(out.shape, spacing))


def _mlo_extras(rng: np.random.Generator, grid: Grid, geo: BreastGeometry, skin_mm: float) -> dict:
    """Paddle rim and abdominal fold of an MLO view: outside the breast's truth (they are not
    breast), in the image. Returns full-size paths (mm) that are present, and their parameters."""
    out: dict = {}
    h_mm, w_mm = grid.extent_mm
    if rng.random() < MLO_PADDLE_EDGE_P:
        # the rim crosses the whole field near the top, tilted up to 10 degrees from the horizontal
        y0, tilt, rim = rng.uniform(0.08, 0.25) * h_mm, rng.uniform(-0.17, 0.17), rng.uniform(*PADDLE_RIM_MM)
        y, x = grid.axes_mm()
        d = np.abs(y[:, None] - (y0 + tilt * x[None, :]))
        path = np.zeros(grid.shape, np.float32)
        path[d < 0.5] = rim
        out["paddle"] = gaussian_blur(path, 0.1 / grid.spacing)
        out["paddle_edge"] = dict(row_mm=float(y0), slope=float(tilt), polycarbonate_mm=float(rim))
    if rng.random() < MLO_ABDOMEN_FOLD_P:
        # a dome of fat under skin below the inframammary fold, at the bottom of the chest wall
        ry, rx, top = rng.uniform(15, 35), rng.uniform(25, 60), rng.uniform(15, 35)
        cy = h_mm + rng.uniform(0.0, 0.5) * ry
        y, x = grid.axes_mm()
        # only the rows and columns the dome reaches (rho < 1) are computed: it is a corner of the field
        rows, cols = slice(int(np.searchsorted(y, cy - ry)), None), slice(0, int(np.searchsorted(x, rx)))
        rho2 = ((y[rows, None] - cy) / ry) ** 2 + (x[None, cols] / rx) ** 2
        part = top * np.sqrt(np.clip(1.0 - rho2, 0.0, None))
        part[geo.inside[rows, cols]] = 0.0
        dome, skin = np.zeros(grid.shape, np.float32), np.zeros(grid.shape, np.float32)
        skin[rows, cols] = np.minimum(part, np.float32(2 * skin_mm))
        dome[rows, cols] = part - skin[rows, cols]
        out["fold_fat"], out["fold_skin"] = dome, skin
        out["abdomen_fold"] = dict(centre_row_mm=float(cy), radii_mm=(float(ry), float(rx)), thickness_mm=float(top))
    return out


def _gain_profile(rng: np.random.Generator, n: int, spacing: float) -> np.ndarray:
    """1 + a smooth random gain profile along one detector axis (FLAT_FIELD_RMS / sqrt 2 RMS):
    what a flat-field correction leaves of the row and column (gate and readout line) gains."""
    wiggle = ndimage.gaussian_filter1d(rng.standard_normal(n), 10.0 / spacing, mode="wrap")
    wiggle *= FLAT_FIELD_RMS / np.sqrt(2.0) / max(float(wiggle.std()), 1e-12)
    return (1.0 + wiggle).astype(np.float32)


def form_image(noise: np.ndarray, rng: np.random.Generator, exposure: RealisticExposure, profile: VendorProfile,
               grid: Grid, geo: BreastGeometry, h_dt: np.ndarray, h_calc: np.ndarray, h_muscle: np.ndarray,
               h_skin: np.ndarray | None, skin_mm: float = 1.45,
               effects: Effects = Effects(), h_implant: np.ndarray | None = None,
               implant_material: str = "silicone") -> tuple[np.ndarray, dict]:
    """Raw detector image as stored (uint16) and a record of the physics (SPR, heel, ...).

    ``noise`` is a standard normal field of the image's shape (drawn by the caller, so the ideal
    and realistic modes consume the same random numbers and share the annotation). ``effects``
    switches scatter, heel and the vendor's extras (skin: ``h_skin`` None, offset, flat-field,
    MLO paddle rim and abdominal fold); the random draws are made whether an effect is on or
    not, so an effect looks the same alone as with the others. ``h_implant`` (mm of
    ``implant_material`` along the beam, :mod:`monai_bac.phantom.implant`) displaces fat: its pixels,
    as those with calcium, are summed over the spectrum exactly."""
    b = exposure.beam
    extras = _mlo_extras(rng, grid, geo, skin_mm) if geo.params["view"] == "MLO" else {}
    if not effects.vendor:
        extras = {}
    if h_skin is None:
        h_skin = np.zeros(grid.shape, np.float32)
    # the bounding box of the breast (and abdomen): outside it every pixel sees the open beam
    body = geo.inside | (extras["fold_fat"] > 0) if "fold_fat" in extras else geo.inside
    rows, cols = np.flatnonzero(body.any(1)), np.flatnonzero(body.any(0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)) if len(rows) else (slice(0, 0), slice(0, 0))
    thick, dt, muscle, calc_mm, skin = (m[box] for m in (geo.thickness_mm, h_dt, h_muscle, h_calc, h_skin))
    implant = None if h_implant is None else h_implant[box]
    t_fat = thick - dt
    for m in (muscle, calc_mm, skin) + (() if implant is None else (implant,)):
        t_fat -= m
    np.maximum(t_fat, 0.0, out=t_fat)
    if "fold_fat" in extras:
        t_fat += extras["fold_fat"][box]
        skin = skin + extras["fold_skin"][box]
    (am, bm), (as_, bs) = b.muscle, b.skin
    a_path, b_path = t_fat, dt + np.float32(bm) * muscle
    a_path += np.float32(am) * muscle
    for path, k in ((a_path, as_), (b_path, bs)):
        path += np.float32(k) * skin
    np.maximum(a_path, 0.0, out=a_path)
    np.maximum(b_path, 0.0, out=b_path)
    table = _transmission_table(b, float(a_path.max(initial=0.0)), float(b_path.max(initial=0.0)))
    log_s = np.full(grid.shape, table.log_s[0, 0], np.float32)
    log_box = _bilinear(table.log_s, a_path, b_path, table.step_a)
    calc = np.flatnonzero(calc_mm if implant is None else (calc_mm > 0) | (implant > 0))
    flat_a, flat_b, flat_c, flat_s = a_path.reshape(-1), b_path.reshape(-1), calc_mm.reshape(-1), log_box.reshape(-1)
    if implant is not None:
        flat_i, mu_implant = implant.reshape(-1), physics.mu_xraydb(implant_material, b.spectrum.energy_kev)
    for chunk in np.array_split(calc, max(1, len(calc) // 20000)):  # calcium, implant: exact spectral sum
        if len(chunk):
            line = (flat_a[chunk, None] * b.mu_fat + flat_b[chunk, None] * b.mu_gland
                    + flat_c[chunk, None] * b.mu_calc)
            if implant is not None:
                line += flat_i[chunk, None] * mu_implant
            flat_s[chunk] = np.log(np.maximum(np.exp(-line) @ b.w1, 1e-300))
    log_s[box] = log_box
    # variance per unit signal (keV), smooth in the adipose path: a cubic through the table
    e2_poly = np.polynomial.Polynomial.fit(np.arange(len(table.e2)) * table.step_a, table.e2, 3).convert()
    e2 = np.full(grid.shape, table.e2[0], np.float32)
    c0, c1, c2, c3 = (np.float32(c) for c in e2_poly.coef)
    e2_box = c3 * a_path  # Horner, in place: ((c3 a + c2) a + c1) a + c0
    for c in (c2, c1):
        e2_box += c
        e2_box *= a_path
    e2_box += c0
    e2[box] = e2_box
    del e2_box

    # heel effect: cathode at the chest wall (column 0 of the canonical frame)
    x = grid.axes_mm()[1]
    heel_fraction = exposure.heel_fraction if effects.heel else 0.0
    heel = np.clip(1.0 - heel_fraction * x / geo.params["a_mm"], 1.0 - 2 * heel_fraction, 1.0)
    primary = np.exp(log_s, out=log_s)
    primary *= np.float32(exposure.mas * grid.spacing**2 * (GRID_PRIMARY_TRANSMISSION if exposure.grid else 1.0))
    if effects.heel:
        primary *= heel.astype(np.float32)[None, :]
    if "paddle" in extras:  # the rim's transmission at the open beam's effective attenuation
        mu_pc = float(np.sum(b.w1 * physics.mu_xraydb("polycarbonate", b.spectrum.energy_kev)) / np.sum(b.w1))
        primary *= np.exp(-mu_pc * extras["paddle"])
    if effects.scatter:
        glandular = float(dt.sum(dtype=np.float64) / max(float(thick.sum(dtype=np.float64)), 1e-9))
        scatter = scatter_field(primary, geo, grid, b, glandular, heel if effects.heel else None, exposure.grid)
        middle = _middle(geo)
        spr_measured = float(np.median(scatter[middle] / primary[middle]))
        edge = geo.inside & (geo.skin_distance_mm < 0.5 * geo.periphery_width_mm)
        spr_edge = float(np.median(scatter[edge] / primary[edge])) if edge.any() else float("nan")
        total = primary + scatter  # keV absorbed per pixel
    else:
        spr_measured = spr_edge = 0.0
        total = primary
    total = gaussian_blur(total, PSF_SIGMA_MM / grid.spacing)
    row_gain, col_gain = (_gain_profile(rng, n, grid.spacing) for n in grid.shape)
    offset = exposure.offset
    if not effects.vendor:
        row_gain[:], col_gain[:], offset = 1.0, 1.0, 0.0

    g = np.float32(exposure.gain)
    sd = np.multiply(total, e2, out=e2)  # quantum (Swank) + electronic: sqrt(total e2 g^2 + sigma_e^2)
    sd *= g * g
    sd += np.float32(ELECTRONIC_NOISE**2)
    np.sqrt(sd, out=sd)
    signal = total * g
    if effects.vendor:
        signal *= row_gain[:, None]
        signal *= col_gain[None, :]
        signal += np.float32(offset)
    noise *= sd
    signal += noise
    max_value = 2**profile.bits_stored - 1
    np.clip(np.rint(signal, out=signal), 0, max_value, out=signal)
    if profile.photometric == "MONOCHROME1":
        signal = max_value - signal
    record = dict(
        physics="realistic", anode=exposure.anode, filter=exposure.filter,
        filter_mm=b.spectrum.filter_mm, hvl_mm_al=exposure.hvl_mm_al, mas=exposure.mas,
        detector=f"{b.detector_material} {b.detector_mm} mm", detector_offset=offset,
        anti_scatter_grid=exposure.grid,
        grid_primary_transmission=GRID_PRIMARY_TRANSMISSION if exposure.grid else 1.0, heel_fraction=heel_fraction,
        flat_field_rms=FLAT_FIELD_RMS if effects.vendor else 0.0,
        spr_model=(float(physics.scatter_to_primary_ratio(geo.compressed_thickness_mm, exposure.grid))
                   if effects.scatter else 0.0),
        spr_measured=spr_measured, spr_near_skin=spr_edge,
        paddle_edge=extras.get("paddle_edge"), abdomen_fold=extras.get("abdomen_fold"),
    )
    return signal.astype(np.uint16), record

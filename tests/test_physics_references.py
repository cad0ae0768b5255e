"""monai_bac.physics against the field's own libraries: SpekPy (spectra) and xraydb (attenuation)."""

import numpy as np
import pytest
import spekpy
import xraydb

from monai_bac import physics

ENERGIES_KEV = (15.0, 20.0, 28.0)


@pytest.mark.parametrize("anode,filt,filter_mm,kvp", [("W", "Rh", 0.05, 29.0), ("Mo", "Mo", 0.03, 27.0)])
def test_spectrum_mean_energy_and_hvl_match_spekpy(anode, filt, filter_mm, kvp):
    """Our spectrum's mean energy and first HVL (xraydb Al and air kerma) against SpekPy's own."""
    spec = physics.tube_spectrum(kvp, anode, filt)
    assert spec.filter_mm == filter_mm
    ref = spekpy.Spek(kvp=kvp, th=physics.ANODE_ANGLE_DEG, targ=anode, z=physics.SOURCE_IMAGE_DISTANCE_MM / 10,
                      dk=0.5, mu_data_source="nist")
    ref.filter("Be", physics.BE_WINDOW_MM).filter(filt, filter_mm)
    assert spec.mean_energy_kev == pytest.approx(ref.get_emean(), rel=0.01)
    assert spec.hvl1_mm_al == pytest.approx(ref.get_hvl1(), rel=0.01)
    # photons per mm^2 per mAs at the detector: SpekPy's fluence is per cm^2
    assert spec.fluence.sum() == pytest.approx(ref.get_flu() / 100.0, rel=0.01)
    # mammography beams: mean energy 15-21 keV, HVL 0.25-0.6 mm Al
    assert 15.0 < spec.mean_energy_kev < 21.0 and 0.25 < spec.hvl1_mm_al < 0.6


def test_spectra_are_cached_and_read_only():
    a = physics.tube_spectrum(28.0, "RHODIUM", "RHODIUM")
    assert physics.tube_spectrum(28.0, "RHODIUM", "RHODIUM") is a
    with pytest.raises(ValueError):
        a.fluence[0] = 0.0
    with pytest.raises(ValueError, match="anode/filter"):
        physics.tube_spectrum(28.0, "W", "Cu")


def test_vendor_spectra_order_by_k_edge():
    """Mo/Mo is the softest beam, W/Ag the hardest, at the same kVp (K-edge filtering)."""
    e = {pair: physics.tube_spectrum(29.0, *pair).mean_energy_kev
         for pair in [("Mo", "Mo"), ("Rh", "Rh"), ("W", "Rh"), ("W", "Ag")]}
    assert e[("Mo", "Mo")] < e[("Rh", "Rh")] < e[("W", "Ag")]
    assert e[("W", "Rh")] < e[("W", "Ag")]


@pytest.mark.parametrize("material", ["adipose", "glandular"])
def test_tissue_attenuation_matches_xraydb(material):
    """Hammerstein 1979 mass fractions mixed from xraydb's elements (mu_elam) against xraydb's
    material_mu on the equivalent atomic formula, and against an independent hand sum."""
    fractions, rho = physics.COMPOSITIONS[material]
    atoms = {el: w / xraydb.atomic_mass(el) for el, w in fractions.items()}
    formula = "".join(f"{el}{n / min(atoms.values()):.6f}" for el, n in atoms.items())
    for e in ENERGIES_KEV:
        ours = physics.mu_xraydb(material, e)
        ref = xraydb.material_mu(formula, e * 1000, density=rho) / 10.0
        assert ours == pytest.approx(ref, rel=0.01)
    # adipose attenuates less than glandular tissue, both fall with energy
    mu = physics.mu_xraydb(material, np.array(ENERGIES_KEV))
    assert np.all(np.diff(mu) < 0)


def test_hydroxyapatite_matches_xraydb_and_the_paper():
    for e in ENERGIES_KEV:
        ref = xraydb.material_mu("Ca10(PO4)6(OH)2", e * 1000, density=3.16) / 10.0
        assert physics.mu_xraydb("calcification", e) == pytest.approx(ref, rel=0.01)
    # the paper's 18 keV mu_calc = 26.1 cm^-1 is hydroxyapatite-like: within 15 %
    assert physics.mu_xraydb("hydroxyapatite", 18.0) == pytest.approx(2.61, rel=0.15)
    assert physics.mu_xraydb("glandular", 18.0) == pytest.approx(0.1028, rel=0.05)


def test_tables_are_checked_against_xraydb():
    """The simple default tables (analysis and ideal phantom) against xraydb: < 1 % for adipose
    and hydroxyapatite over 15-30 keV and for glandular tissue up to 22 keV; glandular above
    differs by < 2 % (Woodard 1.06 g/cm^3 in the table, Hammerstein 1.04 in xraydb)."""
    for e in (15.0, 17.5, 20.0, 22.0, 25.0, 28.0, 30.0):
        for mat in ("adipose", "hydroxyapatite"):
            assert physics.linear_attenuation(mat, e) == pytest.approx(physics.mu_xraydb(mat, e), rel=0.01)
        tol = 0.01 if e <= 22.0 else 0.02
        assert physics.linear_attenuation("glandular", e) == pytest.approx(physics.mu_xraydb("glandular", e), rel=tol)


def test_simple_effective_energy_is_within_a_kev_of_spekpy():
    """effective_energy_kev (the documented simple model) against SpekPy's mean energies."""
    for anode, filt, kvp in [("TUNGSTEN", "RHODIUM", 30), ("TUNGSTEN", "SILVER", 30), ("MOLYBDENUM", "MOLYBDENUM", 28),
                             ("RHODIUM", "RHODIUM", 29)]:
        assert physics.effective_energy_kev(kvp, anode, filt) == pytest.approx(
            physics.tube_spectrum(kvp, anode, filt).mean_energy_kev, abs=1.0)


@pytest.mark.parametrize("thickness,low,high", [(30.0, 0.1, 0.2), (50.0, 0.17, 0.3), (70.0, 0.25, 0.4)])
def test_scatter_to_primary_behind_a_grid_is_in_the_published_range(thickness, low, high):
    spr = float(physics.scatter_to_primary_ratio(thickness))
    assert low <= spr <= high
    assert physics.scatter_to_primary_ratio(thickness, grid=False) > 2 * spr
    with pytest.raises(ValueError, match="thickness_mm"):
        physics.scatter_to_primary_ratio(-1.0)

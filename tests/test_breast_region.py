"""BreastRegion: the breast map (0 background, 1 periphery, 2 compressed, 3 pectoral) of a raw
mammogram, checked against the phantom's ground truth on small phantoms (0.5 mm pixels)."""

import numpy as np
import pytest
from scipy import ndimage

from monai_bac.units import SpacingError
import torch
from monai.data import MetaTensor

from monai_bac.ops.breast_region import (
    analyse_breast_region,
    breast_region_map,
    chest_wall_side,
    edge_profile,
    periphery_width,
)
from monai_bac.phantom import make_phantom
from monai_bac.transforms.breast_region import BreastRegion, BreastRegiond

SPACING = 0.5  # mm: full field of view at 570 x 479 pixels


def dice(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else 2.0 * (a & b).sum() / s


_CACHE = {}


def phantom(seed, view, laterality, vendor="HOLOGIC", spacing=SPACING):
    key = (seed, view, laterality, vendor, spacing)
    if key not in _CACHE:
        _CACHE[key] = make_phantom(seed, view=view, laterality=laterality, vendor=vendor, spacing_mm=spacing,
                                   physics="ideal")  # pinned: the cohort default may become realistic
    return _CACHE[key]


def as_meta_tensor(ph, **meta):
    m = dict(ph.meta)
    m.update(meta)
    return MetaTensor(torch.from_numpy(ph.linear[None].copy()), meta=m)


# ----------------------------------------------------------------------------- accuracy
@pytest.mark.parametrize(
    "seed,view,laterality,vendor",
    [(1, "CC", "L", "HOLOGIC"), (2, "CC", "R", "GE"), (3, "MLO", "L", "GE"), (4, "MLO", "R", "HOLOGIC")],
)
def test_map_matches_phantom_truth(seed, view, laterality, vendor):
    ph = phantom(seed, view, laterality, vendor)
    res = analyse_breast_region(ph.linear, ph.meta["spacing_mm"], view)
    m, truth = res.breast_map, ph.breast_map
    assert m.dtype == np.uint8 and m.shape == truth.shape
    assert set(np.unique(m)) <= {0, 1, 2, 3}
    assert dice(m > 0, truth > 0) >= 0.97
    assert dice(m == 2, truth == 2) >= 0.9
    if view == "MLO":
        assert res.pectoral is not None
        assert dice(m == 3, truth == 3) >= 0.85
    else:
        assert not (m == 3).any()
    assert res.chest_wall == ("left" if laterality == "L" else "right")
    # the periphery width is a physical length: close to the phantom's
    assert res.periphery_width_mm == pytest.approx(ph.record["periphery_width_mm"], abs=1.5)


def test_laterality_tag_is_not_trusted_and_mirror_gives_mirror():
    ph = phantom(3, "MLO", "L", "GE")
    bmap = BreastRegion()(as_meta_tensor(ph, laterality="R"))  # wrong tag on purpose
    assert dice(bmap[0].numpy() == 3, ph.breast_map == 3) >= 0.85
    # the scatter step (the thickness is in the metadata) is mirrored with the image as well
    mirrored = breast_region_map(ph.linear[:, ::-1], SPACING, "MLO", thickness_mm=ph.meta["thickness_mm"])
    assert np.array_equal(mirrored[:, ::-1], bmap[0].numpy())


def test_unknown_view_finds_pectoral_in_mlo_only():
    mlo, cc = phantom(3, "MLO", "L", "GE"), phantom(1, "CC", "L", "HOLOGIC")
    m_mlo = breast_region_map(mlo.linear, SPACING, view=None)
    m_cc = breast_region_map(cc.linear, SPACING, view=None)
    assert dice(m_mlo == 3, mlo.breast_map == 3) >= 0.85
    assert not (m_cc == 3).any()
    assert dice(m_cc > 0, cc.breast_map > 0) >= 0.97


def test_resolution_independent():
    """Thresholds are physical: the same breast at 0.4 and 0.5 mm gives the same geometry."""
    a, b = phantom(7, "CC", "R", spacing=0.4), phantom(7, "CC", "R", spacing=0.5)
    ra = analyse_breast_region(a.linear, 0.4, "CC")
    rb = analyse_breast_region(b.linear, 0.5, "CC")
    assert ra.periphery_width_mm == pytest.approx(rb.periphery_width_mm, abs=1.0)
    area_a = (ra.breast_map == 2).sum() * 0.4**2
    area_b = (rb.breast_map == 2).sum() * 0.5**2
    assert area_a == pytest.approx(area_b, rel=0.03)


def test_anisotropic_spacing():
    ph = phantom(5, "MLO", "R", "HOLOGIC", spacing=0.25)
    img, truth = ph.linear[::2, ::1], ph.breast_map[::2, ::1]  # rows 0.5 mm, columns 0.25 mm
    m = breast_region_map(img, (0.5, 0.25), "MLO")
    assert dice(m > 0, truth > 0) >= 0.97
    assert dice(m == 2, truth == 2) >= 0.9
    assert dice(m == 3, truth == 3) >= 0.85


# ------------------------------------------------------------- realistic x-ray physics (issue 13)
REALISTIC_SPACING = 0.4  # mm: the realistic phantom at 712 x 598 pixels


def realistic(seed, view, laterality, vendor, thickness_mm):
    key = ("realistic", seed, view, laterality, vendor, thickness_mm)
    if key not in _CACHE:
        _CACHE[key] = make_phantom(seed, view=view, laterality=laterality, vendor=vendor, physics="realistic",
                                   spacing_mm=REALISTIC_SPACING, thickness_mm=thickness_mm)
    return _CACHE[key]


@pytest.mark.parametrize(
    "seed,view,laterality,vendor,thickness_mm",
    [(0, "CC", "L", "HOLOGIC", 30.0), (6, "CC", "R", "GE", 74.0), (7, "MLO", "R", "GE", 31.0),
     (9, "MLO", "L", "SIEMENS", 46.0)],
)
def test_realistic_map_meets_targets(seed, view, laterality, vendor, thickness_mm):
    """Scatter behind the grid, heel effect, skin, detector offset and flat field, and in MLO the
    paddle rim and abdominal fold: breast Dice >= 0.98, compressed >= 0.90, pectoral >= 0.85."""
    ph = realistic(seed, view, laterality, vendor, thickness_mm)
    m, truth = breast_region_map(ph.linear, REALISTIC_SPACING, view, thickness_mm=thickness_mm), ph.breast_map
    assert dice(m > 0, truth > 0) >= 0.98
    assert dice(m == 2, truth == 2) >= 0.9
    if view == "MLO":
        assert dice(m == 3, truth == 3) >= 0.85


@pytest.mark.parametrize("case", [(7103, "L", "GE", 77.0), (7014, "L", "SIEMENS", 80.0)], ids=["own-plateau", "own-shape"])
def test_thick_mlo_with_varying_rim_keeps_its_compressed_region(case):
    """Thick MLOs whose rim width varies round the outline (realistic phantom, own seeds). The
    global envelope follows the widest part of the rim and its plateau is too deep, so sectors
    fitted with the global plateau came out too wide. 7103 (77 mm): a sector keeps its own
    plateau and shape when that plateau is higher, bounded by the global width (compressed Dice
    0.80 before, 0.925). 7014 (80 mm): sectors finding the same fat plateau as the global fit
    (A = mu_fat H0 is one number for the breast) fit their own edge shape with it instead of the
    global shape (0.892 before, 0.916)."""
    seed, laterality, vendor, thickness = case
    ph = realistic(seed, "MLO", laterality, vendor, thickness)
    m, truth = breast_region_map(ph.linear, REALISTIC_SPACING, "MLO", thickness_mm=thickness), ph.breast_map
    assert dice(m > 0, truth > 0) >= 0.98
    assert dice(m == 2, truth == 2) >= 0.90
    assert dice(m == 3, truth == 3) >= 0.85


def test_sector_beside_the_muscle_takes_its_fitted_neighbours_width():
    """A 74 mm MLO (realistic phantom, calibration seed 7031): the sectors beside the pectoral
    muscle hold too little of the fall-off to fit and took the global width, which follows the
    widest part of the rim (78 mm against 42-59 mm fitted round the outline): the compressed
    tissue along the muscle was called periphery (compressed Dice 0.843). They now take the width
    of their fitted neighbouring sectors (0.921). With the scatter step and the 97th-percentile
    envelope the global fit is no longer the 78 mm tail (57 mm), and two sectors next to the
    muscle come out ~10 mm too wide instead: 0.856 at this 0.4 mm pitch (0.905 at full size,
    calib_31): a case the scatter step made worse, pinned so that it gets no worse unnoticed.
    The scatter source's skin-line fix (a cell straddling the skin line no longer counts the
    direct exposure as scattering tissue) moved it to 0.849 (full size 0.899), while the 144
    full-size images of the holdout, final and novel sets moved +0.002 on average
    (docs/design-log/breast_region.md): the pin follows, 0.84. Overlapping sector windows (two per
    sector angle, tenth session): 0.867 here; the windows beside the muscle take their fitted
    neighbours' 49 mm. Windows fitted on one width each and the 4 % width margin (nineteenth session; 263 thick
    development images: 22 -> 13 under 0.90) take it down again: 0.841 here (full size, calib_31,
    0.944 -> 0.918); the pin follows, 0.83."""
    ph = realistic(7031, "MLO", "R", "GE", 73.6)
    res = analyse_breast_region(ph.linear, REALISTIC_SPACING, "MLO", thickness_mm=73.6)
    m, truth = res.breast_map, ph.breast_map
    assert dice(m == 2, truth == 2) >= 0.83
    # the windows of the sector beside the muscle are not given the global width
    assert res.sector_widths_mm.size == 16
    assert res.sector_widths_mm[:2].max() < 0.9 * res.periphery_width_mm
    assert dice(m == 3, truth == 3) >= 0.85


def test_overlapping_sector_windows_follow_a_rim_varying_round_the_outline():
    """A 73 mm MLO whose rim width varies round the outline (realistic phantom, calibration seed
    7015). Eight disjoint sectors sample the width every 22.5 degrees, and between their centres
    the width is interpolated: with the true width of each sector the compressed region of the
    thick breasts that missed 0.90 reads only 0.90-0.97 (tenth session, docs/design-log/breast_region.md).
    Windows as wide as a sector but centred twice as often (``sector_overlap=2``) fit the same
    number of pixels each and follow the width between: 0.932 -> 0.952 here without the later
    alignment of each window's pixels and the width margin (0.960 until windows with a deeper
    plateau fitted their own edge shape, twenty-second session), 0.936 -> 0.958 with them. With the
    phantom's scatter amplitude set on a homogeneous breast (twenty-third session) 0.928 -> 0.963
    and 0.932 -> 0.954."""
    ph = realistic(7015, "MLO", "R", "HOLOGIC", 72.6)
    truth = ph.breast_map == 2
    before = dict(align_windows=False, width_margin=0.0)
    disjoint = analyse_breast_region(ph.linear, REALISTIC_SPACING, "MLO", thickness_mm=72.6, sector_overlap=1,
                                     **before)
    windows = analyse_breast_region(ph.linear, REALISTIC_SPACING, "MLO", thickness_mm=72.6, **before)
    assert disjoint.sector_widths_mm.size == 8 and windows.sector_widths_mm.size == 16
    assert dice(windows.breast_map == 2, truth) >= 0.95
    assert dice(windows.breast_map == 2, truth) > dice(disjoint.breast_map == 2, truth) + 0.015
    now = analyse_breast_region(ph.linear, REALISTIC_SPACING, "MLO", thickness_mm=72.6)
    disjoint_now = analyse_breast_region(ph.linear, REALISTIC_SPACING, "MLO", thickness_mm=72.6, sector_overlap=1)
    assert dice(now.breast_map == 2, truth) >= 0.95
    assert dice(now.breast_map == 2, truth) > dice(disjoint_now.breast_map == 2, truth) + 0.02
    one = analyse_breast_region(ph.linear, REALISTIC_SPACING, "MLO", thickness_mm=72.6, n_sectors=1)
    assert one.sector_widths_mm.size == 1
    with pytest.raises(ValueError, match="sector_overlap"):
        analyse_breast_region(ph.linear, REALISTIC_SPACING, "MLO", sector_overlap=0)


def test_a_dense_centre_does_not_drag_the_fat_plateau():
    """A 74 mm HOLOGIC MLO at its own 0.07 mm pitch (realistic phantom, seed 25026: blind_26 of
    the blind set, where it was found) whose compressed region is dense nearly everywhere. The
    global envelope's deep bins then hold no fat: the global fit took the dense level for the fat
    plateau (0.5 ln units, ~10 mm of fat, below the windows that see fat) and a 99 mm periphery,
    and every window with the dense centre fell back to it (compressed Dice 0.58). The fat plateau
    is one number for the breast: when the global one lies more than 0.1 ln units below the
    second shallowest window's (the third since the nineteenth session: neighbouring windows share
    pixels), that window plateau is the breast's and the global width is
    refitted on it (0.89); the windows, whose fall-off test and width bound read the global width,
    are refitted with it (0.93). On the 456 images of the other realistic sets the rule never fires."""
    ph = make_phantom(25026, view="MLO", laterality="L", vendor="HOLOGIC", thickness_mm=73.6, spacing_mm=None,
                      physics="realistic")
    truth = ph.breast_map == 2
    dragged = analyse_breast_region(ph.linear, ph.meta["spacing_mm"], "MLO", thickness_mm=73.6,
                                    global_plateau_tolerance=np.inf)
    res = analyse_breast_region(ph.linear, ph.meta["spacing_mm"], "MLO", thickness_mm=73.6)
    assert dragged.periphery_width_mm > 90.0 and dice(dragged.breast_map == 2, truth) < 0.7
    assert res.periphery_width_mm < 75.0
    assert res.plateau_level > dragged.plateau_level + 0.3
    assert dice(res.breast_map == 2, truth) >= 0.92
    assert dice(res.breast_map == 3, ph.breast_map == 3) >= 0.85


def test_windows_that_never_reach_their_plateau_do_not_vote_for_the_fat_plateau():
    """A 78 mm SIEMENS MLO at its own 0.085 mm pitch (realistic phantom, seed 35142: ledger_142 of
    the ledger set, where it was found) whose periphery is 50-70 mm wide. The two windows at the
    bottom (one stretch of the outline: the windows overlap) never reach the plateau within their
    width bound; their fits ran into the bound with the amplitude of wherever the fall-off had got
    to, 1.7 ln units above the fat plateau of every other window, and as the two shallowest
    "plateaus" they made the dense-centre guard replace the breast's plateau: a 34 mm global
    width, windows clipped to 17 mm, compressed Dice 0.55 and DensityMap reading H0 over a
    periphery half that thick (VBD 43.5 % for 17.0 %). A window whose width ran into its bound
    has not seen its plateau and no longer votes; the guard does not fire here (the map is the
    one without the guard), and still does on a dense centre (the test above)."""
    ph = make_phantom(35142, view="MLO", laterality="L", vendor="SIEMENS", thickness_mm=78.4, spacing_mm=None,
                      physics="realistic")
    truth = ph.breast_map == 2
    res = analyse_breast_region(ph.linear, ph.meta["spacing_mm"], "MLO", thickness_mm=78.4)
    unguarded = analyse_breast_region(ph.linear, ph.meta["spacing_mm"], "MLO", thickness_mm=78.4,
                                      global_plateau_tolerance=np.inf)
    assert np.array_equal(res.breast_map, unguarded.breast_map)
    # the truth's base width is 53 mm, its windows' 37-70 mm; with its abdominal fold (18 mm thick)
    # kept as breast until the thin-fold cut, the global fit read 52.5 mm, compressed Dice 0.89
    assert 45.0 < res.periphery_width_mm < 65.0
    assert res.sector_widths_mm.min() > 30.0
    assert dice(res.breast_map > 0, ph.breast_map > 0) >= 0.995
    assert dice(res.breast_map == 2, truth) >= 0.90
    assert dice(res.breast_map == 3, ph.breast_map == 3) >= 0.85


def test_windows_whose_fall_off_runs_to_their_deepest_pixels_do_not_vote():
    """A 77 mm GE CC at its own 0.1 mm pitch (realistic phantom, seed 43185: accord_185 of the accord
    set, its worst image), a fatty breast (VBD 1.7 %) whose rim is 43-66 mm wide round the outline.
    Its nipple windows never reach H0: their envelopes still fall at their deepest pixels. Two of
    them, whose envelopes end 4-9 mm beyond their fitted widths, fitted "plateaus" 0.14-0.18 ln units
    shallower than the global one and, with a third window, fired the dense-centre test: global
    width 65 -> 48 mm, every window bounded to 52 mm, compressed Dice 0.68. A window now votes only
    when its envelope reaches ``min_plateau_mm`` (10 mm) beyond its fitted width
    (``EdgeFit.reach_mm``): the test stays off, 0.88 (the dense centre of blind_26, the test above,
    is still found: its voters' envelopes reach 34-59 mm beyond theirs). Twenty-second session; no
    compressed Dice of the 922 development images changes."""
    ph = make_phantom(43185, view="CC", laterality="R", vendor="GE", thickness_mm=76.9, spacing_mm=None,
                      physics="realistic")
    truth = ph.breast_map == 2

    def run(**kw):
        return analyse_breast_region(ph.linear, ph.meta["spacing_mm"], "CC", thickness_mm=76.9, **kw)

    res, voted = run(), run(min_plateau_mm=0.0)
    assert voted.periphery_width_mm < 50.0 and dice(voted.breast_map == 2, truth) < 0.75
    assert res.periphery_width_mm > 60.0 and dice(res.breast_map == 2, truth) >= 0.87
    assert np.array_equal(res.breast_map, run(global_plateau_tolerance=np.inf).breast_map)
    with pytest.raises(ValueError, match="min_plateau_mm"):
        run(min_plateau_mm=-1.0)


def test_each_window_is_fitted_on_one_width():
    """A 78 mm SIEMENS CC at its own 0.085 mm pitch (realistic phantom, seed 36152: roster_152 of the
    roster set, its worst image) whose periphery widens from ~35 mm at the chest wall to ~70 mm at
    the nipple. Three things kept its compressed Dice at 0.79 (0.805 since the phantom's scatter
    amplitude is set on a homogeneous breast, twenty-third session):

    * the windows at the chest wall (the outline's ends) held less fall-off than a 20 mm stretch of
      outline times the global width and took their fitted neighbours' 53 mm (truth 34-45 mm);
      with 10 mm (``min_window_arc_mm``) they fit their own: 0.84. Two more windows then vote in
      the dense-centre guard, two neighbours at the nipple (sharing half their pixels) whose fall-off
      ends before the plateau; as the second shallowest they fired it (global width 69 -> 47 mm):
      the vote now takes the third shallowest, beyond one window's neighbours, and it stays off;
    * a window's envelope (97th percentile of ln P per distance) follows the widest rim within its
      22.5 degrees: windows where the width grows fastest came out 7-10 mm too wide. A second pass
      puts every pixel on its window centre's width (distance x w(centre) / w(its own angle), from
      the first pass): 0.90;
    * the width margin (4 %: what the scatter step leaves, twentieth session; read as beam
      hardening when it was made) costs this image 0.03 (0.88) and gains on most: 263 thick
      development images, 22 -> 13 under 0.90. Since the twenty-third session CC views take 8 %
      (``WIDTH_MARGIN``), which costs this image more: 0.871 (0.90 at 4 %, 0.915 at 0)."""
    ph = make_phantom(36152, view="CC", laterality="L", vendor="SIEMENS", thickness_mm=77.9, spacing_mm=None,
                      physics="realistic")
    truth = ph.breast_map == 2

    def run(**kw):
        return analyse_breast_region(ph.linear, ph.meta["spacing_mm"], "CC", thickness_mm=77.9, **kw)

    res, unaligned = run(), run(align_windows=False, width_margin=0.0)
    aligned, first = run(width_margin=0.0), run(align_windows=False, width_margin=0.0, min_window_arc_mm=20.0)
    assert dice(first.breast_map == 2, truth) < 0.82
    assert first.sector_widths_mm[-1] > 45.0 > unaligned.sector_widths_mm[-1]  # the bottom window: truth 34 mm
    assert dice(unaligned.breast_map == 2, truth) > dice(first.breast_map == 2, truth) + 0.03
    assert dice(aligned.breast_map == 2, truth) > dice(unaligned.breast_map == 2, truth) + 0.04
    assert dice(res.breast_map == 2, truth) >= 0.86
    np.testing.assert_allclose(res.sector_widths_mm, 1.08 * aligned.sector_widths_mm)  # CC's width margin
    # the dense-centre guard stays off
    assert 65.0 < res.periphery_width_mm < 75.0
    assert np.array_equal(res.breast_map, run(global_plateau_tolerance=np.inf).breast_map)


def test_a_window_with_a_deeper_plateau_fits_its_own_edge_shape():
    """A 76 mm HOLOGIC MLO with a wide rim (realistic phantom, seed 42015: covenant_15 of the
    covenant set, its worst image, here at 0.4 mm). Beside the muscle the compressed part of the
    upper windows is dense tissue whose share grows inwards: their envelope keeps falling past the
    true edge (34-43 mm from the skin line), 0.2-0.4 ln units below the global plateau. Such a
    window falls back to the global amplitude; with the global edge shape forced on it as well, it
    fitted 50-58 mm and the compressed Dice read 0.75. With its shape fitted again under the
    global amplitude (and weighed against the global shape by the shape margin, as for any window
    on the global plateau): 33-38 mm, 0.90 (twenty-second session; 462 development images of
    60-80 mm: 14 -> 10 under 0.90, MLO views 27 up / 6 down by more than 0.005)."""
    ph = realistic(42015, "MLO", "R", "HOLOGIC", 75.8)
    res = analyse_breast_region(ph.linear, REALISTIC_SPACING, "MLO", thickness_mm=75.8)
    assert dice(res.breast_map == 2, ph.breast_map == 2) >= 0.89
    upper = res.sector_widths_mm[:6]  # the top windows (the first two beside the muscle take their neighbours')
    assert upper.max() < 45.0 and upper.min() > 28.0
    assert dice(res.breast_map == 3, ph.breast_map == 3) >= 0.95


def test_scatter_is_removed_before_the_periphery_is_fitted():
    """An 80 mm CC (realistic phantom, seed 9021 = confirm_21 at 0.4 mm). Behind the grid the
    scatter-to-primary ratio rises from a few percent at the skin line to ~0.3 in the middle, a
    slow brightening towards the middle that the fit read as the fall-off ending early: the
    periphery came out too narrow and the compressed region 1.5x too large (Dice 0.80 at this
    pitch). With the compressed thickness known the published scatter estimate (the one
    DensityMap removes) is subtracted first: 0.88. Without a thickness there is no scatter step.
    (With the corrected phantom and CC's 8 % width margin, twenty-third session: 0.944 with the
    step, 0.876 and 1.28 x the true area without.)"""
    ph = realistic(9021, "CC", "R", "SIEMENS", 80.0)
    truth = ph.breast_map == 2
    with_step = analyse_breast_region(ph.linear, REALISTIC_SPACING, "CC", thickness_mm=80.0).breast_map
    without = analyse_breast_region(ph.linear, REALISTIC_SPACING, "CC").breast_map
    assert dice(with_step == 2, truth) >= 0.85
    assert dice(with_step == 2, truth) > dice(without == 2, truth) + 0.03
    assert (with_step == 2).sum() < 1.2 * truth.sum() < (without == 2).sum()
    off = analyse_breast_region(ph.linear, REALISTIC_SPACING, "CC", thickness_mm=80.0, scatter=False).breast_map
    assert np.array_equal(off, without)


def test_transform_reads_the_thickness_from_the_metadata():
    """BreastRegion takes BodyPartThickness from the metadata (``thickness_mm``) for the scatter
    step; the argument wins; a missing or non-positive value (a header's 0) means no scatter step;
    ``scatter="none"`` turns it off (a scatter-free, simulated image)."""
    ph = realistic(9021, "CC", "R", "SIEMENS", 80.0)
    ref = analyse_breast_region(ph.linear, REALISTIC_SPACING, "CC", thickness_mm=80.0).breast_map
    plain = analyse_breast_region(ph.linear, REALISTIC_SPACING, "CC").breast_map
    img = MetaTensor(torch.from_numpy(ph.linear[None].copy()),
                     meta={"spacing_mm": (REALISTIC_SPACING,) * 2, "view": "CC", "thickness_mm": 80.0})
    assert np.array_equal(BreastRegion()(img)[0].numpy(), ref)
    assert np.array_equal(BreastRegion(scatter="none")(img)[0].numpy(), plain)
    for missing in (None, 0.0, "n/a"):
        img.meta["thickness_mm"] = missing
        assert np.array_equal(BreastRegion()(img)[0].numpy(), plain), missing
        assert np.array_equal(BreastRegion(thickness_mm=80.0)(img)[0].numpy(), ref), missing
    with pytest.raises(ValueError, match="thickness_mm"):
        BreastRegion(thickness_mm=-5.0)
    with pytest.raises(ValueError, match="scatter"):
        BreastRegion(scatter="kernel")


def test_sectors_of_an_even_rim_keep_the_global_edge_shape():
    """The ideal phantom's rim is one quarter ellipse, 17.5 mm wide, all round (seed 1008, CC,
    the worst image of the ideal validation). On a sector's fewer pixels a (1.5, 2) profile 14 mm
    wide fitted within 1-4 % of the loss and was taken: two sectors 3.5 mm too narrow, the
    compressed region too large (Dice 0.990 here, 0.971 at 0.1 mm). A sector whose plateau agrees
    with the global one keeps the global shape unless its own fits clearly better. The ideal
    phantom has no scatter: nothing for the width margin to make up for (``width_margin=0``; the
    default 4 % would make these widths 0.7 mm wider and the compressed Dice 0.993)."""
    ph = phantom(1008, "CC", "L", "HOLOGIC", spacing=0.2)
    res = analyse_breast_region(ph.linear, ph.meta["spacing_mm"], "CC", width_margin=0.0)
    true_width = ph.record["periphery_width_mm"]
    assert np.abs(res.sector_widths_mm - true_width).max() <= 1.0, (res.sector_widths_mm, true_width)
    assert dice(res.breast_map == 2, ph.breast_map == 2) >= 0.995


def test_width_margin_applies_to_one_global_width_too():
    """The width margin (what the scatter step leaves; by default ``WIDTH_MARGIN`` of the view, 8 %
    in CC views, 2 % in MLO views) widens every fitted width, the sectors' and, with
    ``n_sectors=1``, the global one alike: the compressed region shrinks to pixels farther than
    1 + margin times the width from the skin line, and nothing else moves. An image of unknown
    view takes the MLO margin when its pectoral muscle is found, else the CC one."""
    from monai_bac.ops.breast_region import WIDTH_MARGIN

    assert WIDTH_MARGIN == {"CC": 0.08, "MLO": 0.02}
    ph = phantom(1008, "CC", "L", "HOLOGIC", spacing=0.2)
    plain = analyse_breast_region(ph.linear, ph.meta["spacing_mm"], "CC", n_sectors=1, width_margin=0.0)
    for margin, kw in ((0.08, {}), (0.04, {"width_margin": 0.04}), (0.08, {"view": None})):
        wide = analyse_breast_region(ph.linear, ph.meta["spacing_mm"], **{"view": "CC", **kw}, n_sectors=1)
        assert wide.periphery_width_mm == plain.periphery_width_mm  # the fit itself is the same
        np.testing.assert_allclose(wide.sector_widths_mm, (1.0 + margin) * plain.sector_widths_mm)
        assert np.array_equal(wide.breast_map > 0, plain.breast_map > 0)
        assert (wide.breast_map == 2).sum() < (plain.breast_map == 2).sum()
        assert not ((wide.breast_map == 2) & (plain.breast_map != 2)).any()
    mlo = phantom(1009, "MLO", "L", "HOLOGIC", spacing=0.2)
    plain = analyse_breast_region(mlo.linear, mlo.meta["spacing_mm"], "MLO", width_margin=0.0)
    for view in ("MLO", None):
        res = analyse_breast_region(mlo.linear, mlo.meta["spacing_mm"], view)
        assert (res.breast_map == 3).any()  # the muscle is found (PECTORAL)
        np.testing.assert_allclose(res.sector_widths_mm, 1.02 * plain.sector_widths_mm)


def test_paddle_rim_and_abdomen_fold_are_not_breast():
    ph = realistic(9, "MLO", "L", "SIEMENS", 46.0)  # laterality L: the phantom's frame is the image's
    rim, fold = ph.record["paddle_edge"], ph.record["abdomen_fold"]
    assert rim is not None and fold is not None
    m = breast_region_map(ph.linear, REALISTIC_SPACING, "MLO")
    h, w = m.shape
    y = np.arange(h)[:, None] * REALISTIC_SPACING
    x = np.arange(w)[None, :] * REALISTIC_SPACING
    away = ndimage.distance_transform_edt(ph.breast_map == 0) * REALISTIC_SPACING > 3.0  # > 3 mm off the breast
    on_rim = (np.abs(y - (rim["row_mm"] + rim["slope"] * x)) < 0.5) & away
    (ry, rx), cy = fold["radii_mm"], fold["centre_row_mm"]
    in_fold = (((y - cy) / ry) ** 2 + (x / rx) ** 2 < 1.0) & away
    assert on_rim.sum() > 100 and in_fold.sum() > 100
    assert not m[on_rim].any()
    assert not m[in_fold].any()


def test_abdomen_fold_touching_the_breast_at_the_chest_wall_is_cut_off():
    """A 43 mm GE MLO (realistic phantom, seed 5007 = main_07 at 0.4 mm) whose abdominal fold
    touches the breast's lower edge at the chest wall through a neck a few tenths of a mm wide: at
    the cut levels 0.3 / 0.5 / 0.7 of the contrast the fold was either joined to the breast (the
    neck, blurred on the 0.5 mm working grid, lies below the 0.3 level) or too thin to be a thick
    part of its own: breast Dice 0.985, the fold called periphery. The 0.4 level separates it."""
    ph = realistic(5007, "MLO", "R", "GE", 43.0)
    fold = ph.record["abdomen_fold"]
    assert fold is not None
    m = breast_region_map(ph.linear, REALISTIC_SPACING, "MLO", thickness_mm=43.0)
    assert dice(m > 0, ph.breast_map > 0) >= 0.995
    h, w = m.shape
    y = np.arange(h)[:, None] * REALISTIC_SPACING
    x = np.arange(w)[::-1][None, :] * REALISTIC_SPACING  # laterality R: the chest wall is the last column
    (ry, rx), cy = fold["radii_mm"], fold["centre_row_mm"]
    away = ndimage.distance_transform_edt(ph.breast_map == 0) * REALISTIC_SPACING > 3.0
    in_fold = (((y - cy) / ry) ** 2 + (x / rx) ** 2 < 1.0) & away
    assert in_fold.sum() > 100
    assert not m[in_fold].any()


@pytest.mark.parametrize("seed, laterality, thickness", [(40143, "R", 66.6), (39142, "L", 57.0)])
def test_thin_abdomen_fold_against_a_thick_breast_is_cut_off(seed, laterality, thickness):
    """Two SIEMENS MLOs (realistic phantoms tenure_143 and quorum_142 at 0.4 mm) whose abdominal
    fold, 15-20 mm thick, meets a 57-67 mm breast where the breast is already thick: no level of ln P
    separates them, so the level cut kept the fold as breast (breast Dice 0.991 / 0.993), and the
    lower windows, fitted on its slow fall-off, gave a 64 mm periphery (compressed Dice 0.896 /
    0.932). The fold is thin over a region wider than the breast's thin band along its skin line."""
    ph = realistic(seed, "MLO", laterality, "SIEMENS", thickness)
    fold = ph.record["abdomen_fold"]
    assert fold is not None and fold["thickness_mm"] < 0.4 * thickness
    m = breast_region_map(ph.linear, REALISTIC_SPACING, "MLO", thickness_mm=thickness)
    h, w = m.shape
    y = np.arange(h)[:, None] * REALISTIC_SPACING
    x = np.arange(w)[None, :] * REALISTIC_SPACING
    if laterality == "R":
        x = x[:, ::-1]  # the chest wall is the last column
    (ry, rx), cy = fold["radii_mm"], fold["centre_row_mm"]
    away = ndimage.distance_transform_edt(ph.breast_map == 0) * REALISTIC_SPACING > 3.0
    in_fold = (((y - cy) / ry) ** 2 + (x / rx) ** 2 < 1.0) & away
    assert in_fold.sum() > 100
    assert not m[in_fold].any()
    assert dice(m > 0, ph.breast_map > 0) >= 0.998
    assert dice(m == 2, ph.breast_map == 2) >= 0.95


@pytest.mark.parametrize("profile", ["sqrt", "linear"])
def test_a_wide_thin_band_along_the_skin_is_not_cut_as_a_fold(profile):
    """An ideal MLO (seed 1001, HOLOGIC, 0.5 mm) re-formed with a square-root or linear edge
    profile instead of the phantom's quarter ellipse: the breast's own thin band along the skin
    line is 10-17 mm wide and reaches the top image edge. A 5 mm disc fits in it, and the thin-fold
    cut took the whole outer rim (breast Dice 0.912 / 0.814); the disc now follows the band's own
    width."""
    ph = make_phantom(1001, view="MLO", laterality="L", vendor="HOLOGIC", spacing_mm=0.5)
    rec, inside = ph.record, ph.breast_map > 0
    h0 = rec["compressed_thickness_mm"]
    s = 1.0 - np.sqrt(np.clip(1.0 - (ph.thickness / h0) ** 2, 0.0, 1.0))  # relative depth into the rim
    thickness = h0 * (np.sqrt(s) if profile == "sqrt" else s) * inside
    q = rec["air_signal"] * np.exp(-rec["mu_fat"] * thickness - (rec["mu_dt"] - rec["mu_fat"]) * (ph.h_dt + ph.h_muscle))
    q = q + np.sqrt(q * rec["gain"]) * np.random.default_rng(0).standard_normal(q.shape)
    m = breast_region_map(q.astype(np.float32), 0.5, "MLO", width_margin=0.0)
    assert dice(m > 0, inside) >= 0.96


def test_heel_gradient_does_not_shrink_the_compressed_region():
    """20 % more fluence drop from the chest wall to the nipple (on top of the phantom's own heel
    effect): the skin line is drawn after the field is flattened, so the map does not move."""
    ph = realistic(2, "CC", "L", "HOLOGIC", 60.0)
    x = np.arange(ph.linear.shape[1]) * REALISTIC_SPACING
    nipple_mm = ph.record["geometry"]["a_mm"]
    heel = np.clip(1.0 - 0.2 * x / nipple_mm, 0.6, 1.0).astype(np.float32)
    plain = breast_region_map(ph.linear, REALISTIC_SPACING, "CC")
    tilted = breast_region_map(ph.linear * heel[None, :], REALISTIC_SPACING, "CC")
    truth = ph.breast_map == 2
    assert dice(plain == 2, truth) >= 0.95
    assert dice(tilted == 2, truth) >= 0.95
    assert (tilted == 2).sum() >= 0.97 * (plain == 2).sum()
    assert dice(tilted > 0, ph.breast_map > 0) >= 0.98


def low_contrast_pectoral(ph, fraction, taper_mm):
    """The phantom's MLO with its pectoral muscle made faint: muscle-equivalent path
    ``fraction x thickness``, rising as sqrt(distance / taper_mm) from its edge (a rounded muscle
    belly), instead of 50-85 % of the thickness with a sharp edge. Beer-Lambert at the record's
    effective attenuation moves the muscle path to fat."""
    muscle = ph.breast_map == 3
    depth = ndimage.distance_transform_edt(muscle) * REALISTIC_SPACING
    faint = fraction * ph.thickness * np.sqrt(np.clip(depth / taper_mm, 0.0, 1.0)) * muscle
    d_mu = ph.record["mu_dt"] - ph.record["mu_fat"]
    return (ph.linear * np.exp(d_mu * (ph.h_muscle - faint))).astype(np.float32)


@pytest.mark.parametrize("seed,laterality,fraction,taper_mm", [(5, "L", 0.12, 8.0), (35, "R", 0.15, 8.0)])
def test_curved_low_contrast_pectoral_is_found(seed, laterality, fraction, taper_mm):
    """A curved muscle edge (bow 0.17 / -0.23) of 12-15 % of the thickness tapering over 8 mm,
    which the Hough line alone misses: the curve search finds it."""
    ph = make_phantom(seed, view="MLO", laterality=laterality, vendor="HOLOGIC", physics="realistic",
                      spacing_mm=REALISTIC_SPACING)
    assert abs(ph.record["geometry"]["pectoral_bow"]) >= 0.15
    res = analyse_breast_region(low_contrast_pectoral(ph, fraction, taper_mm), REALISTIC_SPACING, "MLO")
    assert res.pectoral is not None
    assert dice(res.breast_map == 3, ph.breast_map == 3) >= 0.85
    assert dice(res.breast_map > 0, ph.breast_map > 0) >= 0.98


# ----------------------------------------------------------------------------- edge cases
@pytest.mark.parametrize("kind", ["air_noise", "zeros", "constant", "tiny"])
def test_no_breast_gives_all_background(kind):
    rng = np.random.default_rng(0)
    if kind == "air_noise":
        img = (8000.0 + 90.0 * rng.standard_normal((300, 250))).astype(np.float32)
    elif kind == "zeros":
        img = np.zeros((300, 250), np.float32)
    elif kind == "constant":
        img = np.full((300, 250), 1234.0, np.float32)
    else:
        img = (8000.0 + 90.0 * rng.standard_normal((6, 5))).astype(np.float32)
    out = BreastRegion(spacing_mm=SPACING)(img[None])
    assert out.shape == (1,) + img.shape and out.dtype == np.uint8
    assert not out.any()


def test_chest_wall_side_helper():
    mask = np.zeros((50, 40), bool)
    mask[5:45, :15] = True
    assert chest_wall_side(mask) == "left"
    assert chest_wall_side(mask[:, ::-1]) == "right"
    assert chest_wall_side(np.zeros((5, 5), bool)) is None


def test_periphery_width_fit_on_synthetic_profile():
    """Beer-Lambert envelope of a quarter-ellipse edge: the fit returns the width it was made with."""
    rng = np.random.default_rng(1)
    d = rng.uniform(0, 80, 20000)
    air, amp, w = 9.0, 2.5, 23.0
    v = air - amp * edge_profile(d / w) + rng.normal(0, 0.005, d.size)  # quantum noise
    dense = (d > 0.6 * w) & (rng.random(d.size) < 0.5)  # dense tissue only lowers P, away from the skin
    v[dense] -= np.abs(rng.normal(0, 0.3, dense.sum()))
    w_fit, a_fit, *_ = periphery_width(d, v, air)
    assert w_fit == pytest.approx(w, abs=0.5)
    assert a_fit == pytest.approx(amp, abs=0.05)


def test_periphery_width_says_when_the_fit_ran_into_its_width_limit():
    """A rim wider than the widths searched: the fit stops at the limit, short of the plateau
    (its amplitude is not the fat level), and says so; a rim inside the limit does not."""
    rng = np.random.default_rng(2)
    d = rng.uniform(0, 80, 20000)
    air, amp, w = 9.0, 2.5, 40.0
    v = air - amp * edge_profile(d / w) + rng.normal(0, 0.005, d.size)
    inside = periphery_width(d, v, air)
    short = periphery_width(d, v, air, max_width_mm=25.0)
    assert not inside.at_limit and inside.width_mm == pytest.approx(w, abs=1.0)
    assert short.at_limit and short.width_mm <= 25.0 and short.amplitude < amp - 0.1


def test_a_width_hint_beyond_the_farthest_distance_seen_starts_from_the_widest_width():
    """The second fit is guided by the first, made on the whole breast; without its pectoral muscle
    (or an implant's shadow) the tissue left may not reach that far. A hint 10 mm and more beyond
    98 % of the farthest distance seen left no width to try ("attempt to get argmin of an empty
    sequence": a saline implant's MLO under a readout 25 % thick, seed 58617); now the fit starts
    from the widest width the distances allow (98 % of the farthest seen) and its second pass
    refines it within 3 mm, as any fit's does."""
    rng = np.random.default_rng(3)
    d = rng.uniform(0, 60, 20000)
    air, amp, w = 9.0, 2.5, 40.0
    v = air - amp * edge_profile(d / w) + rng.normal(0, 0.005, d.size)
    fit = periphery_width(d, v, air, width_hint_mm=80.0)
    widest = 0.98 * fit.reach_mm
    assert widest - 3.0 - 1e-6 <= fit.width_mm <= widest and np.isfinite(fit.amplitude)
    # a hint within reach is searched as before
    assert periphery_width(d, v, air, width_hint_mm=42.0).width_mm == pytest.approx(w, abs=1.0)


def test_an_amplitude_between_bounds_is_fitted_within_them():
    """``amplitude=(low, high)``: the plateau is fitted, but no deeper than ``high`` nor shallower
    than ``low`` (beside an implant, the plateau of fat through the thickness read and through the
    thinnest breast its readout allows). Bounds around the truth give the free fit; a bound that
    excludes it holds the amplitude at that bound, and the width moves to meet the envelope."""
    rng = np.random.default_rng(4)
    d = rng.uniform(0, 80, 20000)
    air, amp, w = 9.0, 2.0, 30.0
    v = air - amp * edge_profile(d / w) + rng.normal(0, 0.005, d.size)
    free = periphery_width(d, v, air)
    around = periphery_width(d, v, air, amplitude=(1.6, 2.5))
    assert around.amplitude == pytest.approx(free.amplitude) and around.width_mm == pytest.approx(free.width_mm)
    deep = periphery_width(d, v, air, amplitude=(2.4, 3.0))  # a readout too thick: the plateau too deep
    assert deep.amplitude == pytest.approx(2.4) and deep.width_mm > w + 5.0
    shallow = periphery_width(d, v, air, amplitude=(1.0, 1.6))
    assert shallow.amplitude == pytest.approx(1.6) and shallow.width_mm < w - 5.0


# ----------------------------------------------------------------------------- MONAI face
def test_numpy_in_numpy_out():
    ph = phantom(1, "CC", "L")
    out = BreastRegion(spacing_mm=SPACING, view="CC")(ph.linear[None])
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == (1,) + ph.linear.shape
    out_hw = BreastRegion(spacing_mm=SPACING, view="CC")(ph.linear)  # (H, W) stays (H, W)
    assert out_hw.shape == ph.linear.shape and np.array_equal(out_hw, out[0])


def test_torch_in_torch_out():
    ph = phantom(1, "CC", "L")
    t = torch.from_numpy(ph.linear[None].copy())
    out = BreastRegion(spacing_mm=SPACING, view="CC")(t)
    assert isinstance(out, torch.Tensor) and not isinstance(out, MetaTensor)
    assert out.dtype == torch.uint8 and tuple(out.shape) == (1,) + ph.linear.shape
    assert dice(out[0].numpy() > 0, ph.breast_map > 0) >= 0.97


def test_meta_tensor_meta_preserved_and_extended():
    ph = phantom(4, "MLO", "R", "HOLOGIC")
    img = as_meta_tensor(ph, filename_or_obj="case4.dcm")
    out = BreastRegion(scatter="none")(img)  # spacing and view from the metadata; the ideal phantom has no scatter
    assert isinstance(out, MetaTensor) and out.dtype == torch.uint8
    assert tuple(out.meta["spacing_mm"]) == tuple(ph.meta["spacing_mm"])
    assert out.meta["view"] == "MLO" and out.meta["filename_or_obj"] == "case4.dcm"
    assert out.meta["breast_map_source"] == "BreastRegion"
    assert out.meta["chest_wall_side"] == "right" and out.meta["pectoral_found"] is True
    assert out.meta["periphery_width_mm"] == pytest.approx(ph.record["periphery_width_mm"], abs=1.5)
    assert "breast_map_source" not in img.meta  # the image's own meta is untouched
    assert torch.allclose(out.affine, img.affine)


def test_missing_spacing_names_meta_key_and_argument():
    ph = phantom(1, "CC", "L")
    with pytest.raises(SpacingError, match="spacing_mm"):
        BreastRegion()(ph.linear[None])
    with pytest.raises(SpacingError, match="spacing_mm"):
        BreastRegiond(keys="image")({"image": MetaTensor(torch.from_numpy(ph.linear[None].copy()))})
    # the argument replaces the missing tag
    out = BreastRegion(spacing_mm=(SPACING, SPACING))(MetaTensor(torch.from_numpy(ph.linear[None].copy())))
    assert dice(out[0].numpy() > 0, ph.breast_map > 0) >= 0.97


def test_dict_user_map_takes_precedence_unless_overwrite():
    ph = phantom(2, "CC", "R", "GE")
    user = np.full((1,) + ph.linear.shape, 2, np.uint8)
    data = {"image": as_meta_tensor(ph), "breast_map": user}
    out = BreastRegiond(keys="image")(data)
    assert out["breast_map"] is user  # untouched
    assert data["breast_map"] is user  # input dict not modified either
    out = BreastRegiond(keys="image", overwrite=True)(data)
    assert out["breast_map"] is not user
    assert dice(out["breast_map"][0].numpy() == 2, ph.breast_map == 2) >= 0.9


def test_dict_computes_map_and_missing_keys():
    ph = phantom(3, "MLO", "L", "GE")
    out = BreastRegiond(keys="image", map_key="bmap")({"image": as_meta_tensor(ph)})
    assert isinstance(out["bmap"], MetaTensor) and out["bmap"].meta["pectoral_found"]
    assert dice(out["bmap"][0].numpy() == 3, ph.breast_map == 3) >= 0.85
    # plain numpy image with a legacy meta dict
    out = BreastRegiond(keys="image")({"image": ph.linear[None], "image_meta_dict": dict(ph.meta)})
    assert isinstance(out["breast_map"], np.ndarray) and (out["breast_map"] == 3).any()
    with pytest.raises(KeyError):
        BreastRegiond(keys="image")({"other": 1})
    assert BreastRegiond(keys="image", allow_missing_keys=True)({"other": 1}) == {"other": 1}


def test_explicit_spacing_wins_over_meta():
    ph = phantom(2, "CC", "R", "GE")
    wrong = as_meta_tensor(ph, spacing_mm=(0.25, 0.25))
    right = BreastRegion(spacing_mm=SPACING)(wrong)
    assert right.meta["periphery_width_mm"] == pytest.approx(ph.record["periphery_width_mm"], abs=1.5)
    assert BreastRegion()(wrong).meta["periphery_width_mm"] < 0.75 * ph.record["periphery_width_mm"]


def test_outputs_collate_in_a_batch_even_without_breast():
    from monai.data import list_data_collate

    ph = phantom(1, "CC", "L")
    empty = MetaTensor(torch.full((1,) + ph.linear.shape, 5000.0), meta=dict(ph.meta))
    t = BreastRegiond(keys="image")
    batch = list_data_collate([t({"image": as_meta_tensor(ph)}), t({"image": empty})])
    assert tuple(batch["breast_map"].shape) == (2, 1) + ph.linear.shape
    assert batch["breast_map"][1].sum() == 0 and batch["breast_map"][0].sum() > 0

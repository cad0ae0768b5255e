"""The measures of benchmarks/validate_realistic.py that the validation pages quote."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from monai_bac.phantom import make_phantom

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "validate_realistic.py"


@pytest.fixture(scope="module")
def measures():
    spec = importlib.util.spec_from_file_location("validate_realistic", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_flat_rim_of_the_periphery_counts_neither_way(measures):
    """Calling the periphery's near-flat rim (thickness within 1 % of H0) compressed costs the plain
    Dice but not the rim Dice; calling the steep periphery compressed, or missing compressed
    pixels, costs both."""
    ph = make_phantom(3, view="CC", spacing_mm=0.5, thickness_mm=70.0, physics="realistic", effects="edge")
    truth, thick, h0 = ph.breast_map, ph.thickness, 70.0
    comp, per = truth == 2, truth == 1
    flat = per & (thick >= 0.99 * h0)
    assert flat.sum() > 0.05 * comp.sum()  # the rim is wide enough to matter on a thick breast
    wide = comp | flat
    assert measures.dice(wide, comp) < 0.98
    assert measures.dice_flat_rim(wide, truth, thick, h0) == 1.0
    steep = comp | (per & (thick >= 0.9 * h0))  # 10 % less tissue than H0 is visible: still an error
    assert measures.dice_flat_rim(steep, truth, thick, h0) < measures.dice_flat_rim(wide, truth, thick, h0)
    cols = np.flatnonzero(comp.any(0))
    shrunk = comp.copy()
    shrunk[:, cols[0]:cols[0] + cols.size // 4] = False  # a quarter of the compressed region missed
    assert measures.dice_flat_rim(shrunk, truth, thick, h0) == pytest.approx(measures.dice(shrunk, comp))
    assert measures.dice_flat_rim(shrunk, truth, thick, h0) < 0.95


def test_a_lookalike_stroke_over_true_bac_counts_as_bac_not_as_a_lookalike(measures):
    """A strand stroke laid along a calcified run that was not brushed as BAC annotates BAC: the
    look-alike count leaves it out (it is counted in ``on_bac_pieces``), while a stroke that only
    crosses the run, or lies beside it, is a look-alike, merged when it touches a BAC stroke, and
    removed only when >= 80 % of its pixels go; the same pieces apart from BAC are counted apart."""
    src = np.zeros((60, 80), np.uint8)
    bac = np.zeros(src.shape, bool)
    bac[10:13, 5:75] = True  # a calcified run, 3 px wide
    src[8:15, 5:40] = 1  # brushed as BAC over its first half
    src[8:15, 40:70] = 3  # its second half brushed as a strand: 3 of 7 rows on the true BAC
    src[30:36, 10:40] = 3  # a strand below
    src[15:30, 18:26] = 2  # a cluster's stroke joining it to the run's
    tpa = src > 0
    spacing = 0.1  # mm: every piece here is >= 1 mm^2 (100 px)

    def count(corrected, bac_mask):
        return measures.lookalike_pieces(tpa, src, corrected, spacing, bac_mask)

    nothing = count(tpa, bac)  # the whole annotation kept
    assert nothing["on_bac_pieces"] == 0  # 3/7 of the strand along the run is on the BAC: still a look-alike
    assert (nothing["merged_pieces"], nothing["apart_pieces"]) == (3, 0)  # one component holds all of it
    assert nothing["merged_removed"] == 0
    wide = bac.copy()
    wide[8:15, 40:70] = True  # the run as wide as the stroke: the strand stroke lies wholly on the BAC
    on = count(tpa, wide)
    assert on["on_bac_pieces"] == 1 and on["merged_pieces"] == 2 and on["strand_pieces"] == 1
    corrected = tpa.copy()
    corrected[30:36, 10:35] = False  # 25 of 30 columns of the strand below removed: 83 %
    corrected[15:30, 18:26] = False
    some = count(corrected, bac)
    assert some["merged_removed"] == 2 and some["strand_removed"] == 1 and some["microcalc_removed"] == 1
    corrected[30:36, 33:35] = True  # two columns back: 77 % removed, not enough
    assert count(corrected, bac)["merged_removed"] == 1
    assert count(tpa, None)["on_bac_pieces"] == 0  # no truth given: nothing set aside
    src[8:15, 5:40] = 0  # no BAC stroke: every piece is apart
    apart = measures.lookalike_pieces(src > 0, src, src > 0, spacing, bac)
    assert (apart["merged_pieces"], apart["apart_pieces"]) == (0, 3)


def test_the_pooled_ratios_interval_resamples_images(measures):
    """The bootstrap interval of a pooled ratio holds the pooled figure, is narrower for more
    images of the same kind, is empty when every image reads the same, and weighs an image by its
    count (a ratio of sums, not a mean of ratios)."""
    rng = np.random.default_rng(1)
    den = rng.integers(2, 12, 400).astype(float)
    num = rng.binomial(den.astype(int), 0.88).astype(float)
    pooled = num.sum() / den.sum()
    lo24, hi24 = measures.ratio_interval(num[:24], den[:24])
    lo, hi = measures.ratio_interval(num, den)
    assert lo < pooled < hi
    assert lo24 <= num[:24].sum() / den[:24].sum() <= hi24
    assert hi - lo < 0.6 * (hi24 - lo24)
    assert measures.ratio_interval(np.full(30, 9.0), np.full(30, 10.0)) == pytest.approx((0.9, 0.9))
    # one image of 100 pieces all kept and 9 of one piece all removed: the sums weigh it 100 x
    lo, hi = measures.ratio_interval(np.array([0.0] + [1.0] * 9), np.array([100.0] + [1.0] * 9))
    assert lo < 0.1  # a mean of the images' ratios would put the lower bound near 0.7


def test_every_held_out_set_has_seeds_of_its_own(measures):
    """A held-out set is read once; a set that reused another's seeds would be a set already seen."""
    seeds = {}
    for name in [*measures.SETS_LIKE_MAIN, "ablation"]:
        cases = measures.plan(name)
        assert len({c["case"] for c in cases}) == len(cases), name
        seeds[name] = {c["seed"] for c in cases}
    names = list(seeds)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not seeds[a] & seeds[b], f"sets {a} and {b} share seeds {sorted(seeds[a] & seeds[b])[:3]}"
    census = measures.plan("census")
    assert len(census) == 192 and {c["seed"] for c in census} == set(range(33000, 33192))


@pytest.fixture(scope="module")
def diagnose():
    path = BENCH.parent / "diagnose_periphery.py"
    spec = importlib.util.spec_from_file_location("diagnose_periphery", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_true_window_widths_read_the_phantoms_rim_width_in_either_orientation(diagnose):
    """The per-window true width that docs/design-log/breast_region.md's window ratios divide by: on an ideal
    phantom (one rim width all round) every window reads that width, and the mirrored map (chest
    wall on the right) reads the same."""
    from monai_bac.ops.breast_region import BreastRegionResult

    ph = make_phantom(5, view="CC", spacing_mm=0.5, thickness_mm=60.0)
    assert ph.record["physics"] == "ideal"
    w = ph.record["periphery_width_mm"]
    result = BreastRegionResult(np.zeros(ph.breast_map.shape, np.uint8), True, chest_wall="left",
                                sector_widths_mm=np.zeros(16))
    left = diagnose.true_window_widths(result, ph.breast_map, (0.5, 0.5))
    assert left.shape == (16,) and np.isfinite(left).sum() >= 12
    np.testing.assert_allclose(left[np.isfinite(left)], w, atol=1.0)
    result.chest_wall = "right"
    right = diagnose.true_window_widths(result, ph.breast_map[:, ::-1], (0.5, 0.5))
    np.testing.assert_allclose(right, left, atol=1e-9)
    comp = ph.breast_map == 2
    wider = ph.breast_map.copy()
    wider[comp & (ndimage.distance_transform_edt(comp, sampling=0.5) <= 5.0)] = 1  # the rim 5 mm wider
    np.testing.assert_allclose(diagnose.true_window_widths(result, wider[:, ::-1], (0.5, 0.5)), left + 5.0, atol=1.0)


def test_contour_tolerance_inverts_the_contour_dice_on_a_linear_rim(diagnose):
    """What docs/design-log/breast_region.md's 'what 0.90 asks' table reads: on a rim whose thickness rises
    linearly over 100 pixels to H0 = 50 mm, the contour {t >= H0 - 5 mm} adds the rim's last 10
    pixels per row to 200 compressed ones (Dice 400 / 410), the tolerance for that Dice is 5 mm, and
    the muscle is counted in neither."""
    x = np.arange(300, dtype=np.float64)
    thickness = np.tile(50.0 * np.minimum(1.0, (x + 0.5) / 100.0 - 0.005), (20, 1))
    truth = np.where(x >= 100, 2, 1).astype(np.uint8)[None].repeat(20, 0)
    truth[:, 0] = 0  # background
    assert diagnose.contour_dice(thickness, truth, 0.0) == 1.0
    assert diagnose.contour_dice(thickness, truth, 5.0) == pytest.approx(400 / 410)
    assert diagnose.contour_tolerance(thickness, truth, 400 / 410) == pytest.approx(5.0)
    # 0.90 allows floor(2 x 4000 x (1/0.9 - 1)) = 888 rim pixels: the 44 thickest columns and 8 of x = 55 (27.5 mm)
    assert diagnose.contour_tolerance(thickness, truth, 0.9) == pytest.approx(22.5)
    for tol in (0.7, 2.2, 13.0):  # round trip
        d = diagnose.contour_dice(thickness, truth, tol)
        back = diagnose.contour_tolerance(thickness, truth, d)
        assert diagnose.contour_dice(thickness, truth, back) == pytest.approx(d)
    muscle = truth.copy()
    muscle[:5, 90:100] = 3  # thick periphery pixels under the muscle label: not periphery any more
    assert diagnose.contour_dice(thickness, muscle, 5.0) > diagnose.contour_dice(thickness, truth, 5.0)
    assert diagnose.contour_tolerance(thickness, truth, 0.2) == np.inf  # the whole rim is not enough

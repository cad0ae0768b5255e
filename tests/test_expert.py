"""The annotator's systematicity (TPAConfig) and the simulated expert correction (ExpertGT, Sec. 4.2)."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from monai_bac.phantom import TPAConfig, make_phantom
from monai_bac.phantom.annotation import SOURCE_CODES, _subpath
from monai_bac.phantom.expert import LOOKALIKE_CODES, ExpertConfig, annotator_brush_mm, expert_correct

SPACING = 0.25
EIGHT = np.ones((3, 3), bool)


def _phantom(seed, **tpa):
    return make_phantom(seed, spacing_mm=SPACING, physics="ideal", n_strands=6, n_clusters=3, n_edges=2,
                        tpa=TPAConfig(**tpa))


def test_systematicity_names_the_profiles_and_is_checked():
    assert TPAConfig().systematicity == 0.0 and TPAConfig().profile == "random"
    assert TPAConfig(profile="systematic") == TPAConfig(systematicity=1.0)
    assert TPAConfig(systematicity=0.5).profile == "mixed"
    assert TPAConfig(**TPAConfig(systematicity=0.5).to_dict()) == TPAConfig(systematicity=0.5)
    with pytest.raises(ValueError, match="systematicity"):
        TPAConfig(systematicity=1.5)
    with pytest.raises(ValueError, match="contradicts"):
        TPAConfig(profile="systematic", systematicity=0.5)


def test_systematicity_mixes_the_habits_stroke_by_stroke():
    brushed = {0.0: 0, 0.5: 0, 1.0: 0}
    steady = {0.0: 0, 0.5: 0, 1.0: 0}
    total = 0
    for seed in range(4):
        base = _phantom(seed)
        for s in brushed:
            ph = _phantom(seed, systematicity=s)
            rec = ph.record["tpa"]
            assert rec["systematicity"] == s
            brushed[s] += rec["microcalc_brushed"] + rec["strands_brushed"] + rec["edges_brushed"]
            steady[s] += sum(rec["systematic_strokes"][k] for k in ("microcalc", "strand", "edge"))
            if s == 0.0:  # the random annotator of before, pixel for pixel
                np.testing.assert_array_equal(ph.tpa_source, base.tpa_source)
        total += base.record["n_clusters"] + base.record["n_strands"] + base.record["n_edges"]
    # s = 1 brushes every look-alike, s = 0 about half, s = 0.5 in between; the habit counts follow s
    assert brushed[0.0] < brushed[0.5] < brushed[1.0] == total
    assert steady[0.0] == 0 and 0 < steady[0.5] < steady[1.0] == total


def _run_centrelines(ph):
    """Pixel indices of each calcified run's centreline, in the image's frame."""
    shape = ph.tpa_source.shape
    out = []
    for art in ph.objects["arteries"]:
        for run in art.runs:
            pts = _subpath(art.points, run.start, run.stop)
            rc = np.rint(pts / ph.spacing).astype(int)
            rc = rc[(rc[:, 0] >= 0) & (rc[:, 0] < shape[0]) & (rc[:, 1] >= 0) & (rc[:, 1] < shape[1])]
            if ph.objects["mirrored"]:
                rc[:, 1] = shape[1] - 1 - rc[:, 1]
            out.append(rc)
    return out


@pytest.mark.parametrize("seed,systematicity", [(1, 0.0), (2, 0.5), (3, 1.0)])
def test_expert_removes_exactly_the_false_positive_segments_and_adds_the_missed_runs(seed, systematicity):
    ph = _phantom(seed, systematicity=systematicity, merge_rate=1.0, miss_rate=0.3, merge_reach_mm=30.0)
    source, tpa = ph.tpa_source, ph.tpa_mask > 0
    assert ph.record["tpa"]["merged_strokes"] > 0 and ph.record["tpa"]["bac_missed"] > 0  # a case worth testing
    expert, report = expert_correct(source, ph.bac_mask, ph.spacing, annotator_brush_mm(ph.record["tpa"]))
    expert = expert > 0

    # removed: every pixel brushed for a look-alike, nothing brushed for BAC; counted by segment. A
    # look-alike stroke lying on a missed calcified run comes back only as that run's brush
    look = np.isin(source, LOOKALIKE_CODES)
    near_truth = ndi.distance_transform_edt(~(ph.bac_mask > 0), sampling=ph.spacing) <= (
        report["brush_halfwidth_mm"] + ph.spacing)
    assert near_truth[expert & look].all() and (expert & look).sum() < 0.2 * look.sum()
    assert expert[source == SOURCE_CODES["bac"]].all()
    assert look.sum() == report["removed_pixels"]
    assert ((tpa & ~expert) == (look & ~expert)).all()
    assert report["n_removed_segments"] == ndi.label(look, EIGHT)[1] > 0
    for kind in ("microcalc", "strand", "edge"):
        assert report["removed_pixels_by_kind"][kind] == (source == SOURCE_CODES[kind]).sum()
    # a merged stroke (one TPA component holding BAC and a look-alike) loses its look-alike part only
    comps, n = ndi.label(tpa, EIGHT)
    merged = [c for c in range(1, n + 1) if np.isin(source[comps == c], LOOKALIKE_CODES).any()
              and (source[comps == c] == SOURCE_CODES["bac"]).any()]
    assert merged
    for c in merged:
        part = comps == c
        assert expert[part & (source == SOURCE_CODES["bac"])].all() and (part & look & ~near_truth).any()
        assert not expert[part & look & ~near_truth].any()

    # added: the runs the annotator missed (their centrelines mostly unbrushed for BAC: a missed run
    # may cross a brushed one), with its brush
    runs = _run_centrelines(ph)
    missed = [rc for rc in runs if (source[rc[:, 0], rc[:, 1]] == SOURCE_CODES["bac"]).mean() < 0.5]
    assert len(missed) == ph.record["tpa"]["bac_missed"]
    for rc in missed:  # its calcified points (a segmental run's gaps are not), bar the ends' skeleton retreat
        calcified = ph.bac_mask[rc[:, 0], rc[:, 1]] > 0
        assert expert[rc[calcified, 0], rc[calcified, 1]].mean() > 0.9 > 0.5 > tpa[rc[:, 0], rc[:, 1]].mean()
    assert report["n_added_segments"] >= len(missed)
    assert report["added_pixels"] == (expert & (source != SOURCE_CODES["bac"])).sum() > 0
    # nothing is added away from the true BAC: added pixels lie within the brush of its centreline
    assert near_truth[expert & ~(source == SOURCE_CODES["bac"])].all()


def test_expert_input_errors_name_the_problem():
    with pytest.raises(ValueError, match="differs"):
        expert_correct(np.zeros((4, 4), np.uint8), np.zeros((5, 4), np.uint8), 0.1, 1.0)
    with pytest.raises(ValueError, match="brush_halfwidth_mm"):
        expert_correct(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), 0.1, 0.0)
    with pytest.raises(ValueError, match="ExpertConfig"):
        ExpertConfig(tolerance_mm=-1)

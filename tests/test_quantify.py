"""BAC quantification: length, segments, area, calcium; per breast / patient; 4-view cohort analysis."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_bac.phantom import make_cohort, make_phantom
from monai_bac.quantify import (
    HYDROXYAPATITE_DENSITY_MG_PER_MM3,
    bac_length_mm,
    calc_thickness_near_mask,
    cohort_analysis,
    presence_agreement,
    quantify_image,
    quantify_mask,
    summarise_breasts,
    summarise_patients,
    weighted_f1,
)

#: phantoms of the accuracy tests: (seed, view, laterality, vendor), 0.2 mm (1425 x 1197 px)
PHANTOMS = [(0, "MLO", "R", "HOLOGIC"), (1, "CC", "L", "GE"), (2, "MLO", "L", "HOLOGIC"), (3, "CC", "R", "GE"),
            (4, "MLO", "L", "GE"), (5, "CC", "L", "HOLOGIC")]
SPACING = 0.2


@pytest.fixture(scope="module")
def phantoms():
    return [make_phantom(s, view=v, laterality=lat, vendor=ven, spacing_mm=SPACING) for s, v, lat, ven in PHANTOMS]


def _image(p) -> MetaTensor:
    return MetaTensor(torch.from_numpy(p.linear[None].copy()), meta={**p.meta, "is_raw": True})


# ------------------------------------------------------------------------------ length
def _tube(shape, centre_fn, t, radius_px):
    """Mask of a tube of ``radius_px`` around the curve centre_fn(t) (pixels), and its length (px)."""
    pts = np.array([centre_fn(x) for x in t])
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    m = np.zeros(shape, bool)
    for y, x in pts:
        m |= (rr - y) ** 2 + (cc - x) ** 2 <= radius_px**2
    # a swept disk has rounded caps: its centreline is the curve itself
    return m, float(np.sum(np.hypot(*np.diff(pts, axis=0).T)))


@pytest.mark.parametrize("angle_deg", [0, 30, 45, 72])
def test_length_of_a_straight_tube_is_its_centreline(angle_deg):
    a = math.radians(angle_deg)
    t = np.linspace(0, 120, 241)
    mask, truth_px = _tube((200, 200), lambda s: (40 + s * math.sin(a), 30 + s * math.cos(a) * (0.8 if a else 1)), t, 4)
    sp = 0.1
    measured = bac_length_mm(mask, (sp, sp))
    truth = truth_px * sp
    # caps: the swept disk reaches one radius beyond each end of the curve
    assert measured == pytest.approx(truth + 2 * 0.4, rel=0.06)
    # without the corrections the skeleton misses the ends (and square ends fork)
    assert bac_length_mm(mask, (sp, sp), end_correction=False) < measured


def test_length_of_a_curved_tube_and_spacing_independence():
    t = np.linspace(0, math.pi, 400)
    fn = lambda s: (100 + 70 * math.sin(s), 100 + 70 * math.cos(s))  # noqa: E731
    mask, truth_px = _tube((200, 200), fn, t, 3)
    q = quantify_mask(mask, (0.1, 0.1))
    assert q.present and q.n_segments == 1
    assert q.length_mm == pytest.approx(truth_px * 0.1 + 0.6, rel=0.06)
    # the same object at half the resolution: the same length in mm (thresholds are physical)
    coarse = mask[::2, ::2]
    assert quantify_mask(coarse, (0.2, 0.2)).length_mm == pytest.approx(q.length_mm, rel=0.06)
    assert q.area_mm2 == pytest.approx(mask.sum() * 0.01)


def test_empty_mask_and_min_segment_length():
    q = quantify_mask(np.zeros((50, 60), np.uint8), (0.1, 0.1), np.zeros((50, 60), np.float32))
    assert not q.present and q.n_segments == 0 and q.length_mm == 0 and q.calcium_mg == 0
    m = np.zeros((100, 100), np.uint8)
    m[10:14, 10:80] = 1  # 7 mm long
    m[50:53, 50:54] = 1  # a 0.4 mm speck
    q = quantify_mask(MetaTensor(torch.from_numpy(m[None]), meta={"spacing_mm": (0.1, 0.1)}))
    assert q.n_segments == 2
    q2 = quantify_mask(m, (0.1, 0.1), min_segment_mm=1.0)
    assert q2.n_segments == 1 and q2.segments[0].length_mm == pytest.approx(7.0, abs=0.3)
    assert q2.segments[0].bbox == (10, 10, 14, 80)


def test_spacing_is_required():
    with pytest.raises(ValueError, match="spacing_mm"):
        quantify_mask(np.ones((5, 5)))


def test_gt_mask_length_within_5_percent_of_true_centreline(phantoms):
    """Must show: BAC length from the ground-truth mask vs the phantom's true centreline length."""
    rows = []
    for p in phantoms:
        truth = p.record["bac_centreline_length_mm"]
        measured = quantify_mask(p.bac_mask, p.meta["spacing_mm"]).length_mm
        rows.append((truth, measured))
        print(f"seed {p.record['seed']} {p.record['view']}: truth {truth:.1f} mm, measured {measured:.1f} mm "
              f"({100 * (measured / truth - 1):+.1f} %)")
    truth, measured = np.array(rows).T
    errors = measured / truth - 1
    assert abs(measured.sum() / truth.sum() - 1) <= 0.05  # the cohort's BAC length
    assert np.median(np.abs(errors)) <= 0.05  # the typical image
    # every image: overlapping vessels (counted twice by the truth, once by any mask) and the
    # 8-neighbour step bias on oblique curves stay below 8 % here (docs/CPU_INFERENCE.md)
    assert np.all(np.abs(errors) <= 0.08)


# ------------------------------------------------------------------------------ calcium
def test_calcium_within_30_percent_of_truth(phantoms):
    """Must show: calcium mass from Eq. 5 on the raw image vs the phantom's true calcium."""
    errors = []
    for p in phantoms:
        q = quantify_image(_image(p), p.bac_mask, p.breast_map, density_kwargs={"model": "eq4"})
        truth = p.record["bac_calcium_mg"]
        errors.append(q.calcium_mg / truth - 1)
        assert q.hydroxyapatite_density_mg_per_mm3 == HYDROXYAPATITE_DENSITY_MG_PER_MM3 == 3.16
        assert q.calcium_volume_mm3 == pytest.approx(q.calcium_mg / 3.16)
        assert sum(s.calcium_mg for s in q.segments) == pytest.approx(q.calcium_mg)
        print(f"seed {p.record['seed']}: truth {truth:.1f} mg, estimate {q.calcium_mg:.1f} mg")
    assert np.all(np.abs(errors) <= 0.30)
    assert abs(np.mean(errors)) <= 0.15


def test_a_magnified_image_measures_the_breast_not_the_detector(tmp_path):
    """Geometry, not a convention of ours: on a magnification stand (factor M) the detector records the
    breast M times larger at its own pitch. The phantom rendered at pitch / M is that image; written
    with the detector's pitch and M in EstimatedRadiographicMagnificationFactor (0018,1114), as a
    vendor writes it, its BAC must still measure the breast's true centreline length and calcium mass
    (read at the detector they were M and M^2 times too large)."""
    import warnings

    from monai_bac.data import load_mammogram, write_mammogram_dicom
    from monai_bac.data.errors import DiagnosticViewWarning

    factor = 1.5
    p = make_phantom(1, view="CC", laterality="L", vendor="GE", spacing_mm=SPACING / factor)
    m = p.meta
    path = write_mammogram_dicom(tmp_path / "mag.dcm", p.raw, spacing_mm=(SPACING, SPACING), magnification=factor,
                                 view_modifiers=("magnification",), kvp=m["kvp"], thickness_mm=m["thickness_mm"],
                                 anode=m["anode"], filter=m["filter"], view=m["view"], laterality=m["laterality"],
                                 presentation=m["presentation"], photometric=m["photometric"],
                                 bits_stored=m["bits_stored"], manufacturer=m["manufacturer"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticViewWarning)
        image = load_mammogram(path)
    assert tuple(image.meta["spacing_mm"]) == (SPACING, SPACING)  # the detector's pitch
    q = quantify_image(image, p.bac_mask, p.breast_map, density_kwargs={"model": "eq4"})
    assert (q.plane_magnification, q.measured_at) == (factor, "breast plane (EstimatedRadiographicMagnificationFactor)")
    length, mass = p.record["bac_centreline_length_mm"], p.record["bac_calcium_mg"]
    print(f"magnified {factor} x: length {q.length_mm:.1f} mm (truth {length:.1f}), calcium {q.calcium_mg:.1f} mg "
          f"(truth {mass:.1f})")
    # the tolerances of the unmagnified images above (length 8 %, calcium 30 %)
    assert abs(q.length_mm / length - 1) <= 0.08 and abs(q.calcium_mg / mass - 1) <= 0.30
    assert q.area_mm2 == pytest.approx(p.bac_mask.sum() * (SPACING / factor) ** 2)
    at_detector = quantify_image(image, p.bac_mask, p.breast_map, density_kwargs={"model": "eq4"},
                                 plane_magnification=1.0)
    assert at_detector.measured_at == "as given"
    assert at_detector.length_mm == pytest.approx(factor * q.length_mm)
    assert at_detector.calcium_mg == pytest.approx(factor**2 * q.calcium_mg, rel=1e-6)
    with pytest.raises(ValueError, match="plane_magnification must be within 1-4"):
        quantify_mask(p.bac_mask, SPACING, plane_magnification=0.9)


def test_calcification_thickness_near_the_mask_equals_the_whole_image_map(phantoms):
    from monai_bac.transforms import CalcificationThickness, DensityMap

    p = phantoms[1]
    img = _image(p)
    full = np.asarray(CalcificationThickness()(DensityMap(compute_vbd=False)(img, p.breast_map[None]),
                                               p.breast_map[None]))[0]
    near = calc_thickness_near_mask(img, p.bac_mask, p.breast_map)
    from scipy import ndimage as ndi

    zone = ndi.binary_dilation(p.bac_mask > 0, iterations=3)
    np.testing.assert_allclose(near[zone], full[zone], atol=1e-6)
    assert (near != 0).sum() < 0.8 * (full != 0).sum()  # computed near the BAC only


def test_no_calcium_without_physics_or_on_processed_images():
    p = make_phantom(1, spacing_mm=0.5)
    img = MetaTensor(torch.from_numpy(p.linear[None].copy()), meta={**p.meta, "kvp": None})
    q = quantify_image(img, p.bac_mask, p.breast_map)
    assert q.calcium_mg is None and "KVP (0018,0060)" in q.calcium_note and q.length_mm > 0
    img = MetaTensor(torch.from_numpy(p.linear[None].copy()), meta={**p.meta, "is_raw": False})
    q = quantify_image(img, p.bac_mask, p.breast_map)
    assert q.calcium_mg is None and "FOR PRESENTATION" in q.calcium_note
    d = q.as_dict()
    json.dumps(d)  # serialisable for the reports
    assert d["segments"] and "segments" not in q.summary()


# ------------------------------------------------------------------------------ breast / patient
def _rows(present: dict[str, bool], pid="P1", length=10.0):
    return [dict(patient_id=pid, laterality=v[0], view=v[1:], present=p, length_mm=length * p,
                 calcium_mg=2.0 * p) for v, p in present.items()]


def test_breast_and_patient_summaries():
    rows = _rows({"LCC": True, "LMLO": False, "RCC": False, "RMLO": False})
    rows[0]["length_mm"] = 12.0
    rows.append(dict(patient_id="P2", laterality="L", view="CC", present=None))  # a failed image
    breasts = summarise_breasts(rows)
    left = next(b for b in breasts if b["patient_id"] == "P1" and b["laterality"] == "L")
    assert left["present"] and left["length_mm"] == 12.0 and left["views"] == "CC,MLO"
    patients = {p["patient_id"]: p for p in summarise_patients(rows)}
    p1 = patients["P1"]
    assert p1["complete_4_views"] and p1["present"] and p1["left_present"] and not p1["right_present"]
    assert p1["n_breasts_with_bac"] == 1 and p1["length_mm"] == 12.0 and p1["LCC_length_mm"] == 12.0
    assert patients["P2"]["n_failed"] == 1 and not patients["P2"]["complete_4_views"]


def test_a_diagnostic_view_is_counted_and_left_out_of_every_summary():
    """A magnified spot view of the left breast (larger, with BAC the screening views miss) changes
    neither the breast's nor the patient's figures, nor the 4-view analysis; it is counted."""
    rows = _rows({"LCC": False, "LMLO": True, "RCC": False, "RMLO": False})
    rows[1]["length_mm"] = 12.0
    before = (summarise_breasts(rows), summarise_patients(rows), presence_agreement(rows))
    spot = dict(patient_id="P1", laterality="L", view="CC", view_modifiers="MAGNIFICATION, SPOT COMPRESSION",
                magnification="1.8", present=True, length_mm=30.0, calcium_mg=9.0)
    stand = dict(spot, view_modifiers="", length_mm=25.0)  # the geometry alone says magnification
    displaced = dict(spot, view_modifiers="IMPLANT DISPLACED", magnification="1.08", length_mm=14.0)
    breasts, patients, agreement = (summarise_breasts(rows + [spot, stand]), summarise_patients(rows + [spot, stand]),
                                    presence_agreement(rows + [spot, stand]))
    left = next(b for b in breasts if b["laterality"] == "L")
    assert (left["length_mm"], left["calcium_mg"], left["n_images"], left["n_diagnostic_views"]) == (12.0, 2.0, 2, 2)
    assert [{k: v for k, v in b.items() if k != "n_diagnostic_views"} for b in breasts] == \
        [{k: v for k, v in b.items() if k != "n_diagnostic_views"} for b in before[0]]
    p1 = patients[0]
    assert p1["n_images"] == 6 and p1["n_diagnostic_views"] == 2 and p1["LCC_present"] is False
    assert p1["length_mm"] == before[1][0]["length_mm"] == 12.0 and p1["LCC_length_mm"] == 0.0
    assert agreement == before[2]
    # a full-field view with another modifier (implant displaced) is a screening view
    left = next(b for b in summarise_breasts(rows + [displaced]) if b["laterality"] == "L")
    assert left["length_mm"] == 14.0 and left["n_diagnostic_views"] == 0


def test_weighted_f1_matches_sklearn():
    rng = np.random.default_rng(0)
    a, b = rng.random(40) < 0.7, rng.random(40) < 0.6
    sk = pytest.importorskip("sklearn.metrics")
    assert weighted_f1(a, b) == pytest.approx(sk.f1_score(a, b, average="weighted", zero_division=0))
    assert weighted_f1(a, a) == 1.0


# ------------------------------------------------------------------------------ cohort (Fig. 10)
@pytest.fixture(scope="module")
def symmetric_cohort(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("symmetric")
    make_cohort(out, n=16, seed=3, spacing_mm=1.0, bac_prevalence=0.5, breast_bac_given_patient=1.0)
    return out


def _cohort_rows(root: Path, planted: str | None = None) -> list[dict]:
    """Per-image rows with the annotation's (ground truth) presence, from the label files."""
    from monai_bac.data import load_label

    rows = []
    for f in sorted((root / "truth").glob("*.json")):
        rec = json.loads(f.read_text())
        mask = np.asarray(load_label(root / "labels" / "gt" / f"{f.stem}.nii.gz"))[0]
        if f.stem == planted:
            mask = np.zeros_like(mask)  # the planted disagreement: this view's BAC erased
        q = quantify_mask(mask, rec["meta"]["spacing_mm"])
        rows.append(dict(patient_id=rec["patient_id"], laterality=rec["laterality"], view=rec["view"],
                         annotation_present=q.present, present=q.present, length_mm=q.length_mm))
    return rows


def test_symmetric_cohort_agrees_perfectly_and_a_planted_disagreement_is_found(symmetric_cohort):
    rows = _cohort_rows(symmetric_cohort)
    present = {r["patient_id"] for r in rows if r["annotation_present"]}
    assert present and len(present) < len({r["patient_id"] for r in rows})  # both classes
    result = cohort_analysis(rows)
    assert set(result) == {"prediction", "annotation"}
    for name in ("left_right", "cc_mlo"):
        r = result["annotation"][name]
        assert r["weighted_f1"] == 1.0 and r["agreement"] == 1.0 and r["discordant"] == []
        assert r["confusion"][0][1] == r["confusion"][1][0] == 0 and r["n_pairs"] == 2 * result["annotation"]["n_patients"]
    # plant one disagreement: the RCC view of a patient with BAC loses its annotation
    victim = sorted(present)[0]
    rows = _cohort_rows(symmetric_cohort, planted=f"{victim}_RCC")
    result = presence_agreement(rows, "annotation_present")
    lr, cm = result["left_right"], result["cc_mlo"]
    assert lr["confusion"][1][0] == 1 and lr["confusion"][0][1] == 0  # left present, right absent
    assert cm["confusion"][0][1] == 1  # RCC absent, RMLO present
    assert lr["weighted_f1"] < 1.0 and cm["weighted_f1"] < 1.0
    assert lr["discordant"] == [{"patient_id": victim, "LCC": True, "RCC": False}]
    assert cm["discordant"] == [{"patient_id": victim, "RCC": False, "RMLO": True}]


def test_a_repeated_view_is_present_when_either_image_is_whatever_their_order():
    rows = _rows({"LCC": True, "LMLO": True, "RCC": True, "RMLO": True}, "A")
    for repeat in (dict(rows[0], present=False), dict(rows[0], present=None)):  # a repeat without BAC, a failed one
        for order in (rows + [repeat], [repeat] + rows):
            out = presence_agreement(order)
            assert out["n_patients"] == 1 and out["left_right"]["agreement"] == 1.0, order
            assert summarise_patients(order)[0]["LCC_present"] is True


def test_incomplete_patients_are_left_out_of_the_4_view_analysis():
    rows = _rows({"LCC": True, "LMLO": True, "RCC": True, "RMLO": True}, "A") + \
        _rows({"LCC": True, "LMLO": True, "RCC": False}, "B")
    out = presence_agreement(rows)
    assert out["n_patients"] == 1 and out["n_incomplete"] == 1 and out["left_right"]["n_pairs"] == 2

"""The digital phantom: its physics, its ground truth and its simulated annotation."""

import json

import numpy as np
import torch
import pytest
from scipy.spatial import cKDTree

from monai_bac.phantom import EFFECT_NAMES, SOURCE_CODES, Effects, TPAConfig, make_cohort, make_phantom
from monai_bac.phantom.cohort import stratified_split

SPACING = 0.5  # mm: the full field of view at 570 x 479 pixels


@pytest.fixture(scope="module")
def cc_left():
    return make_phantom(11, view="CC", laterality="L", spacing_mm=SPACING, thickness_mm=50.0)


def test_full_size_shape_and_vendor_ranges():
    ph = make_phantom(0, spacing_mm=0.1, vendor="HOLOGIC")
    assert ph.raw.shape == (2850, 2394) and ph.raw.dtype == np.uint16
    assert ph.raw.max() <= 2**14 - 1  # 14-bit detector
    ge = make_phantom(0, spacing_mm=SPACING, vendor="GE")
    assert ge.meta["photometric"] == "MONOCHROME1" and ge.meta["bits_stored"] == 16
    breast = ge.breast_map > 0
    # GE raw stores 65535 - linear signal: breast tissue sits near the top (paper Fig. 3: 62299-65415)
    assert np.median(ge.raw[breast]) > 60000


def test_deterministic_per_seed():
    a = make_phantom(5, view="MLO", laterality="R", spacing_mm=SPACING)
    b = make_phantom(5, view="MLO", laterality="R", spacing_mm=SPACING)
    c = make_phantom(6, view="MLO", laterality="R", spacing_mm=SPACING)
    assert np.array_equal(a.raw, b.raw) and np.array_equal(a.tpa_mask, b.tpa_mask)
    assert not np.array_equal(a.raw, c.raw)


def test_air_and_pure_fat_invert_to_the_set_thickness(cc_left):
    ph, rec = cc_left, cc_left.record
    lin = ph.linear
    air = lin[ph.breast_map == 0]
    assert abs(air.mean() / rec["air_signal"] - 1) < 0.01
    fat = (ph.breast_map == 2) & (ph.h_dt == 0) & (ph.h_calc == 0) & (ph.h_muscle == 0)
    assert fat.sum() > 500
    thickness = np.log(rec["air_signal"] / lin[fat].mean()) / rec["mu_fat"]  # Beer-Lambert, mm
    assert thickness == pytest.approx(50.0, abs=0.3)


def test_dense_tissue_inverts_through_beer_lambert(cc_left):
    ph, rec = cc_left, cc_left.record
    region = (ph.breast_map == 2) & (ph.h_calc == 0) & (ph.h_dt > 3.0)
    assert region.sum() > 500
    p_fat = rec["air_signal"] * np.exp(-rec["mu_fat"] * 50.0)
    h_dt = np.log(ph.linear[region] / p_fat) / (rec["mu_fat"] - rec["mu_dt"])  # Eq. (4)
    err = np.abs(h_dt - ph.h_dt[region])
    assert np.median(err) < 0.3  # mm, quantum noise only


def test_periphery_thins_towards_the_skin(cc_left):
    ph = cc_left
    assert np.all(ph.thickness[ph.breast_map == 2] == pytest.approx(50.0))
    rim = ph.thickness[ph.breast_map == 1]
    assert rim.max() <= 50.0 and rim.min() < 25.0
    assert (ph.breast_map == 3).sum() == 0  # no pectoral muscle in CC
    mlo = make_phantom(11, view="MLO", spacing_mm=SPACING)
    pec = mlo.breast_map == 3
    assert pec.sum() > 1000 and pec[:, : pec.shape[1] // 2].sum() == pec.sum()  # at the chest wall (left)


def test_bac_truth_is_calcium_on_the_vessel_paths():
    ph = make_phantom(3, view="CC", laterality="R", spacing_mm=0.2, fov_mm=(285.0, 239.4))
    assert ph.record["has_bac"] and ph.bac_mask.any()
    assert np.all(ph.h_calc[ph.bac_mask > 0] > 0)
    arteries = ph.objects["arteries"]
    pts = np.concatenate([a.points for a in arteries])
    r_max = max(a.radius_mm for a in arteries)
    rows, cols = np.nonzero(ph.bac_mask)
    cols = ph.bac_mask.shape[1] - 1 - cols  # undo the mirroring of a right breast
    dist, _ = cKDTree(pts).query(np.column_stack([rows, cols]) * 0.2)
    assert dist.max() <= r_max + 0.2 + 0.5  # within the vessel (+ pixel and path step)
    # calcium off the vessels is micro-calcification, not BAC
    clusters = ph.objects["clusters"]
    off = (ph.h_calc > 0) & (ph.bac_mask == 0)
    if clusters:
        specks = np.concatenate([c.specks[:, :2] for c in clusters])
        r, c = np.nonzero(off)
        d2, _ = cKDTree(specks).query(np.column_stack([r, ph.bac_mask.shape[1] - 1 - c]) * 0.2)
        assert d2.max() < 0.6
    # the record's calcium matches the truth map
    assert ph.record["bac_calcium_mg"] > 0


def test_no_bac_image():
    ph = make_phantom(4, has_bac=False, spacing_mm=SPACING)
    assert not ph.bac_mask.any() and not ph.record["has_bac"]
    assert ph.record["tpa"]["bac_runs"] == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tpa_has_the_configured_error_rates(seed):
    cfg = TPAConfig(miss_rate=0.25, under_rate=0.5, fp_microcalc_rate=0.5, fp_strand_rate=0.5, fp_edge_rate=1.0)
    ph = make_phantom(seed, spacing_mm=SPACING, tpa=cfg, n_clusters=4, n_strands=4, n_edges=2)
    t = ph.record["tpa"]
    assert t["bac_missed"] == round(0.25 * t["bac_runs"])
    assert t["bac_under"] == round(0.5 * (t["bac_runs"] - t["bac_missed"]))
    assert t["microcalc_brushed"] == round(0.5 * t["microcalc_clusters"])
    assert t["strands_brushed"] == round(0.5 * t["strands"])
    # each brushed error is really in the annotation, labelled with its source
    present = set(np.unique(ph.tpa_source)) - {0}
    if t["microcalc_brushed"]:
        assert SOURCE_CODES["microcalc"] in present
    if t["strands_brushed"]:
        assert SOURCE_CODES["strand"] in present
    if t["edges_brushed"]:
        assert SOURCE_CODES["edge"] in present
    assert np.array_equal(ph.tpa_mask > 0, ph.tpa_source > 0)


def test_perfect_annotator_brushes_only_bac():
    cfg = TPAConfig(miss_rate=0, under_rate=0, fp_microcalc_rate=0, fp_strand_rate=0, fp_edge_rate=0)
    ph = make_phantom(8, spacing_mm=SPACING, tpa=cfg, n_clusters=3, n_strands=3)
    assert set(np.unique(ph.tpa_source)) <= {0, SOURCE_CODES["bac"]}
    # the coarse brush covers the whole calcified vessel
    covered = (ph.tpa_mask[ph.bac_mask > 0] > 0).mean()
    assert covered > 0.9


def test_stratified_split_keeps_patients_whole_and_balanced():
    groups = {f"p{i}": i % 5 != 0 for i in range(40)}
    split = stratified_split(groups, seed=3)
    names = list(split.values())
    assert names.count("training") == 32 and names.count("validation") == 4 and names.count("test") == 4
    for s in ("training", "validation", "test"):
        members = [g for g in groups if split[g] == s]
        assert sum(not groups[g] for g in members) == {"training": 6, "validation": 1, "test": 1}[s]


def test_cohort_on_disk(tmp_path):
    datalist_path = make_cohort(tmp_path / "c", n=12, seed=2, spacing_mm=1.0)
    datalist = json.loads(datalist_path.read_text())
    items = datalist["training"] + datalist["validation"] + datalist["test"]
    assert len(items) == 12 and all(datalist[s] for s in ("training", "validation", "test"))
    for split in ("training", "validation", "test"):
        for item in datalist[split]:
            for key in ("image", "label", "label_gt", "truth"):
                assert (tmp_path / "c" / item[key]).is_file()
    patients = {s: {i["patient_id"] for i in datalist[s]} for s in ("training", "validation", "test")}
    assert not (patients["training"] & patients["test"]) and not (patients["training"] & patients["validation"])
    views = sorted((i["laterality"], i["view"]) for i in items if i["patient_id"] == items[0]["patient_id"])
    assert views == [("L", "CC"), ("L", "MLO"), ("R", "CC"), ("R", "MLO")]
    # realistic physics with every effect is the cohorts' default, and recorded
    params = json.loads((tmp_path / "c" / "phantom.json").read_text())
    assert (params["physics"], params["effects"]) == ("realistic", "all")
    record = json.loads((tmp_path / "c" / items[0]["truth"].replace(".npz", ".json")).read_text())
    assert record["physics"] == "realistic" and all(record["effects"].values())
    with pytest.raises(FileExistsError, match="overwrite"):
        make_cohort(tmp_path / "c", n=12, seed=2, spacing_mm=1.0)


def test_ensure_cohort_regenerates_a_cohort_of_other_physics(tmp_path):
    """A cached cohort is reused only when it was made with the same physics and effects."""
    from monai_bac.phantom.cohort import ensure_cohort

    folder = tmp_path / "c"
    make_cohort(folder, n=1, seed=5, spacing_mm=2.0, physics="ideal")
    ideal_raw = next((folder / "images").glob("*.dcm")).read_bytes()
    ensure_cohort(folder, n=1, seed=5, spacing_mm=2.0, physics="ideal")  # same: reused
    assert next((folder / "images").glob("*.dcm")).read_bytes() == ideal_raw
    ensure_cohort(folder, n=1, seed=5, spacing_mm=2.0)  # the default, realistic: regenerated
    params = json.loads((folder / "phantom.json").read_text())
    assert (params["physics"], params["effects"]) == ("realistic", "all")
    assert next((folder / "images").glob("*.dcm")).read_bytes() != ideal_raw
    with pytest.raises(ValueError, match="realistic"):
        make_cohort(tmp_path / "d", n=1, spacing_mm=2.0, physics="ideal", effects="scatter")


@pytest.mark.parametrize("vendor", ["HOLOGIC", "GE"])
def test_phantom_dicom_round_trips_every_tag(tmp_path, vendor):
    """A cohort's DICOM file read back by load_mammogram: pixels linear again, every tag in the meta."""
    from monai_bac.data import load_label, load_mammogram

    datalist = json.loads(make_cohort(tmp_path / vendor, n=1, seed=4, spacing_mm=1.0, vendors=(vendor,)).read_text())
    item = (datalist["training"] + datalist["validation"] + datalist["test"])[0]
    truth = json.loads((tmp_path / vendor / item["truth"].replace(".npz", ".json")).read_text())
    img = load_mammogram(tmp_path / vendor / item["image"])
    ph = make_phantom(truth["seed"], view=truth["view"], laterality=truth["laterality"], spacing_mm=1.0,
                      thickness_mm=truth["thickness_mm"], vendor=vendor, has_bac=truth["has_bac"], physics="realistic")
    assert img.shape == (1, *ph.raw.shape) and img.dtype == torch.float32
    np.testing.assert_array_equal(img[0].numpy(), ph.linear)  # MONOCHROME1 inverted back to linear
    m, meta = img.meta, truth["meta"]
    assert m["spacing_mm"] == pytest.approx(meta["spacing_mm"])
    assert m["kvp"] == pytest.approx(meta["kvp"]) and m["thickness_mm"] == pytest.approx(meta["thickness_mm"])
    assert (m["anode"], m["filter"]) == (meta["anode"], meta["filter"])
    assert (m["view"], m["laterality"]) == (meta["view"], meta["laterality"])
    assert m["presentation"] == "FOR PROCESSING" and m["is_raw"] is True
    assert m["manufacturer"] == meta["manufacturer"] and m["photometric"] == meta["photometric"]
    assert m["bits_stored"] == meta["bits_stored"] and m["modality"] == "MG"
    assert m["exposure_mas"] == pytest.approx(meta["exposure_mas"], abs=0.01)
    assert m["compression_force_n"] == pytest.approx(meta["compression_force_n"])
    assert m["patient_id"] == item["patient_id"]
    label = load_label(tmp_path / vendor / item["label_gt"])
    np.testing.assert_array_equal(label[0].numpy(), ph.bac_mask)


# ------------------------------------------------------------------------------ realistic physics
def test_realistic_physics_keeps_truth_and_annotation():
    """Same seed, other physics: the anatomy, the truth and the annotation do not move."""
    ideal = make_phantom(9, view="MLO", spacing_mm=SPACING, thickness_mm=55.0)
    real = make_phantom(9, view="MLO", spacing_mm=SPACING, thickness_mm=55.0, physics="realistic",
                        effects=Effects(merged=False, edge=False))
    for name in ("breast_map", "thickness", "h_dt", "h_muscle", "h_calc", "bac_mask", "tpa_mask", "tpa_source"):
        np.testing.assert_array_equal(getattr(ideal, name), getattr(real, name), err_msg=name)
    assert real.record["vbd_percent"] == ideal.record["vbd_percent"]
    assert real.record["physics"] == "realistic" and ideal.h_skin is None
    assert not np.array_equal(ideal.raw, real.raw)
    assert real.raw.max() <= 2**14 - 1 and real.record["detector_offset"] > 0
    with pytest.raises(ValueError, match="physics"):
        make_phantom(9, spacing_mm=SPACING, physics="monte-carlo")
    # the merged effect (on by default) moves look-alikes next to BAC and merges strokes: the same
    # truth and annotation as an ideal phantom with those settings (edge off: it reshapes the periphery)
    merged = make_phantom(9, view="MLO", spacing_mm=SPACING, thickness_mm=55.0, physics="realistic",
                          effects=Effects(edge=False))
    ideal_merged = make_phantom(9, view="MLO", spacing_mm=SPACING, thickness_mm=55.0, lookalikes_near_bac=0.5,
                                tpa=TPAConfig(merge_rate=0.5))
    for name in ("h_dt", "h_calc", "tpa_mask", "tpa_source"):
        np.testing.assert_array_equal(getattr(ideal_merged, name), getattr(merged, name), err_msg=name)
    assert merged.record["tpa"]["config"]["merge_rate"] == 0.5


def _effect_signature(ph) -> dict[str, bool]:
    """Which effects a phantom's image and record show."""
    r = ph.record
    return dict(spectrum=r["detector"] != "ideal absorber 0.0 mm", scatter=r["spr_measured"] > 0,
                heel=r["heel_fraction"] > 0, vendor=ph.h_skin is not None and r["detector_offset"] > 0,
                merged=r["tpa"]["config"]["merge_rate"] > 0, edge="periphery_width_min_mm" in r["geometry"])


@pytest.mark.parametrize("name", EFFECT_NAMES)
def test_each_realistic_effect_alone(name):
    """Each effect can be switched on alone (the ablation of benchmarks/validate_realistic.py);
    with no physical effect on, the image is the ideal one, bit for bit."""
    kw = dict(view="MLO", spacing_mm=1.0, thickness_mm=60.0, vendor="GE")
    alone = make_phantom(4, physics="realistic", effects=name, **kw)
    assert alone.record["effects"] == {n: n == name for n in EFFECT_NAMES}
    if name == "merged":
        ideal = make_phantom(4, lookalikes_near_bac=0.5, tpa=TPAConfig(merge_rate=0.5), **kw)
        np.testing.assert_array_equal(alone.raw, ideal.raw)
        assert alone.record["tpa"]["merged_strokes"] >= 1
    elif name == "edge":  # the ideal image formation of a breast whose periphery varies round the outline
        ideal = make_phantom(4, **kw)
        assert "periphery_width_min_mm" in alone.record["geometry"] and "detector" not in alone.record
        assert not np.array_equal(alone.thickness, ideal.thickness) and not np.array_equal(alone.raw, ideal.raw)
        np.testing.assert_array_equal(alone.breast_map > 0, ideal.breast_map > 0)  # the same outline
    else:
        assert _effect_signature(alone) == {n: n == name for n in EFFECT_NAMES}
        assert not np.array_equal(alone.raw, make_phantom(4, **kw).raw)
    if name == "spectrum":  # polyenergetic: the AEC picks Rh/Rh for 60 mm on GE, and the beam hardens
        assert alone.meta["filter"] == "RHODIUM" and alone.record["detector"] == "csi 0.15 mm"
    else:  # one energy: the ideal mode's attenuation, Eq. (4) exact
        assert alone.record["mu_fat"] == pytest.approx(make_phantom(4, **kw).record["mu_fat"])
    everything = make_phantom(4, physics="realistic", **kw)
    assert _effect_signature(everything) == {n: True for n in EFFECT_NAMES}
    assert Effects.parse("scatter+heel") == Effects.only("scatter", "heel") and Effects.parse("all") == Effects()
    with pytest.raises(ValueError, match="unknown effect"):
        Effects.parse("grid+scatter")
    with pytest.raises(ValueError, match="realistic"):
        make_phantom(4, effects="scatter", **kw)


# ------------------------------------------------------------------ edge profile round the outline
EDGE_SPACING = 0.4  # mm
EDGE_SEEDS = [(7001, "CC", "L"), (7002, "MLO", "R")]  # own seeds (>= 7000), not the validation sets


def _sector_widths(ph, sectors_deg=range(-75, 76, 15), half_deg=4.0) -> np.ndarray:
    """Local periphery width (mm) measured on the TRUTH thickness map: in each angular sector
    round the outline's centre, the smallest skin distance of a pixel at the full thickness H0."""
    from scipy import ndimage

    sp, h0 = ph.spacing, ph.record["compressed_thickness_mm"]
    skin_distance = ndimage.distance_transform_edt(ph.thickness > 0) * sp
    full = (ph.thickness >= np.float32(h0)) & (ph.breast_map != 4)  # not the pectoral muscle
    y, x = np.indices(ph.thickness.shape) * sp
    if ph.meta["laterality"] == "R":
        x = x[:, ::-1]  # back to the canonical frame: chest wall at x = 0
    phi = np.degrees(np.arctan2(y - ph.record["geometry"]["center_mm"], np.maximum(x, 1e-6)))
    return np.array([skin_distance[full & (np.abs(phi - a) < half_deg)].min() for a in sectors_deg])


def test_ideal_phantom_has_no_edge_variation():
    """The edge effect draws from its own generator: an ideal phantom and a realistic one with
    ``edge`` off are bit for bit what they were before it existed (same outline, widths, draws)."""
    import hashlib

    kw = dict(view="MLO", spacing_mm=1.0, thickness_mm=60.0)
    ideal = make_phantom(4, **kw)
    assert "periphery_width_min_mm" not in ideal.record["geometry"]
    # stored reference: the ideal breast (outline, compressed region, thickness) of before the edge
    # effect, the same with numpy 1.26 and 2.x
    digest = hashlib.sha256(ideal.breast_map.tobytes() + ideal.thickness.tobytes()).hexdigest()
    assert digest[:16] == "b7c0bdbdd6bcfbe1" and ideal.record["periphery_width_mm"] == pytest.approx(39.946516674)
    # the ideal image is the realistic one with nothing on, and the edge-off breast is the ideal one
    none = make_phantom(4, physics="realistic", effects="none", **kw)
    for name in ("raw", "breast_map", "thickness", "h_dt", "h_calc", "bac_mask", "tpa_mask", "tpa_source"):
        np.testing.assert_array_equal(getattr(ideal, name), getattr(none, name), err_msg=name)
    off = make_phantom(4, physics="realistic", effects=Effects(edge=False), **kw)
    on = make_phantom(4, physics="realistic", **kw)
    for name in ("breast_map", "thickness"):  # (merged, on, moves look-alikes: h_dt differs)
        np.testing.assert_array_equal(getattr(ideal, name), getattr(off, name), err_msg=name)
    # without edge the periphery is one width all round; with it, the base width and outline stay
    w = ideal.record["periphery_width_mm"]
    assert np.all(np.abs(_sector_widths(off) - w) < 1.5)  # mm: a pixel and the EDT's sampling
    assert on.record["periphery_width_mm"] == w
    assert on.record["geometry"]["center_mm"] == ideal.record["geometry"]["center_mm"]
    np.testing.assert_array_equal(on.breast_map > 0, ideal.breast_map > 0)


@pytest.mark.parametrize("seed,view,laterality", EDGE_SEEDS)
def test_realistic_periphery_width_varies_round_the_outline(seed, view, laterality):
    """The truth thickness map's periphery is >= 1.3x wider at its widest than at its narrowest
    (wide towards the nipple, narrow at the chest wall), within 0.6-1.5x the base width and
    0.25-0.9 H0; the compressed region is where the thickness reaches H0."""
    ph = make_phantom(seed, view=view, laterality=laterality, spacing_mm=EDGE_SPACING, physics="realistic")
    h0, w, g = ph.record["compressed_thickness_mm"], ph.record["periphery_width_mm"], ph.record["geometry"]
    widths = _sector_widths(ph)
    tol = 1.0  # mm: the EDT and the 0.5 mm grid the outline's distance is drawn on
    assert widths.max() >= 1.3 * widths.min()
    assert widths.argmax() in range(3, 9)  # the widest part faces the nipple (-30 to +45 degrees)
    assert widths.min() >= max(0.6 * w, 0.25 * h0) - tol and widths.max() <= min(1.5 * w, 0.9 * h0) + tol
    assert g["periphery_width_min_mm"] >= 0.25 * h0 - 1e-3 and g["periphery_width_max_mm"] <= 0.9 * h0 + 1e-3
    tissue = ph.breast_map > 0
    compressed = ph.breast_map == 2
    assert np.all(ph.thickness[compressed] == np.float32(h0))
    assert np.all(ph.h_skin <= ph.thickness) and np.all(ph.h_skin[tissue] > 0)


def test_edge_geometry_compressed_truth_and_skin_path():
    """breast_geometry with an edge generator: COMPRESSED is exactly skin distance >= the local
    width, the thickness follows the local profile, and the skin path never exceeds it."""
    from monai_bac.phantom.geometry import COMPRESSED, PECTORAL, breast_geometry, edge_profile, skin_path_mm
    from monai_bac.phantom.grid import Grid

    grid = Grid.from_fov((285.0, 239.4), EDGE_SPACING)
    for seed, view in ((7003, "CC"), (7004, "MLO")):
        h0 = 55.0
        geo = breast_geometry(np.random.default_rng(seed), grid, view, h0, edge_rng=np.random.default_rng([seed, 1]))
        plain = breast_geometry(np.random.default_rng(seed), grid, view, h0)
        np.testing.assert_array_equal(geo.inside, plain.inside)  # the edge only reshapes the periphery
        assert geo.periphery_width_mm == plain.periphery_width_mm and plain.local_width_mm is None
        local, sd, inside = geo.local_width_mm, geo.skin_distance_mm, geo.inside
        assert local.dtype == np.float32 and local.shape == grid.shape
        w_in = local[inside]
        assert w_in.min() >= 0.25 * h0 - 1e-3 and w_in.max() <= 0.9 * h0 + 1e-3 and w_in.max() >= 1.3 * w_in.min()
        assert 0.7 - 1e-6 <= geo.profile_exponent[inside].min() < geo.profile_exponent[inside].max() <= 1.4 + 1e-6
        not_muscle = inside & ~geo.pectoral
        np.testing.assert_array_equal(geo.breast_map[not_muscle] == COMPRESSED, (sd >= local)[not_muscle])
        assert np.all(geo.breast_map[geo.pectoral] == PECTORAL)
        s = np.clip(sd / local, 0.0, 1.0)
        np.testing.assert_allclose(geo.thickness_mm[inside], (h0 * edge_profile(s, geo.profile_exponent))[inside],
                                   rtol=1e-6)
        skin = skin_path_mm(geo)
        assert np.all(skin <= geo.thickness_mm) and np.all(skin[~inside] == 0)
        assert np.allclose(skin[geo.breast_map == COMPRESSED], 2 * 1.45)  # two skin layers where compressed


def test_a_tilted_paddle_scales_the_thickness_row_by_row():
    """paddle_tilt_deg: the separation is H0 at the breast's centre row and H0 + y tan(t) at y mm
    from it, the fall-off keeps its shape (thickness / parallel-paddle thickness is one number per
    row), the contact region and the anatomy's draws are those of parallel paddles, and 0 is the
    parallel phantom bit for bit."""
    import math

    from monai_bac.phantom.geometry import COMPRESSED, breast_geometry
    from monai_bac.phantom.grid import Grid

    grid = Grid.from_fov((285.0, 239.4), EDGE_SPACING)
    h0, tilt = 60.0, 0.7
    flat = breast_geometry(np.random.default_rng(7003), grid, "CC", h0)
    tilted = breast_geometry(np.random.default_rng(7003), grid, "CC", h0, paddle_tilt_deg=tilt)
    np.testing.assert_array_equal(tilted.breast_map, flat.breast_map)
    rows_mm = grid.axes_mm()[0]
    expected = 1.0 + (rows_mm - flat.params["center_mm"]) * math.tan(math.radians(tilt)) / h0
    inside = flat.inside
    ratio = np.where(inside, tilted.thickness_mm / np.maximum(flat.thickness_mm, 1e-6), np.nan)
    rows = np.flatnonzero(inside.any(1))
    np.testing.assert_allclose(np.nanmax(ratio[rows], 1), expected[rows], rtol=1e-5)
    np.testing.assert_allclose(np.nanmin(ratio[rows], 1), expected[rows], rtol=1e-5)
    comp = tilted.thickness_mm[flat.breast_map == COMPRESSED]
    span = (comp.max() - comp.min()) / math.tan(math.radians(tilt))  # the contact region's extent in rows, mm
    assert 80.0 < span < 285.0 and comp.min() < h0 < comp.max()
    assert tilted.params["paddle_tilt_deg"] == tilt and "paddle_tilt_deg" not in flat.params
    kw = dict(view="CC", physics="realistic", spacing_mm=EDGE_SPACING, thickness_mm=h0)
    a, b = make_phantom(7003, **kw), make_phantom(7003, paddle_tilt_deg=0.0, **kw)
    np.testing.assert_array_equal(a.raw, b.raw)
    c = make_phantom(7003, paddle_tilt_deg=tilt, **kw)
    np.testing.assert_array_equal(c.tpa_mask, a.tpa_mask)  # same anatomy and annotation
    assert not np.array_equal(c.raw, a.raw) and c.meta["thickness_mm"] == a.meta["thickness_mm"]
    with pytest.raises(ValueError, match="paddle_tilt_deg"):
        make_phantom(7003, spacing_mm=EDGE_SPACING, paddle_tilt_deg=10.0)


@pytest.mark.parametrize("thickness,low,high", [(30.0, 0.1, 0.2), (50.0, 0.17, 0.3), (70.0, 0.25, 0.4)])
def test_realistic_scatter_to_primary_in_the_published_range(thickness, low, high):
    """SPR behind the grid in the middle of the breast: 0.1-0.4 over 20-80 mm (Boone & Cooper
    2000; Sechopoulos 2007); less near the skin line, where less tissue scatters."""
    rec = make_phantom(1, spacing_mm=1.0, thickness_mm=thickness, physics="realistic").record
    assert low <= rec["spr_model"] <= high and low <= rec["spr_measured"] <= high
    assert rec["spr_near_skin"] < 0.8 * rec["spr_measured"]


def test_realistic_scatter_amplitude_is_physics_not_where_the_dense_tissue_lies():
    """The scatter kernel's amplitude is set on a homogeneous breast of the outline (the breasts
    the published SPRs are measured on): such a breast gets SPR(H0) in its middle, and a dense
    insert there raises S/P behind it and takes from the scatter 40-60 mm away only the primary
    it removes from the spread (Boone & Cooper 2000's convolution model). Anchoring the amplitude
    on the image's own S/P in its middle, as the phantom did before, scaled the scatter of the
    whole breast down by about the insert's contrast."""
    from monai_bac import physics
    from monai_bac.phantom import xray
    from monai_bac.phantom.geometry import COMPRESSED, breast_geometry
    from monai_bac.phantom.grid import Grid

    grid, h0, g = Grid.from_fov((285.0, 239.4), 0.5), 60.0, 0.2
    geo = breast_geometry(np.random.default_rng(3), grid, "CC", h0)
    b = xray.beam(29.0, "TUNGSTEN", "RHODIUM")
    uniform = xray.homogeneous_primary(b, geo.thickness_mm, g)
    middle = xray._middle(geo)
    spr = float(physics.scatter_to_primary_ratio(h0))
    plain = xray.scatter_field(uniform, geo, grid, b, g)
    assert np.median(plain[middle] / uniform[middle]) == pytest.approx(spr, rel=0.01)

    rows, cols = np.nonzero(middle)
    centre = np.array([rows.mean(), cols.mean()]) * grid.spacing
    yy, xx = np.meshgrid(*(np.arange(n) * grid.spacing for n in grid.shape), indexing="ij")
    r = np.hypot(yy - centre[0], xx - centre[1])
    insert = r < 20.0
    assert insert[middle].mean() > 0.5  # the insert covers most of the middle
    dense = uniform * np.where(insert, np.float32(0.4), np.float32(1.0))
    scattered = xray.scatter_field(dense, geo, grid, b, g)
    ring = (r > 40.0) & (r < 60.0) & (geo.breast_map == COMPRESSED)
    away = float(np.median(scattered[ring] / plain[ring]))
    assert 0.8 < away < 0.99  # a little less scatter: the insert passes less primary to spread
    behind = float(np.median(scattered[insert] / dense[insert]))
    assert behind > 1.5 * spr  # the scatter stays, the primary behind the insert falls


def test_realistic_beam_hardening_and_anode_filter_by_thickness():
    """The effective attenuation falls with thickness at the same kVp (beam hardening), and the
    automatic exposure control moves GE from Mo/Mo to Rh/Rh and Hologic from W/Rh to W/Ag."""
    thin = make_phantom(2, spacing_mm=1.0, thickness_mm=30.0, kvp=28, physics="realistic")
    thick = make_phantom(2, spacing_mm=1.0, thickness_mm=60.0, kvp=28, physics="realistic")
    assert thin.meta["filter"] == thick.meta["filter"] == "RHODIUM"
    assert thick.record["mu_fat"] < 0.97 * thin.record["mu_fat"]
    assert thick.record["mu_dt"] - thick.record["mu_fat"] < thin.record["mu_dt"] - thin.record["mu_fat"]
    ge = [make_phantom(2, spacing_mm=1.0, thickness_mm=t, vendor="GE", physics="realistic").meta for t in (35.0, 70.0)]
    assert [(m["anode"], m["filter"]) for m in ge] == [("MOLYBDENUM", "MOLYBDENUM"), ("RHODIUM", "RHODIUM")]
    assert make_phantom(2, spacing_mm=1.0, thickness_mm=72.0, physics="realistic").meta["filter"] == "SILVER"


def test_realistic_transmission_table_matches_the_spectral_sum():
    """The 2D (adipose, glandular) table against the exact polyenergetic sum, < 0.1 %."""
    from monai_bac.phantom import xray

    b = xray.beam(29.0, "TUNGSTEN", "RHODIUM")
    table = xray._transmission_table(b, 90.0, 60.0)
    rng = np.random.default_rng(0)
    a, g = rng.uniform(0, 90, 200).astype(np.float32), rng.uniform(0, 60, 200).astype(np.float32)
    looked_up = xray._bilinear(table.log_s, a, g, table.step_a)
    exact = np.log(np.exp(-(a[:, None] * b.mu_fat + g[:, None] * b.mu_gland)) @ b.w1)
    np.testing.assert_allclose(looked_up, exact, atol=1e-3)
    # muscle and skin as adipose + glandular equivalents: exact to 0.5 % where the beam behind a
    # breast (>= 30 mm) has its photons
    from monai_bac.physics import mu_xraydb

    behind = b.w1 * np.exp(-30.0 * b.mu_fat)
    for name, (alpha, beta) in (("muscle", b.muscle), ("skin", b.skin)):
        err = np.abs((alpha * b.mu_fat + beta * b.mu_gland) / mu_xraydb(name, b.spectrum.energy_kev) - 1)
        assert err[behind > 1e-3 * behind.max()].max() < 0.005


def test_transmission_table_lookup_in_blocks_is_the_whole_lookup(monkeypatch):
    """The lookup runs in blocks of pixels (speed); the blocks' seams change nothing."""
    from monai_bac.phantom import xray

    b = xray.beam(29.0, "TUNGSTEN", "RHODIUM")
    table = xray._transmission_table(b, 90.0, 60.0)
    rng = np.random.default_rng(1)
    a, g = (rng.uniform(0, hi, (37, 29)).astype(np.float32) for hi in (90, 60))
    whole = xray._bilinear(table.log_s, a, g, table.step_a)
    monkeypatch.setattr(xray, "_LOOKUP_BLOCK", 100)  # 11 blocks, the last one short
    blocks = xray._bilinear(table.log_s, a, g, table.step_a)
    assert blocks.shape == a.shape and blocks.dtype == np.float32
    np.testing.assert_array_equal(blocks, whole)
    exact = np.log(np.exp(-(a[..., None] * b.mu_fat + g[..., None] * b.mu_gland)) @ b.w1)
    np.testing.assert_allclose(blocks, exact, atol=1e-3)


def test_grid_upsampling_is_bilinear_between_the_coarse_samples():
    """Smooth fields are drawn on the coarse grid and interpolated up, in blocks of rows: the
    result is scipy's linear interpolation at each fine pixel's position, whatever the blocks."""
    from scipy import ndimage

    from monai_bac.phantom.grid import _ROW_BLOCK, Grid

    fine = Grid((3 * _ROW_BLOCK + 17, 211), 0.1)  # a short last block
    coarse = fine.coarse()
    field = np.random.default_rng(2).standard_normal(coarse.shape).astype(np.float32)
    up = fine.upsample(field, coarse)
    assert up.shape == fine.shape and up.dtype == np.float32
    f = coarse.spacing / fine.spacing
    r, c = np.meshgrid(np.arange(fine.shape[0]) / f, np.arange(fine.shape[1]) / f, indexing="ij")
    expected = ndimage.map_coordinates(field.astype(np.float64), [r, c], order=1, mode="nearest")
    np.testing.assert_allclose(up, expected, atol=1e-5)
    k = int(round(f))  # the coarse samples themselves come through exactly
    nodes = up[::k, ::k]
    np.testing.assert_array_equal(nodes, field[: nodes.shape[0], : nodes.shape[1]])


def test_realistic_heel_effect_and_skin():
    """Air fluence falls 10-20 % from the chest wall to the nipple; skin is 2 x 1.45 mm under the
    paddles and the whole thickness at the skin line."""
    ph = make_phantom(6, view="CC", spacing_mm=1.0, thickness_mm=50.0, physics="realistic")
    rec = ph.record
    assert 0.10 <= rec["heel_fraction"] <= 0.20
    air = ph.breast_map == 0
    from scipy import ndimage

    far = air & (ndimage.distance_transform_edt(air) > 30)  # mm at 1 mm spacing: little scatter
    rows, cols = np.nonzero(far)
    nipple_mm = rec["geometry"]["a_mm"]
    keep = cols < 2 * nipple_mm
    signal = ph.linear[rows[keep], cols[keep]] - rec["detector_offset"]
    slope, intercept = np.polyfit(cols[keep].astype(float), signal, 1)
    assert -slope * nipple_mm / intercept == pytest.approx(rec["heel_fraction"], abs=0.02)
    assert np.allclose(ph.h_skin[ph.breast_map == 2], 2 * 1.45, atol=1e-4)
    rim = (ph.breast_map == 1) & (ph.thickness > 0) & (ph.thickness < 2.0)
    assert np.allclose(ph.h_skin[rim], ph.thickness[rim])


@pytest.mark.parametrize("vendor,pitch,bits,photometric", [("HOLOGIC", 0.07, 14, "MONOCHROME2"),
                                                           ("GE", 0.1, 16, "MONOCHROME1"),
                                                           ("SIEMENS", 0.085, 14, "MONOCHROME2")])
def test_vendor_native_pixel_pitch_and_encoding(tmp_path, vendor, pitch, bits, photometric):
    """Each vendor's pitch and encoding, through a real DICOM file and back."""
    from monai_bac.data import load_mammogram, write_mammogram_dicom

    ph = make_phantom(3, spacing_mm=None, fov_mm=(40.0, 30.0), vendor=vendor, physics="realistic")
    assert ph.meta["spacing_mm"] == (pitch, pitch)
    assert ph.raw.shape == (round(40.0 / pitch), round(30.0 / pitch))
    assert ph.meta["bits_stored"] == bits and ph.meta["photometric"] == photometric
    assert int(ph.raw.max()) <= 2**bits - 1
    m = ph.meta
    write_mammogram_dicom(tmp_path / "x.dcm", ph.raw, spacing_mm=m["spacing_mm"], kvp=m["kvp"],
                          thickness_mm=m["thickness_mm"], anode=m["anode"], filter=m["filter"], view=m["view"],
                          laterality=m["laterality"], manufacturer=m["manufacturer"], photometric=m["photometric"],
                          bits_stored=m["bits_stored"])
    img = load_mammogram(tmp_path / "x.dcm")
    assert img.meta["spacing_mm"] == pytest.approx((pitch, pitch)) and img.meta["bits_stored"] == bits
    np.testing.assert_array_equal(img[0].numpy(), ph.linear)


# ---------------------------------------------------------------- look-alikes and annotator habits
def _component_with_bac(ph, points_mm):
    """Whether the TPA component under any of ``points_mm`` (left breast) also holds BAC strokes."""
    from scipy import ndimage

    labels, _ = ndimage.label(ph.tpa_mask > 0, structure=np.ones((3, 3)))
    rc = np.clip(np.rint(np.asarray(points_mm) / ph.spacing).astype(int), 0, np.array(ph.tpa_mask.shape) - 1)
    ids = set(labels[rc[:, 0], rc[:, 1]].tolist()) - {0}
    return any((ph.tpa_source[labels == i] == SOURCE_CODES["bac"]).any() for i in ids)


def test_lookalikes_beside_and_across_bac():
    ph = make_phantom(1, spacing_mm=SPACING, n_clusters=4, n_strands=4, n_edges=0, lookalikes_near_bac=1.0)
    calcified = cKDTree(np.concatenate([a.points for a in ph.objects["arteries"] if a.runs]))
    clusters, strands = ph.objects["clusters"], ph.objects["strands"]
    assert len(clusters) == 4 and len(strands) == 4
    for c in clusters:  # next to a calcified run
        assert calcified.query(c.center)[0] < 6.0
    for s in strands:  # across (or along) one
        assert calcified.query(s.points)[0].min() < 1.0
    half = make_phantom(1, spacing_mm=SPACING, n_clusters=4, n_strands=4, n_edges=0, lookalikes_near_bac=0.5)
    near = [calcified.query(c.center)[0] < 6.0 for c in half.objects["clusters"]]
    assert sum(near) == 2  # and the other two stay >= 6 mm away, as by default


@pytest.mark.parametrize("seed,rate", [(1, 0.5), (2, 1.0)])
def test_merged_strokes_at_the_configured_rate(seed, rate):
    """Look-alikes apart from BAC (>= 4-6 mm) with a thin brush touch BAC only through a merged
    stroke: exactly round(rate x eligible) of them share a connected component with BAC."""
    cfg = TPAConfig(miss_rate=0.0, under_rate=0.0, fp_microcalc_rate=1.0, fp_strand_rate=1.0, fp_edge_rate=0.0,
                    brush_halfwidth_mm=(0.3, 0.4), merge_rate=rate, merge_reach_mm=15.0)
    ph = make_phantom(seed, spacing_mm=SPACING, tpa=cfg, n_clusters=4, n_strands=6, n_edges=0)
    t = ph.record["tpa"]
    assert t["merge_eligible"] >= 2
    assert t["merged_strokes"] == round(rate * t["merge_eligible"]) == len(t["merged"])
    objects = {"microcalc": [c.specks[:, :2] for c in ph.objects["clusters"]],
               "strand": [s.points for s in ph.objects["strands"]]}
    touching = {(kind, j) for kind, items in objects.items() for j, pts in enumerate(items)
                if _component_with_bac(ph, pts)}
    assert touching == {tuple(m) for m in t["merged"]}
    assert make_phantom(seed, spacing_mm=SPACING, tpa=TPAConfig(**{**cfg.to_dict(), "merge_rate": 0.0}),
                        n_clusters=4, n_strands=6, n_edges=0).record["tpa"]["merged_strokes"] == 0


def test_systematic_annotator_brushes_every_lookalike_with_one_brush():
    cfg = TPAConfig(profile="systematic", systematic_kinds=("microcalc", "strand", "edge"), systematic_halfwidth_mm=0.9)
    ph = make_phantom(3, spacing_mm=SPACING, tpa=cfg, n_clusters=3, n_strands=5, n_edges=2)
    t = ph.record["tpa"]
    assert t["microcalc_brushed"] == t["microcalc_clusters"] == 3
    assert t["strands_brushed"] == t["strands"] == len(ph.objects["strands"])
    assert t["edges_brushed"] == t["edges"] == len(ph.objects["edges"])
    assert t["brush_halfwidths_mm"] == [0.9]
    for c in ph.objects["clusters"]:  # every speck centre lies under the annotation
        rc = np.rint(c.specks[:, :2] / SPACING).astype(int)
        assert ph.tpa_mask[rc[:, 0], rc[:, 1]].all()
    for s in ph.objects["strands"]:  # the whole strand
        rc = np.rint(s.points / SPACING).astype(int)
        assert ph.tpa_mask[rc[:, 0], rc[:, 1]].all()
    # only the listed kinds are systematic: strands here follow their rate (0)
    only = make_phantom(3, spacing_mm=SPACING, n_clusters=3, n_strands=5, n_edges=2,
                        tpa=TPAConfig(profile="systematic", systematic_kinds=("microcalc",), fp_strand_rate=0.0))
    assert only.record["tpa"]["microcalc_brushed"] == 3 and only.record["tpa"]["strands_brushed"] == 0
    with pytest.raises(ValueError, match="systematic_kinds"):
        TPAConfig(profile="systematic", systematic_kinds=("scar",))


def test_realistic_mlo_paddle_rim_and_abdominal_fold(monkeypatch):
    """The paddle's rim darkens a thin line across the open field; the abdominal fold attenuates
    below the breast at the chest wall; neither is breast in the truth."""
    from monai_bac.phantom import xray

    monkeypatch.setattr(xray, "MLO_PADDLE_EDGE_P", 1.0)
    monkeypatch.setattr(xray, "MLO_ABDOMEN_FOLD_P", 1.0)
    ph = make_phantom(5, view="MLO", spacing_mm=SPACING, thickness_mm=55.0, physics="realistic",
                      effects=Effects(edge=False))  # edge off: the very truth of the ideal breast below
    rim, fold = ph.record["paddle_edge"], ph.record["abdomen_fold"]
    signal = ph.linear - ph.record["detector_offset"]
    air = ph.breast_map == 0
    y, x = np.mgrid[: ph.raw.shape[0], : ph.raw.shape[1]] * SPACING
    d = np.abs(y - (rim["row_mm"] + rim["slope"] * x))
    on, beside = air & (d < 0.25), air & (d > 2.0) & (d < 4.0)
    assert on.sum() > 20
    assert np.median(signal[on]) < 0.97 * np.median(signal[beside])  # a few mm of polycarbonate
    ry, rx = fold["radii_mm"]
    inner = air & (((y - fold["centre_row_mm"]) / ry) ** 2 + (x / rx) ** 2 < 0.5)
    assert inner.sum() > 20
    open_field = air & (x < rx) & (y < fold["centre_row_mm"] - 1.5 * ry) & (d > 4.0)
    assert np.median(signal[inner]) < 0.7 * np.median(signal[open_field])
    assert ph.breast_map[inner].max() == 0
    ideal = make_phantom(5, view="MLO", spacing_mm=SPACING, thickness_mm=55.0)
    np.testing.assert_array_equal(ideal.breast_map, ph.breast_map)


def test_extremely_dense_breast_keeps_the_seed_and_fits_in_the_thickness():
    """``extremely_dense`` draws a BI-RADS d breast from the same random numbers: the arteries, the
    look-alikes and the annotation are the seed's; the glandular tissue covers more of the breast,
    up to its whole thickness but the skin."""
    plain = make_phantom(13, view="MLO", spacing_mm=SPACING, thickness_mm=50.0, physics="realistic")
    dense = make_phantom(13, view="MLO", spacing_mm=SPACING, thickness_mm=50.0, physics="realistic",
                         extremely_dense=True)
    for name in ("breast_map", "thickness", "h_muscle", "h_calc", "bac_mask", "tpa_mask"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(dense, name), err_msg=name)
    assert dense.record["dense"]["extreme"] and "extreme" not in plain.record["dense"]
    assert 0.6 <= dense.record["dense"]["area_fraction"] <= 0.9 and 0.85 <= dense.record["dense"]["f_max"] <= 1.0
    assert dense.record["vbd_percent"] > plain.record["vbd_percent"] + 5.0
    assert np.all(dense.h_dt + dense.h_skin + dense.h_calc <= dense.thickness + 1e-3)
    assert (dense.h_dt > 0.8 * dense.thickness).any()  # somewhere nearly all of the thickness is glandular

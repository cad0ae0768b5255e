"""``monai-bac infer``: outputs per image (NIfTI, DICOM SEG, overlay, JSON), run tables, bad inputs."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from monai_bac.cli import main
from monai_bac.data import load_label, load_mammogram, write_mammogram_dicom
from monai_bac.dicom_seg import SEG_SOP_CLASS_UID, DicomSegError, read_dicom_seg, write_dicom_seg
from monai_bac.phantom import make_phantom
from conftest import assert_dciodvfy_passes


def _rows(path: Path) -> dict[str, dict]:
    with open(path) as f:
        return {r["case"]: r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def datalist_run(tiny_bundle, phantom_cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("infer")
    rc = main(["infer", str(phantom_cohort / "datalist.json"), "--model", str(tiny_bundle), "--out", str(out),
               "--threshold", "0.5", "--quiet"])
    return rc, out


def test_infer_writes_every_output_for_every_image(datalist_run, phantom_cohort):
    rc, out = datalist_run
    assert rc == 0
    n = len(list((phantom_cohort / "images").glob("*.dcm")))
    rows = _rows(out / "results.csv")
    assert len(rows) == n and all(r["status"] == "ok" for r in rows.values())
    for case, r in rows.items():
        for k in ("nifti", "seg", "overlay", "json"):
            assert Path(r[k]).is_file(), (case, k)
        rep = json.loads(Path(r["json"]).read_text())
        q = rep["quantification"]
        assert set(q) >= {"present", "length_mm", "n_segments", "area_mm2", "calcium_mg", "segments"}
        assert rep["annotation"]["key"] == "label_gt" and rep["model"]["threshold"] == 0.5
        assert set(rep["seconds"]) == {"preprocess", "network", "postprocess"}
        truth = json.loads((phantom_cohort / "truth" / f"{case}.json").read_text())
        assert rep["annotation"]["present"] == truth["has_bac"]
        assert r["patient_id"] == truth["patient_id"] and r["laterality"] == truth["laterality"]


def test_dicom_seg_reads_back_with_the_source_geometry_and_reference(datalist_run):
    _, out = datalist_run
    for case, r in list(_rows(out / "results.csv").items())[:4]:
        src = pydicom.dcmread(r["source"], stop_before_pixels=True)
        seg = pydicom.dcmread(r["seg"])
        assert seg.SOPClassUID == SEG_SOP_CLASS_UID and seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
        assert (seg.Rows, seg.Columns, int(seg.NumberOfFrames)) == (src.Rows, src.Columns, 1)
        assert seg.StudyInstanceUID == src.StudyInstanceUID and seg.PatientID == src.PatientID
        ref = seg.ReferencedSeriesSequence[0]
        assert ref.SeriesInstanceUID == src.SeriesInstanceUID
        assert ref.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
        frame = seg.PerFrameFunctionalGroupsSequence[0]
        source_ref = frame.DerivationImageSequence[0].SourceImageSequence[0]
        assert source_ref.ReferencedSOPInstanceUID == src.SOPInstanceUID
        assert source_ref.ReferencedSOPClassUID == src.SOPClassUID
        spacing = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing
        assert [float(s) for s in spacing] == pytest.approx([float(s) for s in src.ImagerPixelSpacing])
        assert seg.SegmentSequence[0].SegmentLabel == "BAC"
        mask = np.asarray(load_label(r["nifti"]))[0]
        assert np.array_equal(seg.pixel_array.astype(np.uint8), mask)
        assert np.array_equal(read_dicom_seg(r["seg"]), mask)  # highdicom reads it back pixel for pixel


def test_a_written_seg_holds_the_mask_bit_for_bit(tmp_path, phantom_cohort):
    src = sorted((phantom_cohort / "images").glob("*.dcm"))[0]
    img = load_mammogram(src)
    rng = np.random.default_rng(0)
    mask = (rng.random(img.shape[-2:]) < 0.1).astype(np.uint8)  # odd sizes: 285 x 239 bits
    write_dicom_seg(tmp_path / "s.dcm", mask, src)
    assert np.array_equal(pydicom.dcmread(tmp_path / "s.dcm").pixel_array, mask)
    assert np.array_equal(read_dicom_seg(tmp_path / "s.dcm"), mask)
    with pytest.raises(FileExistsError):
        write_dicom_seg(tmp_path / "s.dcm", mask, src)
    with pytest.raises(DicomSegError, match="the image is"):
        write_dicom_seg(tmp_path / "t.dcm", mask[:-1], src)
    with pytest.raises(DicomSegError, match="cannot be the source"):
        write_dicom_seg(tmp_path / "u.dcm", mask, tmp_path / "nothing.dcm")


def test_overlay_png_shows_the_mask_in_colour(datalist_run):
    _, out = datalist_run
    rows = _rows(out / "results.csv")
    checked = 0
    for r in rows.values():
        mask = np.asarray(load_label(r["nifti"]))[0] > 0
        png = np.asarray(Image.open(r["overlay"]))
        assert png.shape == (*mask.shape, 3) and png.dtype == np.uint8  # small image: full size
        r_, g_, b_ = (png[..., i].astype(int) for i in range(3))
        legend = np.zeros_like(mask)
        legend[: 3 * max(10, min(mask.shape) // 40), : mask.shape[1] // 2] = True  # the legend's corner
        assert (r_[legend] > g_[legend] + 100).any()  # its red swatch
        grey = ~mask & ~legend
        assert np.array_equal(r_[grey], g_[grey]) and np.array_equal(g_[grey], b_[grey])  # grey elsewhere
        if mask.any():
            assert np.all(r_[mask] > g_[mask]) and np.all(r_[mask] > b_[mask])  # red where BAC
            checked += 1
        assert png[..., 0][~mask].std() > 10  # a mammogram, not a blank
    if not checked:  # the tiny model may find nothing: check the picture function directly
        from monai_bac.visualize import overlay_picture

        m = np.zeros((300, 200), bool)
        m[100:104, 20:180] = True
        pic = overlay_picture(np.random.default_rng(0).random((300, 200)) * 1000 + 100, m, max_side=150)
        assert pic.shape == (150, 100, 3) and np.all(pic[50:52, 10:90, 0] > pic[50:52, 10:90, 1])


def test_run_tables_and_cohort_analysis(datalist_run, phantom_cohort):
    _, out = datalist_run
    with open(out / "patients.csv") as f:
        patients = list(csv.DictReader(f))
    truth = [json.loads(p.read_text()) for p in (phantom_cohort / "truth").glob("*.json")]
    assert len(patients) == len({t["patient_id"] for t in truth})
    assert all(p["complete_4_views"] == "True" and p["views_available"] == "LCC,LMLO,RCC,RMLO" for p in patients)
    run = json.loads((out / "run.json").read_text())
    assert run["counts"] == {"ok": len(truth)} and run["failures"] == []
    for source in ("prediction", "annotation"):
        c = run["cohort"][source]
        assert c["n_patients"] == len(patients)
        assert sum(map(sum, c["left_right"]["confusion"])) == 2 * len(patients)
    assert run["model"]["engine"] == "onnx" and run["median_seconds_per_image"] > 0


def test_outputs_are_never_overwritten_without_the_flag(datalist_run, tiny_bundle, phantom_cohort):
    rc, out = datalist_run
    first = _rows(out / "results.csv")
    case, row = next(iter(first.items()))
    stamp = Path(row["nifti"]).stat().st_mtime_ns
    assert main(["infer", row["source"], "--model", str(tiny_bundle), "--out", str(out), "--quiet"]) == 0
    again = _rows(out / "results.1.csv")  # the first run's table is kept
    assert again[case]["status"] == "skipped" and "--overwrite" in again[case]["reason"]
    assert again[case]["length_mm"] == first[case]["length_mm"]  # the earlier figures are carried over
    assert Path(row["nifti"]).stat().st_mtime_ns == stamp and (out / "results.csv").is_file()


def _bad_inputs(folder: Path, phantom_cohort: Path) -> dict[str, str]:
    """Two good images and four bad ones; returns case -> expected words in the reason."""
    folder.mkdir()
    good = sorted((phantom_cohort / "images").glob("*.dcm"))[:2]
    for g in good:
        shutil.copy(g, folder / g.name)
    p = make_phantom(11, spacing_mm=1.0)
    m = p.meta
    common = dict(spacing_mm=m["spacing_mm"], kvp=m["kvp"], thickness_mm=m["thickness_mm"], anode=m["anode"],
                  filter=m["filter"], view=m["view"], laterality=m["laterality"], manufacturer=m["manufacturer"],
                  photometric=m["photometric"], bits_stored=m["bits_stored"])
    write_mammogram_dicom(folder / "processed.dcm", p.raw, presentation="FOR PRESENTATION", **common)
    ds = pydicom.dcmread(good[0])
    ds.Modality = "CT"
    ds.save_as(folder / "ct_slice.dcm")
    data = good[1].read_bytes()
    (folder / "corrupt.dcm").write_bytes(data[: len(data) // 2])
    write_mammogram_dicom(folder / "tiny.dcm", p.raw[100:140, 50:80], **common)
    return {"processed": "FOR PRESENTATION", "ct_slice": "Modality (0008,0060) is 'CT'",
            "corrupt": "truncated or corrupt", "tiny": "a mammogram has at least"}


def test_bad_inputs_are_reported_and_the_others_processed(tiny_bundle, phantom_cohort, tmp_path):
    expected = _bad_inputs(tmp_path / "in", phantom_cohort)
    out = tmp_path / "out"
    rc = main(["infer", str(tmp_path / "in"), "--model", str(tiny_bundle), "--out", str(out), "--quiet",
               "--engine", "torch"])
    assert rc == 3  # some images failed
    rows = _rows(out / "results.csv")
    assert len(rows) == 6
    for case, words in expected.items():
        assert rows[case]["status"] == "failed" and words in rows[case]["reason"], rows[case]["reason"]
        rep = json.loads((out / f"{case}_bac.json").read_text())
        assert rep["status"] == "failed" and words in rep["reason"]
        assert not (out / f"{case}_bac.nii.gz").exists()
    good = [c for c in rows if c not in expected]
    assert len(good) == 2 and all(rows[c]["status"] == "ok" and Path(rows[c]["seg"]).is_file() for c in good)
    run = json.loads((out / "run.json").read_text())
    assert run["counts"] == {"ok": 2, "failed": 4}
    assert {f["case"] for f in run["failures"]} == set(expected)


def test_processed_images_can_be_forced_and_implausible_masks_are_flagged(tiny_bundle, tmp_path, phantom_cohort):
    _bad_inputs(tmp_path / "in", phantom_cohort)
    assert main(["infer", str(tmp_path / "in" / "processed.dcm"), "--model", str(tiny_bundle), "--out",
                 str(tmp_path / "o"), "--allow-processed", "--threshold", "0.0", "--quiet"]) == 0
    rep = json.loads((tmp_path / "o" / "processed_bac.json").read_text())
    assert rep["status"] == "ok" and rep["image_info"]["is_raw"] is False
    assert any(w.startswith("ProcessedImageWarning") for w in rep["input_warnings"])  # the reader's warning kept
    assert rep["quality_warning"].startswith("the mask covers 100.0 %")  # threshold 0: everything is "BAC"
    assert rep["quantification"]["length_mm"] is None


def test_a_magnification_view_is_reported_and_left_out_of_the_patients_table(tiny_bundle, phantom_cohort, tmp_path,
                                                                             capsys):
    """One patient's four screening views and a magnified spot view of its LCC (the same pixels, as a
    PACS study of a work-up holds it): every image is processed, the diagnostic one is marked in
    results.csv and its JSON, and patients.csv counts it without summarising it."""
    from pydicom.uid import generate_uid

    from monai_bac.data.dicom_tags import code_item

    truth = sorted((phantom_cohort / "truth").glob("*.json"))
    pid = json.loads(truth[0].read_text())["patient_id"]
    views = [p for p in truth if json.loads(p.read_text())["patient_id"] == pid]
    folder = tmp_path / "in"
    folder.mkdir()
    for t in views:
        shutil.copy(phantom_cohort / "images" / f"{t.stem}.dcm", folder)
    lcc = next(p for p in folder.glob("*.dcm")
               if (lambda ds: ds.ImageLaterality + ds.ViewPosition)(pydicom.dcmread(p)) == "LCC")
    ds = pydicom.dcmread(lcc)
    ds.ViewCodeSequence[0].ViewModifierCodeSequence = [code_item("399163009", "SCT", "Magnification"),
                                                       code_item("399055006", "SCT", "Spot Compression")]
    ds.EstimatedRadiographicMagnificationFactor = "1.8"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(folder / "work_up_mag.dcm")
    out = tmp_path / "out"
    assert main(["infer", str(folder), "--model", str(tiny_bundle), "--out", str(out), "--quiet", "--no-overlay"]) == 0
    rows = _rows(out / "results.csv")
    assert len(rows) == 5 and all(r["status"] == "ok" for r in rows.values())
    mag = rows["work_up_mag"]
    assert (mag["view"], mag["magnification"]) == ("CC", "1.8")
    assert mag["view_modifiers"] == "MAGNIFICATION, SPOT COMPRESSION"
    assert {r["view_modifiers"] for c, r in rows.items() if c != "work_up_mag"} == {""}
    # sizes in the breast: the same pixels, read 1.8 x magnified, measure 1.8 x shorter (areas 1.8^2)
    assert mag["measured_at"] == "breast plane (EstimatedRadiographicMagnificationFactor)"
    assert {r["measured_at"] for c, r in rows.items() if c != "work_up_mag"} == {"detector plane"}
    assert json.loads((out / "run.json").read_text())["measured_at"] == {
        "detector plane": 4, "breast plane (EstimatedRadiographicMagnificationFactor)": 1}
    assert ("sizes measured in different planes: 4 detector plane; 1 breast plane "
            "(EstimatedRadiographicMagnificationFactor)") in capsys.readouterr().out
    same_pixels = rows[lcc.stem]
    assert float(mag["area_mm2"]) == pytest.approx(float(same_pixels["area_mm2"]) / 1.8**2, rel=1e-4)
    assert mag["quality_warning"] == same_pixels["quality_warning"] != ""  # the tiny model marks too much:
    assert mag["length_mm"] == same_pixels["length_mm"] == ""  # the area alone is measured
    rep = json.loads(Path(mag["json"]).read_text())
    assert any(w.startswith("DiagnosticViewWarning: ") and "work_up_mag.dcm: a diagnostic view" in w
               for w in rep["input_warnings"])
    with open(out / "patients.csv") as f:
        (patient,) = list(csv.DictReader(f))
    assert (patient["patient_id"], patient["n_images"], patient["n_diagnostic_views"]) == (pid, "5", "1")
    assert patient["views_available"] == "LCC,LMLO,RCC,RMLO"
    screening_lcc = next(r for c, r in rows.items() if c != "work_up_mag" and r["laterality"] + r["view"] == "LCC")
    assert patient["LCC_length_mm"] == screening_lcc["length_mm"] and patient["LCC_present"] == screening_lcc["present"]
    run = json.loads((out / "run.json").read_text())
    assert run["cohort"]["prediction"]["n_patients"] == 1


def test_usage_errors(tmp_path, tiny_bundle):
    assert main(["infer", str(tmp_path / "missing.dcm"), "--model", str(tiny_bundle), "--out", str(tmp_path)]) == 2
    assert main(["infer", str(tmp_path), "--model", str(tmp_path / "nomodel"), "--out", str(tmp_path)]) == 2


def test_the_model_input_check_refuses_images_far_smaller_than_the_network_input(phantom_cohort):
    from monai_bac.transforms import CheckMammogramd, InputRejected

    img = load_mammogram(sorted((phantom_cohort / "images").glob("*.dcm"))[0])  # 285 x 239 at 1 mm
    CheckMammogramd(image_size=400)({"image": img})  # 239 >= 0.5 x 400: accepted
    with pytest.raises(InputRejected, match="far smaller than the network input 1600"):
        CheckMammogramd(image_size=1600)({"image": img})


def test_an_image_without_a_breast_is_refused_naming_the_file(phantom_cohort):
    from monai_bac.transforms import CheckMammogramd, InputRejected

    img = load_mammogram(sorted((phantom_cohort / "images").glob("*.dcm"))[0])
    empty = np.zeros((1, *img.shape[-2:]), np.uint8)
    with pytest.raises(InputRejected, match=f"{img.meta['filename_or_obj']}: no breast found"):
        CheckMammogramd(image_size=128)({"image": img, "breast_map": empty})


def test_the_seg_passes_dciodvfy(datalist_run):
    """DICOM conformance of the SEG with dicom3tools' validator (CI installs Debian's dicom3tools)."""
    _, out = datalist_run
    row = next(iter(_rows(out / "results.csv").values()))
    assert_dciodvfy_passes(row["seg"], required=True)

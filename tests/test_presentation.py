"""The For Presentation rendition of a raw mammogram (monai_bac.presentation, ``monai-bac present``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from monai_bac.cli import main
from monai_bac.data import DiagnosticViewWarning
from monai_bac.data.dicom_io import MG_FOR_PRESENTATION_SOP_CLASS, read_dicom_mammogram, write_mammogram_dicom
from monai_bac.ops.breast_region import breast_region_map
from monai_bac.phantom import make_phantom
from monai_bac.presentation import DISPLAY_BITS, write_presentation
from conftest import assert_dciodvfy_passes

VENDOR_CASES = [("GE", "CC", "L"), ("HOLOGIC", "MLO", "R"), ("SIEMENS", "CC", "R")]


def write_raw(path: Path, vendor: str, view: str, laterality: str, seed: int = 3, spacing_mm: float = 0.5, **tags):
    """A small raw phantom mammogram in the vendor's encoding, with a dated study (and ``tags`` for the
    writer); returns (path, phantom)."""
    ph = make_phantom(seed=seed, spacing_mm=spacing_mm, vendor=vendor, view=view, laterality=laterality)
    m = ph.meta
    write_mammogram_dicom(path, ph.raw, spacing_mm=m["spacing_mm"], kvp=m["kvp"], thickness_mm=m["thickness_mm"],
                          anode=m["anode"], filter=m["filter"], view=m["view"], laterality=m["laterality"],
                          manufacturer=m["manufacturer"], presentation=m["presentation"],
                          photometric=m["photometric"], bits_stored=m["bits_stored"], patient_id="BAC-0042",
                          extra={"StudyDate": "20240131", "StudyTime": "101500", "StudyID": "S1",
                                 "AccessionNumber": "A123"}, **tags)
    return path, ph


def expected_stored(raw_linear: np.ndarray, breast: np.ndarray, gamma: float = 0.5) -> np.ndarray:
    """Eq. (1)-(2) written out here, independently of the library: the inverted log-gamma on 12 bits."""
    log = np.log(raw_linear.astype(np.float64) + 1.0)
    lo, hi = log[breast].min(), log[breast].max()
    y = np.clip((log - lo) / (hi - lo), 0, 1) ** gamma
    return np.where(breast, np.rint((1.0 - y) * (2**DISPLAY_BITS - 1)), 0)


@pytest.mark.parametrize("vendor, view, laterality", VENDOR_CASES)
def test_rendition_passes_dciodvfy(tmp_path, vendor, view, laterality):
    """MG For Presentation IOD with dicom3tools' validator: 0 errors, for each vendor's raw encoding."""
    raw, _ = write_raw(tmp_path / "raw.dcm", vendor, view, laterality)
    out = write_presentation(raw, tmp_path / "raw.presentation.dcm")
    text = assert_dciodvfy_passes(out, required=True)
    assert "MammographyImageForPresentation" in text, text


@pytest.mark.parametrize("vendor, view, laterality", VENDOR_CASES)
def test_rendition_pixels_are_the_windowed_log_gamma_of_the_raw(tmp_path, vendor, view, laterality):
    raw_path, ph = write_raw(tmp_path / "raw.dcm", vendor, view, laterality)
    out = write_presentation(raw_path, tmp_path / "p.dcm")
    raw, meta = read_dicom_mammogram(raw_path)  # MONOCHROME1 (GE) comes back linear in exposure
    breast = breast_region_map(raw, meta["spacing_mm"], view=meta["view"]) > 0
    ds = pydicom.dcmread(out)
    stored = ds.pixel_array.astype(np.int64)
    assert np.abs(stored - expected_stored(raw, breast)).max() <= 1
    # the picture a radiologist expects: air black, BAC (calcium, the least exposed) brighter than the breast
    assert (stored[~breast] == 0).all()
    bac = (ph.bac_mask > 0) & breast
    assert bac.any()
    assert np.median(stored[bac]) > np.percentile(stored[breast], 75)
    # the VOI window spans the breast's values and lies within the stored range
    center, width = float(ds.WindowCenter), float(ds.WindowWidth)
    low, high = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    assert 0 <= low < np.median(stored[breast]) < high <= 2**DISPLAY_BITS - 1
    assert ds.VOILUTFunction == "LINEAR"


def test_rendition_belongs_to_the_raw_images_study(tmp_path):
    raw_path, _ = write_raw(tmp_path / "raw.dcm", "GE", "MLO", "L")
    out = write_presentation(raw_path, tmp_path / "p.dcm")
    raw, pres = pydicom.dcmread(raw_path), pydicom.dcmread(out)
    assert pres.SOPClassUID == MG_FOR_PRESENTATION_SOP_CLASS
    assert pres.PresentationIntentType == "FOR PRESENTATION"
    assert pres.PhotometricInterpretation == "MONOCHROME2" and pres.BitsStored == DISPLAY_BITS
    assert pres.StudyInstanceUID == raw.StudyInstanceUID
    assert pres.SeriesInstanceUID != raw.SeriesInstanceUID and pres.SOPInstanceUID != raw.SOPInstanceUID
    for keyword in ("PatientID", "PatientName", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
                    "ImageLaterality", "PatientOrientation", "Manufacturer"):
        assert pres.get(keyword) == raw.get(keyword), keyword
    assert pres.ViewCodeSequence[0].CodeValue == raw.ViewCodeSequence[0].CodeValue
    source = pres.SourceImageSequence[0]
    assert (source.ReferencedSOPClassUID, source.ReferencedSOPInstanceUID) == (raw.SOPClassUID, raw.SOPInstanceUID)
    assert source.PurposeOfReferenceCodeSequence[0].CodeValue == "121322"
    assert list(pres.ImageType)[:2] == ["DERIVED", "PRIMARY"]
    assert pres.PixelIntensityRelationship == "LOG" and pres.PixelIntensityRelationshipSign == -1


def test_a_magnification_views_rendition_stays_one(tmp_path):
    """The rendition keeps the raw's view modifiers and magnification: a reader (and this library)
    still sees a diagnostic view, and dciodvfy still finds no error."""
    raw_path, _ = write_raw(tmp_path / "raw.dcm", "HOLOGIC", "CC", "L", view_modifiers=("magnification",),
                            magnification=1.8)
    with pytest.warns(DiagnosticViewWarning, match=r"raw\.dcm: a diagnostic view"):
        out = write_presentation(raw_path, tmp_path / "p.dcm")
    with pytest.warns(DiagnosticViewWarning, match=r"p\.dcm: a diagnostic view, not a screening one \(a "
                                                   r"magnification view; magnified 1\.8 x"):
        _, meta = read_dicom_mammogram(out)
    assert (meta["view"], meta["view_modifiers"], meta["magnification"]) == ("CC", "MAGNIFICATION", 1.8)
    assert_dciodvfy_passes(out)


def test_present_cli_writes_renditions_and_names_the_file_it_refuses(tmp_path, capsys):
    raw_a, _ = write_raw(tmp_path / "a.dcm", "HOLOGIC", "CC", "L")
    raw_b, _ = write_raw(tmp_path / "b.dcm", "GE", "CC", "R", seed=4)
    out = tmp_path / "out"
    assert main(["present", str(raw_a), str(raw_b), "--out", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["a.presentation.dcm", "b.presentation.dcm"]
    capsys.readouterr()
    # a rendition is not raw: refused by name, the raw one beside it is still written (exit status 1)
    assert main(["present", str(out / "a.presentation.dcm"), str(raw_b), "--out", str(tmp_path / "again")]) == 1
    err = capsys.readouterr().err
    assert "a.presentation.dcm" in err and "PresentationIntentType" in err
    assert (tmp_path / "again" / "b.presentation.dcm").is_file()
    (tmp_path / "notes.dcm").write_text("not a DICOM file\n")
    assert main(["present", str(tmp_path / "notes.dcm"), "--out", str(tmp_path / "again")]) == 1
    assert "notes.dcm" in capsys.readouterr().err
    # an existing rendition is kept unless --overwrite
    assert main(["present", str(raw_a), "--out", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["present", str(raw_a), "--out", str(out), "--overwrite", "--no-plane"]) == 0
    assert "ImageOrientationPatient" not in pydicom.dcmread(out / "a.presentation.dcm")


def test_rendition_has_a_nominal_plane_that_a_seg_follows(tmp_path):
    """The plane OHIF needs to overlay a SEG: along PatientOrientation, and carried into the SEG."""
    from monai_bac.dicom_seg import read_dicom_seg, write_dicom_seg

    raw_path, ph = write_raw(tmp_path / "raw.dcm", "HOLOGIC", "MLO", "L")
    out = write_presentation(raw_path, tmp_path / "p.dcm")
    pres = pydicom.dcmread(out)
    assert list(pres.PatientOrientation) == ["A", "FR"]  # left MLO: rows towards A, columns towards F and R
    s = 0.5**0.5
    assert np.allclose([float(v) for v in pres.ImageOrientationPatient], [0, -1, 0, -s, 0, -s], atol=1e-6)
    assert [float(v) for v in pres.ImagePositionPatient] == [0.0, 0.0, 0.0]
    seg_path = write_dicom_seg(tmp_path / "bac.seg.dcm", ph.bac_mask, out)
    seg = pydicom.dcmread(seg_path)
    assert seg.FrameOfReferenceUID == pres.FrameOfReferenceUID
    plane = seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0]
    assert [float(v) for v in plane.ImageOrientationPatient] == [float(v) for v in pres.ImageOrientationPatient]
    assert np.array_equal(read_dicom_seg(seg_path), ph.bac_mask.astype(np.uint8))
    assert_dciodvfy_passes(seg_path)
    plain = pydicom.dcmread(write_presentation(raw_path, tmp_path / "plain.dcm", plane=False))
    assert not {"FrameOfReferenceUID", "ImagePositionPatient", "ImageOrientationPatient"} & set(plain.dir())


def test_present_cli_writes_the_raw_images_seg_again_on_its_rendition(tmp_path, capsys):
    """A SEG made on the raw image (as ``monai-bac infer`` writes it) is written on the rendition, for OHIF."""
    from monai_bac.dicom_seg import read_dicom_seg, write_dicom_seg

    raw, ph = write_raw(tmp_path / "a.dcm", "GE", "CC", "L")
    other, _ = write_raw(tmp_path / "b.dcm", "HOLOGIC", "CC", "R", seed=5)
    on_raw = write_dicom_seg(tmp_path / "a_bac_seg.dcm", ph.bac_mask, raw)
    on_other = write_dicom_seg(tmp_path / "b_bac_seg.dcm", ph.bac_mask, other)
    out = tmp_path / "out"
    assert main(["present", str(raw), "--out", str(out), "--seg", str(on_raw), str(on_other)]) == 1
    assert "b_bac_seg.dcm: made on none of the raw images" in capsys.readouterr().err
    seg_path = out / "a.presentation_bac_seg.dcm"
    seg, rendition = pydicom.dcmread(seg_path), pydicom.dcmread(out / "a.presentation.dcm")
    referenced = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
    assert referenced == rendition.SOPInstanceUID
    assert seg.FrameOfReferenceUID == rendition.FrameOfReferenceUID
    assert np.array_equal(read_dicom_seg(seg_path), ph.bac_mask.astype(np.uint8))
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "AUTOMATIC"  # as the raw image's SEG was made


def test_a_corrected_label_stays_a_corrected_label_on_the_rendition(tmp_path):
    """An annotator's correction of the model's output (SEMIAUTOMATIC), or a drawing (MANUAL), written on the
    rendition says so still, with the same algorithm identification and the same person."""
    from monai_bac.dicom_seg import read_seg_label, write_dicom_seg
    from monai_bac.presentation import seg_on_rendition

    raw, ph = write_raw(tmp_path / "a.dcm", "GE", "CC", "L")
    rendition = write_presentation(raw, tmp_path / "a.presentation.dcm")
    for made in ("SEMIAUTOMATIC", "MANUAL"):
        on_raw = write_dicom_seg(tmp_path / f"{made}.dcm", ph.bac_mask, raw, algorithm_type=made,
                                 algorithm_version="0.9", algorithm_parameters={"model": "17-3"},
                                 content_creator_name="Doe^Jane")
        copied = seg_on_rendition(on_raw, rendition, tmp_path / f"{made}_on_rendition.dcm")
        assert read_seg_label(copied)[1]["algorithm"] == read_seg_label(on_raw)[1]["algorithm"]
        assert read_seg_label(copied)[1]["content_creator"] == "Doe^Jane"
        assert pydicom.dcmread(copied).SegmentSequence[0].SegmentAlgorithmType == made


def test_orientation_cosines_follow_patient_orientation():
    from monai_bac.presentation import orientation_cosines

    s = 0.5**0.5
    assert orientation_cosines(["P", "L"]) == [0.0, 1.0, 0.0, 1.0, 0.0, 0.0]  # right CC
    assert np.allclose(orientation_cosines(["P", "FL"]), [0, 1, 0, s, 0, -s])  # right MLO
    for unusable in (None, "", ["A"], ["LR", "A"], ["A", "P"], ["X", "R"]):
        assert orientation_cosines(unusable) == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0], unusable

"""Raw-mammogram I/O: DICOM writing/reading, NIfTI/PNG/TIFF, MONAI loaders, atomic writes."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from monai.data import MetaTensor
from pydicom.encaps import encapsulate
from pydicom.uid import UID

from monai_bac.data import (
    DiagnosticViewWarning,
    LoadMammogram,
    LoadMammogramd,
    MammogramReadError,
    MissingTagWarning,
    ProcessedImageWarning,
    dicom_write,
    image_io,
    load_label,
    load_mammogram,
    load_nifti_2d,
    read_dicom_mammogram,
    save_image_nifti,
    save_mask_nifti,
    write_mammogram_dicom,
)
from monai_bac.data.dicom_read import _normalise_view
from monai_bac.data.dicom_tags import MG_FOR_PRESENTATION_SOP_CLASS, MG_FOR_PROCESSING_SOP_CLASS
from monai_bac.utils import atomic_write_path, ensure_new_file
from conftest import assert_dciodvfy_passes

# itk's SWIG bindings warn about their own types on import; nothing to do with this code
pytestmark = pytest.mark.filterwarnings("ignore:builtin type [Ss]wig.*has no __module__:DeprecationWarning")

H, W = 192, 144  # at least MIN_SIDE_PX (128) a side, not square
SPACING = (0.07, 0.085)
TAGS = {
    "spacing_mm": SPACING,
    "kvp": 29.0,
    "thickness_mm": 52.5,
    "anode": "RHODIUM",
    "filter": "SILVER",
    "view": "MLO",
    "laterality": "L",
    "manufacturer": "ACME Imaging",
}


def _pixels(bits: int = 14, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**bits, size=(H, W), dtype=np.uint16)


def _write(path: Path, pixels: np.ndarray | None = None, **kwargs) -> Path:
    args = {**TAGS, **kwargs}
    return write_mammogram_dicom(path, _pixels() if pixels is None else pixels, **args)


def _edit(src: Path, dst: Path, **changes) -> Path:
    """Copy a DICOM file with pydicom, setting tags (a None value deletes the tag)."""
    ds = pydicom.dcmread(src)
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    dicom_write.save_dataset(ds, dst)  # Part-10 writing call for the installed pydicom (2.x or 3.x)
    return dst


def _edit_ds(ds: pydicom.Dataset, dst: Path) -> Path:
    dicom_write.save_dataset(ds, dst)
    return dst


@pytest.fixture()
def dcm(tmp_path: Path) -> Path:
    return _write(tmp_path / "raw.dcm")


# ---------------------------------------------------------------------------------- DICOM round trip


def test_round_trip_all_tags(tmp_path: Path) -> None:
    pixels = _pixels()
    uids = {"study_uid": "1.2.3.4.1", "series_uid": "1.2.3.4.2", "sop_uid": "1.2.3.4.3"}
    path = _write(
        tmp_path / "full.dcm",
        pixels,
        exposure_mas=63.5,
        compression_force_n=101.3,
        patient_id="P001",
        patient_name="Doe^Jane",
        **uids,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete raw file reads without any warning
        img = load_mammogram(path)
    assert isinstance(img, MetaTensor)
    assert img.shape == (1, H, W) and img.dtype == torch.float32
    np.testing.assert_array_equal(img[0].numpy(), pixels.astype(np.float32))
    m = img.meta
    expected = {
        "spacing_mm": SPACING,
        "spacing_source": "ImagerPixelSpacing",
        "kvp": 29.0,
        "thickness_mm": 52.5,
        "anode": "RHODIUM",
        "filter": "SILVER",
        "view": "MLO",
        "laterality": "L",
        "presentation": "FOR PROCESSING",
        "is_raw": True,
        "manufacturer": "ACME Imaging",
        "modality": "MG",
        "photometric": "MONOCHROME2",
        "bits_stored": 14,
        "patient_id": "P001",
        "study_instance_uid": "1.2.3.4.1",
        "series_instance_uid": "1.2.3.4.2",
        "sop_instance_uid": "1.2.3.4.3",
        "sop_class_uid": MG_FOR_PROCESSING_SOP_CLASS,
        "exposure_mas": 63.5,
        "compression_force_n": 101.3,
        "filename_or_obj": str(path),
    }
    for key, value in expected.items():
        assert m[key] == value, key
    sr, sc = SPACING
    want_affine = torch.tensor([[0, -sc, 0], [-sr, 0, 0], [0, 0, 1]], dtype=torch.float64)
    assert img.affine.dtype == torch.float64 and torch.equal(img.affine, want_affine)
    assert torch.equal(m["original_affine"], want_affine)
    assert tuple(m["spatial_shape"]) == (H, W)
    assert m["original_channel_dim"] == "no_channel" and m["space"] == "RAS"


def test_written_file_is_valid_part10(dcm: Path) -> None:
    assert dcm.read_bytes()[128:132] == b"DICM"
    ds = pydicom.dcmread(dcm)
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID == MG_FOR_PROCESSING_SOP_CLASS
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.Modality == "MG" and ds.BodyPartExamined == "BREAST"
    assert list(ds.ImageType)[:2] == ["ORIGINAL", "PRIMARY"]
    assert ds.PresentationIntentType == "FOR PROCESSING"
    assert [float(v) for v in ds.ImagerPixelSpacing] == list(SPACING) == [float(v) for v in ds.PixelSpacing]
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 14, 13, 0)
    assert (ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns) == (1, "MONOCHROME2", H, W)
    assert ds.PatientID == "PHANTOM"
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert UID(ds[keyword].value).is_valid  # generated when not given
    assert len({ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID}) == 3


def test_for_presentation_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "proc.dcm", presentation="FOR PRESENTATION")
    assert pydicom.dcmread(path).SOPClassUID == MG_FOR_PRESENTATION_SOP_CLASS
    with pytest.warns(ProcessedImageWarning, match=r"proc\.dcm.*PresentationIntentType \(0008,0068\)"):
        img = load_mammogram(path)
    assert img.meta["is_raw"] is False and img.meta["presentation"] == "FOR PRESENTATION"
    with pytest.raises(MammogramReadError, match=r"proc\.dcm.*PresentationIntentType \(0008,0068\)"):
        load_mammogram(path, require_raw=True)


@pytest.mark.parametrize("bits", [16, 14])
def test_monochrome1_is_inverted(tmp_path: Path, bits: int) -> None:
    raw = _pixels(bits)
    raw[0, 0], raw[0, 1] = 0, 2**bits - 1  # range ends map onto each other
    stored = (2**bits - 1 - raw.astype(np.int64)).astype(np.uint16)  # as GE stores raw images
    path = _write(tmp_path / f"mono1_{bits}.dcm", stored, photometric="MONOCHROME1", bits_stored=bits)
    assert np.array_equal(pydicom.dcmread(path).pixel_array, stored)  # written unchanged
    img = load_mammogram(path)
    np.testing.assert_array_equal(img[0].numpy(), raw.astype(np.float32))
    assert img.meta["photometric"] == "MONOCHROME1" and img.meta["bits_stored"] == bits


@pytest.mark.parametrize("photometric, sign, inverted, told, presentation", [
    ("MONOCHROME2", 1, False, False, "FOR PROCESSING"), ("MONOCHROME1", -1, True, False, "FOR PROCESSING"),
    # the sign against the habit: followed, and said of a raw image
    ("MONOCHROME1", 1, False, True, "FOR PROCESSING"), ("MONOCHROME2", -1, True, True, "FOR PROCESSING"),
    # a rendition's usual pair, bright breast, dark air: a real GE Senographe Essential header (GitHub
    # Tetraib/ISISviewer, uploads/test2.js) has it, with PixelIntensityRelationship LOG
    ("MONOCHROME2", -1, True, False, "FOR PRESENTATION"),
    ("MONOCHROME1", None, True, False, "FOR PROCESSING"), ("MONOCHROME2", None, False, False, "FOR PROCESSING"),
])
def test_the_intensity_sign_says_which_way_the_values_run(tmp_path: Path, photometric, sign, inverted, told,
                                                         presentation) -> None:
    """PixelIntensityRelationshipSign (0028,1041), not the display's PhotometricInterpretation, says whether
    larger stored values mean more X-rays; after reading, a larger value always does."""
    stored = _pixels(14)
    path = _write(tmp_path / "s.dcm", stored, photometric=photometric, bits_stored=14, presentation=presentation,
                  extra={"PixelIntensityRelationshipSign": sign})
    assert pydicom.dcmread(path).get("PixelIntensityRelationshipSign") == sign
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read = load_mammogram(path)[0].numpy()
    expected = (2**14 - 1 - stored.astype(np.int64)) if inverted else stored
    np.testing.assert_array_equal(read, expected.astype(np.float32))
    said = [str(w.message) for w in caught if "PixelIntensityRelationshipSign (0028,1041)" in str(w.message)]
    assert bool(said) == told, said
    if told:
        assert f"s.dcm: PixelIntensityRelationshipSign (0028,1041) is {sign:+d}" in said[0] and photometric in said[0]


def test_a_raw_image_not_linear_in_the_intensity_is_told(tmp_path: Path) -> None:
    path = _write(tmp_path / "log.dcm", extra={"PixelIntensityRelationship": "LOG"})
    with pytest.warns(ProcessedImageWarning, match=r"log\.dcm: PixelIntensityRelationship \(0028,1040\) is 'LOG', "
                                                  r"not 'LIN': the stored values are not linear"):
        img = load_mammogram(path)
    assert img.meta["is_raw"] is True  # still a For Processing image, its intent as the header says
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_mammogram(_write(tmp_path / "lin.dcm"))
        load_mammogram(_write(tmp_path / "proc.dcm", presentation="FOR PRESENTATION"))  # LOG, told as processed
    assert not [w for w in caught if "PixelIntensityRelationship (0028,1040)" in str(w.message)]


def test_rescale_applied(tmp_path: Path) -> None:
    pixels = _pixels()
    path = _write(tmp_path / "rescale.dcm", pixels, extra={"RescaleSlope": "2", "RescaleIntercept": "-5"})
    np.testing.assert_allclose(load_mammogram(path)[0].numpy(), pixels * 2.0 - 5.0)


def test_writer_rejects_bad_pixels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="BitsStored=14"):
        _write(tmp_path / "x.dcm", np.full((H, W), 2**14, np.uint16))
    with pytest.raises(TypeError, match="integer"):
        _write(tmp_path / "x.dcm", np.zeros((H, W), np.float32))
    with pytest.raises(ValueError, match="shape"):
        _write(tmp_path / "x.dcm", np.zeros((1, H, W), np.uint16))
    assert not (tmp_path / "x.dcm").exists()


def test_view_normalisation() -> None:
    assert _normalise_view("cc") == "CC"
    assert _normalise_view("medio-lateral oblique") == "MLO"
    assert _normalise_view("XCCL") == "XCCL"
    assert _normalise_view(None) is None


def _code(value: str, scheme: str, meaning: str) -> pydicom.Dataset:
    item = pydicom.Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


@pytest.mark.parametrize(
    "value, scheme, meaning, view",
    [("399162004", "SCT", "cranio-caudal", "CC"), ("399368009", "SCT", "medio-lateral oblique", "MLO"),
     ("R-10242", "SRT", "cranio-caudal", "CC"), ("R-10226", "SRT", "medio-lateral oblique", "MLO"),
     ("399368009", "SCT", "", "MLO"),  # the code alone is enough
     ("123456", "99LOCAL", "Medio-Lateral Oblique", "MLO")],  # unknown code: its meaning
)
def test_view_from_view_code_sequence(dcm: Path, tmp_path: Path, value, scheme, meaning, view) -> None:
    """ViewCodeSequence (0054,0220) is read before ViewPosition (0018,5101); a disagreement is reported."""
    other = "CC" if view == "MLO" else "MLO"
    path = _edit(dcm, tmp_path / "coded.dcm", ViewCodeSequence=[_code(value, scheme, meaning)], ViewPosition=other)
    with pytest.warns(MissingTagWarning, match=rf"coded\.dcm: ViewCodeSequence \(0054,0220\) says {view} but "
                                                rf"ViewPosition \(0018,5101\) says {other}"):
        assert load_mammogram(path).meta["view"] == view
    path = _edit(dcm, tmp_path / "only_code.dcm", ViewCodeSequence=[_code(value, scheme, meaning)], ViewPosition=None)
    assert load_mammogram(path).meta["view"] == view
    path = _edit(dcm, tmp_path / "no_code.dcm", ViewCodeSequence=[_code("", "SCT", "")], ViewPosition="CC")
    assert load_mammogram(path).meta["view"] == "CC"  # an empty code: ViewPosition


def _read_quietly(path: Path):
    """meta of ``path`` and the warnings its reading gave, by category."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meta = load_mammogram(path).meta
    return meta, {w.category: str(w.message) for w in caught}


def test_a_magnification_or_spot_view_is_read_as_a_diagnostic_view(tmp_path: Path) -> None:
    """ViewModifierCodeSequence (0054,0222) (in ViewCodeSequence's item) and
    EstimatedRadiographicMagnificationFactor (0018,1114): read, and a diagnostic view warned naming both."""
    path = _write(tmp_path / "mag.dcm", view_modifiers=("magnification", "Spot Compression"), magnification=1.8)
    item = pydicom.dcmread(path).ViewCodeSequence[0].ViewModifierCodeSequence[1]
    assert (item.CodeValue, item.CodingSchemeDesignator) == ("399055006", "SCT")  # SNOMED CT, CID 4015
    meta, told = _read_quietly(path)
    assert meta["view"] == "MLO" and meta["magnification"] == 1.8
    assert meta["view_modifiers"] == "MAGNIFICATION, SPOT COMPRESSION"
    assert_dciodvfy_passes(path)
    assert re.match(r".*mag\.dcm: a diagnostic view, not a screening one \(a magnification view; a spot compression "
                    r"view; magnified 1\.8 x: ViewModifierCodeSequence \(0054,0222\) MAGNIFICATION, SPOT "
                    r"COMPRESSION, EstimatedRadiographicMagnificationFactor \(0018,1114\) 1\.8\)",
                    told[DiagnosticViewWarning])
    # the older SNOMED RT code is read through its meaning; a sequence at the top level is read too
    ds = pydicom.dcmread(path)
    ds.ViewCodeSequence[0].ViewModifierCodeSequence = [_code("R-102D6", "SRT", "Magnification")]
    ds.EstimatedRadiographicMagnificationFactor = None
    meta, told = _read_quietly(_edit_ds(ds, tmp_path / "srt.dcm"))
    assert meta["view_modifiers"] == "MAGNIFICATION" and meta["magnification"] is None
    assert "(a magnification view: " in told[DiagnosticViewWarning]
    ds = pydicom.dcmread(path)
    del ds.ViewCodeSequence[0].ViewModifierCodeSequence
    ds.ViewModifierCodeSequence = [_code("399055006", "SCT", "")]
    del ds.EstimatedRadiographicMagnificationFactor
    meta, told = _read_quietly(_edit_ds(ds, tmp_path / "top.dcm"))
    assert meta["view_modifiers"] == "SPOT COMPRESSION" and DiagnosticViewWarning in told
    # the geometry alone is enough: a magnification stand without the modifier
    meta, told = _read_quietly(_write(tmp_path / "stand.dcm", magnification=1.5))
    assert meta["view_modifiers"] == "" and "(magnified 1.5 x: ViewModifierCodeSequence (0054,0222) absent" in \
        told[DiagnosticViewWarning]


@pytest.mark.parametrize("modifiers, magnification", [((), None), ((), 1.07), (("implant displaced",), 1.08),
                                                      (("rolled lateral", "nipple in profile"), None)])
def test_a_screening_view_with_or_without_other_modifiers_is_not_warned(tmp_path: Path, modifiers, magnification):
    """Contact geometry (a factor of about 1.1) and the modifiers of full-field views are only recorded."""
    meta, told = _read_quietly(_write(tmp_path / "v.dcm", view_modifiers=modifiers, magnification=magnification))
    assert DiagnosticViewWarning not in told
    assert meta["view_modifiers"] == ", ".join(m.upper() for m in modifiers) and meta["magnification"] == magnification


def test_an_impossible_magnification_is_dropped_naming_the_tag(tmp_path: Path) -> None:
    meta, told = _read_quietly(_write(tmp_path / "v.dcm", magnification=0.5))
    assert meta["magnification"] is None and DiagnosticViewWarning not in told
    assert "v.dcm: EstimatedRadiographicMagnificationFactor (0018,1114) is 0.5, not a projection's" in \
        told[MissingTagWarning]
    with pytest.raises(ValueError, match="unknown view modifier 'zoomed'; CID 4015 has: .*MAGNIFICATION"):
        _write(tmp_path / "w.dcm", view_modifiers=("zoomed",))
    with pytest.raises(ValueError, match=r"need a coded view \(CC, MLO\), not 'XCCL'"):
        _write(tmp_path / "w.dcm", view="XCCL", view_modifiers=("magnification",))


ERMF = "breast plane (EstimatedRadiographicMagnificationFactor)"
CALIBRATED = "breast plane (PixelSpacing calibrated GEOMETRY)"


@pytest.mark.parametrize("changes, factor, measured_at", [
    ({}, 1.0, "detector plane"),
    ({"EstimatedRadiographicMagnificationFactor": "1.08"}, 1.08, ERMF),
    # a calibration in the file beats the estimate
    ({"EstimatedRadiographicMagnificationFactor": "1.08", "PixelSpacing": [0.07 / 1.1, 0.085 / 1.1],
      "PixelSpacingCalibrationType": "GEOMETRY"}, 1.1, CALIBRATED),
    # PixelSpacing equal to ImagerPixelSpacing, or different but not said to be calibrated: not a calibration
    ({"EstimatedRadiographicMagnificationFactor": "1.08", "PixelSpacing": list(SPACING),
      "PixelSpacingCalibrationType": "GEOMETRY"}, 1.08, ERMF),
    ({"PixelSpacing": [0.065, 0.079]}, 1.0, "detector plane"),
    # only PixelSpacing: taken as it is, in the breast when its calibration says so
    ({"ImagerPixelSpacing": None, "PixelSpacing": list(SPACING), "PixelSpacingCalibrationType": "GEOMETRY"},
     1.0, CALIBRATED),
    ({"ImagerPixelSpacing": None, "PixelSpacing": list(SPACING)}, 1.0, "PixelSpacing (plane not stated)"),
    # GE's convention, from a real Senographe Essential header (GitHub Tetraib/ISISviewer, uploads/test2.js):
    # ImagerPixelSpacing already at the breast (0.0941 mm for 0.1 mm detector elements), the factor 1 and the
    # source-to-patient distance equal to the source-to-detector one; measured as written, not corrected twice
    ({"ImagerPixelSpacing": ["0.09409090909091", "0.09409090909091"], "DetectorElementSpacing": ["0.1", "0.1"],
      "EstimatedRadiographicMagnificationFactor": "1", "DistanceSourceToDetector": "660",
      "DistanceSourceToPatient": "660"}, 1.0, ERMF),
])
def test_sizes_are_measured_in_the_breast_where_the_header_says_how(tmp_path: Path, changes, factor, measured_at):
    """ImagerPixelSpacing is the detector's pitch; a calibrated PixelSpacing (0028,0030) or the
    EstimatedRadiographicMagnificationFactor (0018,1114) brings it to the breast (IHE MAMMO; what
    OHIF's and other viewers' rulers show)."""
    path = _edit(_write(tmp_path / "raw.dcm"), tmp_path / "edited.dcm", **changes)
    meta, _ = _read_quietly(path)
    assert meta["plane_magnification"] == pytest.approx(factor, rel=1e-9)
    assert meta["measured_at"] == measured_at
    given = load_mammogram(path, spacing_mm=0.1).meta
    assert (given["plane_magnification"], given["measured_at"]) == (1.0, "as given")


def test_a_calibration_that_is_no_magnification_is_ignored_naming_the_tag(tmp_path: Path) -> None:
    path = _edit(_write(tmp_path / "raw.dcm", magnification=1.07), tmp_path / "odd.dcm",
                 PixelSpacing=[0.07 / 1.1, 0.085 / 1.3], PixelSpacingCalibrationType="GEOMETRY")
    meta, told = _read_quietly(path)
    assert (meta["plane_magnification"], meta["measured_at"]) == (1.07, ERMF)
    assert re.search(r"odd\.dcm: PixelSpacing \(0028,0030\) 0\.0636364 x 0\.0653846 mm \(calibrated GEOMETRY\) is "
                     r"no magnification of ImagerPixelSpacing \(0018,1164\) 0\.07 x 0\.085 mm \(ratios 1\.1, 1\.3; "
                     r"expected equal, within 1-4\); ignored", told[MissingTagWarning])


# ---------------------------------------------------------------------------------- bad DICOM inputs


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothere\.dcm"):
        load_mammogram(tmp_path / "nothere.dcm")


def test_not_dicom(tmp_path: Path) -> None:
    path = tmp_path / "notes.dcm"
    path.write_text("this is a text file, not an image\n" * 20)
    with pytest.raises(MammogramReadError, match=r"notes\.dcm: not a DICOM file.*DICM"):
        load_mammogram(path)


def test_truncated(dcm: Path, tmp_path: Path) -> None:
    data = dcm.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: len(data) - 500])
    with pytest.raises(MammogramReadError, match=r"cut\.dcm: PixelData \(7FE0,0010\).*truncated"):
        load_mammogram(cut)
    cut.write_bytes(data[:300])  # cut inside the header
    with pytest.raises(MammogramReadError, match=r"cut\.dcm"):
        load_mammogram(cut)


def test_no_pixel_data(dcm: Path, tmp_path: Path) -> None:
    path = _edit(dcm, tmp_path / "nopix.dcm", PixelData=None)
    with pytest.raises(MammogramReadError, match=r"nopix\.dcm: no pixel data: PixelData \(7FE0,0010\) is absent"):
        load_mammogram(path)


def test_non_mg_modality(dcm: Path, tmp_path: Path) -> None:
    path = _edit(dcm, tmp_path / "ct.dcm", Modality="CT")
    with pytest.raises(
        MammogramReadError, match=r"ct\.dcm: Modality \(0008,0060\) is 'CT', not 'MG'.*allow_non_mg=True"
    ):
        load_mammogram(path)
    assert load_mammogram(path, allow_non_mg=True).meta["modality"] == "CT"


def test_processed_tag_via_pydicom(dcm: Path, tmp_path: Path) -> None:
    path = _edit(dcm, tmp_path / "pres.dcm", PresentationIntentType="FOR PRESENTATION")
    with pytest.warns(ProcessedImageWarning, match=r"pres\.dcm.*PresentationIntentType"):
        assert load_mammogram(path).meta["is_raw"] is False
    with pytest.raises(MammogramReadError, match=r"pres\.dcm.*require_raw"):
        read_dicom_mammogram(path, require_raw=True)


def test_presentation_intent_guessed(dcm: Path, tmp_path: Path) -> None:
    path = _edit(dcm, tmp_path / "nopit.dcm", PresentationIntentType=None)
    with pytest.warns(
        MissingTagWarning, match=r"nopit\.dcm: PresentationIntentType \(0008,0068\) is absent; guessed a raw"
    ):
        assert load_mammogram(path).meta["is_raw"] is True  # from the For Processing SOP class
    sc = _edit(
        path, tmp_path / "sc.dcm", SOPClassUID="1.2.840.10008.5.1.4.1.1.7", WindowCenter="2000", WindowWidth="4000"
    )
    with (
        pytest.warns(MissingTagWarning, match="guessed a processed image.*WindowCenter"),
        pytest.warns(ProcessedImageWarning, match=r"sc\.dcm"),
    ):
        img = load_mammogram(sc)
    assert img.meta["is_raw"] is False and img.meta["presentation"] is None


@pytest.mark.parametrize(
    "keyword, meta_key, tag",
    [("KVP", "kvp", r"KVP \(0018,0060\)"), ("BodyPartThickness", "thickness_mm", r"BodyPartThickness \(0018,11A0\)")],
)
def test_missing_physics_tag(dcm: Path, tmp_path: Path, keyword: str, meta_key: str, tag: str) -> None:
    path = _edit(dcm, tmp_path / f"no_{keyword}.dcm", **{keyword: None})
    with pytest.warns(MissingTagWarning, match=rf"no_{keyword}\.dcm: {tag} is absent"):
        img = load_mammogram(path)
    assert img.meta[meta_key] is None
    assert img.meta["kvp" if meta_key != "kvp" else "thickness_mm"] is not None


def test_spacing_fallbacks(dcm: Path, tmp_path: Path) -> None:
    only_ps = _edit(dcm, tmp_path / "ps.dcm", ImagerPixelSpacing=None, PixelSpacing=[0.1, 0.2])
    with pytest.warns(
        MissingTagWarning, match=r"ps\.dcm: ImagerPixelSpacing \(0018,1164\) is absent; using PixelSpacing"
    ):
        img = load_mammogram(only_ps)
    assert img.meta["spacing_mm"] == (0.1, 0.2) and img.meta["spacing_source"] == "PixelSpacing"
    none = _edit(only_ps, tmp_path / "nosp.dcm", PixelSpacing=None)
    with pytest.raises(
        MammogramReadError, match=r"nosp\.dcm.*ImagerPixelSpacing \(0018,1164\).*PixelSpacing \(0028,0030\)"
    ):
        load_mammogram(none)
    img = load_mammogram(none, spacing_mm=(0.05, 0.05))
    assert img.meta["spacing_mm"] == (0.05, 0.05) and img.meta["spacing_source"] == "argument"
    assert img.affine[0, 1] == -0.05


def test_non_regular_files_refused_before_opening(dcm: Path, tmp_path: Path) -> None:
    """A FIFO would block open() forever: refused from os.stat, for images and labels, links resolved."""
    os.mkfifo(tmp_path / "pipe.dcm")
    with pytest.raises(MammogramReadError, match=r"pipe\.dcm: is a FIFO \(named pipe\), not a regular image file"):
        load_mammogram(tmp_path / "pipe.dcm")  # returns at once: the test would hang otherwise
    (tmp_path / "link.nii.gz").symlink_to(tmp_path / "pipe.dcm")
    with pytest.raises(MammogramReadError, match=r"link\.nii\.gz \(-> .*pipe\.dcm\): is a FIFO"):
        LoadMammogramd(keys=["image", "label"])({"image": dcm, "label": tmp_path / "link.nii.gz"})
    (tmp_path / "stack.dcm").mkdir()
    with pytest.raises(MammogramReadError, match=r"stack\.dcm: is a folder"):
        read_dicom_mammogram(tmp_path / "stack.dcm")
    (tmp_path / "gone.dcm").symlink_to(tmp_path / "nowhere.dcm")
    with pytest.raises(FileNotFoundError, match=r"gone\.dcm: broken symbolic link to .*nowhere\.dcm"):
        load_mammogram(tmp_path / "gone.dcm")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(MammogramReadError, match=r"empty\.png: empty file \(0 bytes\)"):
        load_mammogram(tmp_path / "empty.png", spacing_mm=SPACING)
    (tmp_path / "good.dcm").symlink_to(dcm)  # a link to a regular file is fine
    assert load_mammogram(tmp_path / "good.dcm").shape == (1, H, W)


@pytest.mark.parametrize(
    "changes, message",
    [({"Rows": H - 1}, r"PixelData \(7FE0,0010\) holds \d+ bytes but Rows \(0028,0010\) x Columns"),
     ({"BitsStored": 12, "HighBit": 11}, r"stored values span \[\d+, \d+\], outside \[0, 4095\] of BitsStored"),
     ({"BitsAllocated": 8}, r"BitsStored \(0028,0101\) is 14 with BitsAllocated \(0028,0100\) 8"),
     ({"BitsAllocated": 8, "BitsStored": 8, "HighBit": 7}, r"PixelData \(7FE0,0010\) holds \d+ bytes.*geometry"),
     ({"RescaleSlope": "0"}, r"RescaleSlope \(0028,1053\) is 0; a mammogram's slope is positive"),
     ({"RescaleIntercept": "-1e30"}, r"RescaleIntercept \(0028,1052\) is -1e\+30"),
     ({"ImagerPixelSpacing": ["1e-6", "1e-6"]}, r"ImagerPixelSpacing \(0018,1164\).* outside the plausible range"),
     ({"PhotometricInterpretation": None}, r"PhotometricInterpretation \(0028,0004\) is absent"),
     ({"NumberOfFrames": "2"}, r"NumberOfFrames \(0028,0008\) is 2")],
)
def test_inconsistent_file_refused_naming_the_tag(dcm: Path, tmp_path: Path, changes, message) -> None:
    path = _edit(dcm, tmp_path / "bad.dcm", **changes)
    with pytest.raises(MammogramReadError, match=r"bad\.dcm: " + message):
        load_mammogram(path)


def test_explicit_spacing_wins_over_an_implausible_tag(dcm: Path, tmp_path: Path) -> None:
    path = _edit(dcm, tmp_path / "um.dcm", ImagerPixelSpacing=["70", "70"])  # micrometres, not mm
    with pytest.raises(MammogramReadError, match=r"um\.dcm: ImagerPixelSpacing.*70 x 70 mm.*pass spacing_mm"):
        load_mammogram(path)
    img = load_mammogram(path, spacing_mm=(0.07, 0.07))
    assert img.meta["spacing_mm"] == (0.07, 0.07) and img.meta["spacing_source"] == "argument"
    with pytest.raises(MammogramReadError, match=r"um\.dcm: spacing_mm argument.*outside the plausible range"):
        load_mammogram(path, spacing_mm=70)


def test_minimum_size_and_its_override(tmp_path: Path) -> None:
    small = _write(tmp_path / "thumb.dcm", _pixels()[:100, :90])
    with pytest.raises(MammogramReadError, match=r"thumb\.dcm: Rows \(0028,0010\) x Columns \(0028,0011\) = 100 x 90 "
                                                 r"pixels; a mammogram has at least 128 pixels a side"):
        load_mammogram(small)
    assert load_mammogram(small, min_size_px=64).shape == (1, 100, 90)
    np.save(tmp_path / "thumb.npy", _pixels()[:100, :90])
    with pytest.raises(MammogramReadError, match=r"thumb\.npy: image is 100 x 90 pixels"):
        LoadMammogram(spacing_mm=SPACING)(tmp_path / "thumb.npy")
    assert LoadMammogramd(keys="image", spacing_mm=SPACING, min_size_px=64)({"image": tmp_path / "thumb.npy"})[
        "image"].shape == (1, 100, 90)
    np.save(tmp_path / "nan.npy", np.full((H, W), np.nan, np.float32))
    with pytest.raises(MammogramReadError, match=rf"nan\.npy: {H * W} pixels are NaN or infinite"):
        load_mammogram(tmp_path / "nan.npy", spacing_mm=SPACING)


def test_big_endian_loads_the_same_values(dcm: Path, tmp_path: Path) -> None:
    """A genuine Explicit VR Big Endian file gives the same pixels; one whose pixel bytes were left
    little-endian has values beyond BitsStored and is refused (not loaded byte-swapped)."""
    stored = pydicom.dcmread(dcm).pixel_array
    for swap, name in ((True, "be.dcm"), (False, "be_unswapped.dcm")):
        ds = pydicom.dcmread(dcm)
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
        if swap:
            ds.PixelData = stored.astype(">u2").tobytes()
        dicom_write.save_dataset(ds, tmp_path / name, as_is=True, little_endian=False)
    np.testing.assert_array_equal(load_mammogram(tmp_path / "be.dcm")[0].numpy(), stored.astype(np.float32))
    with pytest.raises(MammogramReadError, match=r"be_unswapped\.dcm: stored values span .* wrong byte order"):
        load_mammogram(tmp_path / "be_unswapped.dcm")


def test_unreadable_tag_named_or_dropped(dcm: Path, tmp_path: Path) -> None:
    """pydicom converts values lazily; a bad essential value is refused at once, naming the tag;
    a bad non-essential one is dropped with a warning."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    for keyword, name in (("NumberOfFrames", "frames.dcm"), ("PatientName", "name.dcm")):
        ds = pydicom.dcmread(dcm)
        tag = Tag(pydicom.datadict.tag_for_keyword(keyword))
        ds._dict[tag] = RawDataElement(tag, "XX", 2, b"ab", 0, False, True)  # an unknown VR
        ds.save_as(tmp_path / name, write_like_original=True)
    with pytest.raises(MammogramReadError, match=r"frames\.dcm: NumberOfFrames \(0028,0008\) cannot be read: "
                                                 r"NotImplementedError: Unknown Value Representation"):
        load_mammogram(tmp_path / "frames.dcm")
    with pytest.warns(MissingTagWarning, match=r"name\.dcm: PatientName \(0010,0010\) cannot be read .*; ignored"):
        assert load_mammogram(tmp_path / "name.dcm").shape == (1, H, W)


def test_compressed_undecodable(dcm: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(dcm)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEG2000Lossless
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51 not a real codestream" * 4])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    path = tmp_path / "j2k.dcm"
    dicom_write.save_dataset(ds, path)
    with pytest.raises(
        MammogramReadError,
        match=r"j2k\.dcm: PixelData \(7FE0,0010\) in TransferSyntaxUID \(0002,0010\) 1\.2\.840\.10008\.1\.2\.4\.90 "
        r".*cannot be decoded",
    ):
        load_mammogram(path)


# ---------------------------------------------------------------------------------- NIfTI / PNG / TIFF


def _l_mask() -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[5:40, 3] = 1  # vertical bar near the left edge
    mask[39, 3:20] = 1  # foot towards the right: no symmetry, transposition or flip would show
    return mask


def test_nifti_round_trip_orientation_and_spacing(tmp_path: Path) -> None:
    mask = _l_mask()
    path = save_mask_nifti(tmp_path / "mask.nii.gz", mask, SPACING)
    nii = nib.load(path)
    assert nii.shape == (W, H) and nii.get_data_dtype() == np.uint8
    np.testing.assert_allclose(nii.affine, np.diag([-SPACING[1], -SPACING[0], 1, 1]), rtol=1e-6)
    assert nii.header.get_sform(coded=True)[1] == 1 and nii.header.get_qform(coded=True)[1] == 1
    array, spacing = load_nifti_2d(path)
    np.testing.assert_array_equal(array, mask)
    assert spacing == SPACING
    label = load_label(path)
    assert label.shape == (1, H, W) and label.dtype == torch.uint8 and label.meta["spacing_mm"] == SPACING
    np.testing.assert_array_equal(label[0].numpy(), mask)

    image = np.random.default_rng(1).random((H, W)).astype(np.float32)
    ipath = save_image_nifti(tmp_path / "image.nii", image, SPACING)
    img = load_mammogram(ipath)
    assert img.dtype == torch.float32 and img.meta["spacing_mm"] == SPACING and img.meta["kvp"] is None
    np.testing.assert_array_equal(img[0].numpy(), image)
    assert load_mammogram(ipath, spacing_mm=(0.1, 0.1)).meta["spacing_mm"] == (0.1, 0.1)


def test_nifti_singleton_3d_and_true_3d(tmp_path: Path) -> None:
    mask = _l_mask()
    affine = np.diag([-SPACING[1], -SPACING[0], 1.0, 1.0])
    nib.save(nib.Nifti1Image(mask.T[..., None], affine), tmp_path / "slab.nii.gz")
    array, spacing = load_nifti_2d(tmp_path / "slab.nii.gz")
    np.testing.assert_array_equal(array, mask)
    assert spacing == SPACING
    nib.save(nib.Nifti1Image(np.zeros((W, H, 3), np.uint8), affine), tmp_path / "vol.nii.gz")
    with pytest.raises(MammogramReadError, match=rf"vol\.nii\.gz: NIfTI image has shape \({W}, {H}, 3\)"):
        load_nifti_2d(tmp_path / "vol.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((W, H, 1, 2), np.uint8), affine), tmp_path / "t.nii.gz")
    with pytest.raises(MammogramReadError, match=r"t\.nii\.gz"):
        load_nifti_2d(tmp_path / "t.nii.gz")


def test_nifti_other_orientation_is_reoriented(tmp_path: Path) -> None:
    mask = _l_mask()
    # the same physical mask stored in RAS order: axis 0 along +x (flip of i), axis 1 along +y
    ras = mask.T[::-1, ::-1]
    nib.save(
        nib.Nifti1Image(np.ascontiguousarray(ras), np.diag([SPACING[1], SPACING[0], 1.0, 1.0])), tmp_path / "ras.nii"
    )
    with pytest.warns(UserWarning, match=r"ras\.nii: axes \('R', 'A'\) reoriented"):
        array, spacing = load_nifti_2d(tmp_path / "ras.nii")
    np.testing.assert_array_equal(array, mask)
    assert spacing == SPACING


def test_itk_overlay_dicom_and_nifti(tmp_path: Path) -> None:
    """ITK (so 3D Slicer) puts a pixel of the DICOM and the same pixel of the NIfTI label at one point."""
    itk = pytest.importorskip("itk")
    r, c = 5, 30  # off-diagonal, in a non-square image
    pixels = np.zeros((H, W), np.uint16)
    pixels[r, c] = 1000
    mask = np.zeros((H, W), np.uint8)
    mask[r, c] = 1
    dcm = _write(tmp_path / "img.dcm", pixels)
    nii = save_mask_nifti(tmp_path / "img_label.nii.gz", mask, SPACING)
    points = []
    for path, value in ((dcm, 1000), (nii, 1)):
        image = itk.imread(str(path))
        array = itk.array_view_from_image(image)  # ITK's numpy view is [.., y, x]
        index = np.argwhere(array == value)[0][::-1]  # -> (x, y[, z]) index
        assert tuple(index[:2]) == (c, r)
        points.append(np.asarray(image.TransformIndexToPhysicalPoint([int(i) for i in index]))[:2])
    np.testing.assert_allclose(points[0], points[1], atol=1e-6)
    np.testing.assert_allclose(points[0], (c * SPACING[1], r * SPACING[0]), atol=1e-6)  # LPS mm
    # the MetaTensor affine maps (row, col) to RAS = (-L, -P) of the same point
    ras = load_mammogram(dcm).affine.numpy() @ np.array([r, c, 1.0])
    np.testing.assert_allclose(ras[:2], -points[0], atol=1e-6)


def test_png_and_tiff(tmp_path: Path) -> None:
    import tifffile
    from PIL import Image

    pixels = np.random.default_rng(2).integers(0, 65536, size=(H, W), dtype=np.uint16)
    Image.fromarray(pixels).save(tmp_path / "m.png")
    tifffile.imwrite(tmp_path / "m.tif", pixels)
    for name in ("m.png", "m.tif"):
        with pytest.raises(MammogramReadError, match=re.escape(name) + ": .* no pixel spacing; pass spacing_mm"):
            load_mammogram(tmp_path / name)
        img = load_mammogram(tmp_path / name, spacing_mm=SPACING)
        np.testing.assert_array_equal(img[0].numpy(), pixels.astype(np.float32))  # 16 bits kept
        assert img.meta["spacing_mm"] == SPACING and img.meta["is_raw"] is None
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(MammogramReadError, match=r"rgb\.png: PNG has colour mode 'RGB'"):
        load_mammogram(tmp_path / "rgb.png", spacing_mm=SPACING)
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((H, W, 3), np.uint8))
    with pytest.raises(MammogramReadError, match=r"rgb\.tif: TIFF has 3 colour samples"):
        load_mammogram(tmp_path / "rgb.tif", spacing_mm=SPACING)


def test_label_formats_and_binary_check(tmp_path: Path) -> None:
    from PIL import Image

    mask = _l_mask()
    Image.fromarray(mask * 255).save(tmp_path / "l.png")
    np.save(tmp_path / "l.npy", mask)
    for name in ("l.png", "l.npy"):
        label = load_label(tmp_path / name)
        assert label.dtype == torch.uint8 and label.shape == (1, H, W) and label.meta["spacing_mm"] is None
        np.testing.assert_array_equal(label[0].numpy(), mask)
    bad = mask.copy()
    bad[0, 0] = 2
    save_mask_nifti(tmp_path / "bad.nii.gz", bad, SPACING)
    with pytest.raises(MammogramReadError, match=r"bad\.nii\.gz: label is not binary: values 0, 1, 2"):
        load_label(tmp_path / "bad.nii.gz")
    np.save(tmp_path / "l255.npy", mask * 255)  # 0/255 is accepted from images only
    with pytest.raises(MammogramReadError, match=r"l255\.npy: label is not binary: values 0, 255"):
        load_label(tmp_path / "l255.npy")


# ---------------------------------------------------------------------------------- MONAI transforms


def test_load_mammogramd_image_and_label(tmp_path: Path) -> None:
    from PIL import Image

    pixels, mask = _pixels(), _l_mask()
    dcm = _write(tmp_path / "case.dcm", pixels)
    save_mask_nifti(tmp_path / "case_gt.nii.gz", mask, SPACING)
    Image.fromarray(mask * 255).save(tmp_path / "case_label.png")  # no spacing of its own
    loader = LoadMammogramd(keys=["label", "label_gt", "image"])  # labels first: images are still loaded first
    out = loader(
        {"image": str(dcm), "label": str(tmp_path / "case_label.png"), "label_gt": tmp_path / "case_gt.nii.gz", "id": 7}
    )
    assert out["id"] == 7
    assert out["image"].dtype == torch.float32 and out["image"].meta["kvp"] == 29.0
    np.testing.assert_array_equal(out["image"][0].numpy(), pixels)
    for key in ("label", "label_gt"):
        assert out[key].dtype == torch.uint8 and out[key].shape == (1, H, W)
        np.testing.assert_array_equal(out[key][0].numpy(), mask)
        assert out[key].meta["spacing_mm"] == SPACING
        assert torch.equal(out[key].affine, out["image"].affine)
    assert out["label"].meta["spacing_source"] == "image 'image'"
    assert isinstance(LoadMammogram()(dcm), MetaTensor)
    assert LoadMammogram(label=True)(tmp_path / "case_gt.nii.gz").dtype == torch.uint8


def test_load_mammogramd_errors(tmp_path: Path) -> None:
    dcm = _write(tmp_path / "case.dcm")
    save_mask_nifti(tmp_path / "small.nii.gz", np.zeros((H, W - 1), np.uint8), SPACING)
    loader = LoadMammogramd(keys=["image", "label"])
    with pytest.raises(
        MammogramReadError,
        match=rf"small\.nii\.gz: label 'label' has \(H, W\) = \({H}, {W - 1}\).*case\.dcm has \({H}, {W}\)",
    ):
        loader({"image": dcm, "label": tmp_path / "small.nii.gz"})
    np.save(tmp_path / "soft.npy", np.full((H, W), 0.5, np.float32))
    with pytest.raises(MammogramReadError, match=r"soft\.npy: label is not binary: values 0\.5"):
        loader({"image": dcm, "label": tmp_path / "soft.npy"})
    save_mask_nifti(tmp_path / "coarse.nii.gz", np.zeros((H, W), np.uint8), (0.1, 0.1))
    with pytest.warns(
        UserWarning, match=r"coarse\.nii\.gz: label spacing \(0\.1, 0\.1\) mm differs from image .*case\.dcm"
    ):
        loader({"image": dcm, "label": tmp_path / "coarse.nii.gz"})
    with pytest.raises(KeyError):
        loader({"image": dcm})
    assert set(LoadMammogramd(keys=["image", "label"], allow_missing_keys=True)({"image": dcm})) == {"image"}


# ---------------------------------------------------------------------------------- atomic, no overwrite


def _fail_after_partial_write(target_arg: int):
    def fail(*args, **kwargs):
        Path(args[target_arg]).write_bytes(b"partial")
        raise OSError("disk full")

    return fail


def test_failed_writes_leave_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_io.nib, "save", _fail_after_partial_write(1))
    with pytest.raises(OSError, match="disk full"):
        save_mask_nifti(tmp_path / "m.nii.gz", _l_mask(), SPACING)
    monkeypatch.setattr(dicom_write, "save_dataset", _fail_after_partial_write(1))
    with pytest.raises(OSError, match="disk full"):
        _write(tmp_path / "x.dcm")
    assert os.listdir(tmp_path) == []  # neither the file nor a temporary file


def test_existing_label_never_overwritten(tmp_path: Path) -> None:
    path = save_mask_nifti(tmp_path / "label.nii.gz", _l_mask(), SPACING)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=r"label\.nii\.gz: file already exists.*overwrite=True"):
        save_mask_nifti(path, np.zeros((H, W), np.uint8), SPACING)
    with pytest.raises(FileExistsError):
        save_image_nifti(path, np.zeros((H, W), np.float32), SPACING)
    assert path.read_bytes() == before
    save_mask_nifti(path, np.zeros((H, W), np.uint8), SPACING, overwrite=True)
    assert load_nifti_2d(path)[0].max() == 0
    assert sorted(os.listdir(tmp_path)) == ["label.nii.gz"]


def test_atomic_write_path(tmp_path: Path) -> None:
    target = tmp_path / "out.nii.gz"
    with atomic_write_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".nii.gz") and tmp != target
        tmp.write_bytes(b"done")
        assert not target.exists()
    assert target.read_bytes() == b"done" and os.listdir(tmp_path) == ["out.nii.gz"]
    with pytest.raises(FileExistsError), atomic_write_path(target, overwrite=False) as tmp:
        pass
    with pytest.raises(FileExistsError, match=r"out\.nii\.gz"):
        ensure_new_file(target)
    assert ensure_new_file(target, overwrite=True) == target


def test_dicom_found_by_content(dcm: Path, tmp_path: Path) -> None:
    """DICOM files named by UID (odd 'extension') or without extension are recognised."""
    for name in ("1.2.840.113619.5", "IMG0001"):
        (tmp_path / name).write_bytes(dcm.read_bytes())
        assert load_mammogram(tmp_path / name).meta["modality"] == "MG"
    (tmp_path / "image.xyz").write_text("not an image")
    with pytest.raises(MammogramReadError, match=r"image\.xyz: unsupported file type '\.xyz'"):
        load_mammogram(tmp_path / "image.xyz")


@pytest.mark.parametrize("vendor, view, laterality", [("GE", "CC", "L"), ("HOLOGIC", "MLO", "R"), ("SIEMENS", "CC", "R")])
def test_phantom_mammograms_pass_dciodvfy(tmp_path, vendor, view, laterality):
    """The MG IOD (For Processing) with dicom3tools' validator: 0 errors (CI installs dicom3tools)."""
    from monai_bac.phantom import make_phantom

    ph = make_phantom(seed=3, spacing_mm=0.5, vendor=vendor, view=view, laterality=laterality)
    m = ph.meta
    path = write_mammogram_dicom(tmp_path / "mg.dcm", ph.raw, spacing_mm=m["spacing_mm"], kvp=m["kvp"],
                                 thickness_mm=m["thickness_mm"], anode=m["anode"], filter=m["filter"], view=m["view"],
                                 laterality=m["laterality"], manufacturer=m["manufacturer"],
                                 presentation=m["presentation"], photometric=m["photometric"],
                                 bits_stored=m["bits_stored"])
    assert_dciodvfy_passes(path, required=True)
    assert load_mammogram(path).meta["view"] == view  # read back from ViewCodeSequence

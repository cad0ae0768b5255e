"""A tomosynthesis acquisition's projections (Breast Projection X-Ray Image, PS3.3 A.74) read as the
paper reads its raw tomosynthesis images: the central projection, "as the source is normal to the
detector for this image" (Sec. 2).

Each acquisition is written with :func:`write_breast_projection_dicom` (checked by dciodvfy), every
frame a different image (the phantom shifted by 7 pixels a frame), and the central projection is
not the middle frame, so that reading the wrong frame, or the right frame by its place in the file,
fails. The reference is the same exposure written as a 2D raw mammogram.
"""

from __future__ import annotations

import json

import imagecodecs
import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate

from monai_bac.cli import main
from monai_bac.data import (
    MammogramReadError,
    dicom_write,
    load_mammogram,
    read_dicom_mammogram,
    write_breast_projection_dicom,
    write_mammogram_dicom,
)
from monai_bac.data.errors import MissingTagWarning
from monai_bac.data.study_files import files_to_leave_out, not_a_raw_screening_view
from monai_bac.dicom_seg import read_seg_label
from monai_bac.phantom import make_phantom
from conftest import assert_dciodvfy_passes

pytestmark = pytest.mark.filterwarnings("ignore:builtin type [Ss]wig.*has no __module__:DeprecationWarning")

#: a sweep of 11 exposures from -20 to +30 degrees: 0 is frame 4, the middle frame is 5
ANGLES = np.linspace(-20.0, 30.0, 11)
CENTRAL = 4
SHIFT_PX = 7
#: what differs between the projection set and the 2D file of the same exposure by construction
IDENTITY_KEYS = {"study_instance_uid", "series_instance_uid", "sop_instance_uid", "sop_class_uid", "filename_or_obj",
                 "projection_frame", "projection_angle_deg", "n_projections", "exposure_mas",
                 # the Breast Projection IOD has no PatientOrientation (0020,0020), nor its per-frame macro
                 # (dciodvfy: "not present in standard DICOM IOD"); the 2D file's is "A\R" / "P\FL" ...
                 "patient_orientation"}


def _frames(raw: np.ndarray) -> np.ndarray:
    return np.stack([np.roll(raw, SHIFT_PX * (i - CENTRAL), axis=1) for i in range(len(ANGLES))])


def _common(m: dict) -> dict:
    return dict(spacing_mm=m["spacing_mm"], kvp=m["kvp"], thickness_mm=m["thickness_mm"], anode=m["anode"],
                filter=m["filter"], view=m["view"], laterality=m["laterality"], manufacturer=m["manufacturer"],
                photometric=m["photometric"], bits_stored=m["bits_stored"])


@pytest.fixture(scope="module", params=["GE", "HOLOGIC"])
def acquisition(request, tmp_path_factory) -> dict:
    """A projection set (GE: 16-bit MONOCHROME1, Hologic: 14-bit MONOCHROME2) and the 2D raw image of
    its central exposure, in folders of their own."""
    p = make_phantom(3, spacing_mm=0.5, vendor=request.param)
    m = p.meta
    root = tmp_path_factory.mktemp(request.param)
    (root / "dbt").mkdir()
    (root / "2d").mkdir()
    frames = _frames(p.raw)
    assert not np.array_equal(frames[CENTRAL], frames[len(ANGLES) // 2])
    # the phantom's exposure was taken behind a grid, as GE's tomosynthesis takes its projections
    projections = write_breast_projection_dicom(
        root / "dbt" / "projections.dcm", frames, angles_deg=ANGLES, exposure_mas=m["exposure_mas"] * len(ANGLES),
        compression_force_n=m["compression_force_n"], anti_scatter_grid=True, **_common(m))
    two_d = write_mammogram_dicom(
        root / "2d" / "central.dcm", p.raw, exposure_mas=m["exposure_mas"],
        compression_force_n=m["compression_force_n"], magnification=1.0,
        extra={"BreastImplantPresent": "NO", "Grid": "FOCUSED"}, **_common(m))
    return {"projections": projections, "two_d": two_d, "frames": frames, "meta": m, "root": root}


def test_the_central_projection_reads_as_the_2d_image_of_that_exposure(acquisition):
    got = load_mammogram(acquisition["projections"])
    want = load_mammogram(acquisition["two_d"])
    assert np.array_equal(got[0].numpy(), want[0].numpy())
    differ = {k for k in want.meta if k not in IDENTITY_KEYS and not _same(want.meta[k], got.meta[k])}
    assert not differ, {k: (want.meta[k], got.meta[k]) for k in differ}
    assert want.meta["patient_orientation"] and got.meta["patient_orientation"] == ""  # read as stored
    assert got.meta["exposure_mas"] == pytest.approx(want.meta["exposure_mas"], rel=1e-3)  # that exposure's mAs
    assert (got.meta["projection_frame"], got.meta["projection_angle_deg"], got.meta["n_projections"]) == (CENTRAL, 0.0,
                                                                                                          11)
    assert want.meta["projection_frame"] is None and want.meta["n_projections"] is None
    # the laterality, the spacing and the intensity sign came from the functional groups
    assert got.meta["laterality"] == acquisition["meta"]["laterality"]
    assert got.meta["spacing_mm"] == pytest.approx(acquisition["meta"]["spacing_mm"])


def _same(a, b) -> bool:
    if hasattr(a, "shape"):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def test_the_written_projection_sets_pass_dciodvfy(acquisition, tmp_path):
    assert_dciodvfy_passes(acquisition["projections"], required=True)
    m = acquisition["meta"]
    presentation = write_breast_projection_dicom(tmp_path / "processed.dcm", acquisition["frames"][:3],
                                                 angles_deg=[-10, 0, 10], presentation="FOR PRESENTATION",
                                                 **_common(m))
    assert_dciodvfy_passes(presentation, required=True)
    assert pydicom.dcmread(presentation).SOPClassUID == "1.2.840.10008.5.1.4.1.1.13.1.4"


def test_a_jpeg_2000_projection_set_reads_as_the_uncompressed_one(acquisition, tmp_path):
    ds = pydicom.dcmread(acquisition["projections"])
    bits = int(ds.BitsStored)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEG2000Lossless
    ds.PixelData = encapsulate([imagecodecs.jpeg2k_encode(f, codecformat="j2k", reversible=True, bitspersample=bits)
                                for f in acquisition["frames"]])
    ds["PixelData"].VR, ds["PixelData"].is_undefined_length = "OB", True
    dicom_write.save_dataset(ds, tmp_path / "j2k.dcm")
    got, meta = read_dicom_mammogram(tmp_path / "j2k.dcm")
    want, _ = read_dicom_mammogram(acquisition["projections"])
    assert meta["projection_frame"] == CENTRAL and np.array_equal(got, want)


def test_another_frame_is_read_when_asked_and_a_frame_out_of_range_is_refused(acquisition):
    central, _ = read_dicom_mammogram(acquisition["projections"])
    last, meta = read_dicom_mammogram(acquisition["projections"], frame=10)
    assert meta["projection_angle_deg"] == 30.0
    assert np.array_equal(last, np.roll(central, SHIFT_PX * (10 - CENTRAL), axis=1))
    with pytest.raises(MammogramReadError, match=r"projections\.dcm: frame 11 asked for; the projection set has 11 "
                                                 r"frames \(0-10\)"):
        read_dicom_mammogram(acquisition["projections"], frame=11)
    with pytest.raises(MammogramReadError, match=r"central\.dcm: frame 1 asked for; the image is not a projection set"):
        read_dicom_mammogram(acquisition["two_d"], frame=1)


def test_without_the_tube_angles_the_middle_frame_is_read_and_said(acquisition, tmp_path):
    ds = pydicom.dcmread(acquisition["projections"])
    for group in ds.PerFrameFunctionalGroupsSequence:
        del group.IsocenterReferenceSystemSequence
    dicom_write.save_dataset(ds, tmp_path / "no_angles.dcm")
    with pytest.warns(MissingTagWarning, match=r"no_angles\.dcm: XRaySourceIsocenterPrimaryAngle \(0018,9543\) is "
                                               r"absent from 11 of 11 frames; taking the middle frame \(5\)"):
        pixels, meta = read_dicom_mammogram(tmp_path / "no_angles.dcm")
    central, _ = read_dicom_mammogram(acquisition["projections"])
    assert meta["projection_frame"] == 5 and meta["projection_angle_deg"] is None
    assert np.array_equal(pixels, np.roll(central, SHIFT_PX, axis=1))


def test_a_projection_set_at_odds_with_itself_is_refused_naming_the_tag(acquisition, tmp_path):
    ds = pydicom.dcmread(acquisition["projections"])
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    dicom_write.save_dataset(ds, tmp_path / "truncated.dcm")
    with pytest.raises(MammogramReadError, match=r"truncated\.dcm: PixelData \(7FE0,0010\) holds \d+ bytes for 11 "
                                                 r"frames"):
        read_dicom_mammogram(tmp_path / "truncated.dcm")
    ds = pydicom.dcmread(acquisition["projections"])
    ds.NumberOfFrames = 12
    dicom_write.save_dataset(ds, tmp_path / "frames.dcm")
    with pytest.raises(MammogramReadError, match=r"frames\.dcm: PerFrameFunctionalGroupsSequence \(5200,9230\) has 11 "
                                                 r"items for NumberOfFrames \(0028,0008\) 12"):
        read_dicom_mammogram(tmp_path / "frames.dcm")


def test_a_run_reads_a_projection_set_unless_the_views_2d_raw_image_is_in_it(acquisition, tmp_path):
    projections, two_d = str(acquisition["projections"]), str(acquisition["two_d"])
    assert files_to_leave_out([projections]) == {}
    # a "combo" acquisition: the 2D image of the same study and view beside its projections
    combo = write_mammogram_dicom(tmp_path / "combo_2d.dcm", acquisition["frames"][CENTRAL],
                                  study_uid=pydicom.dcmread(projections).StudyInstanceUID,
                                  extra={"AcquisitionDateTime": "20260101115900"}, **_common(acquisition["meta"]))
    left = files_to_leave_out([projections, str(combo), two_d])
    assert left == {projections: f"the tomosynthesis projections of the view of {combo} (the same study, laterality, "
                                 "view and view modifiers), whose 2D raw image this run reads"}
    # the annotation tools are given single-frame images only
    assert not_a_raw_screening_view(projections).startswith("a tomosynthesis projection set (Breast Projection X-Ray "
                                                            "Image): a viewer loads it as a multi-frame object")
    assert not_a_raw_screening_view(two_d) == ""


def test_monai_bac_infer_segments_the_central_projection_as_the_2d_image(acquisition, tiny_bundle):
    """The bundle's inference through ``monai-bac infer``: the same mask and figures as for the 2D file,
    and a DICOM SEG that names the projection set's central frame, valid for dciodvfy."""
    out = {}
    for key, folder in (("dbt", "dbt"), ("2d", "2d")):
        out[key] = acquisition["root"] / f"out_{key}"
        assert main(["infer", str(acquisition["root"] / folder), "--model", str(tiny_bundle), "--out", str(out[key]),
                     "--quiet", "--no-overlay", "--no-calcium"]) == 0
    dbt = json.loads(next(out["dbt"].glob("*_bac.json")).read_text())
    flat = json.loads(next(out["2d"].glob("*_bac.json")).read_text())
    assert dbt["status"] == "ok" and dbt["quantification"] == flat["quantification"]
    assert dbt["image_info"]["laterality"] == acquisition["meta"]["laterality"]
    assert np.array_equal(load_mammogram(next(out["dbt"].glob("*_bac.nii.gz")))[0].numpy(),
                          load_mammogram(next(out["2d"].glob("*_bac.nii.gz")))[0].numpy())
    seg_path = next(out["dbt"].glob("*_bac_seg.dcm"))
    assert_dciodvfy_passes(seg_path)
    seg = pydicom.dcmread(seg_path)
    refs = [r for g in seg.PerFrameFunctionalGroupsSequence for d in g.DerivationImageSequence
            for r in d.SourceImageSequence]
    source = pydicom.dcmread(acquisition["projections"], stop_before_pixels=True)
    assert refs and all((r.ReferencedSOPInstanceUID, r.ReferencedSOPClassUID, int(r.ReferencedFrameNumber))
                        == (source.SOPInstanceUID, source.SOPClassUID, CENTRAL + 1) for r in refs)
    mask, info = read_seg_label(seg_path)
    assert info["source_sop_instance_uid"] == source.SOPInstanceUID
    assert np.array_equal(mask, load_mammogram(next(out["dbt"].glob("*_bac.nii.gz")))[0].numpy().astype(np.uint8))


def test_the_rendition_of_the_central_projection_names_its_frame(acquisition, tmp_path):
    """``monai-bac present``'s rendition: the 2D image's pixels, a SourceImageSequence naming the frame,
    and left out of a run that reads the projection set."""
    from monai_bac.presentation import write_presentation

    rendition = write_presentation(acquisition["projections"], tmp_path / "rendition.dcm")
    flat = write_presentation(acquisition["two_d"], tmp_path / "flat.dcm")
    assert np.array_equal(pydicom.dcmread(rendition).pixel_array, pydicom.dcmread(flat).pixel_array)
    assert_dciodvfy_passes(rendition)
    source = pydicom.dcmread(rendition).SourceImageSequence[0]
    assert (source.ReferencedSOPClassUID, int(source.ReferencedFrameNumber)) == ("1.2.840.10008.5.1.4.1.1.13.1.5",
                                                                                  CENTRAL + 1)
    left = files_to_leave_out([str(acquisition["projections"]), str(rendition)])
    assert left == {str(rendition): f"the processed (FOR PRESENTATION) rendition of {acquisition['projections']} "
                                    "(SourceImageSequence (0008,2112)), whose raw image this run reads"}

"""BAC labels as users have them: DICOM SEG, whoever wrote them (the frame of the image, the BAC segment
among several), and 3D Slicer's own segmentation files (.seg.nrrd).

A PACS holds its annotations as DICOM Segmentation objects: this package's inference writes them, a
viewer such as OHIF saves them, 3D Slicer exports them. The SEGs here are built with highdicom
directly, with the choices another tool makes (several segments, its own codes, FRACTIONAL, several
images in one SEG), and read back through ``load_label`` / ``LoadMammogramd`` as training and
evaluation read labels.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

from monai_bac.data import LoadMammogramd, MammogramReadError, load_label, save_mask_nifti
from monai_bac.dicom_seg import read_seg_label, write_dicom_seg
from monai_bac.phantom import make_phantom
from conftest import assert_dciodvfy_passes

hd = pytest.importorskip("highdicom")

# itk's SWIG bindings warn about their own types on import; nothing to do with this code
pytestmark = pytest.mark.filterwarnings("ignore:builtin type [Ss]wig.*has no __module__:DeprecationWarning")


def _segment(number: int, label: str, code: tuple[str, str, str]):
    from pydicom.sr.codedict import codes

    return hd.seg.SegmentDescription(
        segment_number=number, segment_label=label,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=hd.sr.CodedConcept(*code),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)


def _seg(path: Path, sources: list[Path], pixels: np.ndarray, segments, fractional: bool = False) -> Path:
    """A SEG of ``sources`` (pixels: (n_sources, H, W, n_segments)) as another tool would write it."""
    headers = [pydicom.dcmread(s, stop_before_pixels=True) for s in sources]
    kind = hd.seg.SegmentationTypeValues.FRACTIONAL if fractional else hd.seg.SegmentationTypeValues.BINARY
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seg = hd.seg.Segmentation(
            source_images=headers, pixel_array=pixels if fractional else pixels.astype(bool),
            segmentation_type=kind, segment_descriptions=segments, series_instance_uid=hd.UID(), series_number=5,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="another tool",
            manufacturer_model_name="viewer", software_versions="1", device_serial_number="1",
            omit_empty_frames=False,
            pixel_measures=hd.PixelMeasuresSequence(pixel_spacing=[0.5, 0.5], slice_thickness=1.0))
    seg.save_as(str(path))
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Two phantom mammograms of one series (as a PACS study holds the views) and their BAC masks."""
    folder = tmp_path_factory.mktemp("seg_labels")
    out = []
    study, series = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    for seed in (3, 4):
        ph = make_phantom(seed, spacing_mm=0.5)
        path = folder / f"img{seed}.dcm"
        ph.write_dicom(path, patient_id="P1")
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.save_as(path)
        out.append((path, ph.bac_mask.astype(np.uint8)))
    assert out[0][1].shape == out[1][1].shape and out[0][1].any() and out[1][1].any()
    return out


def test_this_packages_seg_reads_back_as_the_label(images, tmp_path):
    image, mask = images[0]
    seg = write_dicom_seg(tmp_path / "bac_seg.dcm", mask, image)
    label = load_label(seg)
    assert label.dtype.is_floating_point is False and np.array_equal(label[0].numpy(), mask)
    assert (label.meta["spacing_mm"], label.meta["spacing_source"]) == ((0.5, 0.5), "SEG Pixel Measures")
    # the same keys as every other label's, so that a batch of SEG and NIfTI labels collates
    assert set(label.meta) == set(load_label(save_mask_nifti(tmp_path / "m.nii.gz", mask, (0.5, 0.5))).meta)


@pytest.mark.parametrize("made", ["AUTOMATIC", "SEMIAUTOMATIC", "MANUAL"])
def test_a_seg_says_how_its_segment_was_made(images, tmp_path, made):
    """SegmentAlgorithmType (0062,0008): the model's output, a person's correction of it, or a person's
    drawing; the algorithm identified unless none took part (Type 1C); the person who made it
    (ContentCreatorName (0070,0084), Type 2: empty for the model's output; a name beyond ASCII in UTF-8,
    SpecificCharacterSet ISO_IR 192); dciodvfy finds no error."""
    image, mask = images[0]
    person = {"AUTOMATIC": None, "SEMIAUTOMATIC": "Doe^Jane", "MANUAL": "Müller^José"}[made]  # UTF-8 where needed
    path = write_dicom_seg(tmp_path / "bac_seg.dcm", mask, image, algorithm_type=made,
                           algorithm_parameters={"model": "1733-52881"}, content_creator_name=person)
    ds = pydicom.dcmread(path)
    assert "ContentCreatorName" in ds and str(ds.ContentCreatorName) == (person or "")
    segment = ds.SegmentSequence[0]
    assert segment.SegmentAlgorithmType == made
    identified = segment.get("SegmentationAlgorithmIdentificationSequence")
    if made == "MANUAL":
        assert not identified and "SegmentAlgorithmName" not in segment
    else:
        assert identified[0].AlgorithmName == segment.SegmentAlgorithmName == "monai-bac"
    _, info = read_seg_label(path)
    expected = ({"type": "MANUAL", "name": "", "version": "", "parameters": {}} if made == "MANUAL" else
                {"type": made, "name": "monai-bac", "version": identified[0].AlgorithmVersion,
                 "parameters": {"model": "1733-52881"}})
    assert info["algorithm"] == expected
    assert info["content_creator"] == person
    assert_dciodvfy_passes(path)


def test_a_seg_of_an_unknown_making_is_refused_naming_the_tag(images, tmp_path):
    from monai_bac.dicom_seg import DicomSegError

    image, mask = images[0]
    with pytest.raises(DicomSegError, match=r"'CORRECTED' is none of AUTOMATIC, SEMIAUTOMATIC, MANUAL "
                                            r"\(SegmentAlgorithmType \(0062,0008\)\)"):
        write_dicom_seg(tmp_path / "bac_seg.dcm", mask, image, algorithm_type="CORRECTED")
    assert not (tmp_path / "bac_seg.dcm").exists()


def test_the_bac_segment_of_another_tools_fractional_seg(images, tmp_path):
    """Two segments, the BAC one named by its label and coded in SNOMED CT, not by this package's code;
    FRACTIONAL values cut at one half."""
    image, mask = images[0]
    rng = np.random.default_rng(0)
    other = np.zeros(mask.shape, np.float32)
    other[10:40, 10:40] = 1.0
    bac = mask * 0.8 + (1 - mask) * (rng.random(mask.shape) < 0.01) * 0.3  # faint specks below one half
    pixels = np.stack([other, bac.astype(np.float32)], axis=-1)[None]
    seg = _seg(tmp_path / "fractional.dcm", [image], pixels,
               [_segment(1, "Mass", ("4147007", "SCT", "Mass")),
                _segment(2, "Breast arterial calcification", ("128305009", "SCT", "Calcification"))],
               fractional=True)
    assert np.array_equal(load_label(seg)[0].numpy(), mask)
    _, info = read_seg_label(seg)
    assert (info["segment"], info["segmentation_type"]) == ("2 'Breast arterial calcification'", "FRACTIONAL")


def test_a_seg_whose_bac_segment_cannot_be_told_is_refused_naming_its_segments(images, tmp_path):
    image, mask = images[0]
    pixels = np.stack([mask, mask], axis=-1)[None]
    seg = _seg(tmp_path / "two.dcm", [image], pixels, [_segment(1, "Mass", ("4147007", "SCT", "Mass")),
                                                        _segment(2, "Cyst", ("367643001", "SCT", "Cyst"))])
    with pytest.raises(MammogramReadError, match=r"two\.dcm: the SEG holds 2 segments \(1 'Mass'; 2 'Cyst'\) and "
                                                 r"none of them is the BAC one"):
        load_label(seg)


def _one_seg_of_two_images(path: Path, a: Path, b: Path) -> Path:
    """Two FRACTIONAL one-image SEGs joined into one SEG of two frames, one per image: what a viewer that
    annotates a series' views in one object writes (highdicom itself writes one image per SEG when the
    images have no frame of reference, as mammograms)."""
    first, second = pydicom.dcmread(a), pydicom.dcmread(b)
    first.NumberOfFrames = 2
    first.PerFrameFunctionalGroupsSequence.append(second.PerFrameFunctionalGroupsSequence[0])
    first.ReferencedSeriesSequence[0].ReferencedInstanceSequence.append(
        second.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0])
    first.PixelData = first.PixelData + second.PixelData  # 8 bits a pixel: frames simply follow each other
    first.SOPInstanceUID = first.file_meta.MediaStorageSOPInstanceUID = hd.UID()
    first.save_as(path)
    return path


def test_a_seg_of_several_images_is_read_on_the_frame_of_its_image(images, tmp_path):
    (first, first_mask), (second, second_mask) = images
    bac = [_segment(1, "BAC", ("1", "99LOCAL", "BAC"))]
    seg = _one_seg_of_two_images(
        tmp_path / "views.dcm",
        _seg(tmp_path / "a.dcm", [first], first_mask[None, ..., None].astype(np.float32), bac, fractional=True),
        _seg(tmp_path / "b.dcm", [second], second_mask[None, ..., None].astype(np.float32), bac, fractional=True))
    with pytest.raises(MammogramReadError, match=r"views\.dcm: the SEG annotates 2 images .*load it with its image"):
        load_label(seg)
    loader = LoadMammogramd(keys=["image", "label"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for image, mask in images:
            d = loader({"image": str(image), "label": str(seg)})
            assert np.array_equal(d["label"][0].numpy(), mask)
    # a SEG of another image, or an image given as a label, is refused naming both
    only_first = _seg(tmp_path / "first.dcm", [first], first_mask[None, ..., None],
                      bac)
    uid = str(pydicom.dcmread(second).SOPInstanceUID)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(MammogramReadError, match=rf"first\.dcm: the SEG annotates [0-9.]+ .*not the image {uid}"):
            loader({"image": str(second), "label": str(only_first)})
        with pytest.raises(MammogramReadError, match=r"img4\.dcm: a DICOM label must be a Segmentation \(SEG\), not "
                                                     r"Digital Mammography X-Ray Image Storage - For Processing"):
            loader({"image": str(second), "label": str(second)})


def test_monai_bac_infer_measures_a_seg_annotation_as_the_nifti_one(tiny_bundle, phantom_cohort, tmp_path):
    """A datalist whose labels are the PACS's SEGs: the annotation's length and calcium are those of the
    same annotation as NIfTI."""
    from monai_bac.cli import main

    entry = json.loads((phantom_cohort / "datalist.json").read_text())["test"][0]
    image, nifti = phantom_cohort / entry["image"], phantom_cohort / entry["label"]
    seg = write_dicom_seg(tmp_path / "label_seg.dcm", load_label(nifti)[0].numpy(), image)
    rows = {}
    for kind, label in (("nifti", nifti), ("seg", seg)):
        datalist = tmp_path / f"{kind}.json"
        datalist.write_text(json.dumps({"test": [{"image": str(image), "label": str(label)}]}))
        out = tmp_path / kind
        assert main(["infer", str(datalist), "--model", str(tiny_bundle), "--out", str(out), "--quiet",
                     "--no-overlay"]) == 0
        with open(out / "results.csv") as f:
            (rows[kind],) = list(csv.DictReader(f))
    assert float(rows["seg"]["annotation_length_mm"]) > 0
    for key in ("annotation_present", "annotation_length_mm", "annotation_calcium_mg"):
        assert rows["seg"][key] == rows["nifti"][key], key


# ---------------------------------------------------------------------------------- 3D Slicer's .seg.nrrd
slicerio = pytest.importorskip("slicerio")


def _slicer(path: Path, masks: dict[str, np.ndarray], origin_px=(0, 0), pitch=(0.5, 0.5), slices: int = 1,
            flip: bool = False) -> Path:
    """A segmentation saved as 3D Slicer saves one (slicerio, the reader and writer Slicer's developer guide
    names): voxel (i, j, k) = (column, row, slice), LPS axes, segments overlapping in layers. ``origin_px``:
    (row, col) of voxel (0, 0) on the image, as Slicer keeps only the segments' extent."""
    (h, w) = next(iter(masks.values())).shape
    ijk = np.diag([pitch[1] * (-1 if flip else 1), pitch[0], 1.0, 1.0])
    ijk[:2, 3] = (origin_px[1] * pitch[1], origin_px[0] * pitch[0])
    seg = slicerio.create_segmentation((w, h, slices), ijk)
    for name, mask in masks.items():
        slicerio.add_segment(seg, np.repeat(mask.T.astype(bool)[..., None], slices, axis=2), {"name": name})
    slicerio.write_segmentation(str(path), seg)
    return path


def test_a_slicer_segmentation_reads_as_the_label(images, tmp_path):
    image, mask = images[0]
    label = load_label(_slicer(tmp_path / "Segmentation.seg.nrrd", {"Segment_1": mask}))
    assert np.array_equal(label[0].numpy(), mask)
    assert (label.meta["spacing_mm"], label.meta["spacing_source"]) == ((0.5, 0.5), "NRRD header")
    # a labelmap exported without segment names is read when binary
    seg = slicerio.create_segmentation((mask.shape[1], mask.shape[0], 1), np.diag([0.5, 0.5, 1.0, 1.0]))
    seg["voxels"][..., 0] = mask.T
    slicerio.write_segmentation(str(tmp_path / "labelmap.nrrd"), seg)
    assert np.array_equal(load_label(tmp_path / "labelmap.nrrd")[0].numpy(), mask)


def test_the_bac_segment_of_a_slicer_segmentation_cropped_to_its_extent_is_placed_on_the_image(images, tmp_path):
    """Slicer's default: only the extent the segments cover, its origin where that extent starts; segments
    that overlap (the breast outline drawn over the BAC) in separate layers."""
    image, mask = images[0]
    rows, cols = np.nonzero(mask)
    r0, r1, c0, c1 = rows.min() - 3, rows.max() + 4, cols.min() - 2, cols.max() + 3
    crop = mask[r0:r1, c0:c1]
    breast = np.ones_like(crop)
    path = _slicer(tmp_path / "cropped.seg.nrrd", {"Breast": breast, "Breast arterial calcification": crop},
                   origin_px=(r0, c0))
    assert slicerio.read_segmentation(str(path))["voxels"].ndim == 4  # two layers: the segments overlap
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = LoadMammogramd(keys=["image", "label"])({"image": str(image), "label": str(path)})
    assert np.array_equal(d["label"][0].numpy(), mask)
    with pytest.raises(MammogramReadError, match=rf"cropped\.seg\.nrrd: the segmentation starts at row {r0}, column "
                                                 rf"{c0} of its image .*load it with its image"):
        load_label(path)


def test_a_slicer_segmentation_that_cannot_be_placed_or_told_is_refused(images, tmp_path):
    _, mask = images[0]
    two = _slicer(tmp_path / "two.seg.nrrd", {"Mass": mask, "Cyst": np.zeros_like(mask)})
    with pytest.raises(MammogramReadError, match=r"two\.seg\.nrrd: the segmentation holds 2 segments \('Mass'; "
                                                 r"'Cyst'\) and none of them is named as BAC"):
        load_label(two)
    with pytest.raises(MammogramReadError, match=r"flipped\.seg\.nrrd: space directions .* are not the axes"):
        load_label(_slicer(tmp_path / "flipped.seg.nrrd", {"BAC": mask}, flip=True))
    with pytest.raises(MammogramReadError, match=r"volume\.seg\.nrrd: a segmentation of 3 slices"):
        load_label(_slicer(tmp_path / "volume.seg.nrrd", {"BAC": mask}, slices=3))
    with pytest.raises(MammogramReadError, match=r"a NRRD file is read as a label"):
        from monai_bac.data import load_mammogram

        load_mammogram(two)

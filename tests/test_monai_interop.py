"""The transforms in a MONAI user's own pipeline.

MONAI's own loader: ``LoadImage(d)`` with :class:`monai_bac.data.MammogramReader` gives what
``LoadMammogramd`` gives, a refused file is refused through it, and an image loaded by MONAI's
default readers is refused by the transforms with a message that names the reader to use. MONAI's
DataLoader: the README's chain batches different mammograms once ``DropEmptyMetad`` ends it. MONAI's
SaveImage: a mask written from the loader's affine lies on the DICOM in ITK's (3D Slicer's) frame."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import DataLoader, Dataset, MetaTensor
from monai.transforms import Compose, LoadImage, LoadImaged

from monai_bac.data import LoadMammogramd, MammogramReader, MammogramReadError, load_label, load_mammogram
from monai_bac.data.image_io import save_mask_nifti
from monai_bac.phantom import make_phantom
from monai_bac.transforms import (
    BreastRegion,
    BreastRegiond,
    CalcificationThicknessd,
    CorrectBACLabel,
    CorrectBACLabeld,
    DensityMapd,
    DropEmptyMetad,
    ForeignLoaderError,
    LogGammaNormalize,
    LogGammaNormalized,
)


@pytest.fixture(scope="module")
def ge_case(tmp_path_factory) -> dict:
    """A small realistic GE phantom (16-bit MONOCHROME1) as DICOM, with its BAC label as NIfTI and SEG."""
    folder = tmp_path_factory.mktemp("monai_reader")
    ph = make_phantom(57313, view="MLO", laterality="R", vendor="GE", physics="realistic",
                      spacing_mm=0.2, fov_mm=(160.0, 130.0))
    assert ph.meta["photometric"] == "MONOCHROME1" and ph.bac_mask.any()
    image = folder / "RMLO.dcm"
    ph.write_dicom(image)
    nifti = save_mask_nifti(folder / "RMLO_bac.nii.gz", ph.bac_mask, ph.meta["spacing_mm"])
    from monai_bac.dicom_seg import write_dicom_seg

    seg = write_dicom_seg(folder / "RMLO_seg.dcm", ph.bac_mask, image)
    return {"image": image, "nifti": Path(nifti), "seg": Path(seg), "mask": ph.bac_mask}


def _same_meta(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for key in a:
        assert np.array_equal(np.asarray(a[key]), np.asarray(b[key])), key


@pytest.mark.parametrize("reader", ["monai_bac.data.MammogramReader", MammogramReader, MammogramReader()])
def test_loadimaged_with_the_reader_gives_what_loadmammogramd_gives(ge_case, reader):
    ours = LoadMammogramd(keys="image")({"image": str(ge_case["image"])})["image"]
    got = LoadImaged(keys="image", reader=reader, ensure_channel_first=True)({"image": str(ge_case["image"])})["image"]
    assert isinstance(got, MetaTensor) and got.shape == ours.shape == (1, 800, 650) and got.dtype == torch.float32
    assert torch.equal(got.as_tensor(), ours.as_tensor())
    assert torch.equal(got.affine, ours.affine)
    _same_meta(got.meta, ours.meta)
    assert got.meta["photometric"] == "MONOCHROME1" and got.meta["kvp"] and got.meta["spacing_mm"] == (0.2, 0.2)


def test_a_bundle_config_names_the_reader_and_the_chain_runs_as_with_loadmammogramd(ge_case):
    """Model-zoo style: the reader by its dotted path in a config; the transforms' outputs are the same."""
    parser = ConfigParser({"load": {"_target_": "LoadImaged", "keys": ["image"], "ensure_channel_first": True,
                                    "reader": "monai_bac.data.MammogramReader"}})
    chain = [BreastRegiond(keys="image"), DensityMapd(keys="image"), CalcificationThicknessd(keys="density")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        via_monai = Compose([parser.get_parsed_content("load"), *chain])({"image": str(ge_case["image"])})
        via_ours = Compose([LoadMammogramd(keys="image"), *chain])({"image": str(ge_case["image"])})
    for key in ("breast_map", "density", "calc_thickness"):
        assert torch.equal(via_monai[key].as_tensor(), via_ours[key].as_tensor()), key
    assert via_monai["density"].meta["density"]["vbd_percent"] == via_ours["density"].meta["density"]["vbd_percent"]


def test_without_a_channel_the_image_is_h_w_and_the_transforms_take_it(ge_case):
    image = LoadImage(reader=MammogramReader())(str(ge_case["image"]))
    assert image.shape == (800, 650) and image.meta["original_channel_dim"] == "no_channel"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flat = BreastRegion()(image)
        channel = BreastRegion()(load_mammogram(ge_case["image"]))
    assert flat.shape == (800, 650) and np.array_equal(np.asarray(flat), np.asarray(channel)[0])


@pytest.mark.parametrize("kind", ["nifti", "seg"])
def test_labels_through_loadimaged(ge_case, kind):
    loader = LoadImaged(keys="label", reader=MammogramReader(label=True), dtype=np.uint8, ensure_channel_first=True)
    got = loader({"label": str(ge_case[kind])})["label"]
    ours = load_label(ge_case[kind])
    assert got.dtype == torch.uint8 and got.shape == (1, 800, 650)
    assert torch.equal(got.as_tensor(), ours.as_tensor()) and np.array_equal(got.numpy()[0], ge_case["mask"])
    _same_meta(got.meta, ours.meta)


def test_a_refused_file_is_refused_through_loadimage_not_read_by_monais_own_readers(ge_case, tmp_path):
    """LoadImage tries its default readers when a chosen reader's ``read`` raises; ITK or pydicom would
    then load the mammogram without its physics. The reader's own error must come out instead."""
    with pytest.raises(MammogramReadError, match=r"ct\.dcm: Modality \(0008,0060\) is .CT."):
        LoadImage(reader=MammogramReader(allow_non_mg=False))(str(_as_ct(ge_case["image"], tmp_path / "ct.dcm")))
    with pytest.raises(MammogramReadError, match=r"one mammogram per file name, got 2"):
        LoadImage(reader=MammogramReader())([str(ge_case["image"]), str(ge_case["image"])])
    with pytest.raises(MammogramReadError, match=r"RMLO\.dcm: a DICOM label must be a Segmentation \(SEG\)"):
        LoadImage(reader=MammogramReader(label=True))(str(ge_case["image"]))


def _as_ct(src: Path, dst: Path) -> Path:
    import pydicom

    from monai_bac.data.dicom_write import save_dataset

    ds = pydicom.dcmread(src)
    ds.Modality = "CT"
    save_dataset(ds, dst)
    return dst


def test_verify_suffix_lets_an_auto_selecting_loadimage_pick_it(ge_case, tmp_path):
    reader = MammogramReader()
    bare = tmp_path / "IM0001"
    bare.write_bytes(ge_case["image"].read_bytes())
    assert reader.verify_suffix(str(ge_case["image"])) and reader.verify_suffix(str(bare))
    assert reader.verify_suffix([str(ge_case["nifti"]), "a.png", "b.tiff", "c.npy"])
    assert not reader.verify_suffix("notes.txt") and not reader.verify_suffix("segmentation.seg.nrrd")
    assert MammogramReader(label=True).verify_suffix("segmentation.seg.nrrd")
    loader = LoadImage(ensure_channel_first=True)
    loader.register(reader)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        picked = loader(str(bare))
    assert picked.meta["kvp"] is not None and picked.shape == (1, 800, 650)


@pytest.mark.parametrize("reader", ["PydicomReader", "ITKReader"])
def test_the_transforms_refuse_an_image_loaded_by_monais_default_readers(ge_case, reader):
    if reader == "ITKReader":
        pytest.importorskip("itk")
    foreign = LoadImage(reader=reader, ensure_channel_first=True)(str(ge_case["image"]))
    ours = load_mammogram(ge_case["image"])
    # what the message warns of: neither reader gives the stored mammogram in (row, col) order
    assert tuple(foreign.shape[1:3]) == (650, 800)
    for transform in (BreastRegion(), BreastRegion(spacing_mm=0.2), LogGammaNormalize()):
        with pytest.raises(ForeignLoaderError, match=r"RMLO\.dcm: loaded by a reader that is not monai-bac's.*"
                                                     r"monai_bac\.data\.MammogramReader"):
            transform(foreign)
    assert BreastRegion()(ours).shape == ours.shape  # the same file, loaded by this package


def test_a_label_loaded_by_monais_nibabel_reader_is_refused_and_a_hand_made_metatensor_is_not(ge_case):
    image = load_mammogram(ge_case["image"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calc = Compose([BreastRegiond(keys="image"), DensityMapd(keys="image"),
                        CalcificationThicknessd(keys="density")])({"image": image})["calc_thickness"]
    foreign = LoadImage(reader="NibabelReader", ensure_channel_first=True)(str(ge_case["nifti"]))
    with pytest.raises(ForeignLoaderError, match=r"RMLO_bac\.nii\.gz.*MammogramReader\(label=True\)"):
        CorrectBACLabel()(foreign, calc)
    # a MetaTensor made by hand, with the spacing in its meta, is the user's own: not refused
    hand_made = MetaTensor(torch.as_tensor(ge_case["mask"][None]), meta={"spacing_mm": (0.2, 0.2)})
    corrected = CorrectBACLabel()(hand_made, calc)
    assert corrected.shape == hand_made.shape and "label_correction" in corrected.meta


def test_the_readme_chain_batches_different_mammograms_in_a_monai_dataloader(ge_case, tmp_path):
    """A GE MLO and a Hologic CC: their meta hold None where a tag is absent (a 2D image's projection
    frame, its view modifiers), which torch's collate refuses; ended by DropEmptyMetad, as the README
    says, they batch."""
    ph = make_phantom(57316, view="CC", laterality="L", vendor="HOLOGIC", physics="realistic",
                      spacing_mm=0.2, fov_mm=(160.0, 130.0))
    ph.write_dicom(tmp_path / "LCC.dcm", patient_id="OTHER")
    save_mask_nifti(tmp_path / "LCC_tpa.nii.gz", ph.tpa_mask, ph.meta["spacing_mm"])
    data = [{"image": str(ge_case["image"]), "label": str(ge_case["nifti"])},
            {"image": str(tmp_path / "LCC.dcm"), "label": str(tmp_path / "LCC_tpa.nii.gz")}]
    keys = ["image", "label", "breast_map", "density", "calc_thickness"]
    chain = [LoadMammogramd(keys=["image", "label"]), BreastRegiond(keys="image"), DensityMapd(keys="image"),
             CalcificationThicknessd(keys="density"), CorrectBACLabeld(keys="label"), LogGammaNormalized(keys="image")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TypeError, match="NoneType"):  # why the README's chain ends with DropEmptyMetad
            next(iter(DataLoader(Dataset(data, Compose(chain)), batch_size=2)))
        batch = next(iter(DataLoader(Dataset(data, Compose([*chain, DropEmptyMetad(keys=keys)])), batch_size=2)))
    assert batch["image"].shape == batch["label"].shape == (2, 1, 800, 650)
    assert [m.split()[0] for m in batch["image"].meta["manufacturer"]] == ["GE", "HOLOGIC,"]
    assert batch["density"].meta["density"]["vbd_percent"].shape == (2,)


def test_monais_saveimage_writes_a_mask_that_lies_on_the_dicom_in_itks_frame(ge_case, tmp_path):
    """A MONAI user ends a pipeline with SaveImage(d); 3D Slicer places files by ITK's physical frame.
    Every mask pixel of the NIfTI MONAI writes from the loader's affine must fall on the mask in the
    DICOM's own ITK frame (MONAI writes the axes in another order: its direction matrix swaps them)."""
    itk = pytest.importorskip("itk")
    from monai.transforms import SaveImage

    image = load_mammogram(ge_case["image"])
    pred = MetaTensor(torch.as_tensor(ge_case["mask"][None]), affine=image.affine, meta=dict(image.meta))
    SaveImage(output_dir=tmp_path, output_postfix="bac", separate_folder=False, output_ext=".nii.gz",
              print_log=False)(pred)
    written = tmp_path / "RMLO_bac.nii.gz"
    nifti, dicom = itk.imread(str(written)), itk.imread(str(ge_case["image"]))
    array = itk.array_from_image(nifti)
    assert array.sum() == ge_case["mask"].sum()
    landed = np.zeros_like(ge_case["mask"])
    for index in np.argwhere(array > 0):
        point = list(nifti.TransformIndexToPhysicalPoint([int(i) for i in index[::-1]]))
        col, row = list(dicom.TransformPhysicalPointToIndex(point + [0.0] * (dicom.GetImageDimension() - len(point))))[:2]
        landed[row, col] = 1
    assert np.array_equal(landed, ge_case["mask"])

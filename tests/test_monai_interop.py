"""The transforms in a MONAI user's own pipeline.

MONAI's own loader: ``LoadImage(d)`` with :class:`monai_bac.data.MammogramReader` gives what
``LoadMammogramd`` gives, a refused file is refused through it, and an image loaded by MONAI's
default readers is refused by the transforms with a message that names the reader to use. MONAI's
DataLoader: the README's chain batches different mammograms once ``DropEmptyMetad`` ends it. MONAI's
SaveImage: a mask written from the loader's affine lies on the DICOM in ITK's (3D Slicer's) frame.
MONAI's spatial transforms: after a Resize the transforms measure in mm on the new grid (the affine's
pixel size), not at the spacing the file was loaded with; after one that turns the rows (Orientation,
Rotate90, a flip along spatial axis 0) they refuse the image."""

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
    ReorientedImageError,
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


@pytest.mark.parametrize("kind", ["nifti", "seg", "config"])
def test_labels_through_loadimaged(ge_case, kind):
    if kind == "config":  # in a bundle config the reader's arguments go to LoadImaged
        loader = ConfigParser({"_target_": "LoadImaged", "keys": "label", "reader": "monai_bac.data.MammogramReader",
                               "label": True, "dtype": "$np.uint8", "ensure_channel_first": True}).get_parsed_content()
        kind = "seg"
    else:
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


def _png_label(mask: np.ndarray, folder: Path) -> Path:
    from PIL import Image

    path = folder / "label.png"
    Image.fromarray((mask * 255).astype(np.uint8)).save(path)
    return path


def test_a_label_loaded_by_monais_nibabel_reader_is_refused_and_this_packages_are_not(ge_case, tmp_path):
    image = load_mammogram(ge_case["image"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calc = Compose([BreastRegiond(keys="image"), DensityMapd(keys="image"),
                        CalcificationThicknessd(keys="density")])({"image": image})["calc_thickness"]
    foreign = LoadImage(reader="NibabelReader", ensure_channel_first=True)(str(ge_case["nifti"]))
    with pytest.raises(ForeignLoaderError, match=r"RMLO_bac\.nii\.gz.*MammogramReader\(label=True\)"):
        CorrectBACLabel()(foreign, calc)
    # a label without a spacing, its None entries dropped for batching, is still this package's
    bare = LoadMammogramd(keys="label")({"label": str(_png_label(ge_case["mask"], tmp_path))})
    bare = DropEmptyMetad(keys="label")(bare)["label"]
    assert "spacing_mm" not in bare.meta and bare.meta["loaded_by"] == "monai_bac.data.load_label"
    assert CorrectBACLabel()(bare, calc).shape == bare.shape  # the spacing taken from the calcium map
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


def test_after_monais_resize_the_transforms_measure_at_the_new_grid(ge_case):
    """Resize updates the affine, not meta["spacing_mm"]; a transform reading the stale 0.2 mm would
    measure every threshold (skin, periphery, piece lengths) at half its size in the breast."""
    from monai.transforms import Resized

    from monai_bac.transforms import UpdateSpacingd
    from monai_bac.units import StaleSpacingWarning, resolve_spacing

    data = Resized(keys="image", spatial_size=(400, 325), mode="area")(LoadMammogramd(keys="image")(
        {"image": str(ge_case["image"])}))
    image = data["image"]
    assert image.meta["spacing_mm"] == (0.2, 0.2)
    with pytest.warns(StaleSpacingWarning, match=r"RMLO\.dcm: meta\['spacing_mm'\] 0\.2 x 0\.2 mm disagrees with "
                                                 r"the image's affine, 0\.4 x 0\.4 mm.*UpdateSpacingd"):
        assert resolve_spacing(image.meta, None, "BreastRegion") == pytest.approx((0.4, 0.4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", StaleSpacingWarning)
        told = BreastRegion(spacing_mm=(0.4, 0.4))(image)
        updated = UpdateSpacingd(keys="image")(dict(data))["image"]
        assert updated.meta["spacing_mm"] == pytest.approx((0.4, 0.4))
        in_step = BreastRegion()(updated)  # no StaleSpacingWarning once the meta is in step
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        stale = BreastRegion()(image)
    assert np.array_equal(np.asarray(stale), np.asarray(told)) and np.array_equal(np.asarray(in_step), np.asarray(told))
    # at the stale spacing the map would differ: the check above is not vacuous
    assert not np.array_equal(np.asarray(BreastRegion(spacing_mm=(0.2, 0.2))(image)), np.asarray(told))


def test_affine_spacing_reads_this_packages_affine_and_ignores_monais_identity_default():
    from monai_bac.data import mammogram_affine
    from monai_bac.units import affine_spacing, resolve_spacing

    assert affine_spacing(mammogram_affine((0.07, 0.085))) == pytest.approx((0.07, 0.085))
    assert affine_spacing(torch.eye(3)) is None and affine_spacing(None) is None
    hand_made = MetaTensor(torch.zeros(1, 8, 8), meta={"spacing_mm": (0.1, 0.1)})  # identity affine
    assert resolve_spacing(hand_made.meta, None, "x") == (0.1, 0.1)


@pytest.mark.parametrize("spatial", ["Orientation RAS", "Orientation LPS", "Rotate90", "Flip rows"])
def test_a_mammogram_whose_rows_a_monai_transform_turned_is_refused(ge_case, spatial):
    """Measured on this MLO (a /tmp script, forty-fifth session): after Orientationd(axcodes="RAS") the
    breast map agreed with the stored image's on 87 % of its pixels, after a flip along axis 0 on 86 %
    with the VBD read 24.4 % for 13.4 %: the pectoral muscle is looked for in the upper corner."""
    from monai.transforms import Flip, Orientation, Rotate90

    make = {"Orientation RAS": lambda: Orientation(axcodes="RA"), "Orientation LPS": lambda: Orientation(axcodes="LP"),
            "Rotate90": lambda: Rotate90(), "Flip rows": lambda: Flip(spatial_axis=0)}[spatial]
    turned = make()(load_mammogram(ge_case["image"]))
    for transform in (BreastRegion(), LogGammaNormalize()):
        with pytest.raises(ReorientedImageError, match=r"RMLO\.dcm: the image's rows no longer run as the file "
                                                       r"stores them.*Orientation"):
            transform(turned)


def test_a_left_right_flip_is_the_other_breast_and_is_taken(ge_case):
    from monai.transforms import Flip

    image = load_mammogram(ge_case["image"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stored = np.asarray(BreastRegion()(image))[0]
        mirrored = np.asarray(BreastRegion()(Flip(spatial_axis=1)(image)))[0]
    assert np.array_equal(mirrored[:, ::-1], stored)

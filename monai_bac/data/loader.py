"""Load mammograms and BAC labels as MONAI MetaTensors, and the matching MONAI transforms.

Images come back as float32 ``(1, H, W)`` :class:`monai.data.MetaTensor` holding the raw values
as read (see :mod:`monai_bac.data.dicom_read`; never rescaled here), labels as uint8 ``(1, H, W)``
with values 0/1. Pixel data stays as stored (no flips), and the meta dict carries:

- the acquisition keys of docs/ARCHITECTURE.md (``spacing_mm`` (row, col), ``kvp``, ``thickness_mm``,
  ``anode``, ``filter``, ``view``, ``laterality``, ``presentation``, ``is_raw``,
  ``manufacturer``, ... see :data:`IMAGE_META_KEYS`), None where unknown;
- MONAI's keys: ``affine`` and ``original_affine`` (torch float64 3x3, below), ``spatial_shape``,
  ``original_channel_dim`` = ``"no_channel"``, ``space`` = ``"RAS"``, ``filename_or_obj``;
- ``loaded_by``: the function that read the file (:data:`LOADED_BY`), never None, so that the
  transforms tell this package's MetaTensors from those of MONAI's other readers.

The affine maps (row, col) indices to RAS mm::

    [[0, -spacing_col, 0],
     [-spacing_row, 0, 0],
     [0, 0, 1]]

which is the geometry ITK/3D Slicer give the DICOM file, and the one of the NIfTI files written
by :mod:`monai_bac.data.image_io` (there with the axes in (col, row) order).
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms.transform import MapTransform, Transform
from monai.utils import ensure_tuple
from monai.utils.enums import MetaKeys, SpaceKeys

from monai_bac.data.dicom_read import MIN_SIDE_PX, is_dicom_file, read_dicom_mammogram
from monai_bac.data.errors import MammogramReadError, require_regular_file
from monai_bac.data.image_io import NIFTI_SUFFIXES, PNG_SUFFIXES, TIFF_SUFFIXES, load_nifti_2d, load_png_or_tiff
from monai_bac.units import SpacingError, as_spacing
from monai_bac.utils import PathLike

__all__ = [
    "IMAGE_META_KEYS",
    "LOADED_BY",
    "LoadMammogram",
    "LoadMammogramD",
    "LoadMammogramDict",
    "LoadMammogramd",
    "file_kind",
    "load_label",
    "load_mammogram",
    "mammogram_affine",
]


#: acquisition keys every loaded image's meta has (None where the source does not say)
IMAGE_META_KEYS = (
    "spacing_mm",
    "spacing_source",
    "kvp",
    "thickness_mm",
    "anode",
    "filter",
    "view",
    "view_modifiers",
    "magnification",
    "plane_magnification",
    "measured_at",
    "laterality",
    "presentation",
    "is_raw",
    "manufacturer",
    "modality",
    "photometric",
    "bits_stored",
    "patient_id",
    "study_instance_uid",
    "series_instance_uid",
    "sop_instance_uid",
    "sop_class_uid",
    "exposure_mas",
    "compression_force_n",
    "breast_implant_present",
    "anti_scatter_grid",
    "patient_orientation",
    "projection_frame",
    "projection_angle_deg",
    "n_projections",
    "filename_or_obj",
)
_DICOM_SUFFIXES = (".dcm", ".dicom")
#: ``meta["loaded_by"]`` of an image and of a label (monai_bac.transforms.utils.meta_of reads the key)
LOADED_BY = {"image": "monai_bac.data.load_mammogram", "label": "monai_bac.data.load_label"}


def mammogram_affine(spacing_mm: Sequence[float] | None) -> torch.Tensor:
    """3x3 float64 affine from (row, col) indices to RAS mm; unit spacing when ``spacing_mm`` is None."""
    row, col = (1.0, 1.0) if spacing_mm is None else (float(s) for s in spacing_mm)
    return torch.tensor([[0.0, -col, 0.0], [-row, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def file_kind(path: Path) -> str:
    """'dicom', 'nifti', 'png_tiff', 'npy' or 'nrrd', from the name, else from the DICOM marker."""
    name = path.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(".nrrd"):
        return "nrrd"
    if name.endswith(PNG_SUFFIXES + TIFF_SUFFIXES):
        return "png_tiff"
    if name.endswith(".npy"):
        return "npy"
    if name.endswith(_DICOM_SUFFIXES) or not path.suffix or is_dicom_file(path):
        return "dicom"
    raise MammogramReadError(
        f"{path}: unsupported file type {path.suffix!r}; expected DICOM (.dcm, .dicom, no extension, or a "
        "'DICM' marker), NIfTI (.nii, .nii.gz), PNG, TIFF or NumPy (.npy); labels also 3D Slicer's .seg.nrrd"
    )


def _load_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as e:
        raise MammogramReadError(f"{path}: not a readable .npy file: {type(e).__name__}: {e}") from e
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise MammogramReadError(f"{path}: array has shape {array.shape}; expected (H, W) or (1, H, W)")
    return array


def _load_plain(path: Path, kind: str, spacing_mm: Sequence[float] | None) -> tuple[np.ndarray, Any, str | None]:
    """Array, spacing and its source for a non-DICOM file; spacing is None when unknown."""
    if kind == "nifti":
        array, header_spacing = load_nifti_2d(path)
        if spacing_mm is None:
            return array, header_spacing, "nifti_header"
        return array, spacing_mm, "argument"
    array = _load_npy(path) if kind == "npy" else load_png_or_tiff(path)
    return array, spacing_mm, None if spacing_mm is None else "argument"


def _load_seg(path: Path, source_uid: str | None) -> tuple[np.ndarray, tuple[float, float] | None]:
    """A DICOM label file: a SEG's BAC mask on its image's grid (:func:`monai_bac.dicom_seg.read_seg_label`)
    and its Pixel Measures; any other DICOM object is refused, named."""
    import pydicom
    from pydicom.uid import UID

    from monai_bac.dicom_seg import SEG_SOP_CLASS_UID, DicomSegError, read_seg_label

    try:
        sop = str(pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=["SOPClassUID"]).SOPClassUID)
    except Exception as e:  # noqa: BLE001 - any unreadable header is one clear error
        raise MammogramReadError(f"{path}: not a readable DICOM file ({type(e).__name__}: {e})") from None
    if sop != SEG_SOP_CLASS_UID:
        raise MammogramReadError(f"{path}: a DICOM label must be a Segmentation (SEG), not {UID(sop).name} "
                                 f"(SOPClassUID (0008,0016) {sop}); labels are DICOM SEG, NIfTI, PNG, TIFF or .npy")
    try:
        mask, info = read_seg_label(path, source_uid)
    except DicomSegError as e:
        raise MammogramReadError(f"{path}: {e}") from None
    return mask, info["spacing_mm"]


def _check_spacing(spacing_mm: Any, path: Path) -> tuple[float, float] | None:
    """The ``spacing_mm`` argument as (row, col) mm (one number is isotropic), range-checked; or None."""
    if spacing_mm is None:
        return None
    try:
        return as_spacing(spacing_mm, f"{path}: spacing_mm argument")
    except SpacingError as e:
        raise MammogramReadError(str(e)) from e


def _check_image(pixels: np.ndarray, path: Path, min_size_px: int) -> np.ndarray:
    """float32 (H, W) pixels that are finite, not constant and at least ``min_size_px`` a side."""
    pixels = np.asarray(pixels, dtype=np.float32)
    if min(pixels.shape) < min_size_px:
        raise MammogramReadError(
            f"{path}: image is {pixels.shape[0]} x {pixels.shape[1]} pixels; a mammogram has at least {min_size_px} "
            "pixels a side (a thumbnail or a crop? pass min_size_px to read it)"
        )
    finite = np.isfinite(pixels)
    if not finite.all():
        raise MammogramReadError(f"{path}: {int(finite.size - finite.sum())} pixels are NaN or infinite")
    if pixels.min() == pixels.max():
        raise MammogramReadError(f"{path}: every pixel has the value {pixels.flat[0]:g}: a blank image")
    return pixels


def _to_meta_tensor(array_hw: np.ndarray, meta: dict[str, Any], dtype: torch.dtype, what: str) -> MetaTensor:
    """(1, H, W) MetaTensor with the acquisition meta plus MONAI's geometry keys and ``loaded_by``."""
    affine = mammogram_affine(meta.get("spacing_mm"))
    meta = dict(meta)
    meta["loaded_by"] = LOADED_BY[what]
    meta[MetaKeys.ORIGINAL_AFFINE] = affine.clone()
    meta[MetaKeys.SPATIAL_SHAPE] = np.asarray(array_hw.shape, dtype=np.int64)
    meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = "no_channel"
    meta[MetaKeys.SPACE] = SpaceKeys.RAS
    data = torch.as_tensor(np.ascontiguousarray(array_hw)[None], dtype=dtype)
    return MetaTensor(data, affine=affine, meta=meta)


def load_mammogram(
    path: PathLike,
    spacing_mm: Sequence[float] | None = None,
    *,
    require_raw: bool = False,
    allow_non_mg: bool = False,
    min_size_px: int = MIN_SIDE_PX,
) -> MetaTensor:
    """Load a mammogram as a finite float32 (1, H, W) MetaTensor of raw values.

    Args:
        path: a regular file (or a link to one; FIFOs, devices and folders are refused before
            being opened): DICOM (``.dcm``, ``.dicom``, no extension, or any name with the ``DICM``
            marker; uncompressed, RLE, JPEG, JPEG-LS or JPEG 2000), NIfTI (``.nii``, ``.nii.gz``,
            convention of :mod:`monai_bac.data.image_io`), PNG/TIFF (single-channel; 16-bit kept;
            any TIFF compression tifffile/imagecodecs read, e.g. LZW, Deflate) or ``.npy``.
        spacing_mm: (row, col) pixel spacing in mm, or one number. Required for PNG, TIFF and npy
            (they carry none); for DICOM and NIfTI it replaces the spacing in the file
            (``meta["spacing_source"] == "argument"``). Checked by :func:`monai_bac.units.as_spacing`.
        require_raw: DICOM only: raise for a processed ("FOR PRESENTATION") image instead of
            warning. Other formats do not say whether they are raw (``meta["is_raw"]`` is None).
        allow_non_mg: DICOM only: accept a Modality other than MG.
        min_size_px: smallest accepted height and width in pixels (default
            :data:`~monai_bac.data.dicom_read.MIN_SIDE_PX`: a mammogram is hundreds of pixels a side).

    Returns:
        MetaTensor with the meta keys of :data:`IMAGE_META_KEYS` and MONAI's geometry keys.

    Raises:
        FileNotFoundError: no such file.
        MammogramReadError: unreadable, unsupported or non-regular file; missing or implausible
            spacing; an image smaller than ``min_size_px``, blank, or with NaN/inf values; see
            :func:`~monai_bac.data.dicom_read.read_dicom_mammogram` for DICOM.
    """
    path = require_regular_file(path)
    spacing_mm = _check_spacing(spacing_mm, path)
    kind = file_kind(path)
    if kind == "nrrd":
        raise MammogramReadError(f"{path}: a NRRD file is read as a label (a 3D Slicer segmentation), not as a "
                                 "mammogram; load the image from its DICOM file")
    meta: dict[str, Any] = dict.fromkeys(IMAGE_META_KEYS)
    if kind == "dicom":
        pixels, dicom_meta = read_dicom_mammogram(
            path, require_raw=require_raw, allow_non_mg=allow_non_mg, spacing_mm=spacing_mm, min_size_px=min_size_px
        )
        meta.update(dicom_meta)
    else:
        pixels, spacing, source = _load_plain(path, kind, spacing_mm)
        if spacing is None:
            raise MammogramReadError(
                f"{path}: {kind.replace('_', '/').upper()} files carry no pixel spacing; "
                "pass spacing_mm=(row_mm, col_mm)"
            )
        if source == "nifti_header":
            try:
                spacing = as_spacing(spacing, f"{path}: NIfTI header voxel size")
            except SpacingError as e:
                raise MammogramReadError(f"{e}; pass spacing_mm=(row_mm, col_mm) to override it") from e
        meta.update(spacing_mm=tuple(float(s) for s in spacing), spacing_source=source)
        pixels = _check_image(pixels, path, min_size_px)  # read_dicom_mammogram checked its own
    meta["filename_or_obj"] = str(path)
    return _to_meta_tensor(np.asarray(pixels, dtype=np.float32), meta, torch.float32, "image")


def _binarise_label(array: np.ndarray, path: Path, allow_255: bool) -> np.ndarray:
    """0/1 uint8 from a 0/1 array (or a 0/255 one from PNG/TIFF); otherwise MammogramReadError."""
    values = np.unique(array)
    if np.all(np.isin(values, (0, 1))):
        return array.astype(np.uint8)
    if allow_255 and np.all(np.isin(values, (0, 255))):
        return (array == 255).astype(np.uint8)
    shown = ", ".join(f"{v:g}" for v in values[:10]) + (", ..." if values.size > 10 else "")
    expected = "0 and 1 (or 0 and 255 in PNG/TIFF)" if allow_255 else "0 and 1"
    raise MammogramReadError(f"{path}: label is not binary: values {shown}; expected {expected}")


def load_label(path: PathLike, spacing_mm: Sequence[float] | None = None, source_uid: str | None = None,
               image_shape: Sequence[int] | None = None) -> MetaTensor:
    """Load a binary BAC label as a uint8 (1, H, W) MetaTensor with values 0/1.

    Args:
        path: NIfTI (convention of :mod:`monai_bac.data.image_io`), PNG, TIFF, ``.npy``, or a
            DICOM SEG (its BAC segment on the frame of its image, whoever wrote it:
            :func:`monai_bac.dicom_seg.read_seg_label`), or a 3D Slicer segmentation ``.seg.nrrd``
            / labelmap ``.nrrd`` (:func:`monai_bac.data.slicer_labels.read_slicer_label`).
            PNG/TIFF masks may use 0/255; they become 0/1.
        spacing_mm: (row, col) mm; replaces the NIfTI header's (or the SEG's Pixel Measures)
            spacing. For PNG/TIFF/npy without it, ``meta["spacing_mm"]`` is None
            (:class:`LoadMammogramd` then copies the image's).
        source_uid: a SEG only: the SOPInstanceUID of the image it must annotate (a SEG of several
            images needs it; :class:`LoadMammogramd` passes its image's).
        image_shape: a Slicer segmentation only: the image's (rows, columns), to place one Slicer
            saved cropped to its segments (:class:`LoadMammogramd` passes its image's).

    Raises:
        FileNotFoundError: no such file.
        MammogramReadError: unsupported or unreadable file, values other than 0/1 (0/255), a
            DICOM object that is no SEG, or a SEG of another image or without one BAC segment.
    """
    path = require_regular_file(path)
    spacing_mm = _check_spacing(spacing_mm, path)
    kind = file_kind(path)
    if kind in ("dicom", "nrrd"):
        from monai_bac.data.slicer_labels import read_slicer_label

        label, spacing = _load_seg(path, source_uid) if kind == "dicom" else read_slicer_label(path, image_shape)
        source = None if spacing is None else ("SEG Pixel Measures" if kind == "dicom" else "NRRD header")
        if spacing_mm is not None:
            spacing, source = spacing_mm, "argument"
    else:
        array, spacing, source = _load_plain(path, kind, spacing_mm)
        label = _binarise_label(np.asarray(array), path, allow_255=kind == "png_tiff")
    meta = {
        "spacing_mm": None if spacing is None else tuple(float(s) for s in spacing),
        "spacing_source": source,
        "filename_or_obj": str(path),
    }
    return _to_meta_tensor(label, meta, torch.uint8, "label")


class LoadMammogram(Transform):
    """Load a mammogram (or, with ``label=True``, a binary BAC label) from a file name.

    Images use :func:`load_mammogram`, labels :func:`load_label`; both give (1, H, W)
    MetaTensors with the meta described in :mod:`monai_bac.data.loader`.

    Args:
        spacing_mm: (row, col) mm for files that do not carry it (PNG/TIFF/npy); replaces the
            file's spacing when given.
        require_raw: raise for processed ("FOR PRESENTATION") DICOM images instead of warning.
        allow_non_mg: accept DICOM files whose Modality is not MG.
        label: load binary labels (uint8 0/1) instead of images.
        min_size_px: smallest accepted image height and width (images only), see :func:`load_mammogram`.
    """

    def __init__(
        self,
        spacing_mm: Sequence[float] | None = None,
        require_raw: bool = False,
        allow_non_mg: bool = False,
        label: bool = False,
        min_size_px: int = MIN_SIDE_PX,
    ) -> None:
        self.spacing_mm = spacing_mm
        self.require_raw = require_raw
        self.allow_non_mg = allow_non_mg
        self.label = label
        self.min_size_px = min_size_px

    def __call__(self, filename: PathLike) -> MetaTensor:
        if self.label:
            return load_label(filename, self.spacing_mm)
        return load_mammogram(filename, self.spacing_mm, require_raw=self.require_raw, allow_non_mg=self.allow_non_mg,
                              min_size_px=self.min_size_px)


class LoadMammogramd(MapTransform):
    """Dictionary-based wrapper of :class:`LoadMammogram`.

    Keys in ``label_keys`` are loaded as binary labels, the other keys as images (images first,
    whatever the order of ``keys``; a DICOM SEG label is read on the frame of the image's
    SOPInstanceUID, a cropped 3D Slicer segmentation placed on the image). After a label is loaded, when ``data[image_key]`` holds a
    loaded image, the label's (H, W) must equal the image's (else :class:`MammogramReadError`
    naming both files), and a label without spacing gets the image's spacing and affine.

    Args:
        keys: keys of the file names to load.
        label_keys: which of ``keys`` are labels.
        spacing_mm: (row, col) mm, see :class:`LoadMammogram`.
        require_raw: raise for processed DICOM images instead of warning.
        allow_non_mg: accept DICOM files whose Modality is not MG.
        image_key: key of the image the labels are checked against.
        allow_missing_keys: don't raise for keys missing from the data.
        min_size_px: smallest accepted image height and width, see :func:`load_mammogram`.

    Example::

        LoadMammogramd(keys=["image", "label"])({"image": "m.dcm", "label": "m_bac.nii.gz"})
    """

    def __init__(
        self,
        keys: KeysCollection,
        label_keys: KeysCollection = ("label", "label_gt"),
        spacing_mm: Sequence[float] | None = None,
        require_raw: bool = False,
        allow_non_mg: bool = False,
        image_key: str = "image",
        allow_missing_keys: bool = False,
        min_size_px: int = MIN_SIDE_PX,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.label_keys = set(ensure_tuple(label_keys))
        self.image_key = image_key
        self._image_loader = LoadMammogram(spacing_mm, require_raw, allow_non_mg, min_size_px=min_size_px)
        self.spacing_mm = spacing_mm

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        keys = sorted(self.key_iterator(d), key=lambda k: k in self.label_keys)  # images first
        for key in keys:
            if key in self.label_keys:
                image = d.get(self.image_key)
                source = (getattr(image, "meta", None) or {}).get("sop_instance_uid")
                shape = tuple(image.shape[-2:]) if isinstance(image, torch.Tensor) and image.ndim >= 2 else None
                d[key] = load_label(d[key], self.spacing_mm, source_uid=source, image_shape=shape)
                self._match_image(d, key)
            else:
                d[key] = self._image_loader(d[key])
        return d

    def _match_image(self, d: dict[Hashable, Any], label_key: Hashable) -> None:
        """Check the label's shape against the image's and fill in its spacing from the image."""
        image, label = d.get(self.image_key), d[label_key]
        if not isinstance(image, torch.Tensor) or image.ndim < 2:
            return
        image_meta = getattr(image, "meta", {})
        if tuple(image.shape[-2:]) != tuple(label.shape[-2:]):
            raise MammogramReadError(
                f"{label.meta.get('filename_or_obj')}: label '{label_key}' has (H, W) = {tuple(label.shape[-2:])} but "
                f"image '{self.image_key}' {image_meta.get('filename_or_obj')} has {tuple(image.shape[-2:])}"
            )
        image_spacing = image_meta.get("spacing_mm")
        label_spacing = label.meta.get("spacing_mm")
        if image_spacing is None:
            return
        if label_spacing is None:
            label.meta["spacing_mm"] = tuple(image_spacing)
            label.meta["spacing_source"] = f"image '{self.image_key}'"
            label.affine = mammogram_affine(image_spacing)
            label.meta[MetaKeys.ORIGINAL_AFFINE] = mammogram_affine(image_spacing)
        elif not np.allclose(label_spacing, image_spacing, rtol=1e-3, atol=0):
            warnings.warn(
                f"{label.meta.get('filename_or_obj')}: label spacing {tuple(label_spacing)} mm differs from "
                f"image {image_meta.get('filename_or_obj')} spacing {tuple(image_spacing)} mm",
                UserWarning,
                stacklevel=2,
            )


LoadMammogramD = LoadMammogramDict = LoadMammogramd

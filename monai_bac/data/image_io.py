"""2D images and masks outside DICOM: NIfTI (read and write), PNG and TIFF (read).

NIfTI convention (so that a mask overlays its DICOM mammogram in 3D Slicer, ITK-SNAP or ITK)
-------------------------------------------------------------------------------------------
A mammogram array is indexed ``[row, col]`` (H, W), like the DICOM pixel data. ITK (and so
Slicer) reads a DICOM image without ImageOrientationPatient / ImagePositionPatient with an
identity direction and origin 0: voxel index ``(i, j) = (col, row)`` sits at the LPS point
``(i * spacing_col, j * spacing_row)``, i.e. at RAS ``(-i * spacing_col, -j * spacing_row)``.

A NIfTI file written here therefore stores the array transposed, ``data[i, j] = array[j, i]``
(shape (W, H)), with the affine::

    diag(-spacing_col, -spacing_row, 1, 1)      # voxel (i, j) -> RAS mm; axis codes ('L', 'P')

in both the qform and the sform (code 1, scanner), units mm. :func:`load_nifti_2d` undoes the
transposition and returns the (H, W) array and ``spacing_mm = (row, col)``. Files written by
other tools with other axis orders or signs (for example a plain RAS ``diag(+s, +s)`` affine)
are reoriented to this convention by their affine, with a warning. The origin is ignored: a
mask must cover the same pixel grid as its image (checked by shape in the loader).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.orientations import apply_orientation, io_orientation, ornt2axcodes, ornt_transform

from monai_bac.data.errors import MammogramReadError, require_regular_file
from monai_bac.utils import PathLike, atomic_write_path

__all__ = ["load_nifti_2d", "load_png_or_tiff", "nifti_affine", "save_image_nifti", "save_mask_nifti"]


# voxel axis 0 (column index i) towards L, axis 1 (row index j) towards P
_TARGET_ORNT = np.array([[0, -1], [1, -1]], dtype=float)
_RGB_PIL_MODES = {"RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "LA", "La", "PA", "P"}
NIFTI_SUFFIXES = (".nii", ".nii.gz")
PNG_SUFFIXES = (".png",)
TIFF_SUFFIXES = (".tif", ".tiff")


def _name_endswith(path: PathLike, suffixes: Sequence[str]) -> bool:
    return Path(path).name.lower().endswith(tuple(suffixes))


def nifti_affine(spacing_mm: Sequence[float]) -> np.ndarray:
    """The 4x4 NIfTI affine of the convention above, ``diag(-spacing_col, -spacing_row, 1, 1)``."""
    row, col = _check_spacing(spacing_mm)
    return np.diag([-col, -row, 1.0, 1.0])


def _check_spacing(spacing_mm: Sequence[float]) -> tuple[float, float]:
    values = tuple(float(s) for s in spacing_mm)
    if len(values) != 2 or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"spacing_mm must be two positive numbers (row_mm, col_mm), got {spacing_mm!r}.")
    return values  # type: ignore[return-value]


def _as_hw(array: Any, name: str) -> np.ndarray:
    """numpy (H, W) from a numpy array or (Meta)Tensor of shape (H, W) or (1, H, W)."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(f"{name} must have shape (H, W) or (1, H, W), got {array.shape}.")
    return array


def _write_nifti(path: PathLike, data_hw: np.ndarray, spacing_mm: Sequence[float], overwrite: bool) -> Path:
    path = Path(path)
    if not _name_endswith(path, NIFTI_SUFFIXES):
        raise ValueError(f"{path}: a NIfTI file name must end with .nii or .nii.gz.")
    affine = nifti_affine(spacing_mm)
    # (H, W) C order is (W, H) Fortran order, the NIfTI file order: nibabel writes it in one block
    image = nib.Nifti1Image(np.ascontiguousarray(data_hw).T, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm")
    with atomic_write_path(path, overwrite=overwrite) as tmp:
        nib.save(image, tmp)
    return path


def save_mask_nifti(
    path: PathLike,
    mask_hw: Any,
    spacing_mm: Sequence[float],
    dtype: Any = np.uint8,
    *,
    overwrite: bool = False,
) -> Path:
    """Save an integer mask (H, W) or (1, H, W) as a 2D NIfTI file in the convention above.

    Args:
        path: ``*.nii`` or ``*.nii.gz``; written atomically.
        mask_hw: integer-valued mask (numpy array or tensor); values must fit ``dtype``.
        spacing_mm: (row, col) pixel spacing in mm.
        dtype: integer type stored in the file.
        overwrite: replace an existing file; by default an existing file is never overwritten.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: bad shape, spacing or values (not integers, or outside ``dtype``'s range).
    """
    mask = _as_hw(mask_hw, "mask_hw")
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.integer):
        raise ValueError(f"dtype must be an integer type, got {dtype}.")
    info = np.iinfo(dtype)
    if (mask.dtype == bool or np.issubdtype(mask.dtype, np.integer)) and (
        not mask.size or (info.min <= int(mask.min()) and int(mask.max()) <= info.max)
    ):  # integer input within range: no float round trip (it costs ~0.2 s on a full-size mask)
        return _write_nifti(path, mask.astype(dtype, copy=False), spacing_mm, overwrite)
    values = mask.astype(np.float64)
    if values.size and (
        not np.all(np.isfinite(values))
        or np.any(values != np.round(values))
        or values.min() < info.min
        or values.max() > info.max
    ):
        raise ValueError(
            f"{path}: mask values must be integers within {dtype}'s range; got {np.unique(values)[:10]}..."
        )
    return _write_nifti(path, mask.astype(dtype), spacing_mm, overwrite)


def save_image_nifti(path: PathLike, image_hw: Any, spacing_mm: Sequence[float], *, overwrite: bool = False) -> Path:
    """Save an image (H, W) or (1, H, W) as a float32 2D NIfTI file in the convention above.

    Written atomically; an existing file is only replaced with ``overwrite=True``.
    """
    return _write_nifti(path, _as_hw(image_hw, "image_hw").astype(np.float32), spacing_mm, overwrite)


def _from_float32(value: float) -> float:
    """The shortest decimal that the header's float32 stores: 0.07 rather than 0.07000000029802322."""
    return float(str(np.float32(value)))


def _reorient(data_ij: np.ndarray, affine: np.ndarray, path: Path) -> tuple[np.ndarray, tuple[float, float]]:
    """Bring (i, j) data to the ('L', 'P') convention; return it and the voxel sizes of its axes."""
    sizes = np.sqrt(np.sum(affine[:3, :2] ** 2, axis=0))
    start = io_orientation(affine)[:2]
    if not np.all(np.isfinite(start)) or set(start[:, 0].astype(int)) != {0, 1}:
        warnings.warn(
            f"{path}: the affine does not put the image in an axial (x, y) plane; its axes are taken as "
            "(column, row) without reorientation",
            UserWarning,
            stacklevel=3,
        )
        return data_ij, (float(sizes[0]), float(sizes[1]))
    transform = ornt_transform(start, _TARGET_ORNT)
    if not np.array_equal(transform, [[0, 1], [1, 1]]):
        warnings.warn(
            f"{path}: axes {ornt2axcodes(start)} reoriented to ('L', 'P'), the monai-bac NIfTI convention",
            UserWarning,
            stacklevel=3,
        )
        data_ij = apply_orientation(data_ij, transform)
        order = np.argsort(transform[:, 0])
        sizes = sizes[order]
    return data_ij, (float(sizes[0]), float(sizes[1]))


def load_nifti_2d(path: PathLike) -> tuple[np.ndarray, tuple[float, float]]:
    """Load a 2D NIfTI image or mask written in the convention above.

    A 3D file with a single slice (shape (W, H, 1)) is accepted.

    Returns:
        ``(array_hw, spacing_mm)``: the (H, W) array in the file's data type (scaled by
        ``scl_slope``/``scl_inter`` if the header sets them) and ``(row_mm, col_mm)``.

    Raises:
        FileNotFoundError: no such file.
        MammogramReadError: not a regular file, not a readable NIfTI file, or a truly 3D/4D image.
    """
    path = require_regular_file(path)
    try:
        image = nib.load(str(path))
        data = np.asanyarray(image.dataobj)
    except Exception as e:
        raise MammogramReadError(f"{path}: not a readable NIfTI file: {type(e).__name__}: {e}") from e
    if data.ndim < 2 or any(s != 1 for s in data.shape[2:]):
        raise MammogramReadError(
            f"{path}: NIfTI image has shape {data.shape}; only 2D images (or 3D with one slice) are supported"
        )
    data_ij, (size_i, size_j) = _reorient(data.reshape(data.shape[:2]), image.affine, path)
    if not (size_i > 0 and size_j > 0):
        raise MammogramReadError(f"{path}: NIfTI pixdim/affine gives voxel size ({size_i}, {size_j}); must be > 0")
    return np.ascontiguousarray(data_ij.T), (_from_float32(size_j), _from_float32(size_i))


def _load_png(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.mode in _RGB_PIL_MODES:
                raise MammogramReadError(
                    f"{path}: PNG has colour mode {image.mode!r}; only single-channel greyscale images "
                    "(mode L, I;16, I, F or 1) are supported; save it as greyscale"
                )
            return np.asarray(image)
    except MammogramReadError:
        raise
    except Exception as e:  # UnidentifiedImageError, OSError, DecompressionBombError, ValueError...
        raise MammogramReadError(f"{path}: not a readable PNG file: {type(e).__name__}: {e}") from e


def _load_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        array = np.asarray(tifffile.imread(path))
    except Exception as e:
        raise MammogramReadError(f"{path}: not a readable TIFF file: {type(e).__name__}: {e}") from e
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        raise MammogramReadError(
            f"{path}: TIFF has {array.shape[-1]} colour samples per pixel (shape {array.shape}); "
            "only single-channel greyscale images are supported"
        )
    if array.ndim != 2:
        raise MammogramReadError(f"{path}: TIFF has shape {array.shape}; only one 2D greyscale page is supported")
    return array


def load_png_or_tiff(path: PathLike) -> np.ndarray:
    """Load a single-channel PNG or TIFF as float32 (H, W); 16-bit values are kept exactly.

    PNG is read by Pillow (8- and 16-bit greyscale), TIFF by tifffile with imagecodecs, so any
    compression they decode is accepted (uncompressed, LZW, Deflate/zlib, PackBits, Zstd, LZMA...).

    Raises:
        FileNotFoundError: no such file.
        MammogramReadError: not a regular file, unreadable file (a TIFF compression without its
            codec names the missing package), colour (RGB/RGBA/palette) image or multi-page TIFF.
        ValueError: the name does not end with .png, .tif or .tiff.
    """
    path = require_regular_file(path)
    if _name_endswith(path, PNG_SUFFIXES):
        array = _load_png(path)
    elif _name_endswith(path, TIFF_SUFFIXES):
        array = _load_tiff(path)
    else:
        raise ValueError(f"{path}: not a PNG or TIFF file name (.png, .tif, .tiff)")
    return array.astype(np.float32)

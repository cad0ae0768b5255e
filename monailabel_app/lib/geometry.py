"""Where a label's pixels sit: the geometry 3D Slicer gives a mammogram, for labels written and read by the app.

Slicer (through ITK) places a DICOM image by ImagePositionPatient / ImageOrientationPatient when
the file has them, else at the origin with an identity orientation; a NIfTI image by its affine.
The app writes every label on that same grid (so it overlays the image as a segmentation), and
reads annotators' labels back into the mammogram's own pixel order ``[row, col]``.

Without ImageOrientationPatient (the usual case for MG) or with the identity orientation this is
exactly the NIfTI convention of :mod:`monai_bac.data.image_io` (``save_mask_nifti`` /
``load_label``). Only a DICOM whose orientation flips or turns the image needs the app's own
reading (:func:`read_label_like`); :func:`pixel_order_label` then gives the training a copy of the
label in the convention.
"""

from __future__ import annotations

import os

import numpy as np

NIFTI_EXTS = (".nii", ".nii.gz")
#: monai_bac's convention: voxel axis 0 (column) towards L, axis 1 (row) towards P
CONVENTION_ORNT = np.array([[0, -1], [1, -1]], dtype=float)


def _is_nifti(path: str) -> bool:
    return str(path).lower().endswith(NIFTI_EXTS)


def dicom_affine(image_path: str, spacing_mm=None) -> tuple[np.ndarray, tuple[int, int]] | None:
    """(RAS affine of voxel (col, row, 0), (rows, cols)) from ImagePositionPatient/OrientationPatient, or
    None when the DICOM file has none (then the convention applies)."""
    import pydicom

    ds = pydicom.dcmread(image_path, stop_before_pixels=True)
    ipp, iop = ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient")
    if ipp is None or iop is None or len(ipp) != 3 or len(iop) != 6:
        return None
    if spacing_mm is None:
        tag = ds.get("ImagerPixelSpacing") or ds.get("PixelSpacing") or (1.0, 1.0)
        spacing_mm = tuple(float(s) for s in tag)
    sr, sc = (float(s) for s in spacing_mm)
    r, c = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = r * sc, c * sr, np.cross(r, c), np.asarray(ipp, float)
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps, (int(ds.Rows), int(ds.Columns))


def _axial_ornt(affine: np.ndarray) -> np.ndarray | None:
    from nibabel.orientations import io_orientation

    start = io_orientation(affine)[:2]
    if np.all(np.isfinite(start)) and set(start[:, 0].astype(int)) == {0, 1}:
        return start
    return None


def needs_own_reading(image_path: str) -> bool:
    """True for a DICOM whose orientation differs from the convention (labels then need :func:`read_label_like`)."""
    if _is_nifti(image_path):
        return False
    try:
        geometry = dicom_affine(image_path)
    except Exception:
        return False
    if geometry is None:
        return False
    start = _axial_ornt(geometry[0])
    return start is None or not np.array_equal(start, CONVENTION_ORNT)


def label_nifti_like(mask_hw: np.ndarray, image_path: str, spacing_mm, dtype=np.uint8):
    """``mask_hw`` (H, W) as a NIfTI image (RAS affine, voxels in the image file's own order) that
    overlays ``image_path`` in 3D Slicer: the one description of the label's grid both writers use."""
    import nibabel as nib
    from nibabel.orientations import apply_orientation, ornt_transform

    from monai_bac.data.image_io import nifti_affine

    mask_hw = np.ascontiguousarray(np.asarray(mask_hw).astype(dtype))
    if _is_nifti(image_path):
        image = nib.load(image_path)
        shape = tuple(int(s) for s in image.shape)
        data_ij = mask_hw.T  # the convention's (col, row) order; undo load_nifti_2d's reorientation
        start = _axial_ornt(image.affine)
        if start is not None:
            data_ij = apply_orientation(data_ij, ornt_transform(CONVENTION_ORNT, start))
        if int(np.prod(shape)) != data_ij.size or tuple(shape[:2]) != data_ij.shape:
            raise ValueError(f"label (H, W) = {mask_hw.shape} does not fit the NIfTI image of shape {shape}")
        out = nib.Nifti1Image(np.ascontiguousarray(data_ij).reshape(shape), image.affine)
        qform, qcode = image.get_qform(coded=True)
        sform, scode = image.get_sform(coded=True)
        out.set_qform(qform if qform is not None else image.affine, code=int(qcode or 1))
        out.set_sform(sform if sform is not None else image.affine, code=int(scode or 1))
    else:
        geometry = dicom_affine(image_path, spacing_mm)
        if geometry is None:
            affine = nifti_affine(spacing_mm)
        else:
            affine, (rows, cols) = geometry
            if (rows, cols) != mask_hw.shape:
                raise ValueError(f"label (H, W) = {mask_hw.shape} differs from the DICOM image's {rows} x {cols}")
        # placed in patient space: one slice in 3D, so that ITK (and Slicer) keep the z of its origin
        voxels = mask_hw.T if geometry is None else mask_hw.T[:, :, None]
        out = nib.Nifti1Image(np.ascontiguousarray(voxels), affine)
        # the header stores float32; the NRRD writer takes the DICOM's exact affine from ``out.affine``
        out.set_qform(affine, code=1, update_affine=False)
        out.set_sform(affine, code=1, update_affine=False)
    out.header.set_xyzt_units("mm")
    return out


def lps_geometry(ras_affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(origin, spacing, direction) in ITK's / NRRD's LPS space of a voxel -> RAS affine (4 x 4)."""
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(ras_affine, dtype=float)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    return lps[:3, 3].copy(), spacing, lps[:3, :3] / spacing


def write_nrrd_like(label, out_path: str, compress: bool = True) -> str:
    """Write a label NIfTI image (from :func:`label_nifti_like`) as a 3D one-slice NRRD with ITK.

    The NRRD header carries ``space: left-posterior-superior``, the ``space origin`` and
    ``space directions`` (direction x spacing) of the same grid; 3D Slicer loads it on the image.
    """
    import itk

    data = np.asanyarray(label.dataobj)
    data_ij = data.reshape(data.shape[:2])
    image = itk.image_from_array(np.ascontiguousarray(data_ij.T[None]))  # ITK array order [k, j, i]
    origin, spacing, direction = lps_geometry(label.affine)
    image.SetOrigin([float(v) for v in origin])
    image.SetSpacing([float(v) for v in spacing])
    image.SetDirection(itk.matrix_from_array(np.ascontiguousarray(direction)))
    itk.imwrite(image, out_path, compression=bool(compress))
    return out_path


#: label files the app writes, by the name's ending (what ``result_extension`` may ask for)
LABEL_WRITERS = {".nii.gz": "nifti", ".nii": "nifti", ".nrrd": "nrrd"}


def label_format(path_or_extension: str) -> str | None:
    """'nifti' or 'nrrd' for a label file name / extension the app writes, else None."""
    lower = str(path_or_extension).lower()
    return next((kind for ext, kind in LABEL_WRITERS.items() if lower.endswith(ext)), None)


def write_label_like(mask_hw: np.ndarray, image_path: str, spacing_mm, out_path: str, dtype=np.uint8,
                     compress: bool = True) -> str:
    """Save ``mask_hw`` (H, W) as a label that overlays ``image_path`` in 3D Slicer: NIfTI (``.nii.gz``,
    ``.nii``) or NRRD (``.nrrd``, gzip-encoded unless ``compress`` is False), by ``out_path``'s ending."""
    import nibabel as nib

    kind = label_format(out_path)
    if kind is None:
        raise ValueError(f"{os.path.basename(out_path)}: a label is written as {', '.join(LABEL_WRITERS)}")
    label = label_nifti_like(mask_hw, image_path, spacing_mm, dtype)
    if kind == "nrrd":
        return write_nrrd_like(label, out_path, compress)
    nib.save(label, out_path)
    return out_path


def read_label_like(label_path: str, image_path: str, image_hw: tuple[int, int] | None = None
                    ) -> tuple[np.ndarray, tuple[float, float]]:
    """A label file as (H, W) uint8 in the mammogram's pixel order, and its (row, col) spacing
    (``image_hw``: the image's (rows, columns), to place a 3D Slicer segmentation saved cropped).

    Raises ValueError / :class:`monai_bac.data.MammogramReadError` for unreadable or non-binary labels.
    """
    from monai_bac.data import load_label

    if not needs_own_reading(image_path):
        label = load_label(label_path, image_shape=image_hw)
        return np.asarray(label[0]).astype(np.uint8), tuple(label.meta["spacing_mm"])
    import nibabel as nib
    from nibabel.orientations import apply_orientation, ornt_transform

    affine, _ = dicom_affine(image_path)
    target = _axial_ornt(affine)
    image = nib.load(str(label_path))
    data = np.asanyarray(image.dataobj)
    if data.ndim < 2 or any(s != 1 for s in data.shape[2:]):
        raise ValueError(f"label has shape {data.shape}; only 2D labels (or 3D with one slice) are supported")
    data_ij = data.reshape(data.shape[:2])
    start = _axial_ornt(image.affine)
    if start is not None and target is not None:
        data_ij = apply_orientation(data_ij, ornt_transform(start, target))
    values = np.unique(data_ij)
    if not np.all(np.isin(values, (0, 1))):
        raise ValueError(f"label is not binary: values {values[:10].tolist()}; expected 0 and 1")
    sizes = np.sqrt(np.sum(affine[:3, :2] ** 2, axis=0))
    return np.ascontiguousarray(data_ij.T).astype(np.uint8), (float(sizes[1]), float(sizes[0]))


def pixel_order_label(label_path: str, image_path: str, out_dir: str) -> str:
    """``label_path`` itself when ``monai_bac.data.load_label`` reads it right for ``image_path``, else a
    copy in the convention (pixel order) under ``out_dir`` for the bundle's training."""
    if not needs_own_reading(image_path):
        return label_path
    from monai_bac.data import save_mask_nifti

    mask, spacing = read_label_like(label_path, image_path)
    os.makedirs(out_dir, exist_ok=True)
    name = os.path.basename(label_path)
    return str(save_mask_nifti(os.path.join(out_dir, name), mask, spacing, overwrite=True))

"""BAC labels from 3D Slicer's segmentation files (``.seg.nrrd``), read with slicerio.

Slicer saves a segmentation as a NRRD image with custom fields for its segments (name, label value,
layer: Slicer's developer guide, "Segmentation labelmap file format (.seg.nrrd)"); slicerio is the
reader that guide names. A 2D image's segmentation has three spatial axes with one slice; segments
that overlap are kept in layers; by default only the extent the segments cover is saved.

Where the label lies on the mammogram: Slicer places a DICOM mammogram without
ImagePositionPatient at the origin with identity axes, pixel (row r, column c) at LPS
(c s_col, r s_row, 0) (docs/SLICER.md). The segmentation's voxel (i, j) is then the image's column
i + origin_x / s_x and row j + origin_y / s_y, counted on the segmentation's own pitch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from monai_bac.data.errors import MammogramReadError

__all__ = ["read_slicer_label"]

#: how far from a whole pixel the segmentation's origin may lie (pixels)
_GRID_TOLERANCE = 0.01


def _bac_segment(segments: list[dict], path: Path) -> dict | None:
    """The only segment, else the one named as BAC; None for a plain labelmap (no segments)."""
    from monai_bac.dicom_seg import BAC_SEGMENT_LABELS

    if len(segments) <= 1:
        return segments[0] if segments else None
    named = [s for s in segments if str(s.get("name", "")).strip().upper() in BAC_SEGMENT_LABELS]
    if len(named) != 1:
        names = "; ".join(repr(str(s.get("name", s.get("id", "")))) for s in segments)
        raise MammogramReadError(
            f"{path}: the segmentation holds {len(segments)} segments ({names}) and "
            f"{'none' if not named else len(named)} of them is named as BAC ({', '.join(BAC_SEGMENT_LABELS)})")
    return named[0]


def _placement(ijk_to_lps: np.ndarray, path: Path) -> tuple[tuple[float, float], tuple[int, int]]:
    """((row, col) pitch in mm, (row, col) of voxel (0, 0)) from the voxel-to-LPS matrix."""
    axes = np.asarray(ijk_to_lps, dtype=float)[:3, :3]
    pitch = np.diag(axes)
    if np.any(pitch[:2] <= 0) or np.abs(axes - np.diag(pitch)).max() > 1e-6 * np.abs(pitch).max():
        raise MammogramReadError(
            f"{path}: space directions {axes.tolist()} are not the axes 3D Slicer gives a mammogram loaded from "
            "DICOM (identity, positive pitch): the segmentation was drawn on a volume turned or resampled from "
            "the image; export it as a labelmap on the image itself")
    origin = np.asarray(ijk_to_lps, dtype=float)[:2, 3] / pitch[:2]  # (col, row) of voxel (0, 0)
    whole = np.rint(origin)
    if np.abs(origin - whole).max() > _GRID_TOLERANCE:
        raise MammogramReadError(f"{path}: space origin {ijk_to_lps[:2, 3].tolist()} mm does not fall on the pixel "
                                 f"grid of pitch {pitch[:2].tolist()} mm (voxel (0, 0) at column, row "
                                 f"{origin.tolist()})")
    return (float(pitch[1]), float(pitch[0])), (int(whole[1]), int(whole[0]))


def read_slicer_label(path: Path, image_shape: Sequence[int] | None = None) -> tuple[np.ndarray, tuple[float, float]]:
    """A BAC label from a 3D Slicer segmentation (``.seg.nrrd``) or labelmap (``.nrrd``): ``(mask, spacing)``.

    * The segment: the only one, else the one named "BAC", "Breast arterial calcification", ...
      (:data:`monai_bac.dicom_seg.BAC_SEGMENT_LABELS`); a labelmap without segments must be binary.
    * The place: by the file's origin on its own pitch (module docstring); a segmentation cropped
      to its segments' extent (Slicer's default) needs ``image_shape`` (rows, columns) to be
      placed on the image; without it the file must start at the image's first pixel.

    Returns the (H, W) uint8 0/1 mask and the (row, col) pitch in mm.

    Raises:
        MammogramReadError: naming the file: unreadable, a volume of several slices, no telling BAC
            segment (the segments listed), axes or an origin off the image's grid, or a label outside
            the image.
    """
    import slicerio

    path = Path(path)
    try:
        seg = slicerio.read_segmentation(str(path))
    except Exception as e:  # noqa: BLE001 - any unreadable file is one clear error
        raise MammogramReadError(f"{path}: not a readable NRRD segmentation ({type(e).__name__}: {e})") from None
    voxels = np.asarray(seg["voxels"])
    if voxels.shape[-1] != 1:
        raise MammogramReadError(f"{path}: a segmentation of {voxels.shape[-1]} slices; a mammogram's has one")
    segment = _bac_segment(list(seg.get("segments") or []), path)
    if segment is not None:
        ij = slicerio.segment_mask(seg, segment)[..., 0]
    else:
        values = np.unique(voxels)
        if voxels.ndim != 3 or not np.all(np.isin(values, (0, 1))):
            raise MammogramReadError(f"{path}: a labelmap without segment names must be binary (0 and 1), has "
                                     f"values {', '.join(f'{v:g}' for v in values[:10])}")
        ij = voxels[..., 0] > 0
    mask = np.ascontiguousarray(np.asarray(ij, bool).T).astype(np.uint8)  # (i, j) = (column, row) -> (row, column)
    spacing, (row0, col0) = _placement(seg["ijkToLPS"], path)
    if image_shape is None:
        if (row0, col0) != (0, 0):
            raise MammogramReadError(f"{path}: the segmentation starts at row {row0}, column {col0} of its image "
                                     "(3D Slicer keeps only its segments' extent): load it with its image "
                                     "(LoadMammogramd with the image key) to place it")
        return mask, spacing
    rows, cols = (int(s) for s in image_shape)
    h, w = mask.shape
    if row0 < 0 or col0 < 0 or row0 + h > rows or col0 + w > cols:
        raise MammogramReadError(f"{path}: the segmentation covers rows {row0}-{row0 + h - 1}, columns "
                                 f"{col0}-{col0 + w - 1}, outside the image's {rows} x {cols} pixels")
    full = np.zeros((rows, cols), np.uint8)
    full[row0:row0 + h, col0:col0 + w] = mask
    return full, spacing

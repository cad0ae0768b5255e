"""BAC masks as DICOM Segmentation objects (SEG), built by highdicom.

A PACS files a SEG with the mammogram it was made from: the patient, study and frame references
come from the source image, which highdicom reads from the source file's header. A mammogram
has no ImagePositionPatient, so the frame is referenced by its source image (the Derivation
Image Sequence) and the pixel spacing is given in the Pixel Measures; the mask is on the source
image's own pixel grid (SpatialLocationsPreserved YES).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from monai_bac.units import as_spacing
from monai_bac.utils import atomic_write_path

__all__ = ["write_dicom_seg", "read_dicom_seg", "SEG_SOP_CLASS_UID", "DicomSegError"]

SEG_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.66.4"


class DicomSegError(ValueError):
    """The mask cannot be written as a SEG of this source (not DICOM, wrong size, missing UIDs)."""


def _segment_description(label: str, algorithm_version: str):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    return hd.seg.SegmentDescription(
        segment_number=1, segment_label=label,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=hd.sr.CodedConcept("BAC", "99MONAIBAC", "Breast arterial calcification"),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="monai-bac", version=algorithm_version, family=codes.cid7162.ArtificialIntelligence),
    )


def write_dicom_seg(path: str | os.PathLike, mask: np.ndarray, source: str | os.PathLike, *,
                    spacing_mm: Sequence[float] | None = None, segment_label: str = "BAC",
                    algorithm_version: str | None = None, series_description: str = "BAC segmentation (monai-bac)",
                    overwrite: bool = False) -> Path:
    """Write a binary (H, W) mask on ``source``'s grid as a one-segment BINARY SEG, atomically.

    Args:
        path: destination ``.dcm``.
        mask: (H, W) or (1, H, W) binary mask.
        source: the source DICOM file.
        spacing_mm: (row, col) mm for the Pixel Measures; default the source's
            ImagerPixelSpacing (0018,1164) / PixelSpacing (0028,0030).
        overwrite: replace an existing ``path``.

    Raises:
        DicomSegError: ``source`` is not a readable DICOM image or ``mask`` is not of its size.
    """
    import highdicom as hd
    import pydicom

    import monai_bac

    try:
        src = pydicom.dcmread(str(source), stop_before_pixels=True)  # highdicom needs the header only
        rows, cols = int(src.Rows), int(src.Columns)
        _ = (src.SOPClassUID, src.SOPInstanceUID, src.StudyInstanceUID, src.SeriesInstanceUID)
    except Exception as e:  # noqa: BLE001 - any unreadable source is one clear error
        raise DicomSegError(f"{source}: cannot be the source of a DICOM SEG ({type(e).__name__}: {e})") from None
    m = np.asarray(mask)
    m = m[0] if m.ndim == 3 else m
    if m.shape != (rows, cols):
        raise DicomSegError(f"{source}: mask is {m.shape[0]} x {m.shape[1]} but the image is {rows} x {cols}")
    if spacing_mm is None:
        spacing_mm = src.get("ImagerPixelSpacing") or src.get("PixelSpacing")
    sp = as_spacing(spacing_mm, f"{source}: pixel spacing") if spacing_mm is not None else None
    version = algorithm_version or monai_bac.__version__
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # highdicom's advice on single-component person names of the source
        seg = hd.seg.Segmentation(
            source_images=[src], pixel_array=(m > 0)[None], segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=[_segment_description(segment_label, version)],
            series_instance_uid=hd.UID(), series_number=999, sop_instance_uid=hd.UID(), instance_number=1,
            manufacturer="monai-bac", manufacturer_model_name="monai-bac", software_versions=version,
            device_serial_number="0", series_description=series_description, omit_empty_frames=False,
            pixel_measures=hd.PixelMeasuresSequence(pixel_spacing=list(sp), slice_thickness=1.0) if sp else None,
        )
    # General Image module, Type 2C for images without a frame of reference (a 2D mammogram):
    # the source's own orientation, or empty (highdicom fills it only from a frame of reference)
    if "PatientOrientation" not in seg:
        seg.PatientOrientation = src.get("PatientOrientation", "")
    path = Path(path)
    with atomic_write_path(path, overwrite=overwrite) as tmp:
        seg.save_as(str(tmp))
    return path


def read_dicom_seg(path: str | os.PathLike) -> np.ndarray:
    """The (H, W) uint8 mask of segment 1 of a single-frame SEG written by :func:`write_dicom_seg`."""
    import highdicom as hd

    seg = hd.seg.segread(str(path))
    source = seg.get_source_image_uids()[0][2]
    return np.asarray(seg.get_pixels_by_source_instance([source], segment_numbers=[1])[0, ..., 0], np.uint8)

"""BAC masks as DICOM Segmentation objects (SEG), built by highdicom.

A PACS files a SEG with the mammogram it was made from: the patient, study and frame references
come from the source image, which highdicom reads from the source file's header. A mammogram
has no ImagePositionPatient, so the frame is referenced by its source image (the Derivation
Image Sequence) and the pixel spacing is given in the Pixel Measures; the mask is on the source
image's own pixel grid (SpatialLocationsPreserved YES).

A SEG is read back as a BAC label (:func:`read_seg_label`, what :func:`monai_bac.data.load_label`
uses for a ``.dcm`` label) whoever wrote it - this package, a PACS viewer such as OHIF, 3D Slicer,
highdicom: the frame of the image it annotates, and the BAC segment among several.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from monai_bac.units import as_spacing
from monai_bac.utils import atomic_write_path

__all__ = ["write_dicom_seg", "read_dicom_seg", "read_seg_label", "SEG_SOP_CLASS_UID", "BAC_PROPERTY",
           "BAC_SEGMENT_LABELS", "ALGORITHM_TYPES", "DicomSegError", "is_bac_segment", "segment_algorithm"]

SEG_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.66.4"
#: the segmented property type of the BAC segment this package writes: (CodeValue, CodingSchemeDesignator)
BAC_PROPERTY = ("BAC", "99MONAIBAC")
#: SegmentLabel (0062,0005) values read as the BAC segment of a SEG holding several (upper case)
BAC_SEGMENT_LABELS = ("BAC", "BREAST ARTERIAL CALCIFICATION", "ARTERIAL CALCIFICATION", "VASCULAR CALCIFICATION")


class DicomSegError(ValueError):
    """The mask cannot be written as a SEG of this source (not DICOM, wrong size, missing UIDs)."""


#: SegmentAlgorithmType (0062,0008) values: the model's output as it came (AUTOMATIC), a person's label made
#: with the model's help - its prediction corrected (SEMIAUTOMATIC), a person's label drawn without it (MANUAL)
ALGORITHM_TYPES = ("AUTOMATIC", "SEMIAUTOMATIC", "MANUAL")


def _segment_description(label: str, algorithm_type: str, algorithm_name: str, algorithm_version: str,
                         algorithm_parameters: dict[str, str] | None):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    # the algorithm is identified unless no algorithm took part (Type 1C: not for MANUAL)
    identification = None if algorithm_type == "MANUAL" else hd.AlgorithmIdentificationSequence(
        name=algorithm_name, version=algorithm_version, family=codes.cid7162.ArtificialIntelligence,
        parameters=dict(algorithm_parameters) if algorithm_parameters else None)
    return hd.seg.SegmentDescription(
        segment_number=1, segment_label=label,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=hd.sr.CodedConcept(*BAC_PROPERTY, "Breast arterial calcification"),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues[algorithm_type],
        algorithm_identification=identification,
    )


def write_dicom_seg(path: str | os.PathLike, mask: np.ndarray, source: str | os.PathLike, *,
                    spacing_mm: Sequence[float] | None = None, segment_label: str = "BAC",
                    algorithm_type: str = "AUTOMATIC", algorithm_name: str = "monai-bac",
                    algorithm_version: str | None = None, algorithm_parameters: dict[str, str] | None = None,
                    content_creator_name: str | None = None, series_description: str = "BAC segmentation (monai-bac)",
                    source_frame: int | None = None, overwrite: bool = False) -> Path:
    """Write a binary (H, W) mask on ``source``'s grid as a one-segment BINARY SEG, atomically.

    Args:
        path: destination ``.dcm``.
        mask: (H, W) or (1, H, W) binary mask.
        source: the source DICOM file: a 2D mammogram, or a tomosynthesis projection set (Breast
            Projection X-Ray Image), whose frame ``source_frame`` (0-based; default the central
            projection, as :func:`~monai_bac.data.dicom_read.read_dicom_mammogram` reads it) the SEG
            annotates: its SourceImageSequence names that frame (ReferencedFrameNumber (0008,1160)).
        spacing_mm: (row, col) mm for the Pixel Measures; default the source's
            ImagerPixelSpacing (0018,1164) / PixelSpacing (0028,0030).
        algorithm_type: SegmentAlgorithmType (0062,0008), one of :data:`ALGORITHM_TYPES`: "AUTOMATIC"
            for the model's output, "SEMIAUTOMATIC" for a person's correction of it, "MANUAL" for a
            label drawn without it (then no algorithm is identified).
        algorithm_name, algorithm_version: the algorithm's identification (default monai-bac, this
            package's version).
        algorithm_parameters: AlgorithmParameters of that identification (e.g. the model's id).
        content_creator_name: ContentCreatorName (0070,0084), the person who made or corrected the label
            (a DICOM person name, ``Family^Given`` or as the identity provider spells it); empty when
            not known, as the Type 2 attribute allows.
        overwrite: replace an existing ``path``.

    Raises:
        DicomSegError: ``source`` is not a readable DICOM image, ``mask`` is not of its size, or
            ``algorithm_type`` is none of :data:`ALGORITHM_TYPES`.
    """
    import highdicom as hd
    import pydicom

    import monai_bac

    if algorithm_type not in ALGORITHM_TYPES:
        raise DicomSegError(f"{path}: algorithm_type {algorithm_type!r} is none of {', '.join(ALGORITHM_TYPES)} "
                            "(SegmentAlgorithmType (0062,0008))")
    try:
        src = pydicom.dcmread(str(source), stop_before_pixels=True)  # highdicom needs the header only
        frame = _projection_frame(src, Path(source), source_frame)
        if frame is not None:
            src, projection_class = _as_2d_source(src, frame), src.SOPClassUID
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
            segment_descriptions=[_segment_description(segment_label, algorithm_type, algorithm_name, version,
                                                        algorithm_parameters)],
            series_instance_uid=hd.UID(), series_number=999, sop_instance_uid=hd.UID(), instance_number=1,
            manufacturer="monai-bac", manufacturer_model_name="monai-bac", software_versions=version,
            device_serial_number="0", series_description=series_description, omit_empty_frames=False,
            content_creator_name=content_creator_name or None,
            pixel_measures=hd.PixelMeasuresSequence(pixel_spacing=list(sp), slice_thickness=1.0) if sp else None,
        )
    if frame is not None:  # the references name the projection set and its frame
        for item in (ref for group in seg.PerFrameFunctionalGroupsSequence
                     for derivation in group.DerivationImageSequence for ref in derivation.SourceImageSequence):
            item.ReferencedSOPClassUID, item.ReferencedFrameNumber = projection_class, frame + 1
        seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPClassUID = projection_class
    # General Image module, Type 2C for images without a frame of reference (a 2D mammogram):
    # the source's own orientation, or empty (highdicom fills it only from a frame of reference)
    if "PatientOrientation" not in seg:
        seg.PatientOrientation = src.get("PatientOrientation", "")
    if "ContentCreatorName" not in seg:  # Type 2 (Content Identification); highdicom >= 0.23 leaves it out
        seg.ContentCreatorName = ""
    if content_creator_name and not content_creator_name.isascii():
        seg.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: a person's name in any script (the default is ASCII)
    path = Path(path)
    with atomic_write_path(path, overwrite=overwrite) as tmp:
        seg.save_as(str(tmp))
    return path


def _projection_frame(src, path: Path, source_frame: int | None) -> int | None:
    """The frame a SEG on ``src`` annotates: None for a 2D image; for a projection set, ``source_frame``
    or its central projection."""
    from monai_bac.data.tomo_projection import chosen_frame, is_breast_projection

    return chosen_frame(src, path, source_frame) if is_breast_projection(src) else None


def _as_2d_source(src, frame: int):
    """The header of one projection as highdicom takes a 2D mammogram's. highdicom 0.28 builds a SEG
    on one frame of a multi-frame source only through a patient coordinate system, which a
    projection does not have; the SEG's references are given the projection set's class and frame
    afterwards."""
    from monai_bac.data.dicom_tags import MG_FOR_PROCESSING_SOP_CLASS
    from monai_bac.data.tomo_projection import frame_header

    header = frame_header(src, frame)
    header.SOPClassUID = MG_FOR_PROCESSING_SOP_CLASS
    if "FrameOfReferenceUID" in header:
        del header.FrameOfReferenceUID
    return header


def read_dicom_seg(path: str | os.PathLike, source_uid: str | None = None) -> np.ndarray:
    """The (H, W) uint8 BAC mask of a SEG (:func:`read_seg_label` without the description)."""
    return read_seg_label(path, source_uid)[0]


def _segment_text(item) -> str:
    return f"{int(item.SegmentNumber)} {str(item.get('SegmentLabel', '')).strip()!r}"


def is_bac_segment(item) -> bool:
    """Whether a SegmentSequence (0062,0002) item is a BAC segment: this package's property code, or a
    SegmentLabel of :data:`BAC_SEGMENT_LABELS` (what another tool's annotator would name it)."""
    codes = item.get("SegmentedPropertyTypeCodeSequence") or []
    coded = any((str(c.get("CodeValue", "")), str(c.get("CodingSchemeDesignator", ""))) == BAC_PROPERTY for c in codes)
    return coded or str(item.get("SegmentLabel", "")).strip().upper() in BAC_SEGMENT_LABELS


def segment_algorithm(item) -> dict:
    """How a SEG's segment was made: ``type`` (SegmentAlgorithmType (0062,0008)), and the algorithm's
    ``name``, ``version`` and ``parameters`` (its SegmentationAlgorithmIdentificationSequence
    (0062,0007); empty for a MANUAL segment)."""
    found = {"type": str(item.get("SegmentAlgorithmType", "")).upper(), "name": str(item.get("SegmentAlgorithmName", "")),
             "version": "", "parameters": {}}
    for ident in item.get("SegmentationAlgorithmIdentificationSequence") or []:
        found["name"] = str(ident.get("AlgorithmName", found["name"]))
        found["version"] = str(ident.get("AlgorithmVersion", ""))
        pairs = str(ident.get("AlgorithmParameters", "") or "")
        found["parameters"] = dict(p.split("=", 1) for p in pairs.split(",") if "=" in p)
    return found


def read_seg_label(path: str | os.PathLike, source_uid: str | None = None) -> tuple[np.ndarray, dict]:
    """A BAC label from a DICOM SEG: ``(mask, info)``, mask (H, W) uint8 0/1 on the source image's grid.

    * The image: ``source_uid`` (its SOPInstanceUID) when given, which the SEG must reference;
      otherwise the SEG must reference exactly one image.
    * The segment: the only one, else the one whose SegmentedPropertyTypeCodeSequence is this
      package's (:data:`BAC_PROPERTY`) or whose SegmentLabel is one of :data:`BAC_SEGMENT_LABELS`.
    * FRACTIONAL segmentations (probabilities, occupancies) are cut at one half.
    * Frames the SEG leaves out (an empty mask, with highdicom's ``omit_empty_frames``) read as 0.

    ``info``: ``spacing_mm`` (the shared Pixel Measures (0028,9110), None when absent),
    ``source_sop_instance_uid``, ``segment`` ("number 'label'"), ``segmentation_type``, ``algorithm``
    (:func:`segment_algorithm`: AUTOMATIC, SEMIAUTOMATIC or MANUAL, and by what), ``content_creator``
    (ContentCreatorName (0070,0084): who made it, None when the SEG leaves it empty).

    Raises:
        DicomSegError: not a readable SEG, or the image or the BAC segment cannot be told.
    """
    import highdicom as hd

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # highdicom's notes on other writers' optional attributes
            seg = hd.seg.segread(str(path))
    except Exception as e:  # noqa: BLE001 - any unreadable file is one clear error
        raise DicomSegError(f"not a readable DICOM SEG ({type(e).__name__}: {e})") from None
    sources = list(dict.fromkeys(str(uids[2]) for uids in seg.get_source_image_uids()))
    if source_uid is not None and str(source_uid) not in sources:
        raise DicomSegError(f"the SEG annotates {', '.join(sources) or 'no image'} (ReferencedSeriesSequence "
                            f"(0008,1115)), not the image {source_uid}")
    if source_uid is None and len(sources) != 1:
        raise DicomSegError(f"the SEG annotates {len(sources)} images ({', '.join(sources)}); load it with its "
                            "image (LoadMammogramd with the image key) so that its frame can be chosen")
    source = str(source_uid) if source_uid is not None else sources[0]
    segments = list(seg.SegmentSequence)
    chosen = segments if len(segments) == 1 else [item for item in segments if is_bac_segment(item)]
    if len(chosen) != 1:
        raise DicomSegError(
            f"the SEG holds {len(segments)} segments ({'; '.join(_segment_text(item) for item in segments)}) and "
            f"{'none' if not chosen else len(chosen)} of them is the BAC one (SegmentedPropertyTypeCodeSequence "
            f"{BAC_PROPERTY[0]} of {BAC_PROPERTY[1]}, or SegmentLabel (0062,0005) one of "
            f"{', '.join(BAC_SEGMENT_LABELS)})")
    number = int(chosen[0].SegmentNumber)
    try:
        pixels = seg.get_pixels_by_source_instance([source], segment_numbers=[number],
                                                   assert_missing_frames_are_empty=True)[0, :, :, 0]
    except Exception as e:  # noqa: BLE001 - a geometry highdicom cannot map to the source image
        raise DicomSegError(f"segment {_segment_text(chosen[0])} cannot be read on image {source} "
                            f"({type(e).__name__}: {e})") from None
    kind = str(seg.SegmentationType).upper()
    mask = (np.asarray(pixels, np.float64) >= 0.5) if kind == "FRACTIONAL" else (np.asarray(pixels) > 0)
    spacing = None
    try:
        spacing = as_spacing(seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing,
                             f"{path}: the SEG's Pixel Measures")
    except (AttributeError, IndexError, KeyError, ValueError):
        pass
    return mask.astype(np.uint8), {"spacing_mm": spacing, "source_sop_instance_uid": source,
                                   "segment": _segment_text(chosen[0]), "segmentation_type": kind,
                                   "algorithm": segment_algorithm(chosen[0]),
                                   "content_creator": str(seg.get("ContentCreatorName") or "") or None}

"""Writing a single-frame digital mammogram as DICOM (:func:`write_mammogram_dicom`).

The file is a Part-10 file of the Digital Mammography X-Ray Image IOD ("For Processing" or "For
Presentation"), Explicit VR Little Endian, written atomically, with the modules the IOD requires
beside the pixels (anatomy, view code, positioner, detector, acquisition context). It works with
pydicom 2.4 (the version the MONAI Label world pins) and pydicom 3.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from monai_bac.data.dicom_tags import (
    MG_FOR_PRESENTATION_SOP_CLASS,
    MG_FOR_PROCESSING_SOP_CLASS,
    PATIENT_ORIENTATION,
    PHOTOMETRICS,
    PRESENTATIONS,
    PYDICOM_MAJOR,
    VIEW_CODES,
    code_item,
)
from monai_bac.data.views import modifier_code
from monai_bac.utils import PathLike, atomic_write_path

__all__ = ["save_dataset", "write_mammogram_dicom"]



def _ds_str(value: float) -> str:
    """Format a number as a valid DICOM Decimal String (at most 16 characters)."""
    return format_number_as_ds(float(value))


def _check_pixels(pixels: Any, bits_stored: int) -> np.ndarray:
    """Validate the stored values: 2D, integer, within ``[0, 2**bits_stored - 1]``; return uint16."""
    if not 1 <= int(bits_stored) <= 16:
        raise ValueError(f"bits_stored must be in 1..16, got {bits_stored}.")
    arr = np.asarray(pixels)
    if arr.ndim != 2:
        raise ValueError(f"pixels must be a 2D (H, W) array of stored values, got shape {arr.shape}.")
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise TypeError(f"pixels must be an integer (uint16) array of stored values, got dtype {arr.dtype}.")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 2 ** int(bits_stored) - 1):
        raise ValueError(
            f"pixel values span [{int(arr.min())}, {int(arr.max())}], outside the range "
            f"[0, {2 ** int(bits_stored) - 1}] of BitsStored={bits_stored}."
        )
    return np.ascontiguousarray(arr, dtype="<u2")


def _check_spacing(spacing: Any) -> tuple[float, float]:
    """Two positive finite numbers (row_mm, col_mm), else ValueError (no plausibility range: the
    reader checks that)."""
    try:
        values = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 2 or not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"spacing_mm must be two positive numbers (row_mm, col_mm), got {spacing!r}")
    return values  # type: ignore[return-value]


def _check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    value = str(value).strip().upper()
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}.")
    return value


def _file_meta(sop_class: str, sop_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"PYDICOM {pydicom.__version__}"[:16]
    return meta


#: Type 2 attributes of the Patient and General Study modules: required, written empty (a phantom
#: has no birth date, sex, study date or accession number)
TYPE2_EMPTY = ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
               "ReferringPhysicianName")


def _set_if(ds: Dataset, keyword: str, value: Any) -> None:
    """Set ``keyword`` unless ``value`` is None (then the tag is left out)."""
    if value is not None:
        setattr(ds, keyword, value)


def _set_pixels(ds: Dataset, pixels: np.ndarray, photometric: str, bits_stored: int) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = (int(s) for s in pixels.shape)
    ds.BitsAllocated = 16
    ds.BitsStored = int(bits_stored)
    ds.HighBit = int(bits_stored) - 1
    ds.PixelRepresentation = 0
    ds.PresentationLUTShape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    ds.PixelData = pixels.tobytes()


def _apply_extra(ds: Dataset, extra: Mapping[str, Any] | None) -> None:
    """Set (or, for a None value, remove) tags by keyword; group 0002 keywords go to the file meta."""
    for keyword, value in (extra or {}).items():
        tag = tag_for_keyword(keyword)
        if tag is None:
            raise ValueError(f"extra: {keyword!r} is not a DICOM keyword.")
        target = ds.file_meta if tag >> 16 == 0x0002 else ds
        if value is None:
            if keyword in target:
                delattr(target, keyword)
        else:
            setattr(target, keyword, value)


def save_dataset(ds: Dataset, target: Path | BinaryIO, *, as_is: bool = False, little_endian: bool = True,
                 implicit_vr: bool = False) -> None:
    """Write a Part-10 file (preamble, file meta, Explicit VR Little Endian) on pydicom 2 or 3.

    ``as_is`` writes the data set as it stands in the given encoding, file meta unchecked (pydicom's
    ``write_like_original``): how tests forge big-endian, implicit-VR or malformed files.
    """
    if PYDICOM_MAJOR >= 3:
        if as_is:  # pydicom 3 re-encodes (little <-> big endian) only when told to
            pydicom.dcmwrite(target, ds, implicit_vr=implicit_vr, little_endian=little_endian, force_encoding=True)
        else:
            pydicom.dcmwrite(target, ds, enforce_file_format=True)
    else:
        ds.is_little_endian, ds.is_implicit_VR = (little_endian, implicit_vr) if as_is else (True, False)
        pydicom.dcmwrite(target if hasattr(target, "write") else str(target), ds, write_like_original=as_is)


def write_mammogram_dicom(
    path: PathLike,
    pixels: np.ndarray,
    *,
    spacing_mm: Sequence[float],
    kvp: float | None,
    thickness_mm: float | None,
    anode: str | None,
    filter: str | None,  # shadows the builtin on purpose: the DICOM FilterMaterial, meta["filter"]
    view: str | None,
    laterality: str | None,
    manufacturer: str | None,
    presentation: str = "FOR PROCESSING",
    photometric: str = "MONOCHROME2",
    bits_stored: int = 14,
    patient_id: str = "PHANTOM",
    patient_name: str | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    exposure_mas: float | None = None,
    compression_force_n: float | None = None,
    view_modifiers: Sequence[str] = (),
    magnification: float | None = None,
    extra: Mapping[str, Any] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write a single-frame digital mammogram as a DICOM Part-10 file.

    Args:
        path: destination file (written atomically: temporary file + rename).
        pixels: (H, W) integer array of STORED values (uint16). They are written unchanged; for
            ``photometric="MONOCHROME1"`` the caller has already inverted them.
        spacing_mm: (row, col) pixel spacing in mm; written to both ImagerPixelSpacing
            (0018,1164) and PixelSpacing (0028,0030).
        kvp: tube voltage, KVP (0018,0060).
        thickness_mm: compressed breast thickness, BodyPartThickness (0018,11A0).
        anode: AnodeTargetMaterial (0018,1191), e.g. ``"MOLYBDENUM"``, ``"RHODIUM"``, ``"TUNGSTEN"``.
        filter: FilterMaterial (0018,7050), e.g. ``"RHODIUM"``.
        view: ViewPosition (0018,5101), ``"CC"`` or ``"MLO"``.
        laterality: ImageLaterality (0020,0062), ``"L"`` or ``"R"``.
        manufacturer: Manufacturer (0008,0070).
        presentation: ``"FOR PROCESSING"`` (raw; SOP class 1.2.840.10008.5.1.4.1.1.1.2.1) or
            ``"FOR PRESENTATION"`` (processed; SOP class 1.2.840.10008.5.1.4.1.1.1.2);
            written to PresentationIntentType (0008,0068).
        photometric: ``"MONOCHROME2"`` or ``"MONOCHROME1"``.
        bits_stored: BitsStored (1..16); BitsAllocated is 16 and HighBit ``bits_stored - 1``.
        patient_id: PatientID; PatientName defaults to it.
        patient_name: PatientName.
        study_uid, series_uid, sop_uid: instance UIDs; generated when None.
        exposure_mas: tube current-time product in mAs; written to Exposure (0018,1152, whole
            mAs) and ExposureInuAs (0018,1153, exact to 1 uAs).
        compression_force_n: CompressionForce (0018,11A2), newton.
        view_modifiers: CID 4015 view modifiers by meaning (e.g. ``("magnification",)``), written as
            SNOMED CT codes in ViewCodeSequence's ViewModifierCodeSequence (0054,0222); they need
            ``view`` "CC" or "MLO" (the coded views).
        magnification: EstimatedRadiographicMagnificationFactor (0018,1114).
        extra: further tags by keyword, applied last (they may replace the tags above; a None
            value removes the tag). Group 0002 keywords go to the file meta information.
        overwrite: when False, refuse to replace an existing file (FileExistsError).

    Tags given as None (kvp, thickness_mm, anode, filter, view, laterality, manufacturer,
    exposure_mas, compression_force_n, magnification) are left out of the file.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    presentation = _check_choice("presentation", presentation, PRESENTATIONS)
    photometric = _check_choice("photometric", photometric, PHOTOMETRICS)
    pixels = _check_pixels(pixels, bits_stored)
    spacing = _check_spacing(spacing_mm)
    raw = presentation == "FOR PROCESSING"
    sop_class = MG_FOR_PROCESSING_SOP_CLASS if raw else MG_FOR_PRESENTATION_SOP_CLASS
    sop_uid = sop_uid or generate_uid()

    ds = Dataset()
    ds.file_meta = _file_meta(sop_class, sop_uid)
    ds.preamble = b"\x00" * 128
    # identification
    ds.SOPClassUID = UID(sop_class)
    ds.SOPInstanceUID = UID(sop_uid)
    ds.StudyInstanceUID = UID(study_uid or generate_uid())
    ds.SeriesInstanceUID = UID(series_uid or generate_uid())
    ds.ImageType = ["ORIGINAL", "PRIMARY", ""]
    ds.Modality = "MG"
    ds.PresentationIntentType = presentation
    ds.PatientID = str(patient_id)
    ds.PatientName = str(patient_name if patient_name is not None else patient_id)
    for keyword in TYPE2_EMPTY:
        setattr(ds, keyword, "")
    ds.SeriesNumber = "1"
    ds.InstanceNumber = "1"
    ds.BodyPartExamined = "BREAST"
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    _set_if(ds, "Manufacturer", manufacturer)
    # acquisition
    _set_if(ds, "KVP", None if kvp is None else _ds_str(kvp))
    _set_if(ds, "BodyPartThickness", None if thickness_mm is None else _ds_str(thickness_mm))
    _set_if(ds, "AnodeTargetMaterial", anode)
    _set_if(ds, "FilterMaterial", filter)
    _set_if(ds, "ViewPosition", view)
    _set_if(ds, "ImageLaterality", laterality)
    _set_mammography_modules(ds, view, laterality, manufacturer, view_modifiers)
    _set_if(ds, "EstimatedRadiographicMagnificationFactor", None if magnification is None else _ds_str(magnification))
    if exposure_mas is not None:
        ds.Exposure = str(round(float(exposure_mas)))
        ds.ExposureInuAs = str(round(float(exposure_mas) * 1000))
    _set_if(ds, "CompressionForce", None if compression_force_n is None else _ds_str(compression_force_n))
    ds.ImagerPixelSpacing = [_ds_str(s) for s in spacing]
    ds.PixelSpacing = [_ds_str(s) for s in spacing]
    ds.PixelIntensityRelationship = "LIN" if raw else "LOG"
    ds.PixelIntensityRelationshipSign = 1 if photometric == "MONOCHROME2" else -1
    _set_pixels(ds, pixels, photometric, bits_stored)
    _apply_extra(ds, extra)

    with atomic_write_path(path, overwrite=overwrite) as tmp:
        save_dataset(ds, tmp)
    return path


def _set_mammography_modules(ds: Dataset, view: str | None, laterality: str | None, manufacturer: str | None,
                             view_modifiers: Sequence[str] = ()) -> None:
    """What the MG IOD requires beside the pixels (PS3.3 A.26): anatomy, view code, positioner,
    detector and acquisition context."""
    from pydicom.sequence import Sequence as Seq

    v, lat = (view or "").upper(), (laterality or "").upper()
    ds.PatientOrientation = PATIENT_ORIENTATION.get((v, lat), "")
    ds.AnatomicRegionSequence = Seq([code_item("76752008", "SCT", "Breast")])
    ds.OrganExposed = "BREAST"
    ds.PositionerType = "MAMMOGRAPHIC"
    # GE's detectors are CsI on amorphous silicon (indirect); Hologic's and Siemens' amorphous selenium
    ds.DetectorType = "SCINTILLATOR" if "GE" in (manufacturer or "").upper().split() else "DIRECT"
    ds.AcquisitionContextSequence = Seq([])
    modifiers = [modifier_code(name) for name in view_modifiers]
    if modifiers and v not in VIEW_CODES:
        raise ValueError(f"view modifiers {list(view_modifiers)} need a coded view ({', '.join(VIEW_CODES)}), "
                         f"not {view!r}")
    if v in VIEW_CODES:
        code, meaning = VIEW_CODES[v]
        item = code_item(code, "SCT", meaning)
        item.ViewModifierCodeSequence = Seq([code_item(m.value, "SCT", m.meaning) for m in modifiers])
        ds.ViewCodeSequence = Seq([item])

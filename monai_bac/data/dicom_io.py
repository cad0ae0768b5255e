"""Reading and writing single-frame digital mammograms (DICOM, Modality MG).

Reading (:func:`read_dicom_mammogram`) returns the pixel data as stored, as float32, with two
exceptions that keep the values' meaning the same for every vendor:

- ``MONOCHROME1`` images are inverted to ``MONOCHROME2`` semantics, ``(lo + hi) - value`` where
  ``[lo, hi]`` is the range of the stored values (``hi = 2**BitsStored - 1`` and ``lo = 0`` for
  unsigned data). Raw detector values are linear in exposure (more X-rays, larger value);
  some vendors (GE raw images, for example) store them inverted and flag this with
  MONOCHROME1. After the inversion a larger value always means more X-rays.
- a non-identity Modality LUT (RescaleSlope (0028,1053) / RescaleIntercept (0028,1052)) is applied.

Nothing else is changed: no VOI LUT (window), no flipping, no normalisation.

The returned metadata dict uses the keys of DESIGN.md's data contract (see
:func:`read_dicom_mammogram`). Problems with the file are reported by
:class:`~monai_bac.data.errors.MammogramReadError` (unusable), or by
:class:`~monai_bac.data.errors.ProcessedImageWarning` and
:class:`~monai_bac.data.errors.MissingTagWarning` (usable, with caveats); each message names the
file and the tag.

Writing (:func:`write_mammogram_dicom`) produces a Part-10 file of the Digital Mammography
X-Ray Image IOD ("For Processing" or "For Presentation"), Explicit VR Little Endian, atomically.
It works with pydicom 2.4 (the version this project pins) and pydicom 3.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from monai_bac.data.errors import MammogramReadError, MissingTagWarning, ProcessedImageWarning
from monai_bac.utils import atomic_write_path

__all__ = [
    "MG_FOR_PRESENTATION_SOP_CLASS",
    "MG_FOR_PROCESSING_SOP_CLASS",
    "is_dicom_file",
    "read_dicom_mammogram",
    "tag_name",
    "write_mammogram_dicom",
]

PathLike = str | os.PathLike

MG_FOR_PROCESSING_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.2.1"
MG_FOR_PRESENTATION_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.2"
# SOP classes whose name fixes the presentation intent (MG, DX, intra-oral DX)
_FOR_PROCESSING_SOP_CLASSES = {
    MG_FOR_PROCESSING_SOP_CLASS,
    "1.2.840.10008.5.1.4.1.1.1.1.1",
    "1.2.840.10008.5.1.4.1.1.1.3.1",
}
_FOR_PRESENTATION_SOP_CLASSES = {
    MG_FOR_PRESENTATION_SOP_CLASS,
    "1.2.840.10008.5.1.4.1.1.1.1",
    "1.2.840.10008.5.1.4.1.1.1.3",
}
_PRESENTATIONS = ("FOR PROCESSING", "FOR PRESENTATION")
_PHOTOMETRICS = ("MONOCHROME1", "MONOCHROME2")
_VIEW_ALIASES = {
    "CC": "CC",
    "CRANIOCAUDAL": "CC",
    "CRANIO-CAUDAL": "CC",
    "MLO": "MLO",
    "MEDIOLATERAL OBLIQUE": "MLO",
    "MEDIO-LATERAL OBLIQUE": "MLO",
}
_PYDICOM_MAJOR = int(pydicom.__version__.split(".")[0])


def tag_name(keyword: str) -> str:
    """``"KVP"`` -> ``"KVP (0018,0060)"``: a tag's keyword and number, as used in messages."""
    tag = tag_for_keyword(keyword)
    return keyword if tag is None else f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


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


def _save(ds: Dataset, target: Path) -> None:
    """Write a Part-10 file (preamble, file meta, Explicit VR Little Endian) on pydicom 2 or 3."""
    if _PYDICOM_MAJOR >= 3:
        pydicom.dcmwrite(target, ds, enforce_file_format=True)
    else:
        ds.is_little_endian = True
        ds.is_implicit_VR = False
        pydicom.dcmwrite(str(target), ds, write_like_original=False)


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
        extra: further tags by keyword, applied last (they may replace the tags above; a None
            value removes the tag). Group 0002 keywords go to the file meta information.
        overwrite: when False, refuse to replace an existing file (FileExistsError).

    Tags given as None (kvp, thickness_mm, anode, filter, view, laterality, manufacturer,
    exposure_mas, compression_force_n) are left out of the file.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    presentation = _check_choice("presentation", presentation, _PRESENTATIONS)
    photometric = _check_choice("photometric", photometric, _PHOTOMETRICS)
    pixels = _check_pixels(pixels, bits_stored)
    spacing = _validate_spacing(spacing_mm, "spacing_mm", ValueError)
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
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
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
        _save(ds, tmp)
    return path


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def is_dicom_file(path: PathLike) -> bool:
    """True when ``path`` is a file with the Part-10 ``DICM`` marker at byte 128."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def _read_dataset(path: Path) -> Dataset:
    """Parse the file, turning pydicom's many failure modes into one clear error."""
    try:
        return pydicom.dcmread(str(path))
    except InvalidDicomError:
        return _read_without_preamble(path)
    except Exception as e:  # struct.error, EOFError, OSError, ValueError... from deep in pydicom
        raise MammogramReadError(
            f"{path}: the DICOM data set could not be parsed (truncated or corrupt file?): {type(e).__name__}: {e}"
        ) from e


def _read_without_preamble(path: Path) -> Dataset:
    """Accept a DICOM data set without the Part-10 preamble only if it looks like an image."""
    not_dicom = (
        f"{path}: not a DICOM file: no 'DICM' marker at byte 128 and no DICOM image data set "
        "(SOPClassUID (0008,0016) or PixelData (7FE0,0010)) could be parsed"
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(str(path), force=True)
            ok = "SOPClassUID" in ds or "PixelData" in ds
    except Exception as e:
        raise MammogramReadError(not_dicom) from e
    if not ok:
        raise MammogramReadError(not_dicom)
    return ds


def _str(ds: Dataset, keyword: str) -> str | None:
    """A tag's value as a stripped string (multi-values joined by a backslash); None if absent/empty."""
    value = ds.get(keyword)
    if value is None:
        return None
    if isinstance(value, (list, tuple, MultiValue)):
        value = "\\".join(str(v) for v in value)
    text = str(value).strip()
    return text or None


def _float(
    ds: Dataset, keyword: str, path: Path, *, warn_missing: bool = False, positive: bool = False
) -> float | None:
    """A numeric tag as float; None (with a :class:`MissingTagWarning`) when absent or unusable."""
    raw = ds.get(keyword)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if warn_missing:
            warnings.warn(f"{path}: {tag_name(keyword)} is absent; meta value is None", MissingTagWarning, stacklevel=3)
        return None
    try:
        value = float(raw[0] if isinstance(raw, (list, MultiValue)) else raw)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or (positive and value <= 0):
        warnings.warn(
            f"{path}: {tag_name(keyword)} has unusable value {raw!r}; meta value is None",
            MissingTagWarning,
            stacklevel=3,
        )
        return None
    return value


def _validate_spacing(spacing: Any, where: str, error: type[Exception] = MammogramReadError) -> tuple[float, float]:
    try:
        values = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 2 or not all(math.isfinite(v) and v > 0 for v in values):
        raise error(f"{where} must be two positive numbers (row_mm, col_mm), got {spacing!r}")
    return values  # type: ignore[return-value]


def _spacing(ds: Dataset, path: Path, override: Sequence[float] | None) -> tuple[tuple[float, float], str]:
    """(row, col) spacing in mm and where it came from: argument, ImagerPixelSpacing or PixelSpacing."""
    if override is not None:
        return _validate_spacing(override, f"{path}: spacing_mm argument"), "argument"
    for keyword in ("ImagerPixelSpacing", "PixelSpacing"):
        if ds.get(keyword) in (None, ""):
            continue
        spacing = _validate_spacing(ds.get(keyword), f"{path}: {tag_name(keyword)}")
        if keyword == "PixelSpacing":
            warnings.warn(
                f"{path}: {tag_name('ImagerPixelSpacing')} is absent; using {tag_name('PixelSpacing')} = {spacing} mm",
                MissingTagWarning,
                stacklevel=3,
            )
        return spacing, keyword
    raise MammogramReadError(
        f"{path}: pixel spacing unknown: neither {tag_name('ImagerPixelSpacing')} nor {tag_name('PixelSpacing')} "
        "is present; pass spacing_mm=(row_mm, col_mm)"
    )


def _check_modality(ds: Dataset, path: Path, allow_non_mg: bool) -> str | None:
    modality = _str(ds, "Modality")
    if modality is not None:
        modality = modality.upper()
    if modality != "MG" and not allow_non_mg:
        found = "absent" if modality is None else f"{modality!r}"
        raise MammogramReadError(
            f"{path}: {tag_name('Modality')} is {found}, not 'MG'; pass allow_non_mg=True to read it anyway"
        )
    return modality


def _guess_raw(ds: Dataset) -> tuple[bool, str]:
    """Heuristic for files without PresentationIntentType: is this raw (FOR PROCESSING) data?

    In order: the SOP class, when it is a "For Processing" / "For Presentation" class, decides;
    otherwise a VOI LUT (WindowCenter or VOILUTSequence) or ImageType DERIVED means a processed
    image; otherwise the image is taken as raw.
    """
    sop = str(ds.get("SOPClassUID", ""))
    if sop in _FOR_PROCESSING_SOP_CLASSES:
        return True, f"{tag_name('SOPClassUID')} is the 'For Processing' class {sop}"
    if sop in _FOR_PRESENTATION_SOP_CLASSES:
        return False, f"{tag_name('SOPClassUID')} is the 'For Presentation' class {sop}"
    for keyword in ("WindowCenter", "VOILUTSequence"):
        if keyword in ds:
            return False, f"a VOI LUT is present ({tag_name(keyword)})"
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    if "DERIVED" in image_type:
        return False, f"{tag_name('ImageType')} is DERIVED"
    return True, "it has no VOI LUT (WindowCenter, VOILUTSequence) and ImageType is not DERIVED"


def _presentation(ds: Dataset, path: Path, require_raw: bool) -> tuple[str | None, bool]:
    """(PresentationIntentType or None, is_raw); warns or raises for processed images."""
    value = _str(ds, "PresentationIntentType")
    value = value.upper() if value else None
    if value == "FOR PROCESSING":
        return value, True
    if value == "FOR PRESENTATION":
        is_raw, reason = False, f"{tag_name('PresentationIntentType')} is 'FOR PRESENTATION'"
    else:
        is_raw, reason = _guess_raw(ds)
        found = "absent" if value is None else f"{value!r}"
        warnings.warn(
            f"{path}: {tag_name('PresentationIntentType')} is {found}; guessed a "
            f"{'raw' if is_raw else 'processed'} image because {reason}",
            MissingTagWarning,
            stacklevel=3,
        )
    if not is_raw:
        message = (
            f"{path}: processed (FOR PRESENTATION) image, not raw detector data: {reason}; "
            "physics-based transforms (density, calcification thickness) assume raw values"
        )
        if require_raw:
            raise MammogramReadError(message + " (require_raw=True)")
        warnings.warn(message, ProcessedImageWarning, stacklevel=3)
    return value, is_raw


def _required_int(ds: Dataset, keyword: str, path: Path) -> int:
    value = ds.get(keyword)
    if value in (None, ""):
        raise MammogramReadError(f"{path}: {tag_name(keyword)} is absent; cannot decode the pixel data")
    return int(value)


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    return UID(uid) if uid else ExplicitVRLittleEndian


def _require_pixel_data(ds: Dataset, path: Path) -> None:
    if "PixelData" in ds:
        return
    others = [tag_name(k) for k in ("FloatPixelData", "DoubleFloatPixelData") if k in ds]
    hint = f"found {', '.join(others)}, which is not supported" if others else "is the file truncated, or not an image?"
    raise MammogramReadError(f"{path}: no pixel data: {tag_name('PixelData')} is absent ({hint})")


def _check_pixel_module(ds: Dataset, path: Path) -> tuple[int, int, int]:
    """Check that there is one greyscale frame of pixel data; return (rows, columns, bits_allocated)."""
    rows, cols = _required_int(ds, "Rows", path), _required_int(ds, "Columns", path)
    bits_allocated = _required_int(ds, "BitsAllocated", path)
    samples = int(ds.get("SamplesPerPixel") or 1)
    if samples != 1:
        raise MammogramReadError(
            f"{path}: {tag_name('SamplesPerPixel')} is {samples}; only single-channel (greyscale) images are supported"
        )
    frames = int(ds.get("NumberOfFrames") or 1)
    if frames != 1:
        raise MammogramReadError(
            f"{path}: {tag_name('NumberOfFrames')} is {frames}; only single-frame images are supported "
            "(not tomosynthesis or multi-frame objects)"
        )
    return rows, cols, bits_allocated


def _decode_pixels(ds: Dataset, path: Path) -> np.ndarray:
    """Decode the pixel data (forcing it now, inside a try) into a 2D array of stored values."""
    rows, cols, bits_allocated = _check_pixel_module(ds, path)
    syntax = _transfer_syntax(ds)
    if not syntax.is_compressed:
        expected = (rows * cols * bits_allocated + 7) // 8
        found = len(ds.PixelData)
        if found < expected:
            raise MammogramReadError(
                f"{path}: {tag_name('PixelData')} holds {found} bytes but Rows*Columns*BitsAllocated/8 = "
                f"{rows}*{cols}*{bits_allocated}/8 = {expected}; the file is truncated or corrupt"
            )
    try:
        array = np.asarray(ds.pixel_array)
    except Exception as e:
        if syntax.is_compressed:
            raise MammogramReadError(
                f"{path}: pixel data in {tag_name('TransferSyntaxUID')} {syntax} ({syntax.name}) cannot be decoded "
                "(no working decoder installed, or corrupt data); install a decoder (e.g. pylibjpeg with its "
                "plugins, or python-gdcm) or convert the file to an uncompressed transfer syntax: "
                f"{type(e).__name__}: {e}"
            ) from e
        raise MammogramReadError(
            f"{path}: {tag_name('PixelData')} could not be decoded: {type(e).__name__}: {e}"
        ) from e
    if array.shape != (rows, cols):
        raise MammogramReadError(
            f"{path}: decoded pixel data has shape {array.shape}, expected (Rows, Columns) = ({rows}, {cols})"
        )
    return array


def _to_monochrome2(array: np.ndarray, ds: Dataset, path: Path) -> tuple[np.ndarray, str | None, int]:
    """float32 values with MONOCHROME2 meaning; also returns the original photometric and BitsStored."""
    photometric = _str(ds, "PhotometricInterpretation")
    photometric = photometric.upper() if photometric else None
    bits_stored = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 16)
    out = array.astype(np.float32)
    if photometric is None:
        warnings.warn(
            f"{path}: {tag_name('PhotometricInterpretation')} is absent; assuming MONOCHROME2",
            MissingTagWarning,
            stacklevel=3,
        )
    elif photometric == "MONOCHROME1":
        signed = int(ds.get("PixelRepresentation") or 0) == 1
        lo, hi = (-(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1) if signed else (0, 2**bits_stored - 1)
        out = np.float32(lo + hi) - out
    elif photometric != "MONOCHROME2":
        raise MammogramReadError(
            f"{path}: {tag_name('PhotometricInterpretation')} is {photometric!r}; "
            "only MONOCHROME1 and MONOCHROME2 are supported"
        )
    slope = _float(ds, "RescaleSlope", path)
    intercept = _float(ds, "RescaleIntercept", path)
    slope = 1.0 if slope is None else slope
    intercept = 0.0 if intercept is None else intercept
    if slope != 1.0 or intercept != 0.0:
        out = (out * np.float32(slope) + np.float32(intercept)).astype(np.float32)
    return out, photometric, bits_stored


def _normalise_view(value: str | None) -> str | None:
    """ViewPosition or a view code meaning -> 'CC' / 'MLO' / other string (upper case) / None."""
    if not value:
        return None
    text = " ".join(value.replace("_", " ").upper().split())
    return _VIEW_ALIASES.get(text, text)


def _view(ds: Dataset) -> str | None:
    view = _normalise_view(_str(ds, "ViewPosition"))
    if view is None and ds.get("ViewCodeSequence"):
        view = _normalise_view(_str(ds.ViewCodeSequence[0], "CodeMeaning"))
    return view


def _exposure_mas(ds: Dataset, path: Path) -> float | None:
    """mAs from ExposureInuAs (0018,1153), else ExposureInmAs (0018,9332), else Exposure (0018,1152)."""
    micro = _float(ds, "ExposureInuAs", path)
    if micro is not None:
        return micro / 1000.0
    milli = _float(ds, "ExposureInmAs", path)
    return milli if milli is not None else _float(ds, "Exposure", path)


def _upper(value: str | None) -> str | None:
    return value.upper() if value else None


def read_dicom_mammogram(
    path: PathLike,
    *,
    require_raw: bool = False,
    allow_non_mg: bool = False,
    spacing_mm: Sequence[float] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a single-frame mammogram and its acquisition tags.

    Args:
        path: a DICOM file.
        require_raw: raise :class:`MammogramReadError` (instead of a :class:`ProcessedImageWarning`)
            for a processed ("FOR PRESENTATION") image.
        allow_non_mg: read images whose Modality (0008,0060) is not MG (or is absent).
        spacing_mm: (row, col) spacing in mm; when given it replaces the spacing in the tags
            (``meta["spacing_source"] == "argument"``), and it is the fallback for files without
            ImagerPixelSpacing and PixelSpacing.

    Returns:
        ``(pixels, meta)``: pixels is a float32 (H, W) array as stored (MONOCHROME1 inverted and a
        non-identity rescale applied, see the module docstring). meta has the keys
        ``spacing_mm`` (row, col) from ImagerPixelSpacing (0018,1164), else PixelSpacing (0028,0030)
        (with a warning); ``spacing_source``; ``kvp``; ``thickness_mm`` (BodyPartThickness);
        ``anode``; ``filter``; ``view`` ('CC', 'MLO' or the ViewPosition as written);
        ``laterality`` (ImageLaterality, else Laterality); ``presentation``
        (PresentationIntentType or None); ``is_raw``; ``manufacturer``; ``modality``;
        ``photometric`` (as stored, before the inversion); ``bits_stored``; ``patient_id``;
        ``study_instance_uid``; ``series_instance_uid``; ``sop_instance_uid``; ``sop_class_uid``;
        ``exposure_mas``; ``compression_force_n``; ``filename_or_obj``. Absent tags give None.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        MammogramReadError: not a DICOM file; truncated or corrupt; no PixelData; Modality not MG
            (unless ``allow_non_mg``); processed image with ``require_raw``; compressed pixel data
            without a decoder; no pixel spacing anywhere; colour or multi-frame image.

    Warns:
        ProcessedImageWarning: processed image (FOR PRESENTATION, stated or guessed).
        MissingTagWarning: KVP (0018,0060) or BodyPartThickness (0018,11A0) absent;
            PresentationIntentType absent (the intent is then guessed, see :func:`_guess_raw`);
            only PixelSpacing present.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise MammogramReadError(f"{path}: is a folder, not a DICOM file (DICOM series are not supported)")
    ds = _read_dataset(path)
    _require_pixel_data(ds, path)
    modality = _check_modality(ds, path, allow_non_mg)
    presentation, is_raw = _presentation(ds, path, require_raw)
    pixels, photometric, bits_stored = _to_monochrome2(_decode_pixels(ds, path), ds, path)
    spacing, spacing_source = _spacing(ds, path, spacing_mm)
    meta: dict[str, Any] = {
        "spacing_mm": spacing,
        "spacing_source": spacing_source,
        "kvp": _float(ds, "KVP", path, warn_missing=True, positive=True),
        "thickness_mm": _float(ds, "BodyPartThickness", path, warn_missing=True, positive=True),
        "anode": _upper(_str(ds, "AnodeTargetMaterial")),
        "filter": _upper(_str(ds, "FilterMaterial")),
        "view": _view(ds),
        "laterality": _upper(_str(ds, "ImageLaterality") or _str(ds, "Laterality")),
        "presentation": presentation,
        "is_raw": is_raw,
        "manufacturer": _str(ds, "Manufacturer"),
        "modality": modality,
        "photometric": photometric,
        "bits_stored": bits_stored,
        "patient_id": _str(ds, "PatientID"),
        "study_instance_uid": _str(ds, "StudyInstanceUID"),
        "series_instance_uid": _str(ds, "SeriesInstanceUID"),
        "sop_instance_uid": _str(ds, "SOPInstanceUID"),
        "sop_class_uid": _str(ds, "SOPClassUID"),
        "exposure_mas": _exposure_mas(ds, path),
        "compression_force_n": _float(ds, "CompressionForce", path),
        "filename_or_obj": str(path),
    }
    return pixels, meta

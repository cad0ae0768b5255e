"""Reading a single-frame digital mammogram (DICOM, Modality MG), or the central projection of a
tomosynthesis acquisition (:mod:`monai_bac.data.tomo_projection`).

:func:`read_dicom_mammogram` returns the pixel data as stored, as finite float32, with
two exceptions that keep the values' meaning the same for every vendor:

- values stored the other way round (larger values, fewer X-rays) are inverted, ``(lo + hi) -
  value`` where ``[lo, hi]`` is the range of the stored values (``hi = 2**BitsStored - 1`` and
  ``lo = 0`` for unsigned data), so that a larger value always means more X-rays. Raw detector
  values are linear in exposure; some vendors (GE raw images, for example) store them inverted.
  PixelIntensityRelationshipSign (0028,1041) says which (-1: inverted); where it is absent,
  MONOCHROME1 is taken to mean inverted, as it usually goes with it.
- a non-identity Modality LUT (RescaleSlope (0028,1053) / RescaleIntercept (0028,1052)) is applied.

Nothing else is changed: no VOI LUT (window), no flipping, no normalisation.

Before any value is used the file is checked, so that a corrupt or inconsistent file is refused
with a message naming the file and the tag rather than loaded wrong: a regular file (FIFOs,
devices and folders are refused before opening), every element convertible (pydicom converts
lazily), a known TransferSyntaxUID, Rows x Columns x BitsAllocated / 8 equal to the PixelData
length (uncompressed), BitsAllocated 8 or 16, BitsStored <= BitsAllocated and HighBit =
BitsStored - 1, unsigned values for MG, at least :data:`MIN_SIDE_PX` pixels a side, stored
values within BitsStored (this also catches pixel bytes in the wrong byte order), not a blank
image, a finite positive RescaleSlope within :data:`RESCALE_SLOPE_RANGE` and a RescaleIntercept
no larger than the range of the values, a PhotometricInterpretation (MONOCHROME1 or 2), and a
pixel spacing in the plausible range of :func:`monai_bac.units.as_spacing` with pixels no more
than :data:`MAX_PIXEL_ASPECT`:1 (an explicit ``spacing_mm`` wins over the tags). JPEG,
JPEG-LS and JPEG 2000 pixel data are decoded by the pylibjpeg plugins (libjpeg, openjpeg).

The returned metadata dict uses the keys of docs/ARCHITECTURE.md's data contract (see
:func:`read_dicom_mammogram`). Problems with the file are reported by
:class:`~monai_bac.data.errors.MammogramReadError` (unusable), or by
:class:`~monai_bac.data.errors.ProcessedImageWarning` and
:class:`~monai_bac.data.errors.MissingTagWarning` (usable, with caveats); each message names the
file and the tag.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import math
import os
import stat
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import UID, AllTransferSyntaxes, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from monai_bac.data.dicom_tags import (
    MG_FOR_PRESENTATION_SOP_CLASS,
    MG_FOR_PROCESSING_SOP_CLASS,
    PHOTOMETRICS,
    PYDICOM_MAJOR,
    VIEW_CODES,
    encapsulated_frames,
    tag_label,
    tag_name,
)
from monai_bac.data.errors import (
    DiagnosticViewWarning,
    MammogramReadError,
    MissingTagWarning,
    ProcessedImageWarning,
    require_regular_file,
)
from monai_bac.data.tomo_projection import is_breast_projection, single_projection
from monai_bac.data.views import diagnostic_view_reason, modifier_name
from monai_bac.units import SpacingError, as_spacing
from monai_bac.utils import PathLike

__all__ = [
    "MAX_PIXEL_ASPECT",
    "MIN_SIDE_PX",
    "RESCALE_SLOPE_RANGE",
    "header_grid",
    "header_intent",
    "header_magnification",
    "header_patient_orientation",
    "header_measurement_plane",
    "header_view",
    "header_view_modifiers",
    "is_dicom_file",
    "read_dicom_mammogram",
]


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
_VIEW_ALIASES = {
    "CC": "CC",
    "CRANIOCAUDAL": "CC",
    "CRANIO-CAUDAL": "CC",
    "MLO": "MLO",
    "MEDIOLATERAL OBLIQUE": "MLO",
    "MEDIO-LATERAL OBLIQUE": "MLO",
}
#: smallest accepted Rows and Columns (pixels). A mammogram is hundreds of pixels a side at
#: least: the smallest full-field detector (18 x 24 cm) has ~1800 x 2400 pixels at 0.1 mm, and
#: even the coarsest working grid of this library (1 mm) leaves ~180 x 240. Fewer pixels on a
#: side means corrupt Rows/Columns, a thumbnail or a crop (pass ``min_size_px`` to read those).
MIN_SIDE_PX = 128
#: RescaleSlope (0028,1053) accepted range: a raw mammogram's Modality LUT is the identity, and
#: any vendor scaling stays within four orders of magnitude of it.
RESCALE_SLOPE_RANGE = (1e-4, 1e4)
#: largest accepted ratio of the two pixel spacings in a tag: detectors have (nearly) square
#: pixels, so 0.5 x 8.5 mm is a corrupt digit, not a detector
MAX_PIXEL_ASPECT = 2.0
# transfer syntaxes decoded directly by a pylibjpeg plugin (when it is installed): openjpeg for
# JPEG 2000, libjpeg for JPEG (baseline, extended, lossless) and JPEG-LS
_PLUGIN_DECODERS = {
    "1.2.840.10008.1.2.4.90": "openjpeg",
    "1.2.840.10008.1.2.4.91": "openjpeg",
    "1.2.840.10008.1.2.4.50": "libjpeg",
    "1.2.840.10008.1.2.4.51": "libjpeg",
    "1.2.840.10008.1.2.4.57": "libjpeg",
    "1.2.840.10008.1.2.4.70": "libjpeg",
    "1.2.840.10008.1.2.4.80": "libjpeg",
    "1.2.840.10008.1.2.4.81": "libjpeg",
}
# ViewCodeSequence (0054,0220) codes (CID 4014): SNOMED CT, and the older SNOMED RT (ACR) codes
_VIEW_BY_CODE = {**{code: view for view, (code, _) in VIEW_CODES.items()}, "R-10242": "CC", "R-10226": "MLO"}
# tags whose value the pixel decoding, the spacing or the raw/processed decision depends on:
# if pydicom cannot convert one of them the file is refused (other unreadable tags are dropped)
_ESSENTIAL = {
    "TransferSyntaxUID", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
    "SamplesPerPixel", "NumberOfFrames", "PhotometricInterpretation", "PixelData", "RescaleSlope",
    "RescaleIntercept", "Modality", "PresentationIntentType", "SOPClassUID", "ImagerPixelSpacing", "PixelSpacing",
}
_SPACING_TAGS = {"ImagerPixelSpacing", "PixelSpacing"}


def is_dicom_file(path: PathLike) -> bool:
    """True when ``path`` is a regular file with the Part-10 ``DICM`` marker at byte 128.

    Never opens anything but a regular file (a FIFO would block).
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def _read_dataset(path: Path) -> Dataset:
    """Parse the file, turning pydicom's many failure modes into one clear error."""
    try:
        ds = pydicom.dcmread(str(path))
    except InvalidDicomError:
        ds = _read_without_preamble(path)
    except Exception as e:  # struct.error, EOFError, OSError, ValueError... from deep in pydicom
        raise MammogramReadError(
            f"{path}: the DICOM data set could not be parsed (truncated or corrupt file?): {type(e).__name__}: {e}"
        ) from e
    return ds


def _read_without_preamble(path: Path) -> Dataset:
    """Accept a DICOM data set without the Part-10 preamble only if it looks like an image."""
    not_dicom = (
        f"{path}: not a DICOM file: no 'DICM' marker at byte 128 and no DICOM image data set "
        "(SOPClassUID (0008,0016) or PixelData (7FE0,0010)) could be parsed"
    )
    try:
        with open(path, "rb") as f:
            starts_with_marker = f.read(4) == b"DICM"  # preamble cut off, 'DICM' + file meta left
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            source = io.BytesIO(path.read_bytes()[4:]) if starts_with_marker else str(path)
            ds = pydicom.dcmread(source, force=True)
            ok = "SOPClassUID" in ds or "PixelData" in ds
    except Exception as e:
        raise MammogramReadError(not_dicom) from e
    if not ok:
        raise MammogramReadError(not_dicom)
    return ds


def _convert_all(ds: Dataset, path: Path, essential: set[str], where: str = "") -> None:
    """Convert every element now, so that no malformed value fails later, far from the file name.

    pydicom parses values lazily, on first access. An element it cannot convert (unknown VR,
    ``IS`` that is not an integer, ...) is an error when it is a top-level element named in
    ``essential``; otherwise it is removed with a :class:`MissingTagWarning` (a corrupt private,
    patient or nested tag does not make the image unusable).
    """
    for tag in list(ds.keys()):
        try:
            element = ds[tag]
            items = element.value if element.VR == "SQ" else ()
        except Exception as e:
            name = f"{where}{tag_label(tag)}"
            if keyword_for_tag(tag) in essential:
                raise MammogramReadError(f"{path}: {name} cannot be read: {type(e).__name__}: {e}") from e
            warnings.warn(f"{path}: {name} cannot be read ({type(e).__name__}: {e}); ignored",
                          MissingTagWarning, stacklevel=4)
            del ds[tag]
            continue
        for i, item in enumerate(items or ()):
            _convert_all(item, path, set(), f"{where}{tag_label(tag)}[{i}] ")


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
    except (TypeError, ValueError, IndexError):
        value = math.nan
    if not math.isfinite(value) or (positive and value <= 0):
        warnings.warn(
            f"{path}: {tag_name(keyword)} has unusable value {raw!r}; meta value is None",
            MissingTagWarning,
            stacklevel=3,
        )
        return None
    return value


def _spacing(ds: Dataset, path: Path, override: Any) -> tuple[tuple[float, float], str]:
    """(row, col) spacing in mm and where it came from: argument, ImagerPixelSpacing or PixelSpacing.

    An explicit ``override`` wins over the tags (which are then not even looked at). A tag's
    value must be two numbers within :data:`monai_bac.units.MIN_SPACING_MM` ..
    :data:`~monai_bac.units.MAX_SPACING_MM`.
    """
    if override is not None:
        try:
            return as_spacing(override, f"{path}: spacing_mm argument"), "argument"
        except SpacingError as e:
            raise MammogramReadError(str(e)) from e
    for keyword in ("ImagerPixelSpacing", "PixelSpacing"):
        if ds.get(keyword) in (None, ""):
            continue
        value = ds.get(keyword)
        if not isinstance(value, (list, tuple, MultiValue)) or len(value) != 2:
            raise MammogramReadError(
                f"{path}: {tag_name(keyword)} is {value!r}; expected two numbers (row_mm, col_mm); "
                "pass spacing_mm=(row_mm, col_mm) to override it"
            )
        try:
            spacing = as_spacing(value, f"{path}: {tag_name(keyword)}")
        except SpacingError as e:
            raise MammogramReadError(f"{e}; pass spacing_mm=(row_mm, col_mm) to override it") from e
        if max(spacing) > MAX_PIXEL_ASPECT * min(spacing):
            raise MammogramReadError(
                f"{path}: {tag_name(keyword)} is {spacing[0]:g} x {spacing[1]:g} mm, more than {MAX_PIXEL_ASPECT:g}:1 "
                "apart; detector pixels are (nearly) square (a corrupt tag?); pass spacing_mm=(row_mm, col_mm) to "
                "override it"
            )
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


def header_intent(ds: Dataset) -> str:
    """"FOR PROCESSING" or "FOR PRESENTATION", as PresentationIntentType (0008,0068), else the SOP
    class, says; "" where neither does (the reader then guesses, :func:`_guess_raw`)."""
    stated = (_str(ds, "PresentationIntentType") or "").upper()
    if stated in ("FOR PROCESSING", "FOR PRESENTATION"):
        return stated
    sop = str(ds.get("SOPClassUID", ""))
    return ("FOR PROCESSING" if sop in _FOR_PROCESSING_SOP_CLASSES
            else "FOR PRESENTATION" if sop in _FOR_PRESENTATION_SOP_CLASSES else "")


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


def _int_tag(ds: Dataset, keyword: str, path: Path, default: int | None = None) -> int:
    """One integer from a US/IS tag; ``default`` when absent (an error when there is no default)."""
    value = ds.get(keyword)
    if value is None or (isinstance(value, (str, bytes)) and not value.strip()):
        if default is None:
            raise MammogramReadError(f"{path}: {tag_name(keyword)} is absent; cannot decode the pixel data")
        return default
    if isinstance(value, (list, tuple, MultiValue)):
        raise MammogramReadError(f"{path}: {tag_name(keyword)} has {len(value)} values {list(value)!r}; expected one")
    try:
        return int(value)
    except (TypeError, ValueError) as e:
        raise MammogramReadError(f"{path}: {tag_name(keyword)} is {value!r}, not an integer") from e


def _parsed_encoding(ds: Dataset) -> tuple[bool, bool]:
    """(little endian, implicit VR) as pydicom found them while parsing (pydicom 3 renamed the attributes)."""
    if PYDICOM_MAJOR >= 3:
        implicit, little = ds.original_encoding
    else:
        little, implicit = getattr(ds, "is_little_endian", None), getattr(ds, "is_implicit_VR", None)
    return little is not False, bool(implicit)


def _transfer_syntax(ds: Dataset, path: Path) -> UID:
    """The TransferSyntaxUID, checked against the ones pydicom knows; inferred for a bare data set."""
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if not uid:  # no file meta (data set without preamble): the encoding pydicom found while parsing
        little, implicit = _parsed_encoding(ds)
        uid = (ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian) if little else ExplicitVRBigEndian
        if meta is None:
            ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = uid
        return UID(uid)
    uid = UID(str(uid).strip("\0 "))
    if uid not in AllTransferSyntaxes:
        raise MammogramReadError(
            f"{path}: {tag_name('TransferSyntaxUID')} is {str(uid)!r}, not a DICOM transfer syntax that pydicom "
            "can decode (corrupt file meta, or a private transfer syntax)"
        )
    return uid


def _require_pixel_data(ds: Dataset, path: Path) -> None:
    if "PixelData" in ds:
        if not ds.PixelData:
            raise MammogramReadError(f"{path}: {tag_name('PixelData')} is empty (0 bytes)")
        return
    others = [tag_name(k) for k in ("FloatPixelData", "DoubleFloatPixelData") if k in ds]
    hint = f"found {', '.join(others)}, which is not supported" if others else "is the file truncated, or not an image?"
    raise MammogramReadError(f"{path}: no pixel data: {tag_name('PixelData')} is absent ({hint})")


def _pixel_layout(ds: Dataset, path: Path, syntax: UID, modality: str | None, min_size_px: int) -> tuple[int, ...]:
    """Check the Image Pixel module against itself and the PixelData length.

    Returns ``(rows, columns, bits_allocated, bits_stored, signed)``. The rules are those of the
    DX / MG Image modules (PS3.3 C.8.11.3 and C.8.11.7): one sample per pixel, one frame,
    BitsAllocated 8 or 16, BitsStored <= BitsAllocated and HighBit = BitsStored - 1, unsigned
    values for MG; plus :data:`MIN_SIDE_PX`, and for uncompressed data a PixelData of exactly
    Rows x Columns x BitsAllocated / 8 bytes (+1 pad byte).
    """
    samples = _int_tag(ds, "SamplesPerPixel", path, default=1)
    if samples != 1:
        raise MammogramReadError(
            f"{path}: {tag_name('SamplesPerPixel')} is {samples}; only single-channel (greyscale) images are supported"
        )
    frames = _int_tag(ds, "NumberOfFrames", path, default=1)
    if frames != 1:
        raise MammogramReadError(
            f"{path}: {tag_name('NumberOfFrames')} is {frames}; only single-frame images are supported, and the "
            "projections of a tomosynthesis acquisition as a Breast Projection X-Ray Image (not a reconstructed "
            "volume or another multi-frame object)"
        )
    rows, cols = _int_tag(ds, "Rows", path), _int_tag(ds, "Columns", path)
    if min(rows, cols) < min_size_px:
        raise MammogramReadError(
            f"{path}: {tag_name('Rows')} x {tag_name('Columns')} = {rows} x {cols} pixels; a mammogram has at least "
            f"{min_size_px} pixels a side (corrupt geometry, a thumbnail or a crop? pass min_size_px to read it)"
        )
    bits_allocated = _int_tag(ds, "BitsAllocated", path)
    if bits_allocated not in (8, 16):
        raise MammogramReadError(
            f"{path}: {tag_name('BitsAllocated')} is {bits_allocated}; a mammogram stores 16 (or 8) bits per pixel"
        )
    bits_stored = _int_tag(ds, "BitsStored", path, default=bits_allocated)
    if not 6 <= bits_stored <= bits_allocated:
        raise MammogramReadError(
            f"{path}: {tag_name('BitsStored')} is {bits_stored} with {tag_name('BitsAllocated')} {bits_allocated}; "
            f"it must be between 6 and {bits_allocated}"
        )
    high_bit = _int_tag(ds, "HighBit", path, default=bits_stored - 1)
    if high_bit != bits_stored - 1:
        raise MammogramReadError(
            f"{path}: {tag_name('HighBit')} is {high_bit} but {tag_name('BitsStored')} is {bits_stored}; "
            f"HighBit must be BitsStored - 1 = {bits_stored - 1}"
        )
    signed = _int_tag(ds, "PixelRepresentation", path, default=0)
    if signed not in (0, 1) or (signed and modality == "MG"):
        raise MammogramReadError(
            f"{path}: {tag_name('PixelRepresentation')} is {signed}; a mammogram's pixel values are unsigned (0)"
        )
    # what pydicom's decoders read: the checked values, defaults filled in
    ds.SamplesPerPixel, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, bits_stored, high_bit, signed
    if not syntax.is_compressed:
        expected = rows * cols * bits_allocated // 8
        found = len(ds.PixelData)
        if found not in (expected, expected + expected % 2):
            problem = "the file is truncated or corrupt" if found < expected else "the geometry tags are wrong"
            raise MammogramReadError(
                f"{path}: {tag_name('PixelData')} holds {found} bytes but {tag_name('Rows')} x {tag_name('Columns')} "
                f"x {tag_name('BitsAllocated')} / 8 = {rows} x {cols} x {bits_allocated} / 8 = {expected}; {problem}"
            )
    return rows, cols, bits_allocated, bits_stored, signed


def _stored_values(ds: Dataset) -> np.ndarray:
    """The pixel data as stored. pydicom 3 by default clears the bits above HighBit, which would hide
    a wrong BitsStored or byte order from the range check; pydicom 2 never clears them."""
    if PYDICOM_MAJOR >= 3:
        ds.pixel_array_options(correct_unused_bits=False)
    return np.asarray(ds.pixel_array)


def _decode_compressed(ds: Dataset, path: Path, syntax: UID) -> np.ndarray:
    """Decode encapsulated pixel data: a pylibjpeg plugin when one handles the syntax, else pydicom."""
    plugin = _PLUGIN_DECODERS.get(str(syntax))
    if plugin is not None and importlib.util.find_spec(plugin) is None:
        plugin = None
    try:
        if plugin is None:
            return _stored_values(ds)
        frame = next(encapsulated_frames(ds.PixelData, 1))
        return np.asarray(importlib.import_module(plugin).decode(frame))
    except Exception as e:
        decoder = f"the pylibjpeg plugin '{plugin}'" if plugin else "pydicom's pixel data handlers"
        raise MammogramReadError(
            f"{path}: {tag_name('PixelData')} in {tag_name('TransferSyntaxUID')} {syntax} ({syntax.name}) cannot be "
            f"decoded by {decoder} (corrupt data, or no decoder installed: pylibjpeg-openjpeg for JPEG 2000, "
            "pylibjpeg-libjpeg for JPEG and JPEG-LS); or convert the file to an uncompressed transfer syntax: "
            f"{type(e).__name__}: {e}"
        ) from e


def _decode_pixels(ds: Dataset, path: Path, modality: str | None, min_size_px: int) -> tuple[np.ndarray, int, bool]:
    """The (H, W) stored values, checked against the Image Pixel module; also BitsStored and signedness."""
    syntax = _transfer_syntax(ds, path)
    rows, cols, _, bits_stored, signed = _pixel_layout(ds, path, syntax, modality, min_size_px)
    if syntax.is_compressed:
        array = _decode_compressed(ds, path, syntax)
    else:
        try:
            array = _stored_values(ds)
        except Exception as e:
            raise MammogramReadError(
                f"{path}: {tag_name('PixelData')} could not be decoded ({syntax.name}): {type(e).__name__}: {e}"
            ) from e
    if array.shape != (rows, cols):
        raise MammogramReadError(
            f"{path}: decoded {tag_name('PixelData')} has shape {array.shape}, expected "
            f"({tag_name('Rows')}, {tag_name('Columns')}) = ({rows}, {cols})"
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise MammogramReadError(f"{path}: decoded {tag_name('PixelData')} has type {array.dtype}, not integers")
    lo, hi = (-(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1) if signed else (0, 2**bits_stored - 1)
    vmin, vmax = int(array.min()), int(array.max())
    if vmin < lo or vmax > hi:
        raise MammogramReadError(
            f"{path}: stored values span [{vmin}, {vmax}], outside [{lo}, {hi}] of {tag_name('BitsStored')} = "
            f"{bits_stored} ({'signed' if signed else 'unsigned'}): wrong BitsStored or PixelRepresentation, bits "
            "above HighBit in use, or pixel bytes in the wrong byte order"
        )
    if vmin == vmax:
        raise MammogramReadError(
            f"{path}: every pixel of {tag_name('PixelData')} has the value {vmin}: a blank image, not a mammogram"
        )
    return array, bits_stored, bool(signed)


def _rescale(ds: Dataset, path: Path, bits_stored: int) -> tuple[float, float]:
    """(slope, intercept) of the Modality LUT, checked: identity when absent."""
    values = []
    for keyword, default in (("RescaleSlope", 1.0), ("RescaleIntercept", 0.0)):
        raw = ds.get(keyword)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            values.append(default)
            continue
        try:
            if isinstance(raw, (list, tuple, MultiValue)):
                raise TypeError(f"{len(raw)} values")
            value = float(raw)
        except (TypeError, ValueError) as e:
            raise MammogramReadError(f"{path}: {tag_name(keyword)} is {raw!r}, not one number: {e}") from e
        if not math.isfinite(value):
            raise MammogramReadError(f"{path}: {tag_name(keyword)} is {raw!r}, not a finite number")
        values.append(value)
    slope, intercept = values
    lo, hi = RESCALE_SLOPE_RANGE
    if not lo <= slope <= hi:
        raise MammogramReadError(
            f"{path}: {tag_name('RescaleSlope')} is {slope:g}; a mammogram's slope is positive, within {lo:g}-{hi:g} "
            "(zero would blank the image, a negative one invert it: inverted data is flagged by "
            f"{tag_name('PixelIntensityRelationshipSign')} -1)"
        )
    limit = 2**bits_stored * slope
    if abs(intercept) > limit:
        raise MammogramReadError(
            f"{path}: {tag_name('RescaleIntercept')} is {intercept:g}, larger in size than the whole range of rescaled "
            f"values (2**BitsStored x RescaleSlope = {limit:g}); a corrupt tag?"
        )
    return slope, intercept


def _photometric(ds: Dataset, path: Path) -> str:
    """PhotometricInterpretation, which must be MONOCHROME1 or MONOCHROME2."""
    photometric = _str(ds, "PhotometricInterpretation")
    photometric = photometric.upper() if photometric else None
    if photometric is None:  # a guess would invert the raw values of every MONOCHROME1 vendor
        raise MammogramReadError(
            f"{path}: {tag_name('PhotometricInterpretation')} is absent; it says whether larger stored values "
            "mean more X-rays (MONOCHROME2) or fewer (MONOCHROME1)"
        )
    if photometric not in PHOTOMETRICS:
        raise MammogramReadError(
            f"{path}: {tag_name('PhotometricInterpretation')} is {photometric!r}; "
            "only MONOCHROME1 and MONOCHROME2 are supported"
        )
    return photometric


def _fewer_xrays_above(ds: Dataset, path: Path, photometric: str, is_raw: bool) -> bool:
    """Whether larger stored values mean *fewer* X-rays, from PixelIntensityRelationshipSign (0028,1041).

    The sign (Type 1 in the DX and MG image modules) is the stored values' relation to the X-ray
    beam intensity: +1, larger values more X-rays; -1, fewer. PhotometricInterpretation says how to
    display them, a separate matter; a raw image that stores fewer X-rays as larger values usually
    says MONOCHROME1 too, and that is what is assumed where the sign is absent or unreadable. A sign
    against that habit (MONOCHROME1 with +1, MONOCHROME2 with -1) is followed, and said of a raw
    image (a processed rendition is commonly MONOCHROME2 with -1: its bright breast on dark air).
    """
    habit = photometric == "MONOCHROME1"
    value = ds.get("PixelIntensityRelationshipSign")
    try:
        sign = int(value) if value is not None and str(value).strip() else None
    except (TypeError, ValueError):
        sign = 0
    if sign is None:
        return habit
    if sign not in (1, -1):
        warnings.warn(f"{path}: {tag_name('PixelIntensityRelationshipSign')} is {value!r}, not +1 or -1; taking "
                      f"{photometric} to say the relation ({'fewer' if habit else 'more'} X-rays above)",
                      MissingTagWarning, stacklevel=4)
        return habit
    if (sign == -1) != habit and is_raw:
        warnings.warn(
            f"{path}: {tag_name('PixelIntensityRelationshipSign')} is {sign:+d} ({'fewer' if sign == -1 else 'more'} "
            f"X-rays for larger stored values) with {tag_name('PhotometricInterpretation')} {photometric}; the "
            f"values are {'inverted' if sign == -1 else 'kept'} as the sign says (the photometric interpretation "
            "says how to display them)",
            MissingTagWarning,
            stacklevel=4,
        )
    return sign == -1


def _to_monochrome2(
    array: np.ndarray, ds: Dataset, path: Path, invert: bool, bits_stored: int, signed: bool
) -> np.ndarray:
    """Finite float32 values, larger meaning more X-rays (``invert``: the stored ones mean fewer, see
    :func:`_fewer_xrays_above`), rescaled."""
    slope, intercept = _rescale(ds, path, bits_stored)
    out = array.astype(np.float32)
    if invert:
        lo, hi = (-(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1) if signed else (0, 2**bits_stored - 1)
        out = np.float32(lo + hi) - out
    if slope != 1.0 or intercept != 0.0:
        # finite by construction: |16-bit value x slope| + |intercept| <= 2 x 65536 x 1e4, far below float32's max
        out *= np.float32(slope)
        out += np.float32(intercept)
    return out


def _normalise_view(value: str | None) -> str | None:
    """ViewPosition or a view code meaning -> 'CC' / 'MLO' / other string (upper case) / None."""
    if not value:
        return None
    text = " ".join(value.replace("_", " ").upper().split())
    return _VIEW_ALIASES.get(text, text)


def header_view(ds: Dataset, path: Path) -> str | None:
    """The view from ViewCodeSequence (0054,0220) (its code, else its meaning), else ViewPosition."""
    position = _normalise_view(_str(ds, "ViewPosition"))
    sequence = ds.get("ViewCodeSequence")
    if not sequence:
        return position
    item = sequence[0]
    coded = _VIEW_BY_CODE.get(_str(item, "CodeValue") or "") or _normalise_view(_str(item, "CodeMeaning"))
    if coded and position and coded != position:
        warnings.warn(
            f"{path}: {tag_name('ViewCodeSequence')} says {coded} but {tag_name('ViewPosition')} says {position}; "
            "using the code",
            MissingTagWarning,
            stacklevel=3,
        )
    return coded or position


def header_view_modifiers(ds: Dataset) -> str:
    """The names of ViewModifierCodeSequence (0054,0222)'s items (see
    :func:`~monai_bac.data.views.modifier_name`), joined by ", "; "" when there is none. The
    sequence belongs in ViewCodeSequence's item; one written at the top level is read too."""
    views = ds.get("ViewCodeSequence") or []
    sequences = [item.get("ViewModifierCodeSequence") or [] for item in views[:1]]
    sequences.append(ds.get("ViewModifierCodeSequence") or [])
    names = [modifier_name(_str(item, "CodeValue"), _str(item, "CodeMeaning")) for seq in sequences for item in seq]
    return ", ".join(dict.fromkeys(name for name in names if name))


def header_grid(ds: Dataset) -> str:
    """Whether the image was taken behind an anti-scatter grid, from Grid (0018,1166) (X-Ray Grid
    module, or a projection set's X-Ray Grid functional group): "NO" for NONE, "YES" for any other
    value (FIXED, FOCUSED, RECIPROCATING, PARALLEL, CROSSED), "" where the header does not say (a
    string, as a batch's metadata must collate)."""
    values = [str(v).strip().upper() for v in _multi(ds.get("Grid"))]
    values = [v for v in values if v]
    if not values:
        return ""
    return "NO" if "NONE" in values else "YES"


def header_patient_orientation(ds: Dataset) -> str:
    """PatientOrientation (0020,0020), the directions of the rows and the columns, as ``"A\\FR"``;
    "" where absent or not two values (a string, as a batch's metadata must collate)."""
    values = [str(v).strip().upper() for v in _multi(ds.get("PatientOrientation"))]
    return "\\".join(values) if len(values) == 2 and all(values) else ""


def _multi(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]


def header_magnification(ds: Dataset, path: Path) -> float | None:
    """EstimatedRadiographicMagnificationFactor (0018,1114); None (with a warning) below 1, which no
    projection gives (the breast lies between the focal spot and the detector), or above 4."""
    value = _float(ds, "EstimatedRadiographicMagnificationFactor", path, positive=True)
    if value is not None and not 1.0 <= value <= 4.0:
        warnings.warn(f"{path}: {tag_name('EstimatedRadiographicMagnificationFactor')} is {value:g}, not a "
                      "projection's (1 to 4); meta value is None", MissingTagWarning, stacklevel=3)
        return None
    return value


#: how far (relative) PixelSpacing must differ from ImagerPixelSpacing to be a calibration of its own
_CALIBRATION_TOLERANCE = 0.005


def header_measurement_plane(ds: Dataset, path: Path, spacing_source: str, magnification: float | None
                             ) -> tuple[float, str]:
    """Where lengths measured on the image lie: ``(plane_magnification, measured_at)``.

    ImagerPixelSpacing (0018,1164) is the pitch at the detector, where the diverging beam has
    magnified the breast (DICOM PS3.3 C.8.11.4). Sizes in the breast are ``spacing_mm /
    plane_magnification``, as a mammography display must show them (IHE RAD TF MAMMO, which
    requires calibrated measurements) and as some viewers compute them (InteleViewer, Starviewer,
    current cornerstone3D; not the OHIF MONAI Label 0.8.5 serves, nor 3D Slicer):

    * PixelSpacing (0028,0030) calibrated (PixelSpacingCalibrationType (0028,0A02) present) and
      different from ImagerPixelSpacing: it is the pitch in the breast; the factor is their ratio.
    * else EstimatedRadiographicMagnificationFactor (0018,1114) (``magnification``, already checked
      to lie within 1-4): ImagerPixelSpacing / factor.
    * else the detector plane (factor 1): a contact view's lengths are then ~5-10 % longer than in
      the breast.

    A spacing passed by the caller is measured as given; PixelSpacing alone (no ImagerPixelSpacing)
    is taken as it is, in the breast when its calibration type says so.
    """
    if spacing_source == "argument":
        return 1.0, "as given"
    calibration = _upper(_str(ds, "PixelSpacingCalibrationType"))
    if spacing_source == "PixelSpacing":
        return 1.0, (f"breast plane (PixelSpacing calibrated {calibration})" if calibration
                     else "PixelSpacing (plane not stated)")
    if calibration:
        try:
            imager = as_spacing(ds.get("ImagerPixelSpacing"))
            pixel = as_spacing(ds.get("PixelSpacing"))
        except (SpacingError, TypeError, ValueError):
            imager = pixel = None
        if pixel is not None:
            ratios = (imager[0] / pixel[0], imager[1] / pixel[1])
            if max(ratios) > 1.0 + _CALIBRATION_TOLERANCE:
                if 1.0 <= min(ratios) and max(ratios) <= 4.0 and max(ratios) / min(ratios) <= 1.01:
                    return sum(ratios) / 2, f"breast plane (PixelSpacing calibrated {calibration})"
                warnings.warn(
                    f"{path}: {tag_name('PixelSpacing')} {pixel[0]:g} x {pixel[1]:g} mm (calibrated {calibration}) is "
                    f"no magnification of {tag_name('ImagerPixelSpacing')} {imager[0]:g} x {imager[1]:g} mm (ratios "
                    f"{ratios[0]:.3g}, {ratios[1]:.3g}; expected equal, within 1-4); ignored",
                    MissingTagWarning, stacklevel=3)
    if magnification is not None:
        return magnification, "breast plane (EstimatedRadiographicMagnificationFactor)"
    return 1.0, "detector plane"


def _tell_not_linear(ds: Dataset, path: Path, is_raw: bool) -> None:
    """A :class:`ProcessedImageWarning` for a raw image whose PixelIntensityRelationship (0028,1040)
    says its values are not linear in the X-ray intensity (LOG, OTHER): the physics assumes they are.
    A processed image is already told so."""
    relation = _upper(_str(ds, "PixelIntensityRelationship"))
    if is_raw and relation not in (None, "LIN"):
        warnings.warn(
            f"{path}: {tag_name('PixelIntensityRelationship')} is {relation!r}, not 'LIN': the stored values are "
            "not linear in the X-ray intensity, which the physics-based transforms (density, calcification "
            "thickness, calcium) assume of a raw image",
            ProcessedImageWarning,
            stacklevel=3,
        )


def _tell_diagnostic_view(meta: dict[str, Any], path: Path) -> None:
    """A :class:`DiagnosticViewWarning` naming the tags, for a magnification or spot compression view."""
    reason = diagnostic_view_reason(meta["view_modifiers"], meta["magnification"])
    if not reason:
        return
    warnings.warn(
        f"{path}: a diagnostic view, not a screening one ({reason}: {tag_name('ViewModifierCodeSequence')} "
        f"{meta['view_modifiers'] or 'absent'}, {tag_name('EstimatedRadiographicMagnificationFactor')} "
        f"{'absent' if meta['magnification'] is None else format(meta['magnification'], 'g')}): the breast "
        "region, the density and the thresholds in mm assume the whole breast in contact behind a grid, "
        "at the detector's pitch; the reported sizes are in the breast only as far as the header gives the "
        "magnification (meta 'measured_at'); the per-breast and per-patient summaries leave this image out",
        DiagnosticViewWarning,
        stacklevel=3,
    )


def _exposure_mas(ds: Dataset, path: Path) -> float | None:
    """mAs from ExposureInuAs (0018,1153), else ExposureInmAs (0018,9332), else Exposure (0018,1152)."""
    micro = _float(ds, "ExposureInuAs", path)
    if micro is not None:
        return micro / 1000.0
    milli = _float(ds, "ExposureInmAs", path)
    return milli if milli is not None else _float(ds, "Exposure", path)


def _upper(value: str | None) -> str | None:
    return value.upper() if value else None


def _yes_no(ds: Dataset, keyword: str, path: Path) -> str:
    """A YES/NO code string (e.g. BreastImplantPresent) as "YES" or "NO"; "" when absent, or (with a
    warning naming the tag) when it holds anything else. A string, not a bool or None: a batch's
    metadata must collate."""
    value = _upper(_str(ds, keyword))
    if value is None or value in ("YES", "NO"):
        return value or ""
    warnings.warn(f"{path}: {tag_name(keyword)} is {value!r}, not YES or NO; ignored", MissingTagWarning,
                  stacklevel=3)
    return ""


def read_dicom_mammogram(
    path: PathLike,
    *,
    require_raw: bool = False,
    allow_non_mg: bool = False,
    spacing_mm: Sequence[float] | float | None = None,
    min_size_px: int = MIN_SIDE_PX,
    frame: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a single-frame mammogram, or one projection of a tomosynthesis acquisition, and its
    acquisition tags.

    A Breast Projection X-Ray Image (the projections of a tomosynthesis acquisition, one frame
    each) is read as its central projection, as the paper reads its raw tomosynthesis images
    (:mod:`monai_bac.data.tomo_projection`): the frame whose tube angle is nearest 0, its
    functional groups' attributes taken as a 2D mammogram's.

    Args:
        path: a DICOM file (a regular file; FIFOs, devices and folders are refused unopened).
        require_raw: raise :class:`MammogramReadError` (instead of a :class:`ProcessedImageWarning`)
            for a processed ("FOR PRESENTATION") image.
        allow_non_mg: read images whose Modality (0008,0060) is not MG (or is absent).
        spacing_mm: (row, col) spacing in mm (or one number); when given it replaces the spacing in
            the tags, which are then not read (``meta["spacing_source"] == "argument"``); it is also
            the way to read files without, or with an implausible, ImagerPixelSpacing/PixelSpacing.
        min_size_px: smallest accepted Rows and Columns (default :data:`MIN_SIDE_PX`).
        frame: for a Breast Projection X-Ray Image, the projection to read (0-based, in the file's
            order); None reads the central one.

    Returns:
        ``(pixels, meta)``: pixels is a finite float32 (H, W) array as stored (MONOCHROME1
        inverted and a non-identity rescale applied, see the module docstring). meta has the keys
        ``spacing_mm`` (row, col) from ImagerPixelSpacing (0018,1164), else PixelSpacing (0028,0030)
        (with a warning); ``spacing_source``; ``kvp``; ``thickness_mm`` (BodyPartThickness);
        ``anode``; ``filter``; ``view`` ('CC', 'MLO' or as written, from ViewCodeSequence
        (0054,0220), else ViewPosition (0018,5101)); ``view_modifiers`` (the names of
        ViewModifierCodeSequence (0054,0222)'s items joined by ", ", e.g. "MAGNIFICATION, SPOT
        COMPRESSION"; "" when none); ``magnification`` (EstimatedRadiographicMagnificationFactor
        (0018,1114)); ``plane_magnification`` and ``measured_at`` (how sizes in the breast follow
        from ``spacing_mm``, :func:`header_measurement_plane`); ``laterality`` (ImageLaterality, else
        Laterality); ``presentation`` (PresentationIntentType or None); ``is_raw``;
        ``manufacturer``; ``modality``; ``photometric`` (as stored, before the inversion);
        ``bits_stored``; ``patient_id``; ``study_instance_uid``; ``series_instance_uid``;
        ``sop_instance_uid``; ``sop_class_uid``; ``exposure_mas``; ``compression_force_n``;
        ``breast_implant_present`` (BreastImplantPresent (0028,1300): "YES", "NO", or "" when absent
        or unreadable: a string, as a batch's metadata must collate); ``anti_scatter_grid``
        (:func:`header_grid`: "YES", "NO" or ""); ``patient_orientation``
        (:func:`header_patient_orientation`: ``"A\\FR"`` or ""); ``projection_frame``,
        ``projection_angle_deg`` and ``n_projections`` (the projection read, its tube angle and the
        acquisition's count; None for a 2D mammogram); ``filename_or_obj``. Absent tags give None.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        MammogramReadError: naming the file and the tag: not a regular file; not DICOM; truncated
            or corrupt; an unreadable essential tag; unknown TransferSyntaxUID; no or empty
            PixelData; Modality not MG (unless ``allow_non_mg``); processed image with
            ``require_raw``; compressed pixel data without a decoder; geometry or bit depth
            inconsistent with the PixelData (see :func:`_pixel_layout`); stored values outside
            BitsStored; a blank image; an implausible rescale; no or implausible pixel spacing;
            colour image, or multi-frame image other than a tomosynthesis projection set; a
            projection set whose frames, functional groups and PixelData disagree, or ``frame``
            out of its range.

    Warns:
        ProcessedImageWarning: processed image (FOR PRESENTATION, stated or guessed), or a raw one
            whose PixelIntensityRelationship (0028,1040) is not LIN.
        DiagnosticViewWarning: a magnification or spot compression view (by its view modifiers, or
            magnified :data:`~monai_bac.data.views.MAGNIFICATION_GEOMETRY` x or more).
        MissingTagWarning: KVP (0018,0060) or BodyPartThickness (0018,11A0) absent;
            PresentationIntentType absent (the intent is then guessed, see :func:`_guess_raw`);
            only PixelSpacing present; a non-essential tag unreadable (dropped);
            PixelIntensityRelationshipSign (0028,1041) against the photometric habit (followed) or
            unreadable.
    """
    path = require_regular_file(path)
    try:
        return _read(path, require_raw, allow_non_mg, spacing_mm, min_size_px, frame)
    except (MammogramReadError, FileNotFoundError):
        raise
    except Exception as e:  # a pydicom/numpy failure not foreseen above: still name the file
        raise MammogramReadError(
            f"{path}: unexpected failure while reading the DICOM file: {type(e).__name__}: {e}"
        ) from e


def _read(
    path: Path, require_raw: bool, allow_non_mg: bool, spacing_mm: Any, min_size_px: int, frame: int | None
) -> tuple[np.ndarray, dict[str, Any]]:
    ds = _read_dataset(path)
    essential = _ESSENTIAL - (_SPACING_TAGS if spacing_mm is not None else set())
    if getattr(ds, "file_meta", None) is not None:
        _convert_all(ds.file_meta, path, essential)
    _convert_all(ds, path, essential)
    _require_pixel_data(ds, path)
    projection = {"projection_frame": None, "projection_angle_deg": None, "n_projections": None}
    if is_breast_projection(ds):
        ds, projection = single_projection(ds, path, frame)
    elif frame not in (None, 0):
        raise MammogramReadError(f"{path}: frame {frame} asked for; the image is not a projection set and has one "
                                 "frame (0)")
    modality = _check_modality(ds, path, allow_non_mg)
    presentation, is_raw = _presentation(ds, path, require_raw)
    spacing, spacing_source = _spacing(ds, path, spacing_mm)
    photometric = _photometric(ds, path)
    stored, bits_stored, signed = _decode_pixels(ds, path, modality, min_size_px)
    invert = _fewer_xrays_above(ds, path, photometric, is_raw)
    pixels = _to_monochrome2(stored, ds, path, invert, bits_stored, signed)
    meta: dict[str, Any] = {
        "spacing_mm": spacing,
        "spacing_source": spacing_source,
        "kvp": _float(ds, "KVP", path, warn_missing=True, positive=True),
        "thickness_mm": _float(ds, "BodyPartThickness", path, warn_missing=True, positive=True),
        "anode": _upper(_str(ds, "AnodeTargetMaterial")),
        "filter": _upper(_str(ds, "FilterMaterial")),
        "view": header_view(ds, path),
        "view_modifiers": header_view_modifiers(ds),
        "magnification": header_magnification(ds, path),
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
        "breast_implant_present": _yes_no(ds, "BreastImplantPresent", path),
        "anti_scatter_grid": header_grid(ds),
        "patient_orientation": header_patient_orientation(ds),
        **projection,
        "filename_or_obj": str(path),
    }
    meta["plane_magnification"], meta["measured_at"] = header_measurement_plane(
        ds, path, spacing_source, meta["magnification"])
    _tell_diagnostic_view(meta, path)
    _tell_not_linear(ds, path, is_raw)
    return pixels, meta

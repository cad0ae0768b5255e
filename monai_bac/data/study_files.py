"""What a study exported from a PACS holds besides raw mammograms, and which files to leave out.

A mammography study on a PACS holds, for each view, the raw image (FOR PROCESSING) where the site
archives it *and* the processed rendition (FOR PRESENTATION) the radiologist read, beside objects
that are not images at all: a DICOMDIR, structured reports (dose, CAD results), presentation
states, key object selections, segmentations. This library's input is the raw image. Run over such
a folder, every rendition and every non-image object used to fail, so that a whole, healthy
study read as a run with failures. :func:`files_to_leave_out` names the files a run of raw
mammograms leaves out, and why:

- **not an image**: no pixel matrix (Rows (0028,0010) absent: SR, KO, PR, DICOMDIR), or a
  Modality (0008,0060) of a non-image object (:data:`NOT_IMAGE_MODALITIES`, e.g. SEG), or a
  reconstructed tomosynthesis volume (Modality MG as well);
- **the rendition of a raw image in the same run**: a FOR PRESENTATION image that names the raw
  one in its SourceImageSequence (0008,2112), or that has the raw one's study, laterality, view,
  view modifiers and acquisition date and time (the two are made from one exposure);
- **the tomosynthesis projections of a view whose 2D raw image is in the run** (the same study,
  laterality, view and view modifiers: a "combo" acquisition takes both under one compression).
  Without the 2D image, a projection set (Breast Projection X-Ray Image) is read as its central
  projection, as the paper reads its raw tomosynthesis images
  (:mod:`monai_bac.data.tomo_projection`).

A processed image whose raw one is *not* in the run is not left out: reading it is refused as
before (``require_raw``), or run anyway where the user asked for that. Only the header is read
(no pixel data) of a regular file with the Part-10 marker; any other file, or one whose header
cannot be parsed, is left to the reader, which names what is wrong with it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID

from monai_bac.data.dicom_read import (
    header_intent,
    header_magnification,
    header_view,
    header_view_modifiers,
    is_dicom_file,
)
from monai_bac.data.dicom_tags import TOMOSYNTHESIS_VOLUME_SOP_CLASS, tag_name
from monai_bac.data.tomo_projection import frame_laterality, is_breast_projection
from monai_bac.data.views import diagnostic_view_reason
from monai_bac.utils import PathLike

__all__ = ["NOT_IMAGE_MODALITIES", "files_to_leave_out", "not_a_raw_screening_view"]

#: Modality (0008,0060) values of objects that hold no mammogram even when they hold pixels
NOT_IMAGE_MODALITIES = ("SR", "KO", "PR", "SEG", "REG", "RWV", "DOC", "PLAN")


@dataclass(frozen=True)
class _Header:
    path: str
    sop_uid: str
    intent: str  # "FOR PROCESSING", "FOR PRESENTATION" or "" when the header does not say
    acquisition: tuple  # (study, laterality, view, view modifiers, acquisition date and time); () if unknown
    projections: bool  # a tomosynthesis projection set (Breast Projection X-Ray Image, multi-frame)
    sources: frozenset  # SOPInstanceUIDs named in SourceImageSequence
    not_image: str  # why the object is not an image; "" for an image
    diagnostic: str  # why the image is a diagnostic view (monai_bac.data.views); "" for a screening view


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _acquired(ds: Dataset) -> str:
    """AcquisitionDateTime, else AcquisitionDate + AcquisitionTime; "" when the header has neither."""
    stamp = _text(ds, "AcquisitionDateTime")
    if stamp:
        return stamp
    date, time = _text(ds, "AcquisitionDate"), _text(ds, "AcquisitionTime")
    return f"{date}{time}" if date and time else ""


def _not_image(ds: Dataset) -> str:
    sop_class = _text(ds, "SOPClassUID") or _text(getattr(ds, "file_meta", Dataset()), "MediaStorageSOPClassUID")
    kind = f"{UID(sop_class).name} ({tag_name('SOPClassUID')} {sop_class})" if sop_class else "no SOPClassUID"
    modality = _text(ds, "Modality")
    if sop_class == TOMOSYNTHESIS_VOLUME_SOP_CLASS:
        return f"not a 2D mammogram: {kind}, a reconstructed tomosynthesis volume (slices, not a projection)"
    if modality.upper() in NOT_IMAGE_MODALITIES:
        return f"not a mammogram: {kind}, {tag_name('Modality')} {modality}"
    if "Rows" not in ds and modality.upper() != "MG":  # (a QIDO-RS result may leave Rows out)
        return f"not an image: {kind}, no pixel matrix ({tag_name('Rows')} absent)"
    return ""


def _header(ds: Dataset, path: str) -> _Header:
    """What a run decides on, from a header (a file's, or a QIDO-RS result's as DICOM JSON)."""
    with warnings.catch_warnings():  # the reader warns about the header when it reads the image
        warnings.simplefilter("ignore")
        view, modifiers = header_view(ds, Path(path)), header_view_modifiers(ds)
        magnification = header_magnification(ds, Path(path))
    intent = header_intent(ds)
    laterality = _text(ds, "ImageLaterality") or _text(ds, "Laterality") or frame_laterality(ds)
    study, acquired = _text(ds, "StudyInstanceUID"), _acquired(ds)
    key = (study, laterality.upper(), view or "", modifiers, acquired) if study and acquired and view else ()
    sources = frozenset(_text(item, "ReferencedSOPInstanceUID") for item in ds.get("SourceImageSequence") or [])
    return _Header(path, _text(ds, "SOPInstanceUID"), intent, key, is_breast_projection(ds), sources - {""},
                   _not_image(ds), diagnostic_view_reason(modifiers, magnification))


def _read_header(path: str) -> _Header | None:
    if not is_dicom_file(path):  # never opens a FIFO or a device; a file without the marker: the reader's
        return None
    try:
        return _header(pydicom.dcmread(path, stop_before_pixels=True), path)
    except Exception:  # noqa: BLE001 - the reader names what is wrong with the file
        return None


def files_to_leave_out(paths: Iterable[PathLike]) -> dict[str, str]:
    """The files of ``paths`` that a run of raw mammograms leaves out, each with its reason.

    Args:
        paths: the run's input files (as given; the keys of the result are ``str(path)``).

    Returns:
        ``{path: reason}`` for the non-image objects and for the processed renditions of raw
        images that are in ``paths`` (see the module docstring); the reason names the tags, and for
        a rendition the raw image's file.
    """
    headers = [h for h in (_read_header(str(p)) for p in paths) if h is not None]
    left_out = {h.path: h.not_image for h in headers if h.not_image}
    raws = [h for h in headers if h.intent == "FOR PROCESSING" and not h.not_image]
    by_uid = {h.sop_uid: h for h in raws if h.sop_uid}
    by_acquisition = {h.acquisition: h for h in raws if h.acquisition}
    for h in headers:
        if h.intent != "FOR PRESENTATION" or h.not_image:
            continue
        named = next((by_uid[uid] for uid in sorted(h.sources) if uid in by_uid), None)
        if named is not None:
            left_out[h.path] = (f"the processed (FOR PRESENTATION) rendition of {named.path} "
                                f"({tag_name('SourceImageSequence')}), whose raw image this run reads")
        elif h.acquisition in by_acquisition:
            left_out[h.path] = (f"the processed (FOR PRESENTATION) rendition of {by_acquisition[h.acquisition].path} "
                                "(the same study, laterality, view and acquisition time), whose raw image this "
                                "run reads")
    by_view = {h.acquisition[:4]: h for h in raws if h.acquisition and not h.projections}
    for h in raws:
        two_d = by_view.get(h.acquisition[:4]) if h.projections else None
        if two_d is not None:
            left_out[h.path] = (f"the tomosynthesis projections of the view of {two_d.path} (the same study, "
                                "laterality, view and view modifiers), whose 2D raw image this run reads")
    return left_out


def not_a_raw_screening_view(source: PathLike | Dataset) -> str:
    """Why ``source`` is not a raw screening mammogram: not an image (see :func:`files_to_leave_out`),
    a processed (FOR PRESENTATION) one, or a diagnostic view (:mod:`monai_bac.data.views`); "" for a
    raw screening view, and for a file whose header cannot be read (the reader's to name).

    ``source`` is a file, or a header already at hand (e.g. a QIDO-RS result,
    ``Dataset.from_json``). The MONAI Label app serves the raw screening views of its studies
    folder and of its PACS only: it cannot segment the others, and active learning would hand them
    out."""
    header = _header(source, "") if isinstance(source, Dataset) else _read_header(str(source))
    if header is None:
        return ""
    if header.not_image:
        return header.not_image
    if header.intent == "FOR PRESENTATION":
        return "a processed (FOR PRESENTATION) mammogram"
    if header.projections:
        return ("a tomosynthesis projection set (Breast Projection X-Ray Image): a viewer loads it as a multi-frame "
                "object, which the annotation tools do not segment (monai-bac infer and the bundle read its central "
                "projection)")
    return f"a diagnostic view ({header.diagnostic})" if header.diagnostic else ""

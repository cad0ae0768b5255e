"""A "For Presentation" rendition of a raw mammogram, for viewers (OHIF, a PACS workstation).

A raw ("FOR PROCESSING") mammogram is linear in exposure: a viewer shows it as a dark breast on a
white background with almost no contrast in the dense tissue. :func:`write_presentation` writes
the rendition a radiologist expects beside it, in the same study:

- pixel values: the paper's simple gamma correction, Eq. (1)-(2) (:class:`LogGammaNormalize`,
  ``Y = minmax_breast(ln(I + 1)) ** gamma``, gamma = 1/2), inverted so that dense tissue and
  calcium are bright, stored on :data:`DISPLAY_BITS` bits: ``stored = round((2**bits - 1) (1 - Y))``
  inside the breast and 0 (black) outside it (the breast region is found by BreastRegion);
- a Digital Mammography X-Ray Image IOD **For Presentation** (SOP class 1.2.840.10008.5.1.4.1.1.1.2),
  MONOCHROME2, PixelIntensityRelationship LOG with sign -1 (higher values, less X-rays), a VOI window
  (WindowCenter / WindowWidth) over the breast's values, written by the same conformant writer as
  the phantom's raw images (:func:`monai_bac.data.dicom_write.write_mammogram_dicom`);
- the raw image's patient, study and equipment; a new SeriesInstanceUID and SOPInstanceUID; the
  raw image referenced in the Source Image Sequence (purpose: source image for image processing
  operation, DCM 121322) and ImageType DERIVED;
- with ``plane=True`` (the default) a nominal plane in patient space, which the MG IOD does not
  have but viewers built on volumes need to overlay a DICOM SEG (OHIF / Cornerstone3D reads the
  SEG's plane orientation and the image's): its own FrameOfReferenceUID, ImagePositionPatient 0,
  ImageOrientationPatient along PatientOrientation (row and column directions, e.g. A and R for a
  left CC), SliceThickness 1 mm. dciodvfy then calls the file a Standard Extended SOP Class
  (warnings, no error). The position means nothing beyond the image itself: no other image shares
  the frame of reference.

The rendition is for looking at only: the physics (density, calcium mass) needs the raw image.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["DISPLAY_BITS", "PresentationError", "default_output", "orientation_cosines", "presentation_pixels",
           "seg_on_rendition", "seg_source_uid", "voi_window", "write_presentation"]

#: BitsStored of the rendition (processed mammograms are typically 12-bit)
DISPLAY_BITS = 12
#: percentiles of the breast's stored values that bound the VOI window
WINDOW_PERCENTILES = (0.5, 99.9)
#: CID 7202 "Source Image Purposes of Reference"
_SOURCE_PURPOSE = ("121322", "DCM", "Source image for image processing operation")
#: patient, study and equipment tags the rendition takes from the raw image when it has them
_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "StudyDate", "StudyTime",
           "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDescription", "InstitutionName",
           "ManufacturerModelName", "DeviceSerialNumber", "SoftwareVersions", "AcquisitionDate", "AcquisitionTime",
           "ContentDate", "ContentTime", "PatientOrientation", "BodyPartExamined", "DetectorType",
           # the view as coded, with its modifiers (a magnification view stays one for the reader)
           "ViewCodeSequence", "EstimatedRadiographicMagnificationFactor")
_FOR_PRESENTATION_SUFFIX = ".presentation.dcm"
#: PatientOrientation letters as LPS unit vectors (PS3.3 C.7.6.1.1.1)
_LPS = {"L": (1, 0, 0), "R": (-1, 0, 0), "P": (0, 1, 0), "A": (0, -1, 0), "H": (0, 0, 1), "F": (0, 0, -1)}


class PresentationError(ValueError):
    """The file cannot be rendered: not a raw mammogram, or no breast found in it (message names the file)."""


def presentation_pixels(raw_linear: np.ndarray, breast_map: np.ndarray, gamma: float = 0.5,
                        bits: int = DISPLAY_BITS) -> np.ndarray:
    """Stored values (uint16 (H, W)) of the rendition of a raw image linear in exposure.

    ``round((2**bits - 1) (1 - Y))`` with ``Y`` the log-gamma image of Eq. (1)-(2) inside the breast
    (codes 1-3 of ``breast_map``) and 0 outside it: dense tissue and calcium bright, air black.
    """
    from monai_bac.transforms import LogGammaNormalize

    # background 1 -> stored 0 after the inversion: the air is black
    y = np.asarray(LogGammaNormalize(gamma=gamma, background=1.0)(np.asarray(raw_linear, np.float32), breast_map))
    top = 2 ** int(bits) - 1
    return np.rint((1.0 - y) * top).astype(np.uint16)


def voi_window(stored: np.ndarray, breast: np.ndarray,
               percentiles: Sequence[float] = WINDOW_PERCENTILES) -> tuple[float, float]:
    """(WindowCenter, WindowWidth) spanning the ``percentiles`` of the breast's stored values
    (PS3.3 C.11.2.1.2 LINEAR: the window's ends are ``center - 0.5 +/- (width - 1) / 2``)."""
    lo, hi = (float(v) for v in np.percentile(stored[breast], percentiles))
    width = max(hi - lo, 1.0) + 1.0
    return round(lo + 0.5 + (width - 1.0) / 2.0, 1), round(width, 1)


def _source_reference(header, frame: int | None = None):
    """Source Image Sequence (0008,2112) item pointing at the raw image (and at its frame ``frame``,
    0-based, for a tomosynthesis projection set)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as Seq

    from monai_bac.data.dicom_tags import code_item

    item = Dataset()
    item.ReferencedSOPClassUID = header.SOPClassUID
    item.ReferencedSOPInstanceUID = header.SOPInstanceUID
    item.PurposeOfReferenceCodeSequence = Seq([code_item(*_SOURCE_PURPOSE)])
    if frame is not None:
        item.ReferencedFrameNumber = frame + 1
    return Seq([item])


def orientation_cosines(patient_orientation) -> list[float]:
    """ImageOrientationPatient (row then column direction cosines, LPS) along PatientOrientation
    (``["A", "FR"]`` -> row towards A, column towards F and R at 45 degrees); the identity plane that
    ITK and 3D Slicer give an MG without one when PatientOrientation is not two known directions."""
    values = [str(v).upper() for v in (patient_orientation or [])]
    if len(values) != 2 or not all(v and set(v) <= set(_LPS) for v in values):
        return [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    vectors = [np.sum([_LPS[c] for c in letters], axis=0).astype(float) for letters in values]
    if any(np.linalg.norm(v) == 0 for v in vectors) or abs(np.dot(*vectors)) > 1e-6:
        return [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]  # opposite letters ("LR") or directions that are not perpendicular
    return [round(float(x), 6) for v in vectors for x in v / np.linalg.norm(v)]


def _nominal_plane(patient_orientation) -> dict:
    from pydicom.uid import generate_uid

    return dict(FrameOfReferenceUID=generate_uid(), PositionReferenceIndicator="",
                ImagePositionPatient=[0.0, 0.0, 0.0], ImageOrientationPatient=orientation_cosines(patient_orientation),
                SliceThickness="1")


def default_output(raw_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """``out_dir/<raw name>.presentation.dcm`` (never the raw file's own name)."""
    name = Path(raw_path).name
    stem = name[:-4] if name.lower().endswith(".dcm") else name
    return Path(out_dir) / f"{stem}{_FOR_PRESENTATION_SUFFIX}"


def write_presentation(raw_path: str | os.PathLike, out_path: str | os.PathLike, *, gamma: float = 0.5,
                       breast_map: np.ndarray | None = None, series_description: str | None = None,
                       plane: bool = True, overwrite: bool = False) -> Path:
    """Write the For Presentation rendition of the raw mammogram ``raw_path`` to ``out_path``.

    Args:
        raw_path: a raw (FOR PROCESSING) MG DICOM file.
        out_path: destination ``.dcm`` (written atomically).
        gamma: the exponent of Eq. (2) (the paper's 1/2).
        breast_map: the raw image's breast map (docs/ARCHITECTURE.md codes); found by BreastRegion when None.
        series_description: SeriesDescription (default names the rendition and gamma).
        plane: write the nominal plane in patient space that lets OHIF overlay a SEG (see above).
        overwrite: replace an existing ``out_path``.

    Raises:
        MammogramReadError: ``raw_path`` is not a readable MG, or is processed (FOR PRESENTATION).
        PresentationError: no breast pixel found in the image.
        FileExistsError: ``out_path`` exists and ``overwrite`` is False.
    """
    import pydicom
    from pydicom.valuerep import format_number_as_ds

    from monai_bac.data.dicom_read import read_dicom_mammogram
    from monai_bac.data.dicom_write import write_mammogram_dicom
    from monai_bac.ops.normalize import as_breast_mask
    from monai_bac.transforms.utils import compute_breast_map

    raw, meta = read_dicom_mammogram(raw_path, require_raw=True)
    header = pydicom.dcmread(str(raw_path), stop_before_pixels=True)
    if breast_map is None:
        breast_map = compute_breast_map(raw, meta, None)  # as BreastRegion() makes it from this header
    breast = as_breast_mask(np.asarray(breast_map))
    if breast.shape != raw.shape:
        raise PresentationError(f"{raw_path}: breast_map is {breast.shape}, the image {raw.shape}")
    if not breast.any():
        raise PresentationError(f"{raw_path}: no breast found in the image (BreastRegion): nothing to window")
    stored = presentation_pixels(raw, breast_map, gamma)
    center, width = voi_window(stored, breast)

    extra = {k: header.get(k) for k in _COPIED if header.get(k) not in (None, "")}
    extra.update(
        ImageType=["DERIVED", "PRIMARY", ""],
        SeriesNumber=str(int(header.get("SeriesNumber") or 0) + 1000),
        InstanceNumber=str(header.get("InstanceNumber") or 1),
        SeriesDescription=series_description or f"For Presentation (log-gamma {gamma:g}, monai-bac)",
        DerivationDescription=f"monai-bac: inverted log-gamma rendition, Eq. (1)-(2), gamma {gamma:g}",
        SourceImageSequence=_source_reference(header, meta["projection_frame"]),
        PixelIntensityRelationshipSign=-1,  # higher values correspond to less X-ray beam intensity
        WindowCenter=format_number_as_ds(center),
        WindowWidth=format_number_as_ds(width),
        WindowCenterWidthExplanation="BREAST",
        VOILUTFunction="LINEAR",
    )
    if meta.get("breast_implant_present"):  # hanging protocols read it on the processed view too
        extra.setdefault("BreastImplantPresent", meta["breast_implant_present"])
    if plane:
        from monai_bac.data.dicom_tags import PATIENT_ORIENTATION

        orientation = header.get("PatientOrientation") or PATIENT_ORIENTATION.get((meta["view"], meta["laterality"]))
        extra.update(_nominal_plane(orientation))
    return write_mammogram_dicom(
        out_path, stored, spacing_mm=meta["spacing_mm"], kvp=meta["kvp"], thickness_mm=meta["thickness_mm"],
        anode=meta["anode"], filter=meta["filter"], view=meta["view"], laterality=meta["laterality"],
        manufacturer=meta["manufacturer"], presentation="FOR PRESENTATION", photometric="MONOCHROME2",
        bits_stored=DISPLAY_BITS, patient_id=meta["patient_id"] or "", study_uid=meta["study_instance_uid"],
        exposure_mas=meta["exposure_mas"], compression_force_n=meta["compression_force_n"], extra=extra,
        overwrite=overwrite)


def seg_source_uid(seg_path: str | os.PathLike) -> str:
    """SOPInstanceUID of the image a single-image DICOM SEG was made on (e.g. ``monai-bac infer``'s, on the raw)."""
    import highdicom as hd

    try:
        return str(hd.seg.segread(str(seg_path)).get_source_image_uids()[0][2])
    except Exception as e:  # noqa: BLE001 - any unreadable SEG is one clear error
        raise PresentationError(f"{seg_path}: not a DICOM SEG of one image ({type(e).__name__}: {e})") from None


def seg_on_rendition(seg_path: str | os.PathLike, rendition_path: str | os.PathLike, out_path: str | os.PathLike,
                     *, overwrite: bool = False) -> Path:
    """The BAC SEG of a raw image, written again on its rendition (same pixels), so that a viewer
    shows it over the rendition; the rendition's nominal plane goes into the SEG, and how the
    segment was made (AUTOMATIC, SEMIAUTOMATIC or MANUAL, by what and by whom) stays as it was.

    Raises:
        PresentationError: ``seg_path`` was not made on the raw image that ``rendition_path`` renders.
    """
    import pydicom

    from monai_bac.dicom_seg import read_seg_label, write_dicom_seg

    rendition = pydicom.dcmread(str(rendition_path), stop_before_pixels=True)
    raw_uid = rendition.SourceImageSequence[0].ReferencedSOPInstanceUID if "SourceImageSequence" in rendition else None
    if seg_source_uid(seg_path) != raw_uid:
        raise PresentationError(f"{seg_path}: its source image {seg_source_uid(seg_path)} is not the raw image "
                                f"{raw_uid} that {rendition_path} renders")
    mask, info = read_seg_label(seg_path, raw_uid)
    made = info["algorithm"]
    return write_dicom_seg(out_path, mask, rendition_path, algorithm_type=made["type"] or "AUTOMATIC",
                           algorithm_name=made["name"] or "monai-bac", algorithm_version=made["version"] or None,
                           algorithm_parameters=made["parameters"], content_creator_name=info["content_creator"],
                           overwrite=overwrite)

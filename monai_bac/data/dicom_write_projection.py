"""Writing the projections of a breast tomosynthesis acquisition as DICOM
(:func:`write_breast_projection_dicom`).

The paper's images are the *central projections* of raw tomosynthesis acquisitions (Sec. 2: "we
use the central projection image ... as the source is normal to the detector"). DICOM keeps such
an acquisition as one multi-frame object of the Breast Projection X-Ray Image IOD (PS3.3 A.74),
For Processing (SOP class 1.2.840.10008.5.1.4.1.1.13.1.5) or For Presentation (...13.1.4): one
frame per projection, the tube's angle in each frame's X-Ray Isocenter Reference System
(XRaySourceIsocenterPrimaryAngle (0018,9543)), and what a 2D mammogram keeps at the top level
(pixel spacing, intensity relationship, rescale, laterality, kVp per exposure) in functional
groups. The file passes dciodvfy (dicom3tools) without errors; tests write such acquisitions to
read them back (:func:`monai_bac.data.dicom_read.read_dicom_mammogram`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as Seq
from pydicom.uid import UID, generate_uid

from monai_bac.data.dicom_tags import (
    BREAST_PROJECTION_FOR_PRESENTATION_SOP_CLASS,
    BREAST_PROJECTION_FOR_PROCESSING_SOP_CLASS,
    PHOTOMETRICS,
    PRESENTATIONS,
    VIEW_CODES,
    code_item,
)
from monai_bac.data.dicom_write import (
    TYPE2_EMPTY,
    _apply_extra,
    _check_choice,
    _check_pixels,
    _check_spacing,
    _ds_str,
    _file_meta,
    save_dataset,
)
from monai_bac.utils import PathLike, atomic_write_path

__all__ = ["write_breast_projection_dicom"]

#: Breast (SNOMED CT), the anatomic region every frame names
_BREAST = ("76752008", "SCT", "Breast")
#: the source-to-detector distance written when none is given (mm; full-field units read 650-700)
DEFAULT_SOURCE_TO_DETECTOR_MM = 660.0


def _frames(frames: Any, bits_stored: int) -> np.ndarray:
    arr = np.asarray(frames)
    if arr.ndim != 3 or arr.shape[0] < 1:
        raise ValueError(f"frames must be a (N, H, W) stack of stored values, got shape {arr.shape}.")
    return np.stack([_check_pixels(f, bits_stored) for f in arr])


def _angles(angles_deg: Sequence[float], n: int) -> list[float]:
    angles = [float(a) for a in angles_deg]
    if len(angles) != n or not all(np.isfinite(angles)) or max(abs(a) for a in angles) > 90:
        raise ValueError(f"angles_deg must be {n} finite angles within +-90 degrees (one per frame), "
                         f"got {angles_deg!r}")
    return angles


def _frame_groups(index: int, angle: float, *, shape: tuple[int, int], spacing: tuple[float, float], laterality: str,
                  raw: bool,
                  photometric: str, bits_stored: int, mas_per_frame: float, acquired: str,
                  source_to_detector: float, magnification: float) -> Dataset:
    """One item of PerFrameFunctionalGroupsSequence (5200,9230): the macros of PS3.3 Table A.74-2."""
    f = Dataset()
    content = Dataset()
    content.FrameAcquisitionNumber = index + 1
    content.FrameReferenceDateTime = acquired
    content.FrameAcquisitionDateTime = acquired
    content.FrameAcquisitionDuration = 100.0
    f.FrameContentSequence = Seq([content])
    anatomy = Dataset()
    anatomy.FrameLaterality = laterality
    anatomy.AnatomicRegionSequence = Seq([code_item(*_BREAST)])
    f.FrameAnatomySequence = Seq([anatomy])
    rescale = Dataset()
    rescale.RescaleIntercept, rescale.RescaleSlope, rescale.RescaleType = "0", "1", "US"
    f.PixelValueTransformationSequence = Seq([rescale])
    voi = Dataset()
    voi.WindowCenter, voi.WindowWidth = _ds_str(2 ** (bits_stored - 1)), _ds_str(2**bits_stored)
    f.FrameVOILUTSequence = Seq([voi])
    event = Dataset()
    event.IrradiationEventUID = generate_uid()
    f.IrradiationEventIdentificationSequence = Seq([event])
    view = Dataset()
    view.FieldOfViewRotation, view.FieldOfViewHorizontalFlip = "0", "NO"
    f.FieldOfViewSequence = Seq([view])
    pixels = Dataset()
    pixels.FrameType = ["ORIGINAL", "PRIMARY", "TOMOSYNTHESIS", "NONE"]
    pixels.ImagerPixelSpacing = [_ds_str(s) for s in spacing]
    pixels.PixelIntensityRelationship = "LIN" if raw else "LOG"
    pixels.PixelIntensityRelationshipSign = 1 if photometric == "MONOCHROME2" else -1
    pixels.ImageProcessingApplied = "NONE" if raw else "UNSPECIFIED"
    pixels.GeometricalProperties = "UNIFORM"
    f.FramePixelDataPropertiesSequence = Seq([pixels])
    collimator = Dataset()
    collimator.CollimatorShape = "RECTANGULAR"
    collimator.CollimatorLeftVerticalEdge, collimator.CollimatorRightVerticalEdge = 0, shape[1]
    collimator.CollimatorUpperHorizontalEdge, collimator.CollimatorLowerHorizontalEdge = 0, shape[0]
    f.CollimatorShapeSequence = Seq([collimator])
    geometry = Dataset()
    geometry.DistanceSourceToDetector = _ds_str(source_to_detector)
    geometry.DistanceSourceToPatient = _ds_str(source_to_detector / magnification)
    geometry.DistanceSourceToIsocenter = float(source_to_detector)
    geometry.EstimatedRadiographicMagnificationFactor = _ds_str(magnification)
    f.XRayGeometrySequence = Seq([geometry])
    dose = Dataset()
    dose.ExposureTimeInms = float(mas_per_frame * 10.0)  # at 100 mA
    dose.ExposureInmAs = float(mas_per_frame)
    dose.OrganDose, dose.EntranceDoseInmGy = "0", "0"
    f.XRayAcquisitionDoseSequence = Seq([dose])
    isocenter = Dataset()
    isocenter.XRaySourceIsocenterPrimaryAngle = float(angle)
    for keyword in ("XRaySourceIsocenterSecondaryAngle", "BreastSupportIsocenterPrimaryAngle",
                    "BreastSupportIsocenterSecondaryAngle", "DetectorIsocenterPrimaryAngle",
                    "DetectorIsocenterSecondaryAngle"):
        setattr(isocenter, keyword, 0.0)
    # the isocenter on the detector's surface, the breast support 20 mm above it
    isocenter.DetectorXPositionToIsocenter = isocenter.DetectorYPositionToIsocenter = 0.0
    isocenter.DetectorZPositionToIsocenter = 0.0
    isocenter.BreastSupportXPositionToIsocenter = isocenter.BreastSupportYPositionToIsocenter = 0.0
    isocenter.BreastSupportZPositionToIsocenter = 20.0
    isocenter.DetectorActiveAreaTLHCPosition = [-shape[1] * spacing[1] / 2, -shape[0] * spacing[0] / 2, 0.0]
    isocenter.DetectorActiveAreaOrientation = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    f.IsocenterReferenceSystemSequence = Seq([isocenter])
    if not raw:  # a processed frame says what it was derived from (Type 2: empty for a phantom's)
        f.DerivationImageSequence = Seq([])
    return f


def write_breast_projection_dicom(
    path: PathLike,
    frames: np.ndarray,
    *,
    angles_deg: Sequence[float],
    spacing_mm: Sequence[float],
    kvp: float,
    thickness_mm: float,
    anode: str,
    filter: str,  # shadows the builtin on purpose: the DICOM FilterMaterial, meta["filter"]
    view: str,
    laterality: str,
    manufacturer: str,
    presentation: str = "FOR PROCESSING",
    photometric: str = "MONOCHROME2",
    bits_stored: int = 14,
    patient_id: str = "PHANTOM",
    study_uid: str | None = None,
    exposure_mas: float = 60.0,
    compression_force_n: float = 100.0,
    magnification: float = 1.0,
    source_to_detector_mm: float = DEFAULT_SOURCE_TO_DETECTOR_MM,
    breast_implant_present: str = "NO",
    anti_scatter_grid: bool = False,
    extra: Mapping[str, Any] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write a tomosynthesis acquisition's projections as one Breast Projection X-Ray Image file.

    Args:
        path: destination file (written atomically).
        frames: (N, H, W) integer stored values, one frame per projection, in acquisition order.
        angles_deg: the tube's angle for each frame (XRaySourceIsocenterPrimaryAngle, degrees; 0 is
            the source normal to the detector).
        spacing_mm: (row, col) ImagerPixelSpacing of every frame.
        kvp, thickness_mm, anode, filter: KVP (per frame and at the top level), BodyPartThickness,
            AnodeTargetMaterial and FilterMaterial (in XRayFilterSequence (0018,9556)).
        view: ``"CC"`` or ``"MLO"`` (ViewCodeSequence). laterality: ``"L"`` or ``"R"``
            (FrameLaterality (0020,9072)).
        manufacturer: Manufacturer (0008,0070).
        presentation: ``"FOR PROCESSING"`` (raw) or ``"FOR PRESENTATION"``; picks the SOP class.
        photometric, bits_stored: as :func:`~monai_bac.data.dicom_write.write_mammogram_dicom`.
        patient_id, study_uid: identification (a study UID is generated when None).
        exposure_mas: the whole acquisition's mAs (ExposureInmAs), shared evenly by the frames.
        compression_force_n: CompressionForce (0018,11A2).
        magnification: EstimatedRadiographicMagnificationFactor of every frame.
        source_to_detector_mm: DistanceSourceToDetector (0018,1110).
        breast_implant_present: BreastImplantPresent (0028,1300), "YES" or "NO".
        anti_scatter_grid: taken behind a grid (XRayGridSequence (0018,9555) Grid (0018,1166)
            FOCUSED), or without one (NONE, the default: most tomosynthesis units retract the grid).
        extra: further top-level tags by keyword (a None value removes one), applied last.
        overwrite: when False, refuse to replace an existing file.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    presentation = _check_choice("presentation", presentation, PRESENTATIONS)
    photometric = _check_choice("photometric", photometric, PHOTOMETRICS)
    view = _check_choice("view", view, tuple(VIEW_CODES))
    laterality = _check_choice("laterality", laterality, ("L", "R"))
    stack = _frames(frames, bits_stored)
    angles = _angles(angles_deg, len(stack))
    spacing = _check_spacing(spacing_mm)
    raw = presentation == "FOR PROCESSING"
    sop_class = BREAST_PROJECTION_FOR_PROCESSING_SOP_CLASS if raw else BREAST_PROJECTION_FOR_PRESENTATION_SOP_CLASS
    sop_uid = generate_uid()
    acquired = "20260101120000"

    ds = Dataset()
    ds.file_meta = _file_meta(sop_class, sop_uid)
    ds.preamble = b"\x00" * 128
    ds.SOPClassUID, ds.SOPInstanceUID = UID(sop_class), UID(sop_uid)
    ds.StudyInstanceUID = UID(study_uid or generate_uid())
    ds.SeriesInstanceUID = UID(generate_uid())
    ds.FrameOfReferenceUID = UID(generate_uid())
    ds.PositionReferenceIndicator = ""
    ds.Modality = "MG"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "TOMOSYNTHESIS", "NONE"]
    ds.PresentationIntentType = presentation
    ds.PatientID = ds.PatientName = str(patient_id)
    for keyword in TYPE2_EMPTY:
        setattr(ds, keyword, "")
    ds.SeriesNumber, ds.InstanceNumber = "1", "1"
    ds.ContentDate, ds.ContentTime = acquired[:8], acquired[8:]
    ds.AcquisitionDateTime = acquired
    ds.AcquisitionDuration = 100.0 * len(stack) / 1000.0
    ds.Manufacturer = manufacturer
    ds.ManufacturerModelName, ds.DeviceSerialNumber, ds.SoftwareVersions = "monai-bac phantom", "0", "0"
    ds.ContentQualification = "RESEARCH"
    # Enhanced Mammography Image module: the acquisition as a whole
    ds.PositionerType = "MAMMOGRAPHIC"
    ds.PositionerMotion = "DYNAMIC"
    ds.TypeOfDetectorMotion = "STATIONARY"
    ds.DetectorType = "SCINTILLATOR" if "GE" in manufacturer.upper().split() else "DIRECT"
    ds.KVP = _ds_str(kvp)
    ds.XRayTubeCurrentInmA = 100.0
    ds.ExposureInmAs = float(exposure_mas)
    ds.ExposureTimeInms = float(exposure_mas * 10.0)
    ds.FocalSpots = "0.3"
    ds.AnodeTargetMaterial = anode
    ds.BodyPartThickness = _ds_str(thickness_mm)
    ds.CompressionForce = _ds_str(compression_force_n)
    ds.PaddleDescription = "24 x 30 cm"
    ds.ExposureControlMode = "AUTOMATIC"
    ds.ExposureControlModeDescription = "automatic exposure control"
    ds.BurnedInAnnotation, ds.LossyImageCompression = "NO", "00"
    ds.OrganDose, ds.EntranceDoseInmGy = "0", "0"
    ds.PresentationLUTShape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
    # Breast View module
    code, meaning = VIEW_CODES[view]
    ds.ViewCodeSequence = Seq([code_item(code, "SCT", meaning)])
    ds.ViewCodeSequence[0].ViewModifierCodeSequence = Seq([])
    ds.BreastImplantPresent = breast_implant_present
    ds.PatientOrientationCodeSequence = Seq([code_item("10904000", "SCT", "erect")])
    ds.AcquisitionContextSequence = Seq([])
    # Multi-frame Functional Groups
    shared = Dataset()
    xray_filter = Dataset()
    xray_filter.FilterMaterial = filter
    shared.XRayFilterSequence = Seq([xray_filter])
    xray_grid = Dataset()
    xray_grid.Grid = "FOCUSED" if anti_scatter_grid else "NONE"
    shared.XRayGridSequence = Seq([xray_grid])
    ds.SharedFunctionalGroupsSequence = Seq([shared])
    ds.PerFrameFunctionalGroupsSequence = Seq([
        _frame_groups(i, a, shape=stack.shape[1:], spacing=spacing, laterality=laterality, raw=raw,
                      photometric=photometric, bits_stored=bits_stored, mas_per_frame=exposure_mas / len(stack),
                      acquired=acquired, source_to_detector=source_to_detector_mm, magnification=magnification)
        for i, a in enumerate(angles)])
    ds.NumberOfFrames = len(stack)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = (int(s) for s in stack.shape[1:])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits_stored, bits_stored - 1, 0
    ds.PixelData = stack.tobytes()
    ds.BodyPartExamined = "BREAST"
    _apply_extra(ds, extra)
    with atomic_write_path(path, overwrite=overwrite) as tmp:
        save_dataset(ds, tmp)
    return path

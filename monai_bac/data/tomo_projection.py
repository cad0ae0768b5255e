"""One projection of a breast tomosynthesis acquisition, as a single-frame mammogram.

The paper's data are raw tomosynthesis acquisitions, of which it uses the central projection
"as the source is normal to the detector for this image" (Sec. 2). DICOM keeps the projections as
one multi-frame object of the Breast Projection X-Ray Image IOD (PS3.3 A.74; For Processing
1.2.840.10008.5.1.4.1.1.13.1.5, For Presentation ...13.1.4). There a 2D mammogram's attributes
live in functional groups: the pixel spacing and intensity relationship in X-Ray Frame Pixel Data
Properties, the rescale in Pixel Value Transformation, the laterality in Frame Anatomy, the mAs
of each exposure in Breast X-Ray Acquisition Dose, the filter in X-Ray Filter, and the tube's
angle in the X-Ray Isocenter Reference System (XRaySourceIsocenterPrimaryAngle (0018,9543)).

:func:`single_projection` turns such an object into the data set of one frame, the attributes of
its shared and per-frame functional groups brought to the top level (a frame's own value wins),
so that :func:`monai_bac.data.dicom_read.read_dicom_mammogram` reads it with every check a 2D
mammogram gets. The frame is the central projection (the angle nearest 0 degrees) unless the
caller names one.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from monai_bac.data.dicom_tags import BREAST_PROJECTION_SOP_CLASSES, encapsulated_frames, tag_name
from monai_bac.data.errors import MammogramReadError, MissingTagWarning

__all__ = ["chosen_frame", "frame_header", "frame_laterality", "is_breast_projection", "projection_angles",
           "single_projection"]

#: the multi-frame attributes that do not describe one frame
_MULTI_FRAME_ONLY = ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence", "NumberOfFrames",
                     "PixelData", "DimensionIndexSequence", "DimensionOrganizationSequence")


def is_breast_projection(ds: Dataset) -> bool:
    """Whether ``ds`` is a Breast Projection X-Ray Image (For Processing or For Presentation)."""
    return str(ds.get("SOPClassUID", "")).strip() in BREAST_PROJECTION_SOP_CLASSES


def _groups(ds: Dataset, keyword: str) -> list[Dataset]:
    return list(ds.get(keyword) or [])


def _angle(groups: list[Dataset]) -> float | None:
    """XRaySourceIsocenterPrimaryAngle from the first of ``groups`` that has it (per frame, then shared)."""
    for group in groups:
        for item in group.get("IsocenterReferenceSystemSequence") or []:
            value = item.get("XRaySourceIsocenterPrimaryAngle")
            try:
                return float(value) if value is not None else None
            except (TypeError, ValueError):
                return None
    return None


def frame_laterality(ds: Dataset) -> str:
    """FrameLaterality (0020,9072) of the shared functional groups, else of the first frame's; ""
    when neither says (a header without its functional groups, such as a QIDO-RS result)."""
    groups = (*_groups(ds, "SharedFunctionalGroupsSequence")[:1], *_groups(ds, "PerFrameFunctionalGroupsSequence")[:1])
    for group in groups:
        for item in group.get("FrameAnatomySequence") or []:
            value = str(item.get("FrameLaterality") or "").strip().upper()
            if value:
                return value
    return ""


def projection_angles(ds: Dataset) -> list[float | None]:
    """The tube's angle of each frame in degrees (XRaySourceIsocenterPrimaryAngle (0018,9543)),
    None where a frame does not say."""
    shared = _groups(ds, "SharedFunctionalGroupsSequence")[:1]
    return [_angle([frame, *shared]) for frame in _groups(ds, "PerFrameFunctionalGroupsSequence")]


def _frame_count(ds: Dataset, path: Path) -> int:
    value = ds.get("NumberOfFrames")
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = 0
    if count < 1:
        raise MammogramReadError(f"{path}: {tag_name('NumberOfFrames')} is {value!r}; a projection set has one "
                                 "frame or more")
    per_frame = len(_groups(ds, "PerFrameFunctionalGroupsSequence"))
    if per_frame != count:
        raise MammogramReadError(
            f"{path}: {tag_name('PerFrameFunctionalGroupsSequence')} has {per_frame} items for "
            f"{tag_name('NumberOfFrames')} {count}: one item per frame is required")
    return count


def chosen_frame(ds: Dataset, path: Path, frame: int | None = None) -> int:
    """The index of the frame to read: ``frame`` (0-based, checked against the set), else the
    central projection, the frame whose XRaySourceIsocenterPrimaryAngle is nearest 0 (the middle
    frame, with a :class:`MissingTagWarning`, where a frame does not say). Raises
    :class:`MammogramReadError` as :func:`single_projection`."""
    return _choose_frame(ds, path, _frame_count(ds, path), frame)


def _choose_frame(ds: Dataset, path: Path, count: int, frame: int | None) -> int:
    if frame is not None:
        if not 0 <= frame < count:
            raise MammogramReadError(f"{path}: frame {frame} asked for; the projection set has {count} frames "
                                     f"(0-{count - 1})")
        return frame
    angles = projection_angles(ds)
    known = [(abs(a), i) for i, a in enumerate(angles) if a is not None]
    if len(known) == count:
        return min(known)[1]
    middle = count // 2
    warnings.warn(f"{path}: {tag_name('XRaySourceIsocenterPrimaryAngle')} is absent from {count - len(known)} of "
                  f"{count} frames; taking the middle frame ({middle}) as the central projection",
                  MissingTagWarning, stacklevel=4)
    return middle


def _frame_pixels(ds: Dataset, path: Path, index: int, count: int) -> DataElement:
    """The PixelData element of frame ``index`` alone: a slice of native data, or one encapsulated frame."""
    syntax = ds.file_meta.get("TransferSyntaxUID") if getattr(ds, "file_meta", None) is not None else None
    if syntax is not None and syntax.is_compressed:
        from pydicom.encaps import encapsulate

        try:
            frames = list(encapsulated_frames(ds.PixelData, count))
        except Exception as e:  # noqa: BLE001 - a corrupt offset table or fragment: name the file
            raise MammogramReadError(f"{path}: the encapsulated {tag_name('PixelData')} could not be split into "
                                     f"{count} frames: {type(e).__name__}: {e}") from e
        if len(frames) != count:
            raise MammogramReadError(f"{path}: the encapsulated {tag_name('PixelData')} holds {len(frames)} frames "
                                     f"for {tag_name('NumberOfFrames')} {count}")
        return DataElement(0x7FE00010, "OB", encapsulate([frames[index]]), is_undefined_length=True)
    try:
        size = int(ds.Rows) * int(ds.Columns) * int(ds.BitsAllocated) // 8
    except (AttributeError, TypeError, ValueError) as e:
        raise MammogramReadError(f"{path}: {tag_name('Rows')}, {tag_name('Columns')} or "
                                 f"{tag_name('BitsAllocated')} is absent or not a number") from e
    data = ds.PixelData
    if len(data) not in (size * count, size * count + 1) or size == 0:
        raise MammogramReadError(
            f"{path}: {tag_name('PixelData')} holds {len(data)} bytes for {count} frames of {size} "
            f"({tag_name('Rows')} x {tag_name('Columns')} x {tag_name('BitsAllocated')} / 8): truncated or corrupt")
    return DataElement(0x7FE00010, ds["PixelData"].VR, data[index * size:(index + 1) * size])


def single_projection(ds: Dataset, path: Path, frame: int | None = None) -> tuple[Dataset, dict[str, Any]]:
    """The data set of one frame of a Breast Projection X-Ray Image, and what was chosen.

    Args:
        ds: the whole multi-frame data set (its elements already converted).
        path: the file, for messages.
        frame: the frame to take (0-based); None takes the central projection, the frame whose
            XRaySourceIsocenterPrimaryAngle is nearest 0 (the middle frame, with a
            :class:`MissingTagWarning`, where a frame does not say).

    Returns:
        ``(single, info)``: ``single`` is a single-frame data set (top-level attributes, then the
        shared functional groups', then the frame's own; FrameLaterality also as ImageLaterality),
        ``info`` is ``{"projection_frame", "projection_angle_deg", "n_projections"}``.

    Raises:
        MammogramReadError: NumberOfFrames absent or not matching the per-frame groups or the
            PixelData; ``frame`` out of range.
    """
    count = _frame_count(ds, path)
    index = _choose_frame(ds, path, count, frame)
    single = frame_header(ds, index)
    single.add(_frame_pixels(ds, path, index, count))
    angle = projection_angles(ds)[index]
    return single, {"projection_frame": index, "projection_angle_deg": angle, "n_projections": count}


def frame_header(ds: Dataset, index: int) -> Dataset:
    """The attributes of frame ``index`` as a single-frame image's, without pixel data: the
    top-level ones, then the shared functional groups', then the frame's own (FrameLaterality also
    as ImageLaterality)."""
    single = Dataset()
    if getattr(ds, "file_meta", None) is not None:
        single.file_meta = copy.deepcopy(ds.file_meta)
    for element in ds:
        if element.keyword not in _MULTI_FRAME_ONLY:
            single.add(copy.deepcopy(element))
    for group in (*_groups(ds, "SharedFunctionalGroupsSequence")[:1],
                  _groups(ds, "PerFrameFunctionalGroupsSequence")[index]):
        for macro in group:
            if macro.VR == "SQ" and macro.value:
                for element in macro.value[0]:
                    single.add(copy.deepcopy(element))
    if "FrameLaterality" in single and not str(single.get("ImageLaterality") or "").strip():
        single.ImageLaterality = single.FrameLaterality
    return single

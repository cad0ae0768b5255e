"""What reading and writing DICOM mammograms share: the MG SOP classes, the enumerated values both
sides check, the view codes and PatientOrientation vendors write, and a tag's name in messages.

The reader is :mod:`monai_bac.data.dicom_read`, the writer :mod:`monai_bac.data.dicom_write`
(:mod:`monai_bac.data.dicom_io` gathers both).
"""

from __future__ import annotations

import pydicom
from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset

__all__ = [
    "BREAST_PROJECTION_FOR_PRESENTATION_SOP_CLASS",
    "BREAST_PROJECTION_FOR_PROCESSING_SOP_CLASS",
    "BREAST_PROJECTION_SOP_CLASSES",
    "MG_FOR_PRESENTATION_SOP_CLASS",
    "MG_FOR_PROCESSING_SOP_CLASS",
    "PATIENT_ORIENTATION",
    "PHOTOMETRICS",
    "PRESENTATIONS",
    "PYDICOM_MAJOR",
    "TOMOSYNTHESIS_VOLUME_SOP_CLASS",
    "VIEW_CODES",
    "code_item",
    "encapsulated_frames",
    "tag_label",
    "tag_name",
]

MG_FOR_PROCESSING_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.2.1"
MG_FOR_PRESENTATION_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.2"
#: a tomosynthesis acquisition's projections, one frame each (Breast Projection X-Ray Image IOD,
#: PS3.3 A.74; Modality MG): the reader takes the central one, as the paper does
BREAST_PROJECTION_FOR_PROCESSING_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.13.1.5"
BREAST_PROJECTION_FOR_PRESENTATION_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.13.1.4"
BREAST_PROJECTION_SOP_CLASSES = (BREAST_PROJECTION_FOR_PROCESSING_SOP_CLASS,
                                 BREAST_PROJECTION_FOR_PRESENTATION_SOP_CLASS)
#: the reconstructed tomosynthesis volume (Breast Tomosynthesis Image IOD; Modality MG too): slices
#: through the breast, not a projection mammogram
TOMOSYNTHESIS_VOLUME_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.13.1.3"
#: PresentationIntentType (0008,0068) values
PRESENTATIONS = ("FOR PROCESSING", "FOR PRESENTATION")
#: PhotometricInterpretation (0028,0004) values of a greyscale mammogram
PHOTOMETRICS = ("MONOCHROME1", "MONOCHROME2")
#: ViewCodeSequence (0054,0220) items (CID 4014, SNOMED CT): view -> (CodeValue, CodeMeaning)
VIEW_CODES = {"CC": ("399162004", "cranio-caudal"), "MLO": ("399368009", "medio-lateral oblique")}
#: PatientOrientation (0020,0020), the row and column directions as vendors write them with the
#: chest wall on the image's left for L and right for R
PATIENT_ORIENTATION = {("CC", "L"): ["A", "R"], ("CC", "R"): ["P", "L"], ("MLO", "L"): ["A", "FR"],
                       ("MLO", "R"): ["P", "FL"]}
#: the installed pydicom's major version (2 and 3 write and decode through different calls)
PYDICOM_MAJOR = int(pydicom.__version__.split(".")[0])


def tag_name(keyword: str) -> str:
    """``"KVP"`` -> ``"KVP (0018,0060)"``: a tag's keyword and number, as used in messages."""
    tag = tag_for_keyword(keyword)
    return keyword if tag is None else f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def tag_label(tag: int) -> str:
    """``0x00280010`` -> ``"Rows (0028,0010)"``; ``"(0009,1001)"`` for private or unknown tags."""
    keyword = keyword_for_tag(tag)
    number = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    return f"{keyword} {number}" if keyword else number


def code_item(value: str, scheme: str, meaning: str) -> Dataset:
    """A code sequence item: CodeValue, CodingSchemeDesignator and CodeMeaning."""
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def encapsulated_frames(pixel_data: bytes, count: int):
    """The frames of encapsulated (compressed) pixel data, one bytes object each, as a generator
    (pydicom 3 renamed pydicom 2's ``generate_pixel_data_frame`` to ``generate_frames``)."""
    if PYDICOM_MAJOR >= 3:
        from pydicom.encaps import generate_frames

        return generate_frames(pixel_data, number_of_frames=count)
    from pydicom.encaps import generate_pixel_data_frame

    return generate_pixel_data_frame(pixel_data, count)

"""Reading and writing single-frame digital mammograms (DICOM, Modality MG): the public names of
:mod:`monai_bac.data.dicom_read` (:func:`read_dicom_mammogram`: the pixels as stored, MONOCHROME1
inverted and a non-identity Modality LUT applied, every tag checked before it is used),
:mod:`monai_bac.data.dicom_write` (:func:`write_mammogram_dicom`: a Part-10 Digital Mammography
X-Ray Image, For Processing or For Presentation, written atomically) and what the two share,
:mod:`monai_bac.data.dicom_tags`.
"""

from __future__ import annotations

from monai_bac.data.dicom_read import (
    MAX_PIXEL_ASPECT,
    MIN_SIDE_PX,
    RESCALE_SLOPE_RANGE,
    is_dicom_file,
    read_dicom_mammogram,
)
from monai_bac.data.dicom_tags import MG_FOR_PRESENTATION_SOP_CLASS, MG_FOR_PROCESSING_SOP_CLASS, tag_label, tag_name
from monai_bac.data.dicom_write import save_dataset, write_mammogram_dicom
from monai_bac.data.errors import MammogramReadError

__all__ = [
    "MG_FOR_PRESENTATION_SOP_CLASS",
    "MG_FOR_PROCESSING_SOP_CLASS",
    "MAX_PIXEL_ASPECT",
    "MIN_SIDE_PX",
    "RESCALE_SLOPE_RANGE",
    "MammogramReadError",
    "is_dicom_file",
    "read_dicom_mammogram",
    "save_dataset",
    "tag_label",
    "tag_name",
    "write_mammogram_dicom",
]

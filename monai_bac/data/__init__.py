"""Data layer of monai-bac: reading raw mammograms and labels, writing DICOM/NIfTI files.

See :mod:`monai_bac.data.loader` for the MetaTensor meta keys and the geometry convention.
"""

from monai_bac.data.dicom_read import MIN_SIDE_PX, read_dicom_mammogram
from monai_bac.data.dicom_write import write_mammogram_dicom
from monai_bac.data.dicom_write_projection import write_breast_projection_dicom
from monai_bac.data.errors import (
    DiagnosticViewWarning,
    MammogramReadError,
    MissingTagWarning,
    ProcessedImageWarning,
    require_regular_file,
)
from monai_bac.data.image_io import load_nifti_2d, load_png_or_tiff, save_image_nifti, save_mask_nifti
from monai_bac.data.loader import (
    IMAGE_META_KEYS,
    LoadMammogram,
    LoadMammogramD,
    LoadMammogramd,
    LoadMammogramDict,
    load_label,
    load_mammogram,
    mammogram_affine,
)
from monai_bac.data.monai_reader import MammogramReader

__all__ = [
    "DiagnosticViewWarning",
    "IMAGE_META_KEYS",
    "MIN_SIDE_PX",
    "LoadMammogram",
    "LoadMammogramD",
    "LoadMammogramDict",
    "LoadMammogramd",
    "MammogramReadError",
    "MammogramReader",
    "MissingTagWarning",
    "ProcessedImageWarning",
    "load_label",
    "load_mammogram",
    "load_nifti_2d",
    "load_png_or_tiff",
    "mammogram_affine",
    "read_dicom_mammogram",
    "require_regular_file",
    "save_image_nifti",
    "save_mask_nifti",
    "write_breast_projection_dicom",
    "write_mammogram_dicom",
]

"""Exceptions and warnings raised when reading mammograms and labels.

Every message names the file and the DICOM tag (keyword and (group,element)) or field
concerned, so that a user with a folder of thousands of files knows which one to look at
and what is wrong with it.
"""

from __future__ import annotations

__all__ = ["MammogramReadError", "MissingTagWarning", "ProcessedImageWarning"]


class MammogramReadError(ValueError):
    """A mammogram or label file cannot be used: not readable, not a mammogram, or inconsistent.

    The message always starts with the file name and names the tag or field concerned, e.g.
    ``".../x.dcm: Modality (0008,0060) is 'CT', not 'MG'; pass allow_non_mg=True to read it anyway"``.
    """


class ProcessedImageWarning(UserWarning):
    """The image is a processed ("FOR PRESENTATION") mammogram, not raw detector data.

    The physics-based transforms (density, calcification thickness) assume raw values that are
    linear in exposure; on a processed image their outputs have no physical meaning.
    """


class MissingTagWarning(UserWarning):
    """A DICOM tag that downstream transforms use is absent or unusable; its meta value is None
    (or was guessed, as the message says)."""

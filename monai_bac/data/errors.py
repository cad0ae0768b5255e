"""Exceptions and warnings raised when reading mammograms and labels, and the file-kind check.

Every message names the file and the DICOM tag (keyword and (group,element)) or field
concerned, so that a user with a folder of thousands of files knows which one to look at
and what is wrong with it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = [
    "DiagnosticViewWarning",
    "MammogramReadError",
    "MissingTagWarning",
    "ProcessedImageWarning",
    "require_regular_file",
]


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


class DiagnosticViewWarning(UserWarning):
    """The image is a diagnostic view (magnification or spot compression), not a screening view.

    The breast region, the density map and the thresholds in mm assume the whole compressed
    breast in contact behind a grid (see :mod:`monai_bac.data.views`); the per-breast and
    per-patient summaries leave such an image out.
    """


class MissingTagWarning(UserWarning):
    """A DICOM tag that downstream transforms use is absent or unusable; its meta value is None
    (or was guessed, as the message says)."""


_KINDS = (
    (stat.S_ISDIR, "a folder (DICOM series and folders are not supported; pass one file)"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def require_regular_file(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`~pathlib.Path` if it is, or links to, a non-empty regular file.

    Checked with ``os.stat`` (which follows symbolic links) before anything opens the file:
    opening a FIFO blocks until a writer appears, a device can stream forever, a folder is not
    an image.

    Raises:
        FileNotFoundError: no such file, or a broken symbolic link.
        MammogramReadError: not a regular file, an empty file, or not inspectable.
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if path.is_symlink():
            raise FileNotFoundError(f"{path}: broken symbolic link to {os.readlink(path)}") from None
        raise FileNotFoundError(f"{path}: no such file") from None
    except OSError as e:
        raise MammogramReadError(f"{path}: cannot be inspected: {e.strerror or e}") from e
    if not stat.S_ISREG(info.st_mode):
        target = path.resolve()
        shown = f"{path} (-> {target})" if target != path.absolute() else str(path)
        kind = next((text for test, text in _KINDS if test(info.st_mode)), "not a regular file")
        raise MammogramReadError(f"{shown}: is {kind}, not a regular image file; refused without opening it")
    if info.st_size == 0:
        raise MammogramReadError(f"{path}: empty file (0 bytes)")
    return path

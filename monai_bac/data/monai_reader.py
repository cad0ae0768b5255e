"""A MONAI :class:`~monai.data.ImageReader` for raw mammograms and BAC labels.

MONAI pipelines load files with :class:`monai.transforms.LoadImage` / ``LoadImaged`` and a reader.
MONAI's own readers load a mammogram without what this package's transforms need: ITKReader and
PydicomReader give the pixels in (x, y) order (transposed), MONOCHROME1 values as stored
(ITK) or inverted against the full bit range (pydicom), and none of the acquisition tags (kVp,
thickness, anode/filter, grid, view, laterality, raw or processed). :class:`MammogramReader`
puts :func:`~monai_bac.data.loader.load_mammogram` (or :func:`~monai_bac.data.loader.load_label`)
behind MONAI's reader interface, so::

    LoadImaged(keys="image", reader="monai_bac.data.MammogramReader", ensure_channel_first=True)
    LoadImaged(keys="label", reader=MammogramReader(label=True), dtype=np.uint8, ensure_channel_first=True)

give the same (1, H, W) MetaTensors, values and meta as :class:`~monai_bac.data.loader.LoadMammogramd`
(whose label checks against its image, a SEG of several images and a cropped 3D Slicer
segmentation, need both files at once and stay there).

A file the reader refuses raises its :class:`~monai_bac.data.errors.MammogramReadError` (naming the
file and the tag) out of ``LoadImage``. ``LoadImage`` catches what a user-chosen reader raises in
``read`` and tries its default readers instead, which would load a refused mammogram silently and
without its physics; so ``read`` only takes the file names and the file is read in ``get_data``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from monai.data import ImageReader
from monai.utils import ensure_tuple
from monai.utils.enums import MetaKeys

from monai_bac.data.dicom_read import MIN_SIDE_PX
from monai_bac.data.errors import MammogramReadError
from monai_bac.data.loader import file_kind, load_label, load_mammogram
from monai_bac.utils import PathLike

__all__ = ["MammogramReader"]


class _Files(NamedTuple):
    """What :meth:`MammogramReader.read` hands to :meth:`MammogramReader.get_data`: the names only."""

    names: tuple[str, ...]


class MammogramReader(ImageReader):
    """MONAI image reader of a raw mammogram (or, with ``label=True``, a binary BAC label).

    ``get_data`` returns the (H, W) array and the meta of :func:`~monai_bac.data.loader.load_mammogram`
    (:data:`~monai_bac.data.loader.IMAGE_META_KEYS`, the affine of
    :func:`~monai_bac.data.loader.mammogram_affine`, ``original_channel_dim`` "no_channel", so that
    ``ensure_channel_first=True`` gives (1, H, W)). One file per mammogram: a list of several is
    refused (MONAI's readers would stack them as channels).

    Args:
        label: read binary labels (:func:`~monai_bac.data.loader.load_label`: NIfTI, PNG/TIFF 0/1 or
            0/255, ``.npy``, a DICOM SEG of one image, a 3D Slicer ``.seg.nrrd`` not cropped) instead
            of images. Pass ``dtype=np.uint8`` to ``LoadImage`` to keep them 0/1 integers.
        spacing_mm: (row, col) mm for files without a spacing (PNG, TIFF, npy); replaces the file's.
        require_raw: raise for a processed ("FOR PRESENTATION") DICOM image instead of warning.
        allow_non_mg: accept a DICOM Modality other than MG.
        min_size_px: smallest accepted image height and width (images only).

    Example::

        from monai.transforms import LoadImaged
        load = LoadImaged(keys="image", reader="monai_bac.data.MammogramReader", ensure_channel_first=True)
        image = load({"image": "LCC.dcm"})["image"]   # (1, H, W), meta["kvp"], meta["spacing_mm"], ...
    """

    def __init__(
        self,
        label: bool = False,
        spacing_mm: Sequence[float] | float | None = None,
        require_raw: bool = False,
        allow_non_mg: bool = False,
        min_size_px: int = MIN_SIDE_PX,
    ) -> None:
        super().__init__()
        self.label = bool(label)
        self.spacing_mm = spacing_mm
        self.require_raw = require_raw
        self.allow_non_mg = allow_non_mg
        self.min_size_px = min_size_px

    def verify_suffix(self, filename: Sequence[PathLike] | PathLike) -> bool:
        """True when every name is one :func:`~monai_bac.data.loader.load_mammogram` reads (DICOM by
        suffix, by having none or by its ``DICM`` marker; NIfTI, PNG, TIFF, npy; labels also NRRD)."""
        for name in ensure_tuple(filename):
            try:
                kind = file_kind(Path(name))
            except MammogramReadError:
                return False
            if kind == "nrrd" and not self.label:
                return False
        return True

    def read(self, data: Sequence[PathLike] | PathLike, **kwargs: Any) -> _Files:
        """The file names, unread: the file is read (and refused, naming why) in :meth:`get_data`."""
        return _Files(tuple(str(name) for name in ensure_tuple(data)))

    def get_data(self, img: _Files) -> tuple[np.ndarray, dict]:
        """The (H, W) array (float32 raw values, or uint8 0/1 for a label) and its meta dict."""
        if len(img.names) != 1:
            raise MammogramReadError(
                f"{', '.join(img.names)}: MammogramReader reads one mammogram per file name, got {len(img.names)} "
                "names (MONAI's readers would stack them as channels); load each file under its own key")
        name = img.names[0]
        if self.label:
            tensor = load_label(name, self.spacing_mm)
        else:
            tensor = load_mammogram(name, self.spacing_mm, require_raw=self.require_raw,
                                    allow_non_mg=self.allow_non_mg, min_size_px=self.min_size_px)
        meta = dict(tensor.meta)
        for key in (MetaKeys.AFFINE, MetaKeys.ORIGINAL_AFFINE):
            meta[key] = np.asarray(meta[key])
        return tensor.numpy()[0], meta

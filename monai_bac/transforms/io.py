"""Writing predictions: the BAC mask as NIfTI (Slicer orientation) and a PNG overlay."""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing
from monai.transforms import MapTransform
from monai.utils import convert_to_numpy

__all__ = ["SaveBACd", "case_name"]


def case_name(path: str | os.PathLike) -> str:
    """File name without its (double) extension: ``a/b/case.nii.gz`` -> ``case``."""
    name = Path(path).name
    for ext in (".nii.gz", ".nii", ".dcm", ".dicom", ".png", ".tif", ".tiff", ".npy"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


class SaveBACd(MapTransform):
    """Save a BAC mask at the image's own size as ``<output_dir>/<case>_<postfix>.nii.gz``.

    The mask must already be back on the image's grid (``Invertd`` of the preprocessing). Its
    spacing is read from the MetaTensor's affine; the case name from ``filename_or_obj``. With
    ``overlay=True`` a PNG of the mammogram (-log display window) with the mask in colour is
    written beside it. Existing files are not replaced unless ``overwrite=True``. The written
    paths are stored in ``data[f"{key}_path"]`` and ``data[f"{key}_overlay_path"]``.
    """

    def __init__(self, keys: KeysCollection = "pred", output_dir: str = "./eval", postfix: str = "bac",
                 overlay: bool = True, overwrite: bool = False, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_dir = Path(output_dir)
        self.postfix, self.overlay, self.overwrite = postfix, overlay, overwrite

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        from monai_bac.data import load_mammogram, save_mask_nifti
        from monai_bac.visualize import display_window, overlay, save_png

        d = dict(data)
        for key in self.key_iterator(d):
            pred = d[key]
            if not isinstance(pred, MetaTensor) or "filename_or_obj" not in pred.meta:
                raise ValueError(f"SaveBACd: '{key}' must be a MetaTensor with meta['filename_or_obj'] "
                                 "(invert the preprocessing with Invertd first)")
            mask = (convert_to_numpy(pred)[0] > 0).astype(np.uint8)
            spacing = tuple(float(s) for s in affine_to_spacing(pred.affine, r=2))
            source = str(pred.meta["filename_or_obj"])
            out = self.output_dir / f"{case_name(source)}_{self.postfix}.nii.gz"
            self.output_dir.mkdir(parents=True, exist_ok=True)
            d[f"{key}_path"] = str(save_mask_nifti(out, mask, spacing, overwrite=self.overwrite))
            if self.overlay:
                raw = convert_to_numpy(load_mammogram(source, spacing_mm=spacing))[0]
                png = out.with_name(f"{case_name(source)}_{self.postfix}_overlay.png")
                d[f"{key}_overlay_path"] = save_png(png, overlay(display_window(raw), [mask]), overwrite=self.overwrite)
        return d

"""Writing predictions: the BAC mask as NIfTI (Slicer orientation), a PNG overlay and a DICOM SEG.

These are the last post-transforms of the bundle's ``configs/inference.json``; ``monai-bac infer``
runs the same config, and the MONAI Label app drops them (MONAI Label returns the label itself).
Each writer records what it wrote in ``data["outputs"]`` (kind -> path).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform
from monai.utils import convert_to_numpy

__all__ = ["SaveBACd", "SaveBACSegd", "case_name", "output_path", "OUTPUT_SUFFIXES"]

#: output kinds and their file-name suffixes (``<case><suffix>``)
OUTPUT_SUFFIXES = {"nifti": "_bac.nii.gz", "overlay": "_bac_overlay.png", "seg": "_bac_seg.dcm", "json": "_bac.json"}
_NOT_DICOM = (".nii", ".nii.gz", ".png", ".tif", ".tiff", ".npy")


def case_name(path: str | os.PathLike) -> str:
    """File name without its (double) extension: ``a/b/case.nii.gz`` -> ``case``."""
    name = Path(path).name
    for ext in (".nii.gz", ".nii", ".dcm", ".dicom", ".png", ".tif", ".tiff", ".npy"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def output_path(output_dir: str | os.PathLike, data: Mapping, kind: str, source: str) -> Path:
    """``<output_dir>/<case><suffix>``; the case is ``data["case"]`` when given, else the source's name."""
    return Path(output_dir) / f"{data.get('case') or case_name(source)}{OUTPUT_SUFFIXES[kind]}"


def _mask_and_source(data: Mapping, key: Hashable, who: str) -> tuple[np.ndarray, str, tuple[float, float]]:
    from monai_bac.units import resolve_spacing

    pred = data[key]
    if not isinstance(pred, MetaTensor) or "filename_or_obj" not in pred.meta:
        raise ValueError(f"{who}: '{key}' must be a MetaTensor with meta['filename_or_obj'] "
                         "(invert the preprocessing with Invertd first)")
    mask = convert_to_numpy(pred)[0] > 0
    return mask, str(pred.meta["filename_or_obj"]), resolve_spacing(pred.meta, None, who)


class SaveBACd(MapTransform):
    """Save a BAC mask at the image's own size as ``<output_dir>/<case>_bac.nii.gz``; with
    ``overlay``, a PNG of the mammogram in its display rendition with the mask in colour; with
    ``report``, the quantification (``data["bac"]``, :class:`~monai_bac.transforms.QuantifyBACd`)
    as ``<case>_bac.json``.

    The mask must already be back on the image's grid (``Invertd`` of the preprocessing). The
    overlay is drawn on ``raw_key`` (the image as loaded; read again from the file when absent)
    windowed on ``breast_map_key``. Existing files are not replaced unless ``overwrite=True``.
    """

    def __init__(self, keys: KeysCollection = "pred", output_dir: str = "./eval", overlay: bool = True,
                 nifti: bool = True, report: bool = True, overwrite: bool = False, raw_key: str = "raw",
                 breast_map_key: str = "breast_map", overlay_max_side: int | None = 1600,
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_dir = Path(output_dir)
        self.overlay, self.nifti, self.report = bool(overlay), bool(nifti), bool(report)
        self.overwrite = bool(overwrite)
        self.raw_key, self.breast_map_key, self.overlay_max_side = raw_key, breast_map_key, overlay_max_side

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        from monai_bac.data import load_mammogram, save_mask_nifti
        from monai_bac.utils import write_json
        from monai_bac.visualize import overlay_picture, save_png

        d = dict(data)
        outputs = d.setdefault("outputs", {})
        for key in self.key_iterator(d):
            mask, source, spacing = _mask_and_source(d, key, "SaveBACd")
            self.output_dir.mkdir(parents=True, exist_ok=True)
            if self.nifti:
                path = output_path(self.output_dir, d, "nifti", source)
                outputs["nifti"] = str(save_mask_nifti(path, mask.view(np.uint8), spacing, overwrite=self.overwrite))
            if self.overlay:
                raw = d.get(self.raw_key)
                raw = load_mammogram(source, spacing_mm=spacing) if raw is None else raw
                breast = d.get(self.breast_map_key)
                breast = None if breast is None else convert_to_numpy(breast)[0]
                pic = overlay_picture(convert_to_numpy(raw)[0], mask, breast, self.overlay_max_side)
                path = output_path(self.output_dir, d, "overlay", source)
                outputs["overlay"] = save_png(path, pic, overwrite=self.overwrite)
            if self.report and "bac" in d:
                path = output_path(self.output_dir, d, "json", source)
                report = {"source": source, "quantification": d["bac"], "quality_warning": d.get("quality_warning")}
                outputs["json"] = str(write_json(path, report, overwrite=self.overwrite))
        return d


class SaveBACSegd(MapTransform):
    """Save a BAC mask as a DICOM Segmentation object referencing its source DICOM image
    (:func:`monai_bac.dicom_seg.write_dicom_seg`): ``<output_dir>/<case>_bac_seg.dcm``.

    A source that is not DICOM (NIfTI, PNG, TIFF) gets no SEG; ``data["notes"]`` says so.
    """

    def __init__(self, keys: KeysCollection = "pred", output_dir: str = "./eval", overwrite: bool = False,
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_dir, self.overwrite = Path(output_dir), bool(overwrite)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        from monai_bac.dicom_seg import write_dicom_seg

        d = dict(data)
        outputs = d.setdefault("outputs", {})
        for key in self.key_iterator(d):
            mask, source, spacing = _mask_and_source(d, key, "SaveBACSegd")
            if source.lower().endswith(_NOT_DICOM):
                d.setdefault("notes", []).append("no DICOM SEG: the source is not a DICOM file")
                continue
            self.output_dir.mkdir(parents=True, exist_ok=True)
            path = output_path(self.output_dir, d, "seg", source)
            outputs["seg"] = str(write_dicom_seg(path, mask, source, spacing_mm=spacing, overwrite=self.overwrite))
        return d

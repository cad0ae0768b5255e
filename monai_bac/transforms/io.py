"""Writing predictions: the BAC mask as NIfTI (Slicer orientation), a PNG overlay, a DICOM SEG and
a JSON report of the quantification.

These are the last post-transforms of the bundle's ``configs/inference.json``; ``monai-bac infer``
runs the same config, and the MONAI Label app drops them (MONAI Label returns the label itself).
Each writer records what it writes in ``data["outputs"]`` (kind -> path).

With ``background=True`` :class:`SaveBACd` and :class:`SaveBACSegd` write on one background
thread while the next transforms run (the mask is measured by ``QuantifyBACd`` meanwhile: gzip,
PNG deflate and numpy release the GIL, so on two cores the writing costs almost no wall time);
:class:`SaveBACReportd` waits for them, raising the first writer's error, and writes the report.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform
from monai.utils import convert_to_numpy

__all__ = ["SaveBACd", "SaveBACSegd", "SaveBACReportd", "case_name", "output_path", "wait_for_background_writes",
           "OUTPUT_SUFFIXES"]

#: output kinds and their file-name suffixes (``<case><suffix>``)
OUTPUT_SUFFIXES = {"nifti": "_bac.nii.gz", "overlay": "_bac_overlay.png", "seg": "_bac_seg.dcm", "json": "_bac.json"}
_NOT_DICOM = (".nii", ".nii.gz", ".png", ".tif", ".tiff", ".npy")


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
PENDING_KEY = "pending_outputs"


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monai-bac-write")
        return _POOL


def _write(d: dict, background: bool, fn: Callable, *args: Any) -> None:
    if background:
        d.setdefault(PENDING_KEY, []).append(_pool().submit(fn, *args))
    else:
        fn(*args)


def wait_for_background_writes() -> None:
    """Return when every background write submitted so far has ended (the writer thread is FIFO)."""
    if _POOL is not None:
        _pool().submit(lambda: None).result()


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
    """Save a BAC mask at the image's own size as ``<output_dir>/<case>_bac.nii.gz`` and, with
    ``overlay``, a PNG of the mammogram in its display rendition with the mask in colour.

    The mask must already be back on the image's grid (``Invertd`` of the preprocessing). The
    overlay is drawn on ``raw_key`` (the image as loaded; read again from the file when absent)
    windowed on ``breast_map_key``. Existing files are not replaced unless ``overwrite=True``.
    ``background``: see the module docstring.
    """

    def __init__(self, keys: KeysCollection = "pred", output_dir: str = "./eval", overlay: bool = True,
                 nifti: bool = True, overwrite: bool = False, raw_key: str = "raw", breast_map_key: str = "breast_map",
                 overlay_max_side: int | None = 1600, background: bool = False,
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_dir = Path(output_dir)
        self.overlay, self.nifti, self.overwrite = bool(overlay), bool(nifti), bool(overwrite)
        self.raw_key, self.breast_map_key, self.overlay_max_side = raw_key, breast_map_key, overlay_max_side
        self.background = bool(background)

    def _save(self, mask: np.ndarray, spacing, raw, breast, source: str, paths: dict[str, Path]) -> None:
        from monai_bac.data import load_mammogram, save_mask_nifti
        from monai_bac.visualize import overlay_picture, save_png

        if "nifti" in paths:
            save_mask_nifti(paths["nifti"], mask.view(np.uint8), spacing, overwrite=self.overwrite)
        if "overlay" in paths:
            raw = load_mammogram(source, spacing_mm=spacing) if raw is None else raw
            pic = overlay_picture(convert_to_numpy(raw)[0], mask, breast, self.overlay_max_side)
            save_png(paths["overlay"], pic, overwrite=self.overwrite)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        outputs = d.setdefault("outputs", {})
        for key in self.key_iterator(d):
            mask, source, spacing = _mask_and_source(d, key, "SaveBACd")
            self.output_dir.mkdir(parents=True, exist_ok=True)
            kinds = [k for k, on in (("nifti", self.nifti), ("overlay", self.overlay)) if on]
            paths = {k: output_path(self.output_dir, d, k, source) for k in kinds}
            breast = d.get(self.breast_map_key)
            breast = None if breast is None else convert_to_numpy(breast)[0]
            _write(d, self.background, self._save, mask, spacing, d.get(self.raw_key), breast, source, paths)
            outputs.update({k: str(p) for k, p in paths.items()})
        return d


class SaveBACSegd(MapTransform):
    """Save a BAC mask as a DICOM Segmentation object referencing its source DICOM image
    (:func:`monai_bac.dicom_seg.write_dicom_seg`): ``<output_dir>/<case>_bac_seg.dcm``.

    A source that is not DICOM (NIfTI, PNG, TIFF) gets no SEG; ``data["notes"]`` says so. For a
    tomosynthesis projection set the SEG names the frame that was read (``meta["projection_frame"]``).
    ``background``: see the module docstring.
    """

    def __init__(self, keys: KeysCollection = "pred", output_dir: str = "./eval", overwrite: bool = False,
                 background: bool = False, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_dir, self.overwrite, self.background = Path(output_dir), bool(overwrite), bool(background)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        from functools import partial

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
            frame = d[key].meta.get("projection_frame")
            writer = partial(write_dicom_seg, spacing_mm=spacing, overwrite=self.overwrite,
                             source_frame=None if frame is None else int(frame))
            _write(d, self.background, writer, path, mask, source)
            outputs["seg"] = str(path)
        return d


class SaveBACReportd(MapTransform):
    """Wait for the background writes of this item (raising the first writer's error) and, with
    ``report`` and a quantification in ``data["bac"]``, write it as ``<output_dir>/<case>_bac.json``."""

    def __init__(self, keys: KeysCollection = "pred", output_dir: str = "./eval", report: bool = True,
                 overwrite: bool = False, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_dir, self.report, self.overwrite = Path(output_dir), bool(report), bool(overwrite)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        from monai_bac.utils import write_json

        d = dict(data)
        pending: list[Future] = d.pop(PENDING_KEY, [])
        for future in pending:
            future.result()
        for key in self.key_iterator(d):
            if self.report and "bac" in d:
                _, source, _ = _mask_and_source(d, key, "SaveBACReportd")
                path = output_path(self.output_dir, d, "json", source)
                report = {"source": source, "quantification": d["bac"], "quality_warning": d.get("quality_warning")}
                d.setdefault("outputs", {})["json"] = str(write_json(path, report, overwrite=self.overwrite))
        return d

"""Fast CPU inference: a trained model's bundle preprocessing, ONNX Runtime (or PyTorch), outputs.

The paper's footnote 2: a PACS has no GPU, and slow inference is not practical in a busy
clinic. :class:`CPUInferenceEngine` runs one image end to end on the CPU:

1. the preprocessing of the bundle's ``configs/inference.json`` (``preprocessing``: load ->
   BreastRegion -> NormalizeMammogram -> NormalizeIntensity -> [CropForeground] -> Resize),
   parsed with :class:`monai.bundle.ConfigParser` and the trained model's settings
   (``models/model_settings.json``), so it is the very pipeline the model was trained with;
2. the network through ONNX Runtime when installed (``engine="onnx"``; ``models/model.onnx``
   from ``monai-bac export``, or exported in memory from ``model.pt`` when missing or stale),
   else PyTorch eager (``engine="torch"``);
3. the bundle's ``invert_transforms`` (sigmoid -> Invertd back to the image's own grid ->
   AsDiscreted at the model's threshold, ``models/threshold.json``).

Each stage is timed (``load``, ``breast_region``, ``normalise``, ``resize``, ``network``,
``resize_back``, ``threshold``; :func:`process_image` adds ``quantify`` and ``write``, which
run side by side: the files are written on a second thread while the mask is measured).

:func:`process_image` then quantifies the mask (:mod:`monai_bac.quantify`) and writes, per
image: the mask as NIfTI, a DICOM Segmentation object referencing the source image
(:func:`write_dicom_seg`), an overlay PNG and a JSON report. The ``monai-bac infer`` command
(:mod:`monai_bac.commands.infer`) runs it over a file, folder or datalist.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_bac.export import (
    INT8_FILE,
    ExportError,
    ModelFiles,
    load_torch_network,
    onnx_model_bytes,
    ort_session,
    resolve_model,
)
from monai_bac.utils import atomic_write_path

__all__ = [
    "STAGES",
    "InputRejected",
    "CPUInferenceEngine",
    "InferenceResult",
    "available_engines",
    "default_threads",
    "write_dicom_seg",
    "overlay_picture",
    "output_paths",
    "process_image",
    "SEG_SOP_CLASS_UID",
]

logger = logging.getLogger("monai_bac.cpu_inference")

#: timed stages, in order
STAGES = ("load", "breast_region", "normalise", "resize", "network", "resize_back", "threshold", "quantify", "write")
SEG_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.66.4"

_STAGE_OF = {
    "LoadMammogramd": "load", "BreastRegiond": "breast_region", "NormalizeMammogramd": "normalise",
    "NormalizeIntensityd": "normalise", "Activationsd": "resize_back", "Invertd": "resize_back",
    "UpdateSpacingd": "resize_back", "AsDiscreted": "threshold",
}


class InputRejected(ValueError):
    """An input the model must not be run on (processed image, image far smaller than the input)."""


def default_threads() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (not Linux)
        return max(1, os.cpu_count() or 1)


def available_engines() -> list[str]:
    out = []
    try:
        import onnxruntime  # noqa: F401

        out.append("onnx")
    except ImportError:
        pass
    return out + ["torch"]


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0


class _OnnxRunner:
    name = "onnx"

    def __init__(self, files: ModelFiles, threads: int, image_size: int, precision: str = "auto") -> None:
        int8_ready = files.onnx_int8 is not None and files.onnx_int8_is_current
        if precision == "int8" and not int8_ready:
            why = "is older than model.pt" if files.onnx_int8 is not None else "does not exist"
            raise ExportError(f"{files.models_dir}/{INT8_FILE} {why}: run `monai-bac export --model "
                              f"{files.models_dir} --formats onnx-int8 --calibration DATALIST` first")
        self.precision = "int8" if precision in ("int8", "auto") and int8_ready else "fp32"
        source: Any
        if self.precision == "int8":
            source = self.source = str(files.onnx_int8)
        elif files.onnx is not None and files.onnx_is_current:
            source = self.source = str(files.onnx)
        else:
            if files.checkpoint is None:
                raise ExportError(f"{files.models_dir}: no model.onnx or model.pt")
            why = "is older than model.pt" if files.onnx is not None else "is missing"
            logger.warning("%s/model.onnx %s: exporting model.pt to ONNX in memory for this run "
                           "(run `monai-bac export --model %s` once to save the start-up time)",
                           files.models_dir, why, files.models_dir)
            net = load_torch_network(files)
            source = onnx_model_bytes(net, torch.zeros(1, 1, image_size, image_size))
            self.source = "model.pt (exported in memory)"
        self.session = ort_session(source, threads)
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]


class _TorchRunner:
    name = "torch"
    precision = "fp32"

    def __init__(self, files: ModelFiles, threads: int) -> None:
        torch.set_num_threads(int(threads))
        self.net = load_torch_network(files)
        self.source = str(files.checkpoint)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.net(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


@dataclass
class InferenceResult:
    """What :meth:`CPUInferenceEngine.predict` returns for one image."""

    mask: np.ndarray  # (H, W) uint8, on the image's own grid
    image: Any  # the raw image as loaded, (1, H, W) MetaTensor
    breast_map: np.ndarray | None  # (H, W) uint8 DESIGN.md codes
    normalised: np.ndarray | None  # (H, W) float32, the normalised image before resizing (for pictures)
    meta: dict
    seconds: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # the reader's warnings (missing tags, ...)


class CPUInferenceEngine:
    """Run a trained monai-bac model on CPU with the bundle's own preprocessing.

    Args:
        model: a bundle folder, its ``models/`` folder, or ``model.pt`` / ``model.onnx``
            (:func:`monai_bac.export.resolve_model`).
        engine: ``"auto"`` (ONNX Runtime when installed, else PyTorch), ``"onnx"`` or ``"torch"``.
        threads: CPU threads for the network (default: all cores this process may use).
        threshold: probability cut-off; default ``models/threshold.json`` (else 0.5).
        config_file: the ``inference.json`` to take the preprocessing from; default the model's
            bundle (or the monai-bac bundle).
        overrides: config values to replace (e.g. ``{"image_size": 1024}``); the model's
            ``model_settings.json`` is used otherwise.
        allow_processed: run on processed (FOR PRESENTATION) images too (the model was trained
            on raw ones; the result is then flagged).
        min_input_fraction: refuse images whose smaller side is below this fraction of the
            network input (``image_size``); upsampling them invents detail the model never saw.
        precision: ONNX network precision: ``"auto"`` (``model.int8.onnx`` when it exists and
            was made from the current ``model.pt``, see :mod:`monai_bac.quantization`; else
            float32), ``"fp32"`` or ``"int8"``. PyTorch always runs float32.
    """

    def __init__(self, model: str | os.PathLike, engine: str = "auto", threads: int | None = None,
                 threshold: float | None = None, config_file: str | os.PathLike | None = None,
                 overrides: Mapping[str, Any] | None = None, allow_processed: bool = False,
                 min_input_fraction: float = 0.5, precision: str = "auto") -> None:
        from monai.bundle import ConfigParser

        self.files = resolve_model(model)
        self.threads = int(threads or default_threads())
        self.allow_processed = bool(allow_processed)
        self.min_input_fraction = float(min_input_fraction)
        self.config_file = Path(config_file) if config_file else self.files.config_file()
        parser = ConfigParser()
        parser.read_config(str(self.config_file))
        parser["ckpt_dir"] = str(self.files.models_dir)
        if self.files.bundle_root is not None:
            parser["bundle_root"] = str(self.files.bundle_root)
        for key, value in (overrides or {}).items():
            parser[key] = value
        if threshold is not None:
            parser["threshold"] = float(threshold)
        self.settings = {k: parser.get_parsed_content(k) for k in
                         ("network_name", "image_size", "normalisation", "crop_to_breast", "threshold")}
        self.image_size = int(self.settings["image_size"])
        self.threshold = float(self.settings["threshold"])
        self.preprocessing = parser.get_parsed_content("preprocessing")
        self.invert_transforms = list(parser.get_parsed_content("invert_transforms"))
        engine, precision = str(engine).lower(), str(precision).lower()
        if precision not in ("auto", "fp32", "int8"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'int8', got {precision!r}")
        if engine == "auto":
            engine = available_engines()[0]
        if engine == "onnx":
            if self.files.checkpoint is None and self.files.onnx is None:
                raise ExportError(f"{self.files.models_dir}: nothing to run")
            self.runner: Any = _OnnxRunner(self.files, self.threads, self.image_size, precision)
        elif engine == "torch":
            if precision == "int8":
                raise ValueError("precision 'int8' needs the ONNX Runtime engine (engine='onnx')")
            self.runner = _TorchRunner(self.files, self.threads)
        else:
            raise ValueError(f"engine must be 'auto', 'onnx' or 'torch', got {engine!r}")
        self.engine = self.runner.name

    def describe(self) -> dict[str, Any]:
        """Settings of this engine, for reports."""
        return {"engine": self.engine, "precision": self.runner.precision, "threads": self.threads,
                "model_dir": str(self.files.models_dir),
                "network_source": self.runner.source, "config_file": str(self.config_file),
                **{k: (v if isinstance(v, (str, int, float, bool)) else str(v)) for k, v in self.settings.items()}}

    def _check_input(self, img: Any, source: str) -> None:
        meta = getattr(img, "meta", {}) or {}
        if meta.get("is_raw") is False and not self.allow_processed:
            raise InputRejected(
                f"{source}: processed (FOR PRESENTATION) image; the model was trained on raw (FOR PROCESSING) "
                "detector data and its output on a processed image is not meaningful (use --allow-processed to run anyway)")
        h, w = (int(s) for s in img.shape[-2:])
        if min(h, w) < self.min_input_fraction * self.image_size:
            raise InputRejected(
                f"{source}: image is {h} x {w} pixels, far smaller than the network input {self.image_size} x "
                f"{self.image_size} (smaller side below {self.min_input_fraction:g} x {self.image_size}); "
                "upsampling it would invent detail the model never saw - not a full-field mammogram?")

    def _preprocess(self, source: str, timer: _Timer) -> tuple[dict, Any, np.ndarray | None, np.ndarray | None]:
        """The bundle's ``preprocessing``, stage by stage: (data, raw image, breast map, normalised image)."""
        d: dict[str, Any] = {"image": source}
        raw = bmap = normalised = None
        for t in self.preprocessing.transforms:
            name = type(t).__name__
            with timer(_STAGE_OF.get(name, "resize")):
                d = t(d)
            if name == "LoadMammogramd":
                raw = d["image"]
                self._check_input(raw, source)
            elif name == "BreastRegiond" and "breast_map" in d:
                bmap = np.asarray(d["breast_map"])[0].astype(np.uint8, copy=False)
            elif name == "NormalizeMammogramd":
                normalised = np.asarray(d["image"])[0]
        return d, raw, bmap, normalised

    def network_input(self, image: str | os.PathLike | Mapping[str, Any]) -> np.ndarray:
        """The preprocessed image exactly as the network receives it, (1, 1, H, W) float32."""
        source = str(image["image"] if isinstance(image, Mapping) else image)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = self._preprocess(source, _Timer())[0]
        return np.ascontiguousarray(np.asarray(d["image"])[None], dtype=np.float32)

    def predict(self, image: str | os.PathLike | Mapping[str, Any]) -> InferenceResult:
        """Segment one image (a file name, or a dict with ``"image"``); returns the mask on the image's grid.

        Raises:
            monai_bac.data.MammogramReadError: unreadable file, not a mammogram, ...
            InputRejected: processed image (unless ``allow_processed``) or far too small.
        """
        from monai.data import MetaTensor

        timer = _Timer()
        source = str(image["image"] if isinstance(image, Mapping) else image)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # the loader's warnings (missing tags, ...) go into the report
            d, raw, bmap, normalised = self._preprocess(source, timer)
            x = d["image"]
            with timer("network"):
                logits = self.runner(np.asarray(x)[None])
            d["pred"] = MetaTensor(torch.from_numpy(np.ascontiguousarray(logits[0])), meta=dict(x.meta))
            for t in self.invert_transforms:
                with timer(_STAGE_OF.get(type(t).__name__, "resize_back")):
                    d = t(d)
        with timer("threshold"):
            mask = np.asarray(d["pred"])[0].astype(np.uint8)  # AsDiscreted's 0.0 / 1.0
        meta = dict(raw.meta) if raw is not None else {}
        from monai_bac.data import MissingTagWarning, ProcessedImageWarning

        notes = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught
                                   if issubclass(w.category, (MissingTagWarning, ProcessedImageWarning))))
        return InferenceResult(mask, raw, bmap, normalised, meta, timer.seconds, notes)


# ------------------------------------------------------------------------------------ outputs
def overlay_picture(background: np.ndarray, mask: np.ndarray, breast: np.ndarray | None = None,
                    max_side: int | None = 1600) -> np.ndarray:
    """RGB uint8 picture: ``background`` (the normalised image) in grey, BAC in colour.

    Shrunk by a whole factor so that its longer side is at most ``max_side`` (None or 0: full
    size): the grey by block means, the mask by block maxima, so that a thin BAC stays visible.
    The grey window is the 0.5-99.5 percentile range of the background inside ``breast``.
    """
    from PIL import Image

    from monai_bac.ops.resample import block_mean
    from monai_bac.visualize import BAC_COLOUR, overlay

    bg = np.asarray(background, np.float32)
    m = np.asarray(mask) > 0
    f = 1 if not max_side else max(1, math.ceil(max(bg.shape) / int(max_side)))
    step = max(1, int(math.sqrt(bg.size / 250_000)))  # the window from a ~250k-pixel sample
    sample, sel = bg[::step, ::step], None
    if breast is not None:
        sel = np.asarray(breast)[::step, ::step] > 0
    vals = sample[sel] if sel is not None and sel.any() else sample.ravel()
    lo, hi = np.percentile(vals, (0.5, 99.5)) if vals.size else (0.0, 1.0)
    if f > 1:  # shrink first: the grey by block means (of the float image), the mask by block maxima
        h, w = (bg.shape[0] // f) * f, (bg.shape[1] // f) * f
        bg = block_mean(bg[:h, :w], f, f)
        m = np.asarray(Image.fromarray(np.ascontiguousarray(m[:h, :w]).view(np.uint8) * np.uint8(255)).reduce(f)) > 0
    tmp = (bg - np.float32(lo)) * np.float32(255.0 / max(float(hi - lo), 1e-6))
    np.clip(tmp, 0, 255, out=tmp)
    return overlay(tmp.astype(np.uint8), [m], [BAC_COLOUR])


def _save_png_fast(path: Path, rgb: np.ndarray, overwrite: bool) -> None:
    from PIL import Image

    with atomic_write_path(path, overwrite=overwrite) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG", compress_level=1)


def write_dicom_seg(path: str | os.PathLike, mask: np.ndarray, source: str | os.PathLike, *,
                    spacing_mm: Sequence[float] | None = None, segment_label: str = "BAC",
                    algorithm_name: str = "monai-bac", algorithm_version: str | None = None,
                    series_description: str = "BAC segmentation (monai-bac)", overwrite: bool = False) -> Path:
    """Write a binary mask as a DICOM Segmentation object (SEG) referencing its source image.

    One segment ("Breast arterial calcification"), one frame of the source image's size, BINARY
    (1 bit per pixel), Explicit VR Little Endian. Patient and study come from the source file so
    that a PACS files the SEG with the mammogram; the frame references the source image
    (SOP class and instance) in its Derivation Image Sequence and the Referenced Series Sequence;
    Pixel Measures give the source's pixel spacing. Written with pydicom (2.4 or 3), atomically.

    Args:
        path: destination ``.dcm``.
        mask: (H, W) or (1, H, W) binary mask on the source image's grid.
        source: the source DICOM file (only its header is read).
        spacing_mm: (row, col) spacing; default the source's ImagerPixelSpacing / PixelSpacing.
        overwrite: replace an existing file.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence as Seq
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    import monai_bac

    m = np.asarray(mask)
    m = (m[0] if m.ndim == 3 else m) > 0
    src = pydicom.dcmread(str(source), stop_before_pixels=True)
    rows, cols = int(src.Rows), int(src.Columns)
    if m.shape != (rows, cols):
        raise ValueError(f"mask is {m.shape[0]} x {m.shape[1]} but the source image {source} is {rows} x {cols}")
    if spacing_mm is None:
        spacing_mm = src.get("ImagerPixelSpacing") or src.get("PixelSpacing")
    now = _dt.datetime.now()
    sop_uid = generate_uid()

    def code(value: str, scheme: str, meaning: str) -> Dataset:
        c = Dataset()
        c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
        return c

    ds = Dataset()
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = SEG_SOP_CLASS_UID
    fm.MediaStorageSOPInstanceUID = sop_uid
    fm.TransferSyntaxUID = ExplicitVRLittleEndian
    fm.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = fm
    ds.preamble = b"\x00" * 128
    # patient and study: the source's
    for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
               "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName"):
        setattr(ds, kw, src.get(kw, ""))
    if not ds.StudyInstanceUID:
        ds.StudyInstanceUID = generate_uid()
    if "FrameOfReferenceUID" in src:
        ds.FrameOfReferenceUID = src.FrameOfReferenceUID
    # series, equipment, instance
    ds.SOPClassUID = SEG_SOP_CLASS_UID
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "SEG"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 999
    ds.SeriesDescription = series_description
    ds.InstanceNumber = 1
    ds.Manufacturer = "monai-bac"
    ds.ManufacturerModelName = algorithm_name
    ds.DeviceSerialNumber = "0"
    ds.SoftwareVersions = algorithm_version or getattr(monai_bac, "__version__", "0")
    ds.ContentDate = ds.InstanceCreationDate = ds.SeriesDate = now.strftime("%Y%m%d")
    ds.ContentTime = ds.InstanceCreationTime = ds.SeriesTime = now.strftime("%H%M%S")
    ds.ContentLabel = segment_label.upper()[:16]
    ds.ContentDescription = "Breast arterial calcification"
    ds.ContentCreatorName = "monai-bac"
    for kw in ("ImageLaterality", "Laterality", "BodyPartExamined"):
        if kw in src:
            setattr(ds, kw, src.get(kw))
    # image
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 1
    ds.BitsStored = 1
    ds.HighBit = 0
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "00"
    ds.SegmentationType = "BINARY"
    ds.NumberOfFrames = 1
    # segment
    seg = Dataset()
    seg.SegmentNumber = 1
    seg.SegmentLabel = segment_label
    seg.SegmentDescription = "Breast arterial calcification"
    seg.SegmentAlgorithmType = "AUTOMATIC"
    seg.SegmentAlgorithmName = algorithm_name
    seg.SegmentedPropertyCategoryCodeSequence = Seq([code("49755003", "SCT", "Morphologically Abnormal Structure")])
    seg.SegmentedPropertyTypeCodeSequence = Seq([code("BAC", "99MONAIBAC", "Breast arterial calcification")])
    seg.RecommendedDisplayCIELabValue = [34885, 53485, 50171]  # red
    ds.SegmentSequence = Seq([seg])
    # dimensions: one index, the segment number
    dim_uid = generate_uid()
    org = Dataset()
    org.DimensionOrganizationUID = dim_uid
    ds.DimensionOrganizationSequence = Seq([org])
    dim = Dataset()
    dim.DimensionOrganizationUID = dim_uid
    dim.DimensionIndexPointer = 0x0062000B  # ReferencedSegmentNumber
    dim.FunctionalGroupPointer = 0x0062000A  # SegmentIdentificationSequence
    dim.DimensionDescriptionLabel = "Segment Number"
    ds.DimensionIndexSequence = Seq([dim])
    ds.DimensionOrganizationType = "2D"
    # functional groups
    shared = Dataset()
    pm = Dataset()
    if spacing_mm is not None:
        pm.PixelSpacing = [f"{float(s):.6g}" for s in spacing_mm]
    pm.SliceThickness = "1"
    shared.PixelMeasuresSequence = Seq([pm])
    ds.SharedFunctionalGroupsSequence = Seq([shared])
    frame = Dataset()
    fc = Dataset()
    fc.DimensionIndexValues = [1]
    frame.FrameContentSequence = Seq([fc])
    ref_img = Dataset()
    ref_img.ReferencedSOPClassUID = src.SOPClassUID
    ref_img.ReferencedSOPInstanceUID = src.SOPInstanceUID
    ref_img.PurposeOfReferenceCodeSequence = Seq([code("121322", "DCM", "Source image for image processing operation")])
    ref_img.SpatialLocationsPreserved = "YES"  # the mask is on the source image's own pixel grid
    deriv = Dataset()
    deriv.SourceImageSequence = Seq([ref_img])
    deriv.DerivationCodeSequence = Seq([code("113076", "DCM", "Segmentation")])
    frame.DerivationImageSequence = Seq([deriv])
    sid = Dataset()
    sid.ReferencedSegmentNumber = 1
    frame.SegmentIdentificationSequence = Seq([sid])
    ds.PerFrameFunctionalGroupsSequence = Seq([frame])
    # common instance reference
    inst = Dataset()
    inst.ReferencedSOPClassUID = src.SOPClassUID
    inst.ReferencedSOPInstanceUID = src.SOPInstanceUID
    ser = Dataset()
    ser.SeriesInstanceUID = src.SeriesInstanceUID
    ser.ReferencedInstanceSequence = Seq([inst])
    ds.ReferencedSeriesSequence = Seq([ser])
    # pixels: 1 bit per pixel, little bit order, padded to an even number of bytes
    packed = np.packbits(m.astype(np.uint8).ravel(), bitorder="little").tobytes()
    ds.PixelData = packed + (b"\x00" if len(packed) % 2 else b"")
    ds["PixelData"].VR = "OB"
    path = Path(path)
    with atomic_write_path(path, overwrite=overwrite) as tmp:
        if int(pydicom.__version__.split(".")[0]) >= 3:
            pydicom.dcmwrite(tmp, ds, enforce_file_format=True)
        else:
            ds.is_little_endian, ds.is_implicit_VR = True, False
            pydicom.dcmwrite(str(tmp), ds, write_like_original=False)
    return path


#: output kinds and their file-name suffixes
OUTPUT_SUFFIXES = {"nifti": "_bac.nii.gz", "seg": "_bac_seg.dcm", "overlay": "_bac_overlay.png", "json": "_bac.json"}


def output_paths(out_dir: str | os.PathLike, case: str, kinds: Sequence[str] = tuple(OUTPUT_SUFFIXES)) -> dict[str, Path]:
    return {k: Path(out_dir) / f"{case}{OUTPUT_SUFFIXES[k]}" for k in kinds}


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating, float)):
        return None if not math.isfinite(float(o)) else float(o)
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, (str, int, bool)) or o is None:
        return o
    return str(o)


def write_json(path: str | os.PathLike, obj: Any, overwrite: bool = False) -> Path:
    with atomic_write_path(path, overwrite=overwrite) as tmp:
        Path(tmp).write_text(json.dumps(_jsonable(obj), indent=1) + "\n")
    return Path(path)


_META_FIELDS = ("patient_id", "laterality", "view", "study_instance_uid", "series_instance_uid", "sop_instance_uid",
                "manufacturer", "presentation", "is_raw", "kvp", "spacing_mm")


def _quantify_result(result: InferenceResult, entry: Mapping[str, Any], calcium: bool, annotation_key: str | None,
                     max_mask_fraction: float) -> dict[str, Any]:
    """The report's ``quantification`` (and ``quality_warning``, ``annotation``) for one prediction."""
    from monai_bac.quantify import quantify_image

    out: dict[str, Any] = {}
    meta = result.meta
    fraction = float(result.mask.mean()) if result.mask.size else 0.0
    if fraction > max_mask_fraction:
        # no BAC covers this much of a mammogram: a failed model or a wrong input; measuring the
        # skeleton of such a blob would also take long
        sp = meta.get("spacing_mm") or (float("nan"), float("nan"))
        out["quality_warning"] = (f"the mask covers {100 * fraction:.1f} % of the image (> {100 * max_mask_fraction:g} %): "
                                  "not a plausible BAC segmentation; length and calcium not measured")
        out["quantification"] = {"present": True, "length_mm": None, "skeleton_length_mm": None,
                                 "n_segments": None, "area_mm2": float(result.mask.sum() * sp[0] * sp[1]),
                                 "calcium_mg": None, "calcium_volume_mm3": None,
                                 "calcium_note": "not measured (implausible mask)", "spacing_mm": list(sp),
                                 "segments": []}
    else:
        out["quantification"] = quantify_image(result.image, result.mask, result.breast_map, calcium=calcium).as_dict()
    ann_key = annotation_key
    if ann_key == "auto":
        ann_key = next((k for k in ("label_gt", "label") if k in entry), None)
    if ann_key and ann_key in entry:
        try:
            from monai_bac.data import load_label

            ann = load_label(entry[ann_key], spacing_mm=meta.get("spacing_mm"))
            qa = quantify_image(result.image, ann, result.breast_map, calcium=calcium)
            out["annotation"] = {"key": ann_key, "path": str(entry[ann_key]), **qa.as_dict(segments=False)}
        except Exception as e:  # noqa: BLE001
            out["annotation"] = {"key": ann_key, "path": str(entry[ann_key]), "error": f"{type(e).__name__}: {e}"}
    return out


def _write_image_files(paths: Mapping[str, Path], result: InferenceResult, source: str, overlay_max_side: int | None,
                       overwrite: bool) -> tuple[dict[str, str], dict[str, str], float]:
    """Write the mask (NIfTI, DICOM SEG) and the overlay PNG: (written paths, report notes, seconds)."""
    t0 = time.perf_counter()
    written: dict[str, str] = {}
    notes: dict[str, str] = {}
    spacing = result.meta.get("spacing_mm")
    if "nifti" in paths:
        from monai_bac.data import save_mask_nifti

        written["nifti"] = str(save_mask_nifti(paths["nifti"], result.mask, spacing, overwrite=overwrite))
    if "seg" in paths:
        if source.lower().endswith((".nii", ".nii.gz", ".png", ".tif", ".tiff", ".npy")):
            notes["seg_note"] = "no DICOM SEG: the source is not a DICOM file"
        else:
            written["seg"] = str(write_dicom_seg(paths["seg"], result.mask, source, spacing_mm=spacing,
                                                 overwrite=overwrite))
    if "overlay" in paths:
        bg = result.normalised if result.normalised is not None else np.log1p(np.asarray(result.image)[0])
        pic = overlay_picture(bg, result.mask, result.breast_map, overlay_max_side)
        _save_png_fast(paths["overlay"], pic, overwrite)
        written["overlay"] = str(paths["overlay"])
    return written, notes, time.perf_counter() - t0


def process_image(engine: CPUInferenceEngine, item: str | os.PathLike | Mapping[str, Any], out_dir: str | os.PathLike,
                  case: str, *, outputs: Sequence[str] = tuple(OUTPUT_SUFFIXES), overwrite: bool = False,
                  overlay_max_side: int | None = 1600, calcium: bool = True,
                  annotation_key: str | None = "auto", max_mask_fraction: float = 0.05) -> dict[str, Any]:
    """Segment, quantify and write one image; never raises for a bad input.

    The NIfTI, DICOM SEG and overlay files are written on a second thread while the mask is
    quantified (the ``write`` and ``quantify`` seconds overlap; ``total_seconds`` is the wall time).

    Args:
        engine: the engine.
        item: a file name or a datalist entry (``{"image": ..., "label_gt": ..., ...}``).
        out_dir: output folder; files are ``<case>_bac.nii.gz``, ``<case>_bac_seg.dcm``,
            ``<case>_bac_overlay.png``, ``<case>_bac.json`` (:data:`OUTPUT_SUFFIXES`).
        outputs: which of them to write.
        overwrite: replace existing outputs (else an image whose outputs exist is skipped).
        overlay_max_side: longest side of the overlay PNG (0 / None: full size).
        calcium: estimate the calcium mass (needs raw physics metadata).
        annotation_key: datalist key of an annotation to quantify too (``"auto"``: ``label_gt``,
            else ``label``; None: none); its figures go to ``annotation_*`` fields.
        max_mask_fraction: a mask covering more of the image than this is flagged
            (``quality_warning``) and not measured (no BAC is that large).

    Returns:
        the report (also written as JSON): ``status`` ``"ok"`` / ``"failed"`` / ``"skipped"``,
        ``reason`` for the others, the image's identifiers, ``quantification``, ``annotation``,
        ``outputs`` (paths), ``seconds`` per stage and ``total_seconds``.
    """
    from monai_bac.data import MammogramReadError

    t_start = time.perf_counter()
    entry = dict(item) if isinstance(item, Mapping) else {"image": str(item)}
    source = str(entry["image"])
    paths = output_paths(out_dir, case, [k for k in OUTPUT_SUFFIXES if k in outputs or k == "json"])
    report: dict[str, Any] = {"case": case, "source": source, "status": "ok", "reason": "",
                              "model": engine.describe(), "created": _dt.datetime.now().isoformat(timespec="seconds")}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        report.update(status="skipped", reason=f"outputs exist ({', '.join(existing)}); pass --overwrite to redo")
        try:  # carry the earlier result into this run's tables
            old = json.loads(paths["json"].read_text())
            report.update({k: old.get(k) for k in ("quantification", "annotation", "image_info") if k in old})
        except (OSError, ValueError, KeyError):
            pass
        return report
    try:
        result = engine.predict(entry)
    except (MammogramReadError, InputRejected, FileNotFoundError) as e:
        report.update(status="failed", reason=str(e), error=type(e).__name__)
    except Exception as e:  # noqa: BLE001 - a bad image must not stop a batch
        logger.exception("%s: unexpected error", source)
        report.update(status="failed", reason=f"{type(e).__name__}: {e}", error=type(e).__name__)
    if report["status"] != "ok":
        report["total_seconds"] = time.perf_counter() - t_start
        if "json" in paths:
            try:
                write_json(paths["json"], report, overwrite=overwrite)
                report["outputs"] = {"json": str(paths["json"])}
            except OSError as e:
                logger.warning("could not write %s: %s", paths["json"], e)
        return report
    seconds = dict(result.seconds)
    meta = result.meta
    report["image_info"] = {k: meta.get(k) for k in _META_FIELDS}
    report["image_info"]["shape"] = list(result.mask.shape)
    if result.warnings:
        report["input_warnings"] = result.warnings
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    # the image files need only the mask: they are written on a second core while the mask is
    # measured (PNG, gzip and numpy release the GIL), so "write" overlaps "quantify"
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="monai-bac-write") as pool:
        files = pool.submit(_write_image_files, paths, result, source, overlay_max_side, overwrite)
        t0 = time.perf_counter()
        report.update(_quantify_result(result, entry, calcium, annotation_key, max_mask_fraction))
        seconds["quantify"] = time.perf_counter() - t0
        try:
            written, notes, seconds["write"] = files.result()
            report.update(notes)
            t0 = time.perf_counter()
            report["outputs"] = {**written, "json": str(paths["json"])}
            report["seconds"] = {k: seconds.get(k, 0.0) for k in STAGES}
            report["total_seconds"] = time.perf_counter() - t_start
            write_json(paths["json"], report, overwrite=overwrite)
            seconds["write"] += time.perf_counter() - t0
        except (OSError, ValueError) as e:
            report.update(status="failed", reason=f"writing outputs: {type(e).__name__}: {e}", error=type(e).__name__)
    report["seconds"] = {k: seconds.get(k, 0.0) for k in STAGES}
    report["total_seconds"] = time.perf_counter() - t_start
    return report

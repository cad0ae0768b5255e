"""Export a trained monai-bac model to TorchScript and ONNX, checked against PyTorch.

A trained model is the bundle's ``models/`` folder: ``model.pt`` (state dict of
:func:`monai_bac.networks.build_network`), ``model_settings.json`` (``network_name``,
``image_size``, ``normalisation``, ``crop_to_breast``) and ``threshold.json``.
:func:`export_model` writes beside them:

* ``model.onnx``: ONNX graph (opset 17), input ``image`` (N, 1, H, W) float32 (the preprocessed
  image, H and W dynamic, multiples of 16), output ``logits`` (N, 1, H, W);
* ``model.ts``: TorchScript (traced) of the same network;
* ``export.json``: what was exported, from which checkpoint (SHA-256, so a later retraining is
  noticed), and the check: the largest absolute difference of the logits between each export
  and PyTorch on the same input at the served size (``max_abs_diff``), which must not exceed
  ``atol + rtol * max|logit|`` (float32 runtimes sum in different orders, so the difference
  grows with the logits: a trained network's reach tens).

Existing files are not replaced unless ``overwrite=True``; files are written atomically.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
import warnings
from functools import cached_property
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_bac.utils import atomic_write_path

__all__ = ["ModelFiles", "resolve_model", "load_torch_network", "onnx_model_bytes", "export_onnx",
           "export_torchscript", "export_model", "check_onnx", "ort_session", "file_sha256", "ExportError",
           "DEFAULTS", "INT8_FILE"]

logger = logging.getLogger("monai_bac.export")

#: defaults of the model settings (as the bundle's inference.json)
DEFAULTS = {"network_name": "deeplabv3p_mnv3", "image_size": 1600, "normalisation": "log_gamma", "crop_to_breast": False}
ONNX_OPSET = 17
#: the int8 model beside model.onnx (:mod:`monai_bac.quantization`)
INT8_FILE = "model.int8.onnx"


class ExportError(RuntimeError):
    """The model cannot be found or exported, or the export does not match PyTorch."""


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ModelFiles:
    """Where a trained model's pieces are (see :func:`resolve_model`)."""

    models_dir: Path
    bundle_root: Path | None
    checkpoint: Path | None
    onnx: Path | None
    torchscript: Path | None
    settings: dict = field(default_factory=dict)
    export_info: dict = field(default_factory=dict)
    onnx_int8: Path | None = None

    @property
    def network_name(self) -> str:
        return str(self.settings.get("network_name", DEFAULTS["network_name"]))

    @property
    def image_size(self) -> int:
        return int(self.settings.get("image_size", DEFAULTS["image_size"]))

    @cached_property
    def checkpoint_sha256(self) -> str | None:
        """SHA-256 of ``model.pt`` (hashed once: both exports' staleness checks need it)."""
        return file_sha256(self.checkpoint) if self.checkpoint is not None else None

    @property
    def onnx_is_current(self) -> bool:
        """``model.onnx`` exists and was exported from the current ``model.pt`` (or there is none)."""
        if self.onnx is None:
            return False
        if self.checkpoint is None:
            return True
        return self.export_info.get("checkpoint_sha256") == self.checkpoint_sha256

    @property
    def onnx_int8_is_current(self) -> bool:
        """``model.int8.onnx`` exists and was quantized from the current ``model.pt`` (or there is none)."""
        if self.onnx_int8 is None:
            return False
        made_from = self.export_info.get("exports", {}).get("onnx-int8", {}).get("checkpoint_sha256")
        return self.checkpoint is None or made_from == self.checkpoint_sha256

    def config_file(self) -> Path:
        """The bundle's ``configs/inference.json`` whose preprocessing this model was trained with."""
        if self.bundle_root is not None:
            return self.bundle_root / "configs" / "inference.json"
        from monai_bac.bundle_support import bundle_root

        try:
            return Path(bundle_root()) / "configs" / "inference.json"
        except FileNotFoundError as e:
            raise ExportError(f"{self.models_dir} is not inside a bundle and the monai-bac bundle folder cannot be "
                              "found; pass the bundle's configs/inference.json explicitly (--config)") from e


def resolve_model(path: str | os.PathLike) -> ModelFiles:
    """Find a trained model from a bundle folder, its ``models/`` folder, or a model file.

    Accepted: a bundle root (``configs/inference.json`` + ``models/``), a folder holding
    ``model.pt`` and/or ``model.onnx``, or the path of ``model.pt`` / ``model.onnx`` itself.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise ExportError(f"model {p} does not exist (expected a bundle folder, its models/ folder, or model.pt)")
    bundle = None
    chosen: Path | None = None
    if p.is_file():
        models, chosen = p.parent, p
    elif (p / "configs" / "inference.json").is_file():
        bundle, models = p, p / "models"
    else:
        models = p
    if bundle is None and (models.parent / "configs" / "inference.json").is_file():
        bundle = models.parent
    ckpt = models / "model.pt"
    onnx_path = models / "model.onnx"
    ts_path = models / "model.ts"
    if chosen is not None:
        if chosen.suffix == ".onnx":
            onnx_path, ckpt = chosen, (ckpt if ckpt.is_file() else None)
        elif chosen.suffix in (".pt", ".pth"):
            ckpt = chosen
        elif chosen.suffix == ".ts":
            ts_path = chosen
    ckpt = ckpt if ckpt is not None and Path(ckpt).is_file() else None
    onnx_path = onnx_path if onnx_path.is_file() else None
    ts_path = ts_path if ts_path.is_file() else None
    int8_path = models / INT8_FILE
    int8_path = int8_path if int8_path.is_file() else None
    if ckpt is None and onnx_path is None:
        raise ExportError(f"no model.pt or model.onnx in {models} (train the bundle first, or point --model at it)")
    settings = dict(DEFAULTS)
    try:
        settings.update(json.loads((models / "model_settings.json").read_text()))
    except (OSError, ValueError):
        logger.warning("%s: no readable model_settings.json; assuming %s", models, DEFAULTS)
    info = {}
    try:
        info = json.loads((models / "export.json").read_text())
    except (OSError, ValueError):
        pass
    return ModelFiles(models, bundle, ckpt, onnx_path, ts_path, settings, info, int8_path)


def load_torch_network(files: ModelFiles) -> torch.nn.Module:
    """The PyTorch network of ``files`` with its trained weights, in eval mode."""
    from monai_bac.networks import build_network

    if files.checkpoint is None:
        raise ExportError(f"{files.models_dir}: no model.pt to load into PyTorch")
    net = build_network(files.network_name, weights_path=files.checkpoint)
    return net.eval()


def _example(size: int | tuple[int, int], seed: int = 0) -> torch.Tensor:
    h, w = (size, size) if isinstance(size, int) else size
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 1, int(h), int(w), generator=g)


def onnx_model_bytes(net: torch.nn.Module, example: torch.Tensor, opset: int = ONNX_OPSET,
                     dynamic: bool = True) -> bytes:
    """Serialised ONNX model of ``net`` (input ``image``, output ``logits``)."""
    buf = io.BytesIO()
    axes = {"image": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", 2: "height", 3: "width"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            try:
                torch.onnx.export(net, (example,), buf, input_names=["image"], output_names=["logits"],
                                  opset_version=opset, dynamic_axes=axes if dynamic else None, dynamo=False)
            except TypeError:  # torch without the ``dynamo`` argument
                torch.onnx.export(net, (example,), buf, input_names=["image"], output_names=["logits"],
                                  opset_version=opset, dynamic_axes=axes if dynamic else None)
    return buf.getvalue()


def ort_session(model: bytes | str | os.PathLike, threads: int | None = None):
    """An ONNX Runtime CPU session (all graph optimisations, sequential) with ``threads`` intra-op threads."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = int(threads)
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def check_onnx(model: bytes | str | os.PathLike, net: torch.nn.Module, example: torch.Tensor,
               threads: int | None = None) -> tuple[float, float]:
    """Largest absolute difference between ONNX Runtime's and PyTorch's logits on ``example``,
    and the largest absolute PyTorch logit (the scale the difference is judged against)."""
    sess = ort_session(model, threads)
    out = sess.run(None, {sess.get_inputs()[0].name: example.numpy()})[0]
    with torch.no_grad():
        ref = net(example).numpy()
    return float(np.abs(out - ref).max()), float(np.abs(ref).max())


def _tolerance(scale: float, atol: float, rtol: float) -> float:
    """Accepted logit difference: float32 runtimes sum in different orders, so the difference
    grows with the logits' magnitude (a trained network's reach tens)."""
    return float(atol) + float(rtol) * float(scale)


def export_onnx(net: torch.nn.Module, path: str | os.PathLike, example: torch.Tensor, *, overwrite: bool = False,
                opset: int = ONNX_OPSET, atol: float = 1e-3, rtol: float = 1e-4) -> dict:
    """Write ``net`` as ONNX to ``path`` and check it against PyTorch (raises :class:`ExportError`
    when the logits differ by more than ``atol + rtol * max|logit|``)."""
    t0 = time.perf_counter()
    data = onnx_model_bytes(net, example, opset)
    import onnx

    onnx.checker.check_model(onnx.load_from_string(data))
    diff, scale = check_onnx(data, net, example)
    if not diff <= _tolerance(scale, atol, rtol):
        raise ExportError(f"ONNX export differs from PyTorch by {diff:.3g} (> atol {atol:g} + rtol {rtol:g} x "
                          f"max |logit| {scale:.3g}) on a {tuple(example.shape)} input; not written")
    with atomic_write_path(path, overwrite=overwrite) as tmp:
        Path(tmp).write_bytes(data)
    return {"path": str(path), "format": "onnx", "opset": opset, "max_abs_diff": diff, "max_abs_logit": scale,
            "atol": atol, "rtol": rtol, "bytes": len(data), "seconds": time.perf_counter() - t0}


def export_torchscript(net: torch.nn.Module, path: str | os.PathLike, example: torch.Tensor, *,
                       overwrite: bool = False, atol: float = 1e-3, rtol: float = 1e-4) -> dict:
    """Trace ``net`` to TorchScript at ``path`` and check it against PyTorch (as :func:`export_onnx`)."""
    t0 = time.perf_counter()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, example, check_trace=False)
        traced = torch.jit.freeze(traced.eval()) if hasattr(torch.jit, "freeze") else traced
        ref = net(example)
        diff, scale = float((traced(example) - ref).abs().max()), float(ref.abs().max())
    if not diff <= _tolerance(scale, atol, rtol):
        raise ExportError(f"TorchScript export differs from PyTorch by {diff:.3g} (> atol {atol:g} + rtol {rtol:g} x "
                          f"max |logit| {scale:.3g}); not written")
    with atomic_write_path(path, overwrite=overwrite) as tmp:
        torch.jit.save(traced, str(tmp))
    return {"path": str(path), "format": "torchscript", "max_abs_diff": diff, "max_abs_logit": scale, "atol": atol,
            "rtol": rtol, "seconds": time.perf_counter() - t0}


def export_model(model: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                 formats: tuple[str, ...] = ("onnx", "torchscript"), *, check_size: int | None = None,
                 atol: float = 1e-3, rtol: float = 1e-4, overwrite: bool = False,
                 calibration: str | os.PathLike | None = None,
                 calibration_split: str = "validation", n_calibration: int = 8, n_check: int = 4,
                 min_mask_dice: float = 0.9, int8_scope: str = "decoder") -> dict[str, Any]:
    """Export a trained model (bundle, models folder or ``model.pt``) and check each export.

    Args:
        model: see :func:`resolve_model`.
        out_dir: where to write ``model.onnx`` / ``model.ts`` / ``model.int8.onnx`` /
            ``export.json``; default the model's own ``models/`` folder.
        formats: ``"onnx"``, ``"torchscript"`` and/or ``"onnx-int8"``
            (:mod:`monai_bac.quantization`; needs ``model.onnx``, made here when missing).
        check_size: side of the random check input; default the model's ``image_size`` (the
            size it is served at), rounded up to a multiple of 16.
        atol, rtol: a float export is refused when its logits differ from PyTorch's by more than
            ``atol + rtol * max|logit|`` (float32 runtimes sum in different orders).
        overwrite: replace existing exports.
        calibration: for ``onnx-int8``: a datalist, DICOM folder or file of representative
            images; the first ``n_calibration`` calibrate, the next ``n_check`` measure the
            agreement with float32 (the calibration images when there are no others).
        calibration_split: the datalist list to take them from (all lists when absent).
        min_mask_dice: refuse an int8 model whose masks agree less with float32.
        int8_scope: what ``onnx-int8`` quantizes: ``"decoder"`` or ``"all"``
            (:func:`monai_bac.quantization.quantize_int8`).

    Returns:
        the ``export.json`` content: one report per format with ``max_abs_diff``. Reports of
        earlier exports of the same checkpoint are kept.
    """
    from monai_bac.utils import ensure_new_file

    files = resolve_model(model)
    out = Path(out_dir) if out_dir else files.models_dir
    names = {"onnx": "model.onnx", "torchscript": "model.ts", "onnx-int8": INT8_FILE}
    formats = tuple("torchscript" if f == "ts" else f for f in formats)
    for fmt in formats:
        if fmt not in names:
            raise ExportError(f"unknown export format {fmt!r}; choose 'onnx', 'torchscript' or 'onnx-int8'")
        ensure_new_file(out / names[fmt], overwrite)  # fail before the (slow) export, not after
    if "onnx-int8" in formats and calibration is None:
        raise ExportError("onnx-int8 needs calibration images (--calibration DATALIST_OR_FOLDER)")
    net = load_torch_network(files)
    out.mkdir(parents=True, exist_ok=True)
    size = int(check_size or files.image_size)
    size = -(-size // 16) * 16
    example = _example(size)
    sha = files.checkpoint_sha256
    previous: dict[str, Any] = {}
    if files.export_info.get("checkpoint_sha256") == sha and out == files.models_dir:
        previous = dict(files.export_info.get("exports", {}))
    reports: dict[str, Any] = {}
    for fmt in formats:
        if fmt == "onnx":
            reports["onnx"] = export_onnx(net, out / "model.onnx", example, overwrite=overwrite, atol=atol, rtol=rtol)
        elif fmt == "torchscript":
            reports["torchscript"] = export_torchscript(net, out / "model.ts", example, overwrite=overwrite, atol=atol,
                                                        rtol=rtol)
        else:
            continue
        logger.info("%s: max |export - pytorch| = %.3g on a %d x %d input", fmt, reports[fmt]["max_abs_diff"], size, size)
    if "onnx-int8" in formats:
        reports["onnx-int8"] = _export_int8(files, out, sha, calibration, calibration_split, n_calibration, n_check,
                                            min_mask_dice, int8_scope, overwrite)
    info = {"checkpoint": str(files.checkpoint), "checkpoint_sha256": sha,
            "network_name": files.network_name, "image_size": files.image_size, "check_input": [1, 1, size, size],
            "torch": torch.__version__, "exports": {**previous, **reports}}
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    with atomic_write_path(out / "export.json", overwrite=True) as tmp:
        Path(tmp).write_text(json.dumps(info, indent=1) + "\n")
    info["exports"] = reports  # what this call did
    return info


def _export_int8(files: ModelFiles, out: Path, sha: str, calibration, split: str, n_calibration: int, n_check: int,
                 min_mask_dice: float, scope: str, overwrite: bool) -> dict:
    """``model.int8.onnx`` from ``model.onnx`` (:func:`monai_bac.quantization.quantize_int8`)."""
    from monai_bac.bundle_support import inference_items
    from monai_bac.cpu_inference import CPUInferenceEngine
    from monai_bac.quantization import quantize_int8

    fp32 = out / "model.onnx"
    if not fp32.is_file():
        raise ExportError(f"{fp32} is missing: export 'onnx' first (or together with 'onnx-int8')")
    items = inference_items(str(calibration), split)[:n_calibration + n_check]
    if not items:
        raise ExportError(f"no calibration images in {calibration}")
    # the served preprocessing and threshold, exactly as `monai-bac infer` runs them
    engine = CPUInferenceEngine(files.bundle_root or files.models_dir, engine="torch")
    inputs = [engine.network_input(item) for item in items]
    report = quantize_int8(fp32, out / INT8_FILE, inputs[:n_calibration], inputs[n_calibration:] or None,
                           threshold=engine.threshold, min_mask_dice=min_mask_dice, scope=scope, overwrite=overwrite)
    report.update(checkpoint_sha256=sha, calibration=str(calibration), calibration_split=split)
    return report

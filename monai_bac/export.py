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

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_bac.model_files import INT8_FILE, ModelError, ModelFiles, resolve_model
from monai_bac.runtime import load_torch_network, onnx_model_bytes, ort_session
from monai_bac.utils import atomic_write_path, write_json

__all__ = ["export_onnx", "export_torchscript", "export_model", "check_onnx", "ExportError", "ONNX_OPSET"]

logger = logging.getLogger("monai_bac.export")

#: the error of this module is the model files' error (a missing model, a failed check)
ExportError = ModelError
ONNX_OPSET = 17


def _example(size: int | tuple[int, int], seed: int = 0) -> torch.Tensor:
    h, w = (size, size) if isinstance(size, int) else size
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 1, int(h), int(w), generator=g)


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


def _logits(net: torch.nn.Module, example: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net.eval()(example)


def export_onnx(net: torch.nn.Module, path: str | os.PathLike, example: torch.Tensor, *, overwrite: bool = False,
                opset: int = ONNX_OPSET, atol: float = 1e-3, rtol: float = 1e-4) -> dict:
    """Write ``net`` as ONNX to ``path`` with MONAI's ``convert_to_onnx``, verified on ONNX Runtime:
    raises :class:`ExportError` when the logits differ by more than ``atol + rtol * max|logit|``."""
    t0 = time.perf_counter()
    scale = float(_logits(net, example).abs().max())
    tol = _tolerance(scale, atol, rtol)
    try:
        data = onnx_model_bytes(net, example, opset, verify_atol=tol)
    except AssertionError as e:
        raise ExportError(f"ONNX export differs from PyTorch by more than atol {atol:g} + rtol {rtol:g} x max |logit| "
                          f"{scale:.3g} on a {tuple(example.shape)} input; not written ({str(e).splitlines()[0]})") from None
    diff, _ = check_onnx(data, net, example)
    with atomic_write_path(path, overwrite=overwrite) as tmp:
        Path(tmp).write_bytes(data)
    return {"path": str(path), "format": "onnx", "opset": opset, "max_abs_diff": diff, "max_abs_logit": scale,
            "atol": atol, "rtol": rtol, "bytes": len(data), "seconds": time.perf_counter() - t0}


def export_torchscript(net: torch.nn.Module, path: str | os.PathLike, example: torch.Tensor, *,
                       overwrite: bool = False, atol: float = 1e-3, rtol: float = 1e-4) -> dict:
    """Trace ``net`` to TorchScript at ``path`` with MONAI's ``convert_to_torchscript``, verified
    against PyTorch (as :func:`export_onnx`)."""
    from monai.networks.utils import convert_to_torchscript

    t0 = time.perf_counter()
    ref = _logits(net, example)
    scale = float(ref.abs().max())
    try:
        traced = convert_to_torchscript(net, inputs=[example], use_trace=True, verify=True, device=torch.device("cpu"),
                                        rtol=0.0, atol=_tolerance(scale, atol, rtol), check_trace=False)
    except AssertionError as e:
        raise ExportError(f"TorchScript export differs from PyTorch by more than atol {atol:g} + rtol {rtol:g} x "
                          f"max |logit| {scale:.3g}; not written ({str(e).splitlines()[0]})") from None
    with torch.no_grad():
        diff = float((traced(example) - ref).abs().max())
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
    write_json(out / "export.json", info)
    info["exports"] = reports  # what this call did
    return info


def _export_int8(files: ModelFiles, out: Path, sha: str, calibration, split: str, n_calibration: int, n_check: int,
                 min_mask_dice: float, scope: str, overwrite: bool) -> dict:
    """``model.int8.onnx`` from ``model.onnx`` (:func:`monai_bac.quantization.quantize_int8`)."""
    from monai_bac.bundle_inference import BundleInference
    from monai_bac.bundle_support import DatalistError, inference_items
    from monai_bac.quantization import quantize_int8

    fp32 = out / "model.onnx"
    if not fp32.is_file():
        raise ExportError(f"{fp32} is missing: export 'onnx' first (or together with 'onnx-int8')")
    try:
        items = inference_items(str(calibration), split)[:n_calibration + n_check]
    except DatalistError as e:
        raise ExportError(f"--calibration {calibration}: {e}") from None
    # the served preprocessing and threshold, exactly as `monai-bac infer` runs them
    engine = BundleInference(files.bundle_root or files.models_dir, engine="torch")
    inputs = [engine.network_input(item) for item in items]
    report = quantize_int8(fp32, out / INT8_FILE, inputs[:n_calibration], inputs[n_calibration:] or None,
                           threshold=engine.threshold, min_mask_dice=min_mask_dice, scope=scope, overwrite=overwrite)
    report.update(checkpoint_sha256=sha, calibration=str(calibration), calibration_split=split)
    return report

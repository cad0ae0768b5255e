"""The network a trained model runs on: PyTorch, or ONNX Runtime behind the same ``nn.Module`` face.

The paper's footnote 2: a PACS has no GPU. ONNX Runtime runs the exported network faster on a
CPU than PyTorch eager, and its int8 model (:mod:`monai_bac.quantization`) faster still. It
enters the bundle's inference pipeline as a *network*: :class:`OnnxNetwork` takes and returns
torch tensors like the PyTorch network, so the bundle's ``inferer`` and every pre- and
post-transform stay exactly as ``configs/inference.json`` defines them
(:mod:`monai_bac.bundle_inference`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch

from monai_bac.model_files import INT8_FILE, ModelError, ModelFiles

__all__ = ["OnnxNetwork", "ort_session", "onnx_model_bytes", "load_torch_network", "load_network", "available_engines",
           "default_threads", "ENGINES", "PRECISIONS"]

logger = logging.getLogger("monai_bac.runtime")

ENGINES = ("auto", "onnx", "torch")
PRECISIONS = ("auto", "fp32", "int8")


def default_threads() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (not Linux)
        return max(1, os.cpu_count() or 1)


def available_engines() -> list[str]:
    """``["onnx", "torch"]`` when ONNX Runtime is installed, else ``["torch"]``."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return ["torch"]
    return ["onnx", "torch"]


def ort_session(model: bytes | str | os.PathLike, threads: int | None = None):
    """An ONNX Runtime CPU session (all graph optimisations) with ``threads`` intra-op threads."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = int(threads)
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def onnx_model_bytes(net: torch.nn.Module, example: torch.Tensor, opset: int = 17,
                     verify_atol: float | None = None) -> bytes:
    """``net`` as a serialised ONNX model (input ``image``, output ``logits``, batch / height /
    width dynamic), by MONAI's ``convert_to_onnx``; with ``verify_atol`` its ONNX Runtime logits
    must agree with PyTorch's within that absolute tolerance (``AssertionError`` otherwise)."""
    import warnings

    from monai.networks.utils import convert_to_onnx

    axes = {"image": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", 2: "height", 3: "width"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = convert_to_onnx(net.eval(), [example], input_names=["image"], output_names=["logits"],
                                opset_version=opset, dynamic_axes=axes, verify=verify_atol is not None,
                                device=torch.device("cpu"), use_ort=True, rtol=0.0, atol=float(verify_atol or 0.0),
                                dynamo=False)
    return model.SerializeToString()


class OnnxNetwork(torch.nn.Module):
    """An ONNX model served by ONNX Runtime, called like the PyTorch network it was exported from.

    ``forward`` takes a (N, 1, H, W) float tensor and returns the (N, 1, H, W) logits as a float32
    CPU tensor. Inference only (no gradients); ``.to()`` / ``.eval()`` are accepted and ignored.

    Args:
        model: path of a ``.onnx`` file, or its bytes.
        threads: intra-op threads (default: all cores this process may use).
        source: a description of where the model came from, for reports.
    """

    def __init__(self, model: bytes | str | os.PathLike, threads: int | None = None, source: str | None = None) -> None:
        super().__init__()
        self.session = ort_session(model, threads or default_threads())
        self.input_name = self.session.get_inputs()[0].name
        self.source = source or (str(model) if not isinstance(model, bytes) else "in memory")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arr = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input_name: arr})[0])

    def _apply(self, fn, recurse=True):  # .to(device) / .float(): nothing to move
        return self


def load_torch_network(files: ModelFiles) -> torch.nn.Module:
    """The PyTorch network of ``files`` with its trained weights, in eval mode."""
    from monai_bac.networks import build_network

    if files.checkpoint is None:
        raise ModelError(f"{files.models_dir}: no model.pt to load into PyTorch")
    return build_network(files.network_name, weights_path=files.checkpoint).eval()


def _onnx_network(files: ModelFiles, threads: int, precision: str) -> OnnxNetwork:
    int8_ready = files.onnx_int8 is not None and files.onnx_int8_is_current
    if precision == "int8" and not int8_ready:
        why = "is older than model.pt" if files.onnx_int8 is not None else "does not exist"
        raise ModelError(f"{files.models_dir}/{INT8_FILE} {why}: run `monai-bac export --model "
                         f"{files.models_dir} --formats onnx-int8 --calibration DATALIST` first")
    if precision in ("int8", "auto") and int8_ready:
        net = OnnxNetwork(files.onnx_int8, threads)
        net.precision = "int8"
        return net
    if files.onnx is not None and files.onnx_is_current:
        net = OnnxNetwork(files.onnx, threads)
    else:
        why = "is older than model.pt" if files.onnx is not None else "is missing"
        logger.warning("%s/model.onnx %s: exporting model.pt to ONNX in memory for this run "
                       "(run `monai-bac export --model %s` once to save the start-up time)",
                       files.models_dir, why, files.models_dir)
        example = torch.zeros(1, 1, files.image_size, files.image_size)
        net = OnnxNetwork(onnx_model_bytes(load_torch_network(files), example), threads,
                          source="model.pt (exported in memory)")
    net.precision = "fp32"
    return net


def load_network(files: ModelFiles, engine: str = "auto", precision: str = "auto",
                 threads: int | None = None) -> torch.nn.Module:
    """The trained network to serve: PyTorch (``engine="torch"``) or ONNX Runtime (``"onnx"``).

    ``engine="auto"`` is ONNX Runtime when installed. ``precision`` (ONNX only): ``"auto"`` is the
    int8 model when it exists and was made from the current ``model.pt``, else float32. The
    returned module has ``engine``, ``precision`` and ``source`` attributes for reports.
    """
    engine, precision = str(engine).lower(), str(precision).lower()
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if engine == "auto":
        engine = available_engines()[0]
    threads = int(threads or default_threads())
    net: Any
    if engine == "onnx":
        net = _onnx_network(files, threads, precision)
    else:
        if precision == "int8":
            raise ValueError("precision 'int8' needs the ONNX Runtime engine (engine='onnx')")
        torch.set_num_threads(threads)
        net = load_torch_network(files)
        net.precision, net.source = "fp32", str(files.checkpoint)
    net.engine = engine
    return net

"""Post-training int8 quantization of the exported ONNX network, for clinics without a GPU.

The paper's footnote 2: a PACS has no GPU. On a CPU the DeepLabV3+ network at 1600 x 1600 is
about 90 GFLOP; int8 arithmetic does the same work in roughly half the time on AVX2 CPUs. This
module makes ``models/model.int8.onnx`` from ``models/model.onnx`` with ONNX Runtime's static
quantization (QDQ format, per-channel int8 weights, uint8 activations whose ranges are
calibrated on images run through the model's own bundle preprocessing), and measures what
quantization does to the answer the user sees - the thresholded mask - before writing it:

* ``max_abs_diff``: the largest difference of the logits (int8 vs float32);
* ``mask_dice_mean`` / ``mask_dice_min``: Dice between the float32 and the int8 masks at the
  model's threshold, on images other than the calibration ones when there are enough;
* ``pixel_disagreement``: the share of pixels whose class changes.

What is quantized (``scope``):

* ``"decoder"`` (default): only the convolutions of the segmentation decoder (``/decoder/...``
  in the exported graph: for DeepLabV3+ the ASPP and the fusion block at 1/4 resolution, about
  half of the network's arithmetic); the encoder and the head stay float32. MobileNetV3's
  hard-swish and squeeze-excitation layers are known to need quantization-aware training for
  int8; the decoder's plain convolutions do not.
* ``"all"``: every layer but the first convolution (which reads the image itself).

How much int8 changes the answer depends on the trained network: measure it with
``benchmarks/validate_int8.py``. For the MobileNetV3 DeepLabV3+ trained on the phantom,
``"all"`` changes the masks too much and the ``min_mask_dice`` gate refuses it; ``"decoder"``
keeps them (docs/PERFORMANCE.md).

An int8 model whose masks agree with float32 below ``min_mask_dice`` is refused (not written).
``monai-bac infer`` uses ``model.int8.onnx`` when it exists and was made from the current
``model.pt`` (``--precision fp32`` to use float32 anyway).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_bac.metrics import mask_dice
from monai_bac.utils import atomic_write_path

__all__ = ["quantize_int8", "compare_masks", "INT8_SCOPES"]

logger = logging.getLogger("monai_bac.quantization")

#: what :func:`quantize_int8` may quantize (see the module docstring)
INT8_SCOPES = ("decoder", "all")


class _Reader:
    """ONNX Runtime's ``CalibrationDataReader`` protocol over a list of inputs."""

    def __init__(self, name: str, inputs: Sequence[np.ndarray]) -> None:
        self._it = iter([{name: x} for x in inputs])

    def get_next(self):
        return next(self._it, None)

    def rewind(self):  # pragma: no cover - not used by the MinMax calibrator
        raise NotImplementedError


def _node_selection(model_path: Path, scope: str) -> tuple[str, dict[str, list[str]], str]:
    """The graph's input name, ``quantize_static``'s node selection for ``scope``, and its description."""
    import onnx

    from monai_bac.model_files import ModelError as ExportError

    graph = onnx.load(str(model_path)).graph
    name = graph.input[0].name
    convs = [n for n in graph.node if n.op_type == "Conv"]
    if scope == "all":
        first = [n.name for n in convs if name in n.input]
        return name, {"nodes_to_exclude": first}, "every layer int8 but the first convolution"
    decoder = [n.name for n in convs if n.name.startswith("/decoder/")]
    if not decoder:
        raise ExportError(f"{model_path}: no /decoder/ convolutions in the graph; quantize with scope='all'")
    return name, {"nodes_to_quantize": decoder}, f"decoder convolutions int8 ({len(decoder)} of {len(convs)}), the rest float32"


def compare_masks(fp32: str | os.PathLike, int8: str | os.PathLike, inputs: Sequence[np.ndarray],
                  threshold: float, threads: int | None = None) -> dict[str, float]:
    """Agreement of the int8 and float32 networks on ``inputs``: logits and masks at ``threshold``."""
    from monai_bac.runtime import ort_session

    a, b = ort_session(fp32, threads), ort_session(int8, threads)
    name = a.get_inputs()[0].name
    p = min(max(float(threshold), 1e-6), 1.0 - 1e-6)
    cut = float(np.log(p / (1.0 - p)))  # the threshold on the probability, as a logit
    diffs, dices, changed, pixels = [], [], 0, 0
    for x in inputs:
        la, lb = a.run(None, {name: x})[0], b.run(None, {name: x})[0]
        diffs.append(float(np.abs(la - lb).max()))
        ma, mb = la[0, 0] > cut, lb[0, 0] > cut
        dices.append(mask_dice(ma, mb))
        changed += int(np.count_nonzero(ma ^ mb))
        pixels += ma.size
    return {"max_abs_diff": max(diffs), "mask_dice_mean": float(np.mean(dices)), "mask_dice_min": min(dices),
            "pixel_disagreement": changed / max(pixels, 1), "n_images": len(inputs)}


def quantize_int8(fp32_path: str | os.PathLike, out_path: str | os.PathLike, calibration: Sequence[np.ndarray],
                  check: Sequence[np.ndarray] | None = None, *, threshold: float = 0.5, min_mask_dice: float = 0.9,
                  scope: str = "decoder", overwrite: bool = False, threads: int | None = None) -> dict[str, Any]:
    """Quantize the ONNX model at ``fp32_path`` to int8 at ``out_path``, calibrated on ``calibration``.

    Args:
        fp32_path: the float32 ONNX model (``model.onnx``).
        out_path: where to write the int8 model (refused if it exists, unless ``overwrite``).
        calibration: preprocessed network inputs (``BundleInference.network_input``) whose
            activation ranges set the uint8 scales.
        check: inputs to measure the agreement on (default: the calibration inputs).
        threshold: the model's probability cut-off (``models/threshold.json``).
        min_mask_dice: refuse the int8 model when the mean mask Dice against float32 is lower.
        scope: ``"decoder"`` (the decoder's convolutions only) or ``"all"`` (every layer but
            the first convolution); see the module docstring.

    Returns:
        the report: ``path``, ``format`` (``onnx-int8``), the agreement figures of
        :func:`compare_masks`, ``calibration_images``, ``check_on_calibration_images``, ``seconds``.

    Raises:
        monai_bac.export.ExportError: no calibration input, or the agreement is below ``min_mask_dice``.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from monai_bac.model_files import ModelError as ExportError
    from monai_bac.utils import ensure_new_file

    if scope not in INT8_SCOPES:
        raise ValueError(f"int8 scope must be one of {INT8_SCOPES}, got {scope!r}")
    if not calibration:
        raise ExportError("int8 quantization needs calibration images (none given)")
    out_path = Path(out_path)
    ensure_new_file(out_path, overwrite)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quantized = Path(tmp) / "int8.onnx"
        # folds constants and infers shapes so that every Conv gets quantized
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        # "all" keeps the first convolution float32: it reads the z-scored image itself, whose
        # calcification signal lies in the far tail that 256 input levels flatten
        name, selection, described = _node_selection(prepared, scope)
        quantize_static(str(prepared), str(quantized), _Reader(name, calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        # MinMax keeps only each tensor's min and max per image (ReduceMin/Max
                        # nodes), so calibrating on full-size images needs little memory
                        calibrate_method=CalibrationMethod.MinMax, **selection)
        on_calibration = not check
        agreement = compare_masks(fp32_path, quantized, list(check or calibration), threshold, threads)
        if not agreement["mask_dice_mean"] >= min_mask_dice:
            raise ExportError(
                f"int8 quantization of {fp32_path} changes the masks too much: mean Dice against float32 "
                f"{agreement['mask_dice_mean']:.3f} < {min_mask_dice:g} on {agreement['n_images']} image(s); "
                "not written (keep float32, or calibrate on more representative images)")
        with atomic_write_path(out_path, overwrite=overwrite) as dst:
            Path(dst).write_bytes(quantized.read_bytes())
    report = {"path": str(out_path), "format": "onnx-int8", "scope": scope, "scheme": "QDQ, per-channel int8 "
              f"weights, uint8 activations, MinMax calibration; {described}", **agreement, "threshold": threshold,
              "min_mask_dice": min_mask_dice,
              "calibration_images": len(calibration), "check_on_calibration_images": on_calibration,
              "seconds": time.perf_counter() - t0}
    logger.info("int8: mask Dice vs float32 %.4f (min %.4f) on %d image(s), max |logit diff| %.3g",
                agreement["mask_dice_mean"], agreement["mask_dice_min"], agreement["n_images"], agreement["max_abs_diff"])
    return report

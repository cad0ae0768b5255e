"""Where a trained monai-bac model's files are: weights, settings, exports.

A trained model is the bundle's ``models/`` folder: ``model.pt`` (state dict of
:func:`monai_bac.networks.build_network`), ``model_settings.json`` (``network_name``,
``image_size``, ``normalisation``, ``crop_to_breast``), ``threshold.json`` and, after
``monai-bac export``, ``model.onnx`` / ``model.int8.onnx`` / ``model.ts`` with ``export.json``
(which checkpoint each was made from, by SHA-256, so a retrained ``model.pt`` is noticed).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

__all__ = ["ModelError", "ModelFiles", "resolve_model", "file_sha256", "DEFAULTS", "INT8_FILE"]

logger = logging.getLogger("monai_bac.model_files")

#: defaults of the model settings (as the bundle's inference.json)
DEFAULTS = {"network_name": "deeplabv3p_mnv3", "image_size": 1600, "normalisation": "log_gamma", "crop_to_breast": False}
#: the int8 model beside model.onnx (:mod:`monai_bac.quantization`)
INT8_FILE = "model.int8.onnx"


class ModelError(RuntimeError):
    """A trained model cannot be found, read or exported (or its export does not match PyTorch)."""


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
        if self.bundle_root is None:
            raise ModelError(f"{self.models_dir} is not inside a bundle (no ../configs/inference.json): pass the "
                             "bundle folder, or the inference config explicitly")
        return self.bundle_root / "configs" / "inference.json"


def resolve_model(path: str | os.PathLike) -> ModelFiles:
    """Find a trained model from a bundle folder, its ``models/`` folder, or a model file.

    Accepted: a bundle root (``configs/inference.json`` + ``models/``), a folder holding
    ``model.pt`` and/or ``model.onnx``, or the path of ``model.pt`` / ``model.onnx`` itself.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelError(f"model {p} does not exist (expected a bundle folder, its models/ folder, or model.pt)")
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
        raise ModelError(f"no model.pt or model.onnx in {models} (train the bundle first, or point --model at it)")
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

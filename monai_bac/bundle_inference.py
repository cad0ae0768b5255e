"""The bundle's inference workflow, one image at a time: what ``monai-bac infer`` runs.

``configs/inference.json`` is the single definition of inference: preprocessing (load, input
check, breast region, normalisation, resize), network, inferer and postprocessing (sigmoid,
``Invertd`` back to the image's grid, threshold, :class:`~monai_bac.transforms.QuantifyBACd`,
the writers). :class:`BundleInference` parses that file, replaces only the *network* (PyTorch
with the trained weights, or ONNX Runtime float32 / int8 behind the same ``nn.Module`` face,
:mod:`monai_bac.runtime`) and runs the config's own ``evaluator`` on each image, so an error in
one image is that image's error and the timings come from the engine's events.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from monai_bac.model_files import ModelFiles, resolve_model
from monai_bac.runtime import load_network

__all__ = ["BundleInference", "STAGES", "transform_error_cause"]

logger = logging.getLogger("monai_bac.bundle_inference")

#: timed stages of one image: the engine's batch fetch (preprocessing), forward pass, post-transforms
STAGES = ("preprocess", "network", "postprocess")


def transform_error_cause(e: BaseException) -> BaseException:
    """The error a transform raised, from inside MONAI's ``RuntimeError("applying transform ...")`` wrappers."""
    while isinstance(e, RuntimeError) and str(e).startswith("applying transform") and e.__cause__ is not None:
        e = e.__cause__
    return e


class _StageTimer:
    """Seconds per stage of the last iteration, from the engine's events."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._t: dict[str, float] = {}

    def attach(self, engine) -> None:
        from ignite.engine import Events
        from monai.engines.utils import IterationEvents

        def mark(name):
            return lambda _: self._t.__setitem__(name, time.perf_counter())

        engine.add_event_handler(Events.GET_BATCH_STARTED, mark("fetch"))
        engine.add_event_handler(Events.GET_BATCH_COMPLETED, mark("fetched"))
        engine.add_event_handler(IterationEvents.FORWARD_COMPLETED, mark("forward"))
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._done)

    def _done(self, _engine) -> None:
        t, now = self._t, time.perf_counter()
        self.seconds = {"preprocess": t["fetched"] - t["fetch"], "network": t["forward"] - t["fetched"],
                        "postprocess": now - t["forward"]}


class BundleInference:
    """Run a trained bundle's ``configs/inference.json`` on one image at a time.

    Args:
        model: a bundle folder, its ``models/`` folder, or ``model.pt`` / ``model.onnx``
            (:func:`monai_bac.model_files.resolve_model`).
        config_file: the inference config (default: the model's bundle's ``configs/inference.json``);
            a list of files is merged as ``monai.bundle`` does.
        engine, precision, threads: the network runtime (:func:`monai_bac.runtime.load_network`).
        overrides: config values to replace (``output_dir``, ``threshold``, ``overlay``, ``save_seg``,
            ``allow_processed``, ``calcium``, ...), as ``--key value`` on the bundle's command line.
    """

    def __init__(self, model: str | os.PathLike, *, config_file: str | os.PathLike | list | None = None,
                 engine: str = "auto", precision: str = "auto", threads: int | None = None,
                 overrides: Mapping[str, Any] | None = None) -> None:
        from monai.bundle import ConfigParser

        self.files: ModelFiles = resolve_model(model)
        configs = config_file if config_file is not None else self.files.config_file()
        self.config_files = [str(c) for c in (configs if isinstance(configs, (list, tuple)) else [configs])]
        self.network = load_network(self.files, engine, precision, threads)
        parser = ConfigParser()
        parser.read_config(self.config_files)
        parser["ckpt_dir"] = str(self.files.models_dir)
        if self.files.bundle_root is not None:
            parser["bundle_root"] = str(self.files.bundle_root)
        parser["device"] = "$torch.device('cpu')"
        parser["amp"] = False
        for key, value in (overrides or {}).items():
            parser[key] = value
        # the trained network replaces the config's (whose CheckpointLoader would load model.pt
        # again on every run); the data come one image at a time from __call__
        parser["network"] = self.network
        parser["handlers"] = []
        parser["dataloader"] = []
        self.parser = parser
        self.settings = {k: parser.get_parsed_content(k) for k in
                         ("network_name", "image_size", "normalisation", "crop_to_breast", "threshold")}
        self.preprocessing = parser.get_parsed_content("preprocessing")
        self.evaluator = parser.get_parsed_content("evaluator")
        self._timer = _StageTimer()
        self._timer.attach(self.evaluator)

    @property
    def threshold(self) -> float:
        return float(self.settings["threshold"])

    @property
    def image_size(self) -> int:
        return int(self.settings["image_size"])

    def describe(self) -> dict[str, Any]:
        """The runtime and settings, for reports."""
        return {"engine": self.network.engine, "precision": self.network.precision,
                "network_source": self.network.source, "model_dir": str(self.files.models_dir),
                "config_files": self.config_files,
                **{k: (v if isinstance(v, (str, int, float, bool)) else str(v)) for k, v in self.settings.items()}}

    def __call__(self, item: str | os.PathLike | Mapping[str, Any]) -> tuple[dict, dict[str, float]]:
        """Run the workflow on one image (a path, or a datalist entry with ``"image"``).

        Returns:
            the post-processed data (``pred`` on the image's grid, ``bac`` quantification,
            ``outputs`` written, ...) and the seconds per :data:`STAGES`.
        Raises:
            whatever the image's preprocessing or writing raises (``MammogramReadError``,
            ``InputRejected``, ``FileExistsError``, ...), unwrapped from MONAI's "applying
            transform" ``RuntimeError``.
        """
        from monai.data import DataLoader, Dataset

        entry = dict(item) if isinstance(item, Mapping) else {"image": str(item)}
        ev = self.evaluator
        ev.data_loader = DataLoader(Dataset([entry], transform=self.preprocessing), batch_size=1, num_workers=0)
        ev.state.epoch_length = 1
        # a run ended by an exception leaves ignite's run generator behind, and the next run()
        # would resume that finished generator instead of starting on the new image
        ev._internal_run_generator = None
        try:
            ev.run()
        except RuntimeError as e:
            raise transform_error_cause(e) from None
        # MONAI's post-processing returns the keys that came with the batch in state.batch
        return {**ev.state.batch[0], **ev.state.output[0]}, dict(self._timer.seconds)

    def network_input(self, item: str | os.PathLike | Mapping[str, Any]) -> np.ndarray:
        """The preprocessed image exactly as the network receives it, (1, 1, H, W) float32."""
        entry = dict(item) if isinstance(item, Mapping) else {"image": str(item)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = self.preprocessing(entry)
        return np.ascontiguousarray(np.asarray(d["image"])[None], dtype=np.float32)


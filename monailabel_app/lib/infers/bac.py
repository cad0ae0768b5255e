"""Inference of the BAC bundle for MONAI Label.

Everything about the model comes from the bundle folder (default: the repository's ``bundle/``):

* ``configs/inference.json``, the one definition of inference that the bundle and
  ``monai-bac infer`` run too: ``preprocessing`` (load the raw mammogram, breast region, input
  check, normalisation, crop, resize), ``network_def``, ``inferer`` and ``postprocessing``
  (sigmoid, ``Invertd`` back to the image's grid, ``AsDiscreted`` at the validated threshold,
  ``QuantifyBACd``). :class:`BACInfer` hands these to ``BasicInferTask.__call__`` through its
  ``pre_transforms`` / ``inferer`` / ``post_transforms`` hooks; the config's file writers
  (``SaveBACd``, ``SaveBACSegd``, ``SaveBACReportd``) are left out: MONAI Label returns the
  label itself, from :meth:`BACInfer.writer`, with the quantification in its result.
* ``models/model.pt`` (weights), ``models/threshold.json`` and ``models/model_settings.json``
  (image size, normalisation, network), which ``inference.json`` reads.
* ``configs/metadata.json``: description and output channel names (the label names).

When any of these files changes (e.g. training has just written new weights) the next request
re-reads the config and reloads the weights; no restart is needed. Without ``models/model.pt``
the model is still listed by ``/info`` (its description and ``weights`` entry say that it is not
trained yet) and ``/infer`` answers HTTP 503 with what to do.

The label comes back on the image's own pixel grid (same rows x columns), with the geometry 3D
Slicer / ITK give the image, so it loads as a segmentation over it (:mod:`lib.geometry`), in the
format the request asks for with MONAI Label's ``result_extension``: ``.nii.gz`` (default) or
``.nii`` (NIfTI, RAS affine) or ``.nrrd`` (what 3D Slicer's MONAI Label module asks for: a 3D
one-slice NRRD in LPS ``space``, gzip-encoded unless ``result_compress`` is false). Any other
extension is refused with HTTP 400 before the model runs. ``result_dtype`` (Slicer: ``uint8``)
may be any integer type.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from monailabel.interfaces.tasks.infer_v2 import InferType
from monailabel.tasks.infer.basic_infer import BasicInferTask
from monailabel.utils.others.generic import name_to_device

from lib.errors import AppError, bad_request, internal, root_cause, scrub, unavailable, unprocessable
from lib.geometry import LABEL_WRITERS, write_label_like

logger = logging.getLogger(__name__)

#: colour of each label (RGB 0-255), declared in /info and in every infer result
DEFAULT_LABEL_COLORS = {"bac": [255, 64, 0]}
MODEL_FILES = ("model.pt", "threshold.json", "model_settings.json")
CONFIG_FILE = os.path.join("configs", "inference.json")
METADATA_FILE = os.path.join("configs", "metadata.json")
DEFAULT_RESULT_EXTENSION = ".nii.gz"


_RESULTS_DIR: str | None = None
_RESULTS_LOCK = threading.Lock()


def results_dir() -> str:
    """The folder this server writes the label files it answers with (MONAI Label deletes each one
    after its response): ``<temporary folder>/monai_bac_results_<uid>``, made private (0700) and
    reused by later runs, so a stopped server leaves no folder behind; one that is not a private
    folder of this user (another user's, a link) is not used, and a fresh one is made instead.

    Not the temporary folder's root: MONAI Label's Python client (the one the Slicer module uses)
    saves a result as ``<its temporary folder>/<the server's file name>``, so with client and
    server on one machine and the default folders the client's copy *was* the server's file, and
    the server's clean-up after the response deleted the result under the client."""
    global _RESULTS_DIR
    with _RESULTS_LOCK:
        if _RESULTS_DIR is None or not os.path.isdir(_RESULTS_DIR):
            _RESULTS_DIR = _private_folder(tempfile.gettempdir(), getattr(os, "getuid", lambda: None)())
        return _RESULTS_DIR


def _private_folder(parent: str, uid: int | None) -> str:
    """``<parent>/monai_bac_results_<uid>`` when it is (or can be made) a directory of ``uid``
    (None: no owners on this system) that nobody else may read or write; else a fresh one."""
    path = os.path.join(parent, f"monai_bac_results_{'user' if uid is None else uid}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    mine = uid is None or st.st_uid == uid
    if stat.S_ISDIR(st.st_mode) and mine and not st.st_mode & 0o077:
        return path
    return tempfile.mkdtemp(prefix="monai_bac_results_")


def _file_signature(path: str) -> tuple[int, int] | None:
    try:
        s = os.stat(path)
    except OSError:
        return None
    return (s.st_mtime_ns, s.st_size)


@dataclass
class BundleSnapshot:
    """One consistent reading of the bundle: its transforms, network and threshold."""

    signature: tuple
    device: str
    preprocessing: Callable
    postprocessing: list
    inferer: Callable
    network: torch.nn.Module
    threshold: float
    settings: dict = field(default_factory=dict)
    model_id: str = ""

    def preprocess(self, path: str) -> dict:
        return self.preprocessing({"image": path})


def _read_json(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def result_format(request: dict) -> tuple[str, np.dtype, bool]:
    """(extension, dtype, compress) of the label file a request asks for with MONAI Label's
    ``result_extension`` / ``result_dtype`` / ``result_compress`` (3D Slicer sends ``.nrrd`` and ``uint8``).

    Raises HTTP 400 naming the parameter for an extension the app cannot write or a non-integer dtype.
    """
    extension = str(request.get("result_extension") or DEFAULT_RESULT_EXTENSION).strip()
    extension = extension if extension.startswith(".") else "." + extension
    if extension.lower() not in LABEL_WRITERS:
        raise bad_request(f"result_extension {extension!r} is not a label format of this app; ask for one of "
                          f"{', '.join(LABEL_WRITERS)} (3D Slicer's MONAI Label module asks for .nrrd)")
    try:
        dtype = np.dtype(request.get("result_dtype") or "uint8")
    except TypeError:
        dtype = None
    if dtype is None or not np.issubdtype(dtype, np.integer):
        raise bad_request(f"result_dtype {request.get('result_dtype')!r} is not an integer type; a label is 0/1 "
                          "(ask for uint8, as 3D Slicer does, or another integer type)")
    compress = str(request.get("result_compress", True)).strip().lower() not in ("0", "false", "no", "off")
    return extension.lower(), dtype, compress


class BACInfer(BasicInferTask):
    """Segment BAC in a raw mammogram with the bundle's inference config and current weights."""

    def __init__(self, bundle_path: str, conf: dict | None = None, label_colors: dict | None = None,
                 studies: str | None = None):
        self.bundle_path = os.path.abspath(bundle_path)
        self.config_path = os.path.join(self.bundle_path, CONFIG_FILE)
        if not os.path.isfile(self.config_path):
            raise ValueError(f"bundle {self.bundle_path} has no {CONFIG_FILE}; pass --conf bundle_path /path/to/bundle")
        self.metadata = _read_json(os.path.join(self.bundle_path, METADATA_FILE))
        outputs = self.metadata.get("network_data_format", {}).get("outputs", {})
        channel_def = next(iter(outputs.values()), {}).get("channel_def", {"0": "bac"})
        # one sigmoid channel per class: channel k is label value k + 1 in the returned mask
        labels = {str(v).lower(): int(k) + 1 for k, v in channel_def.items() if str(v).lower() != "background"}
        self.label_colors = dict(label_colors or DEFAULT_LABEL_COLORS)
        self.studies = studies
        self.models_dir = os.path.join(self.bundle_path, "models")
        self._lock = threading.Lock()
        self._snapshot: BundleSnapshot | None = None
        super().__init__(
            path=os.path.join(self.models_dir, "model.pt"),
            network=None,
            type=InferType.SEGMENTATION,
            labels=labels,
            dimension=2,
            description=self.metadata.get("name", "BAC segmentation"),
            load_strict=True,
            preload=False,
        )
        self._config["label_colors"] = self.label_colors

    # --- state ------------------------------------------------------------------------------
    def is_valid(self) -> bool:
        return True  # listed even before training: /info says whether weights exist

    def _signature(self) -> tuple:
        return tuple(_file_signature(os.path.join(self.models_dir, f)) for f in MODEL_FILES) + (
            _file_signature(self.config_path),)

    def has_weights(self) -> bool:
        return os.path.isfile(os.path.join(self.models_dir, "model.pt"))

    def weights_status(self) -> dict[str, Any]:
        model = os.path.join(self.models_dir, "model.pt")
        if not os.path.isfile(model):
            return {"trained": False, "model": "models/model.pt",
                    "message": "no trained weights yet: train the model (POST /train/bac, or the bundle's "
                               "training workflow) before running inference"}
        settings = _read_json(os.path.join(self.models_dir, "model_settings.json"))
        threshold = _read_json(os.path.join(self.models_dir, "threshold.json")).get("threshold")
        stat = os.stat(model)
        return {"trained": True, "model": "models/model.pt", "modified": int(stat.st_mtime),
                "size_bytes": stat.st_size, "threshold": threshold,
                "settings": {k: settings.get(k) for k in ("network_name", "image_size", "normalisation",
                                                           "crop_to_breast") if k in settings}}

    def info(self) -> dict[str, Any]:
        i = super().info()
        status = self.weights_status()
        description = self.metadata.get("description") or self.description
        if not status["trained"]:
            description = f"NOT TRAINED YET ({status['message']}). {description}"
        i.update(description=description, weights=status, label_colors=self.label_colors,
                 version=self.metadata.get("version"), bundle=self.bundle_path)
        return i

    def clear(self):
        with self._lock:
            self._snapshot = None

    clear_cache = clear

    def snapshot(self, device: str = "cpu") -> BundleSnapshot:
        """The bundle's transforms, network and threshold for the current files (reloaded when they change)."""
        signature = self._signature()
        with self._lock:
            snap = self._snapshot
            if snap is not None and snap.signature == signature and snap.device == device:
                return snap
            if signature[0] is None:
                raise unavailable("model 'bac' has no trained weights yet (models/model.pt is missing in the bundle); "
                                  "train it first: POST /train/bac (or the bundle's training workflow)")
            snap = self._load(signature, device)
            self._snapshot = snap
            logger.info("loaded bundle %s (threshold %.3f, settings %s)", self.bundle_path, snap.threshold,
                        snap.settings)
            return snap

    def _load(self, signature: tuple, device: str) -> BundleSnapshot:
        from monai.bundle import ConfigParser
        from monai.transforms import Compose, SaveImaged

        from monai_bac.transforms import SaveBACd, SaveBACReportd, SaveBACSegd

        try:
            parser = ConfigParser()
            parser.read_config(self.config_path)
            parser["bundle_root"] = self.bundle_path
            pre = parser.get_parsed_content("preprocessing", instantiate=True)
            post = parser.get_parsed_content("postprocessing", instantiate=True)  # Invertd shares `pre`
            inferer = parser.get_parsed_content("inferer", instantiate=True)
            network = parser.get_parsed_content("network_def", instantiate=True)
            threshold = float(parser.get_parsed_content("threshold"))
        except Exception as e:
            raise unavailable(f"the bundle's {CONFIG_FILE} cannot be used: "
                              f"{scrub(str(root_cause(e)), self.studies, self.bundle_path)}") from None
        model_path = os.path.join(self.models_dir, "model.pt")
        try:
            state = torch.load(model_path, map_location=device, weights_only=True)
            for key in ("model", "network", "state_dict"):
                if isinstance(state, dict) and isinstance(state.get(key), dict):
                    state = state[key]
            network.load_state_dict(state, strict=self.load_strict)
        except Exception as e:
            raise unavailable(f"the weights models/model.pt cannot be loaded into the bundle's network ("
                              f"{type(root_cause(e)).__name__}: {scrub(str(root_cause(e)), self.bundle_path)}); "
                              "if training is writing them right now, retry in a moment") from None
        network.to(device).eval()
        # MONAI Label returns the label itself: the bundle's file writers are left out
        post_list = list(post.transforms) if isinstance(post, Compose) else list(post)
        post_list = [t for t in post_list if not isinstance(t, (SaveBACd, SaveBACSegd, SaveBACReportd, SaveImaged))]
        return BundleSnapshot(signature=signature, device=device, preprocessing=pre, postprocessing=post_list,
                              inferer=inferer, network=network, threshold=threshold,
                              settings=_read_json(os.path.join(self.models_dir, "model_settings.json")),
                              model_id="%d-%d" % signature[0])

    # --- BasicInferTask hooks: the bundle's inference.json, run by BasicInferTask.__call__ ----
    def _snap(self, data) -> BundleSnapshot:
        return self.snapshot(name_to_device((data or {}).get("device")))

    def pre_transforms(self, data=None):
        return list(self._snap(data).preprocessing.transforms)

    def inferer(self, data=None):
        return self._snap(data).inferer

    def post_transforms(self, data=None):
        return list(self._snap(data).postprocessing)

    def _get_network(self, device, data):
        return self.snapshot(device).network

    def run_pre_transforms(self, data, transforms):
        try:
            return super().run_pre_transforms(data, transforms)
        except AppError:
            raise
        except Exception as e:
            image_id = data.get("image_id") or os.path.basename(str(data.get("image_path", "")))
            cause = root_cause(e)
            message = scrub(str(cause), self.studies, self.bundle_path).replace(str(data.get("image_path")), image_id)
            raise unprocessable(f"image {image_id!r} cannot be segmented: it could not be read or preprocessed as a "
                                f"raw mammogram ({type(cause).__name__}: {message})") from None

    def writer(self, data, extension=None, dtype=None):
        """The label on the image's grid in the geometry 3D Slicer gives the image, in the format of
        ``result_extension`` (:func:`result_format`), and the bundle's quantification
        (:class:`monai_bac.transforms.QuantifyBACd`) in the result."""
        asked = {"result_extension": extension or data.get("result_extension"),
                 "result_dtype": dtype or data.get("result_dtype"),
                 "result_compress": data.get("result_compress", True)}
        extension, dtype, compress = result_format(asked)
        pred = data["pred"]
        mask = (np.asarray(pred.detach().cpu())[0] > 0).astype(np.uint8)
        spacing = tuple(float(s) for s in pred.meta.get("spacing_mm"))
        image_path = str(data.get("image_path") or data.get("image"))
        fd, out_path = tempfile.mkstemp(suffix=extension, prefix="tmp_bac_", dir=results_dir())
        os.close(fd)
        write_label_like(mask, image_path, spacing, out_path, dtype=dtype, compress=compress)
        snap = self._snap(data)
        bac = data.get("bac") or {}
        result = {
            "label_colors": self.label_colors,
            "image": data.get("image_id") or os.path.basename(image_path),
            "shape": [int(s) for s in mask.shape],
            "spacing_mm": list(spacing),
            "threshold": snap.threshold,
            "bac_pixels": int(mask.sum()),
            "bac_area_mm2": bac.get("area_mm2"),
            "bac_length_mm": bac.get("length_mm"),
            "bac_segments": bac.get("n_segments"),
            "bac_calcium_mg": bac.get("calcium_mg"),
            "bac_measured_at": bac.get("measured_at"),
            "quality_warning": data.get("quality_warning"),
            "model": {"id": snap.model_id, **{k: snap.settings.get(k) for k in ("network_name", "image_size",
                                                                                  "normalisation")}},
        }
        return out_path, result

    def __call__(self, request, callbacks=None):
        """``BasicInferTask.__call__`` (pre -> inferer -> post -> writer), with failures as clear HTTP errors."""
        req = dict(request)
        req.setdefault("image_id", os.path.basename(str(req.get("image"))))
        result_format(req)  # a bad result_extension / result_dtype is refused before the model runs
        try:
            return super().__call__(req, callbacks)
        except AppError:
            raise
        except Exception as e:
            cause = root_cause(e)
            logger.exception("inference failed for %s", req["image_id"])
            raise internal(f"inference failed for image {req['image_id']!r}: {type(cause).__name__}: "
                           f"{scrub(str(cause), self.studies, self.bundle_path)} (details in the server log)") from None

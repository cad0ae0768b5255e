"""Fine-tuning the BAC bundle on the labels annotators saved (``labels/final``).

A thin :class:`~monailabel.tasks.train.bundle.BundleTrainTask`: the recipe is the bundle's own
``configs/train.json`` (loss, optimiser, augmentation, validation, checkpointing by validation
loss into ``models/model.pt`` and the threshold sweep into ``models/threshold.json``). The app
only swaps in the datastore's image/label pairs and:

* starts from the current weights (``pretrained``, MONAI Label's CheckpointLoader);
* keeps the trained model's own settings (network, image size, normalisation, crop) from
  ``models/model_settings.json``, so fine-tuning never changes what the weights expect;
* does not run the automatic label correction on annotators' labels (they are corrected already);
* validates on the training labels themselves when there are too few labels to hold some out
  (the model and threshold are then chosen in-sample; the log says so).

The new weights replace ``models/model.pt`` atomically, and the next ``/infer`` uses them.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

import monai.bundle
from monailabel.tasks.train.bundle import BundleTrainTask

from lib.errors import AppError, conflict, internal, root_cause, scrub
from lib.geometry import pixel_order_label

logger = logging.getLogger(__name__)

#: trained-model settings carried over into fine-tuning
KEPT_SETTINGS = ("network_name", "normalisation", "image_size", "crop_to_breast")


def pad_to_batches(items: list, batch_size: int) -> list:
    """``items`` repeated (in order) up to a whole number of batches, at least one.

    The network's batch normalisation cannot train on a batch of one image, which a short
    list (one or two annotated images) or a remainder of one would give; each repeat is
    augmented differently by the recipe's random transforms.
    """
    if not items or batch_size <= 1:
        return list(items)
    target = max(batch_size, -(-len(items) // batch_size) * batch_size)
    return [items[i % len(items)] for i in range(target)]


class BACTrain(BundleTrainTask):
    """Fine-tune the bundle's network on ``labels/final`` with the bundle's training recipe."""

    def __init__(self, bundle_path: str, conf: dict | None = None, description: str | None = None):
        super().__init__(os.path.abspath(bundle_path), conf or {}, model_dict_key="model", load_strict=True)
        if not self.valid:
            raise ValueError(f"bundle {bundle_path} has no configs/train.json; pass --conf bundle_path /path/to/bundle")
        if description:
            self.description = description
        self._run_lock = threading.Lock()

    def _models_dir(self) -> str:
        return os.path.join(self.bundle_path, "models")

    def _model_settings(self) -> dict[str, Any]:
        try:
            with open(os.path.join(self._models_dir(), "model_settings.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def _default_epochs(self) -> int:
        """The epochs of the bundle's own recipe (``train.json`` ``profiles``) for this machine."""
        import torch

        from monai_bac.bundle_support import training_recipe

        profile = "gpu" if torch.cuda.is_available() else "cpu"
        try:
            return int(training_recipe(os.path.join(self.bundle_path, "configs", "train.json"), profile)["num_epochs"])
        except (ValueError, KeyError, TypeError) as e:  # a bundle without the recipe's profiles
            logger.warning("%s; fine-tuning defaults to 10 epochs", e)
            return 10

    def config(self):
        c = super().config()
        c["max_epochs"] = self._default_epochs()  # the bundle's profile, not MONAI Label's 50
        c["val_split"] = 0.2
        return c

    def stats(self):
        path = os.path.join(self._models_dir(), "model.pt")
        if not os.path.isfile(path):
            return {"trained": False}
        try:
            with open(os.path.join(self._models_dir(), "threshold.json")) as f:
                threshold = json.load(f).get("threshold")
        except (OSError, ValueError):
            threshold = None
        return {"trained": True, "modified": int(os.stat(path).st_mtime), "threshold": threshold,
                "settings": {k: v for k, v in self._model_settings().items() if k in KEPT_SETTINGS}}

    def __call__(self, request, datastore):
        defaults = {k: (v[0] if isinstance(v, list) and v else v) for k, v in self.config().items()}
        req = {**defaults, **{k: v for k, v in request.items() if v is not None}}
        n_labels = len(datastore.datalist())
        if n_labels == 0:
            raise conflict("nothing to train on: no corrected labels in labels/final yet; save at least one "
                           "correction (PUT /datastore/label?image=<id>) first")
        if not self._run_lock.acquire(blocking=False):
            raise conflict("a training run of model 'bac' is already running in this server; wait for it to finish")
        if not req.get("run_id"):
            req["run_id"] = "run"
        try:
            logger.info("fine-tuning on %d labelled images for %s epochs", n_labels, req.get("max_epochs"))
            super().__call__(req, datastore)
        except AppError:
            raise
        except Exception as e:
            cause = root_cause(e)
            logger.exception("training failed")
            raise internal(f"training failed: {type(cause).__name__}: "
                           f"{scrub(str(cause), getattr(datastore, '_datastore_path', None), self.bundle_path)} "
                           "(details in the server log); the previous weights are unchanged unless an epoch "
                           "finished") from None
        finally:
            self._run_lock.release()
        return {"labels": n_labels, "max_epochs": int(req["max_epochs"]), **self.stats()}

    def _fetch_datalist(self, request, datastore):
        """The datastore's (image, final label) pairs; a label drawn over a DICOM whose orientation flips or
        turns the image is handed to the bundle as a pixel-order copy (:func:`lib.geometry.pixel_order_label`)."""
        pairs = super()._fetch_datalist(request, datastore)
        base = getattr(datastore, "_datastore_path", None) or self.bundle_path
        out_dir = os.path.join(base, ".monai_bac", "train_labels")
        return [{"image": d["image"], "label": pixel_order_label(d["label"], d["image"], out_dir)} for d in pairs]

    def _batch_size(self) -> int:
        try:
            return max(1, int(self.bundle_config.get_parsed_content("batch_size")))
        except Exception:
            return 1

    def _partition_datalist(self, datalist, request, shuffle=False):
        train, val = super()._partition_datalist(datalist, request, shuffle)
        if not val:
            logger.warning("only %d labelled images: validating on the training images themselves (model and "
                           "threshold are chosen in-sample)", len(train))
            val = list(train)
        return pad_to_batches(train, self._batch_size()), val

    def _load_checkpoint(self, model_pytorch, pretrained, train_handlers):
        """Start from the current weights (``pretrained``, default) or from scratch; decided per request.

        MONAI Label inserts its CheckpointLoader into the parsed config's handler list, which
        outlives the request; it is removed here first so that each request decides afresh.
        """
        train_handlers[:] = [h for h in train_handlers
                             if not (isinstance(h, dict) and h.get("_target_") == "CheckpointLoader")]
        if str(pretrained).lower() in ("1", "true", "yes") and os.path.isfile(model_pytorch):
            super()._load_checkpoint(model_pytorch, True, train_handlers)
        else:
            logger.info("training from scratch (pretrained=%s, %s exists: %s)", pretrained, model_pytorch,
                        os.path.isfile(model_pytorch))

    def _update_overrides(self, overrides):
        settings = self._model_settings()
        for key in KEPT_SETTINGS:
            if key in settings and settings[key] is not None:
                overrides[key] = settings[key]
        overrides["correct_labels"] = False
        overrides["resume"] = False
        # MONAI Label replaces the datasets' data; without this the recipe's own `datalist` expression
        # would still build the default phantom cohort the first time (a minute, for nothing)
        overrides["datalist"] = None
        return overrides

    def run_single_gpu(self, request, overrides):
        monai.bundle.run(
            run_id=request.get("run_id", "run"),
            init_id="initialize",
            final_id="finalize",
            meta_file=self.bundle_metadata_path,
            config_file=self.bundle_config_path,
            logging_file=False,  # keep the server's logging as it is
            **overrides,
        )

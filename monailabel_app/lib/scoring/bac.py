"""Scoring methods behind the active-learning strategies (algorithms: :mod:`monai_bac.active_learning`).

Each method scores the unlabeled images and stores the result in the image's info in the
datastore (``GET /datastore/image/info?image=<id>`` shows it), under:

* ``bac_tta_uncertainty`` (method ``tta_uncertainty``): the variance of the BAC probability
  under test-time augmentation (flips, intensity scaling), integrated over the image in mm^2,
  with the weights it was computed with (``model``). Re-scored when the weights change.
* ``bac_label_correction`` (method ``label_correction``): the fraction of the third-party
  label's skeleton length (mm) that the physics-based label correction removes, plus the
  pixels fraction and component counts. The third-party labels are the datastore's label tag
  ``tpa`` (``labels/tpa/<id>.nii.gz``; ``--conf tpa_tag <tag>`` to use another). Re-scored when
  the label file changes.

Up-to-date scores are skipped (``{"force": true}`` in the request re-scores everything), so
MONAI Label's automatic re-scoring (at start-up, after training and after each next-sample
request) only does new work. An image that cannot be scored gets ``{"score": null, "error": ...}``
and does not stop the others.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Sequence

from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.scoring import ScoringMethod
from monailabel.utils.others.generic import name_to_device

from monai_bac.active_learning import (
    DEFAULT_FLIPS,
    DEFAULT_INTENSITY_SCALES,
    correction_change_from_files,
    tta_probabilities,
    tta_uncertainty,
)

from lib.errors import AppError, root_cause, scrub

logger = logging.getLogger(__name__)

TTA_KEY = "bac_tta_uncertainty"
CORRECTION_KEY = "bac_label_correction"
#: bump when the correction score's definition changes, so stored scores are recomputed
CORRECTION_VERSION = 1


def _images(request, datastore: Datastore) -> list[str]:
    if request.get("images") == "all":
        return list(datastore.list_images())
    return list(datastore.get_unlabeled_images())


def _error(e: BaseException, datastore: Datastore) -> str:
    cause = root_cause(e)
    return f"{type(cause).__name__}: {scrub(str(cause), getattr(datastore, '_datastore_path', None))}"


class TTAUncertainty(ScoringMethod):
    """Test-time-augmentation variance of the BAC probability (the ``tta_uncertainty`` strategy's score)."""

    def __init__(self, infer_task, flips: Sequence[Sequence[int]] = DEFAULT_FLIPS,
                 intensity_scales: Sequence[float] = DEFAULT_INTENSITY_SCALES):
        super().__init__("Uncertainty of the BAC model: variance of its probability under test-time augmentation "
                         f"({len(flips)} flips x {len(intensity_scales)} intensity scales), integrated in mm^2")
        self.infer_task = infer_task
        self.flips = tuple(tuple(f) for f in flips)
        self.intensity_scales = tuple(float(s) for s in intensity_scales)

    def __call__(self, request, datastore: Datastore) -> dict[str, Any]:
        device = name_to_device(request.get("device"))
        try:
            snap = self.infer_task.snapshot(device)
        except AppError as e:
            return {"method": "tta_uncertainty", "error": e.detail, "scored": 0}
        force = bool(request.get("force", False))
        scored, skipped, failed = 0, 0, {}
        for image_id in _images(request, datastore):
            old = datastore.get_image_info(image_id).get(TTA_KEY) or {}
            if not force and old.get("model") == snap.model_id and "score" in old:
                skipped += 1
                continue
            entry: dict[str, Any] = {"model": snap.model_id, "ts": int(time.time())}
            try:
                data = snap.preprocess(datastore.get_image_uri(image_id))
                probs = tta_probabilities(snap.network, data["image"], self.flips, self.intensity_scales,
                                          device=device)
                stats = tta_uncertainty(probs, image=data["image"], threshold=snap.threshold)
                entry.update(score=stats["variance_mm2"], **stats)
                scored += 1
            except Exception as e:  # one bad image must not stop the scoring of the others
                entry.update(score=None, error=_error(e, datastore))
                failed[image_id] = entry["error"]
            datastore.update_image_info(image_id, {TTA_KEY: entry})
        logger.info("tta_uncertainty: %d scored, %d up to date, %d failed", scored, skipped, len(failed))
        return {"method": "tta_uncertainty", "model": snap.model_id, "scored": scored, "skipped": skipped,
                "failed": failed}


class LabelCorrectionChange(ScoringMethod):
    """Fraction of the third-party label that the label correction removes (the ``label_correction`` score)."""

    def __init__(self, tpa_tag: str = "tpa", correction_kwargs: dict | None = None):
        super().__init__(f"How much the physics-based label correction changes the third-party label (tag "
                         f"'{tpa_tag}'): fraction of its skeleton length removed")
        self.tpa_tag = tpa_tag
        self.correction_kwargs = dict(correction_kwargs or {})

    def __call__(self, request, datastore: Datastore) -> dict[str, Any]:
        force = bool(request.get("force", False))
        scored, skipped, missing, failed = 0, 0, 0, {}
        for image_id in _images(request, datastore):
            old = datastore.get_image_info(image_id).get(CORRECTION_KEY) or {}
            label_path = datastore.get_label_uri(image_id, self.tpa_tag)
            if not label_path or not os.path.isfile(label_path):
                missing += 1
                if old.get("score") is not None or not old:
                    datastore.update_image_info(image_id, {CORRECTION_KEY: {
                        "score": None, "reason": f"no third-party label (tag '{self.tpa_tag}')"}})
                continue
            stat = os.stat(label_path)
            signature = f"{stat.st_mtime_ns}-{stat.st_size}"
            if (not force and old.get("label") == signature and old.get("version") == CORRECTION_VERSION
                    and "score" in old):
                skipped += 1
                continue
            entry: dict[str, Any] = {"label": signature, "tag": self.tpa_tag, "version": CORRECTION_VERSION,
                                     "ts": int(time.time())}
            try:
                change = correction_change_from_files(datastore.get_image_uri(image_id), label_path,
                                                      **self.correction_kwargs)
                entry.update(score=change["length_removed_fraction"], **change)
                scored += 1
            except Exception as e:
                entry.update(score=None, error=_error(e, datastore))
                failed[image_id] = entry["error"]
            datastore.update_image_info(image_id, {CORRECTION_KEY: entry})
        logger.info("label_correction: %d scored, %d up to date, %d without a '%s' label, %d failed", scored, skipped,
                    missing, self.tpa_tag, len(failed))
        return {"method": "label_correction", "tag": self.tpa_tag, "scored": scored, "skipped": skipped,
                "without_label": missing, "failed": failed}

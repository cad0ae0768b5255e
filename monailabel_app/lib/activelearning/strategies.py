"""Active-learning strategies: which unlabeled mammogram should the annotator correct next?

``random`` is MONAI Label's. The two others read a score that a scoring method of the same name
(:mod:`lib.scoring.bac`) stored in each image's info, and hand out the highest-scoring unlabeled
image (:func:`monai_bac.active_learning.pick_highest`): an image given out by the same strategy
less than ``cooldown_s`` ago is held back, so two annotators do not get the same image, and
images not scored yet come after scored ones (the response says how many were scored).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.strategy import Strategy

from monai_bac.active_learning import pick_highest

logger = logging.getLogger(__name__)


class HighestScore(Strategy):
    """The unlabeled image with the highest ``info[info_key]["score"]``."""

    def __init__(self, info_key: str, description: str, cooldown_s: float = 3600.0):
        super().__init__(description)
        self.info_key = info_key
        self.cooldown_s = float(cooldown_s)

    def info(self):
        return {"description": self.description, "score_key": self.info_key, "cooldown_s": self.cooldown_s}

    def __call__(self, request, datastore: Datastore) -> dict[str, Any] | None:
        images = datastore.get_unlabeled_images(request.get("label_tag"), request.get("labels"))
        if not images:
            return None
        strategy = request.get("strategy", "")
        scores: dict[str, float | None] = {}
        served: dict[str, float] = {}
        entries: dict[str, dict] = {}
        for image in images:
            info = datastore.get_image_info(image)
            entry = info.get(self.info_key) or {}
            entries[image] = entry
            score = entry.get("score")
            scores[image] = float(score) if isinstance(score, (int, float)) else None
            served[image] = float(info.get("strategy", {}).get(strategy, {}).get("ts", 0))
        chosen = pick_highest(scores, served, now=time.time(), cooldown_s=self.cooldown_s)
        n_scored = sum(s is not None for s in scores.values())
        logger.info("%s: %d/%d unlabeled images scored; chose %s (score %s)", strategy, n_scored, len(images),
                    chosen, scores.get(chosen))
        return {"id": chosen, "score": scores.get(chosen), "scored_images": n_scored,
                "unlabeled_images": len(images), "score_key": self.info_key}

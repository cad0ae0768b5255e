"""Active-learning strategies: which unlabeled mammogram should the annotator correct next?

``random`` is MONAI Label's, with one fix (:class:`RandomUnlabeled`). The two others read a score that a scoring method of the same name
(:mod:`lib.scoring.bac`) stored in each image's info, and hand out the highest-scoring unlabeled
image (:func:`monai_bac.active_learning.pick_highest`): an image given out by the same strategy
less than ``cooldown_s`` ago is held back, so two annotators do not get the same image, and
images not scored yet come after scored ones (the response says how many were scored).
"""

from __future__ import annotations

import logging
import random
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


class RandomUnlabeled(Strategy):
    """MONAI Label's ``random``: an unlabeled image drawn with weight = seconds since it was last handed out.

    monailabel 0.8.5 weighs by ``now - ts`` alone, so when every unlabeled image was handed out within
    the current second all weights are 0 and ``random.choices`` fails (HTTP 500). Here each weight is
    one more: such images are then drawn evenly.
    """

    def __init__(self):
        super().__init__("Random Strategy")

    def __call__(self, request, datastore: Datastore) -> dict[str, Any] | None:
        images = datastore.get_unlabeled_images(request.get("label_tag"), request.get("labels"))
        if not images:
            return None
        strategy = request.get("strategy", "")
        now = int(time.time())
        served = [datastore.get_image_info(image).get("strategy", {}).get(strategy, {}).get("ts", 0) for image in images]
        weights = [max(now - int(ts), 0) + 1 for ts in served]
        chosen = random.choices(images, weights=weights)[0]
        logger.info("%s: chose %s of %d unlabeled images", strategy, chosen, len(images))
        return {"id": chosen, "weight": weights[images.index(chosen)], "unlabeled_images": len(images)}

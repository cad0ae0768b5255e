"""TaskConfig of model ``bac`` (``--conf models bac``): the bundle's BAC segmentation.

App options (``--conf <key> <value>`` on ``monailabel start_server``):

| key | default | meaning |
|---|---|---|
| ``bundle_path`` | ``bundle/`` beside the app folder (the repository's) | bundle to serve and fine-tune (weights in ``<bundle>/models``) |
| ``tpa_tag`` | ``tpa`` | label tag of the third-party labels scored by ``label_correction`` |
| ``al_cooldown_s`` | ``3600`` | seconds an image handed out by a strategy is held back from others |
| ``tta_intensity_scales`` | ``1.0,0.9,1.1`` | intensity factors of the test-time augmentation (x 4 flips) |
"""

from __future__ import annotations

import logging
import os
from typing import Any

from monailabel.interfaces.config import TaskConfig

from lib.activelearning import HighestScore
from lib.infers import BACInfer
from lib.scoring import CORRECTION_KEY, TTA_KEY, LabelCorrectionChange, TTAUncertainty
from lib.trainers import BACTrain

logger = logging.getLogger(__name__)

LABEL_COLORS = {"bac": [255, 64, 0]}


def resolve_bundle_path(value: str | None) -> str:
    """The bundle folder to serve: ``value``, else the repository's ``bundle/``; checked for its configs."""
    if value:
        path = os.path.abspath(os.path.expanduser(value))
    else:  # the app ships beside the bundle in the repository
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))), "bundle")
    missing = [f for f in ("inference.json", "train.json", "metadata.json")
               if not os.path.isfile(os.path.join(path, "configs", f))]
    if missing:
        raise ValueError(f"bundle_path {path} is not a monai-bac bundle (configs/{', configs/'.join(missing)} "
                         "missing); pass --conf bundle_path /path/to/bundle")
    return path


class BAC(TaskConfig):
    def init(self, name: str, model_dir: str, conf: dict[str, str], planner: Any, **kwargs):
        super().init(name, model_dir, conf, planner, **kwargs)
        self.bundle_path = resolve_bundle_path(conf.get("bundle_path"))
        self.labels = {"bac": 1}
        self.label_colors = dict(LABEL_COLORS)
        self.tpa_tag = conf.get("tpa_tag", "tpa")
        self.cooldown_s = float(conf.get("al_cooldown_s", 3600))
        self.tta_scales = tuple(float(s) for s in str(conf.get("tta_intensity_scales", "1.0,0.9,1.1")).split(",") if s)
        self.studies = kwargs.get("studies")
        self._infer: BACInfer | None = None
        logger.info("model %s serves bundle %s", name, self.bundle_path)

    def infer(self) -> BACInfer:
        if self._infer is None:
            self._infer = BACInfer(self.bundle_path, self.conf, label_colors=self.label_colors, studies=self.studies)
        return self._infer

    def trainer(self) -> BACTrain:
        return BACTrain(self.bundle_path, self.conf,
                        description="Fine-tune the BAC model on labels/final with the bundle's training recipe")

    def strategy(self):
        return {
            "tta_uncertainty": HighestScore(
                TTA_KEY, "Image the BAC model is least sure about (test-time-augmentation variance; scoring "
                "method 'tta_uncertainty')", self.cooldown_s),
            "label_correction": HighestScore(
                CORRECTION_KEY, f"Image whose third-party label (tag '{self.tpa_tag}') the physics-based label "
                "correction changes most (scoring method 'label_correction')", self.cooldown_s),
        }

    def scoring_method(self):
        return {
            "tta_uncertainty": TTAUncertainty(self.infer(), intensity_scales=self.tta_scales),
            "label_correction": LabelCorrectionChange(self.tpa_tag),
        }

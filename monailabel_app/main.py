"""MONAI Label app of monai-bac: serves the BAC bundle to 3D Slicer / OHIF for active learning.

    monailabel start_server --app monailabel_app --studies <folder> --conf models bac --host 127.0.0.1 --port 8000

See README.md in this folder. Everything about the model (preprocessing, network, threshold,
training recipe) is read from the bundle (``--conf bundle_path``, default the repository's
``bundle/``); this file only wires MONAI Label's pieces together and turns bad requests into
clear HTTP errors (400/404/409/415/422/503 with a JSON ``detail``), never a stack trace.
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
from typing import Any

from monailabel.config import settings
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore, DefaultLabelTag
from monailabel.tasks.activelearning.random import Random
from monailabel.utils.others.generic import handle_torch_linalg_multithread

import monai_bac
from lib.configs import CONFIGS
from lib.datastore import DEFAULT_EXTENSIONS, BACDatastore, check_image_id
from lib.errors import not_found

logger = logging.getLogger(__name__)


class BACApp(MONAILabelApp):
    """Breast arterial calcification (BAC) segmentation on raw mammograms."""

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]):
        conf = dict(conf or {})
        names = [n.strip() for n in str(conf.get("models", "bac")).split(",") if n.strip()]
        if "all" in names:
            names = list(CONFIGS)
        unknown = [n for n in names if n not in CONFIGS]
        if unknown or not names:
            raise ValueError(f"unknown model(s) {unknown or names}: choose --conf models with one of {sorted(CONFIGS)}")
        self.models = {}
        for name in names:
            task_config = CONFIGS[name]()
            task_config.init(name, os.path.join(app_dir, "model"), conf, None, studies=studies)
            self.models[name] = task_config
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="monai-bac",
            description="Breast arterial calcification (BAC) segmentation in raw (FOR PROCESSING) mammograms, "
                        "served from the monai-bac bundle",
            version=monai_bac.__version__,
        )

    # --- construction -----------------------------------------------------------------------
    def init_datastore(self) -> Datastore:
        if self.studies.startswith(("http://", "https://")):
            return super().init_datastore()  # DICOMweb (e.g. Orthanc), see README
        extensions = [e.strip() for e in self.conf.get("extensions", ",".join(DEFAULT_EXTENSIONS)).split(",")
                      if e.strip()]
        return BACDatastore(
            self.studies,
            images_dir=self.conf.get("images_dir", "."),
            extensions=extensions,
            auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
            read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY,
        )

    def init_infers(self):
        return {name: c.infer() for name, c in self.models.items()}

    def init_trainers(self):
        return {name: c.trainer() for name, c in self.models.items()}

    def init_strategies(self):
        strategies = {"random": Random()}
        for c in self.models.values():
            strategies.update(c.strategy() or {})
        return strategies

    def init_scoring_methods(self):
        methods = {}
        for c in self.models.values():
            methods.update(c.scoring_method() or {})
        return methods

    def info(self):
        meta = super().info()
        meta["label_colors"] = {k: v for c in self.models.values() for k, v in c.label_colors.items()}
        meta["bundles"] = {name: c.bundle_path for name, c in self.models.items()}
        meta["third_party_label_tag"] = {name: c.tpa_tag for name, c in self.models.items()}
        return meta

    # --- requests ---------------------------------------------------------------------------
    def _check_model(self, model: Any, tasks: dict, what: str):
        task = tasks.get(model) if isinstance(model, str) else None
        if task is None:
            raise not_found(f"no {what} {model!r}; available: {sorted(tasks)}")
        return task

    @staticmethod
    def _is_upload(image: str) -> bool:
        """A file MONAI Label's /infer endpoint saved from an upload (``file=``) into the temp folder."""
        real = os.path.realpath(image)
        return (os.path.isabs(image) and os.path.isfile(real)
                and os.path.dirname(real) == os.path.realpath(tempfile.gettempdir())
                and os.path.basename(real).startswith("tmp"))

    def _image_path(self, image: Any, datastore: Datastore) -> tuple[str, str | None]:
        """(file path, datastore id or None) of an /infer request's image, or a 4xx."""
        if isinstance(image, str) and self._is_upload(image):
            return image, None
        if isinstance(datastore, BACDatastore):
            return datastore.require_image(image), image
        image = check_image_id(image)
        path = datastore.get_image_uri(image)
        if not path or not os.path.exists(path):
            raise not_found(f"image {image!r} is not in the datastore")
        return path, image

    def infer(self, request, datastore=None):
        task = self._check_model(request.get("model"), self._infers, "model")
        datastore = datastore or self.datastore()
        path, image_id = self._image_path(request.get("image"), datastore)
        request = copy.deepcopy(request)
        request.update(image=path, image_id=image_id or os.path.basename(path), description=task.description)

        if self._infers_threadpool:
            def run(t, r):
                handle_torch_linalg_multithread(r)
                return t(r)

            future = self._infers_threadpool.submit(run, task, request)
            result_file, result_json = future.result(request.get("timeout", settings.MONAI_LABEL_INFER_TIMEOUT))
        else:
            result_file, result_json = task(request)

        label_id = result_file
        if image_id and str(request.get("save_label", "false")).lower() in ("1", "true", "yes"):
            tag = request.get("label_tag", DefaultLabelTag.ORIGINAL.value)
            label_id = datastore.save_label(image_id, result_file, tag,
                                            {"model": request.get("model"), "params": result_json})
        return {"label": label_id, "tag": DefaultLabelTag.ORIGINAL, "file": result_file, "params": result_json}

    def train(self, request):
        self._check_model(request.get("model"), self._trainers, "trainer for model")
        return super().train(request)

    def next_sample(self, request):
        strategy = request.get("strategy") or "random"
        self._check_model(strategy, self._strategies, "active-learning strategy")
        return super().next_sample(request)

    def scoring(self, request, datastore=None):
        self._check_model(request.get("method"), self._scoring_methods, "scoring method")
        return super().scoring(request, datastore)

    def batch_infer(self, request, datastore=None):
        self._check_model(request.get("model"), self._infers, "model")
        return super().batch_infer(request, datastore)

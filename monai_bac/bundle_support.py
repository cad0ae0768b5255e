"""Helpers the bundle's configs call: run profile, default phantom data, datalist checks.

Wiring only; the algorithms live in :mod:`monai_bac.transforms`, :mod:`monai_bac.metrics` and
:mod:`monai_bac.networks`.
"""

from __future__ import annotations

import glob
import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import torch

__all__ = ["training_recipe", "log_settings", "training_datalist",
           "load_split", "DatalistError", "latest_checkpoint", "inference_items"]

logger = logging.getLogger("monai_bac.bundle")

def training_recipe(train_config: str | os.PathLike, profile: str) -> dict[str, Any]:
    """The literal hyper-parameters of ``profile`` (``"cpu"`` / ``"gpu"``) in a bundle's ``train.json``
    (its ``profiles`` section): what the MONAI Label trainer and ``monai-bac reproduce`` train with."""
    from monai.bundle import ConfigParser

    profiles = ConfigParser.load_config_file(str(train_config)).get("profiles") or {}
    if profile not in profiles:
        raise ValueError(f"{train_config}: no profile {profile!r} in 'profiles' (has: {sorted(profiles)})")
    return dict(profiles[profile])


def log_settings(profile: str, settings: dict) -> bool:
    """Say in the log which profile runs and with which settings (returns True for configs)."""
    if profile == "cpu" and not torch.cuda.is_available():
        logger.warning("No CUDA device: running the CPU profile (smaller images, phantom cohort and epoch count; "
                       "override any of them on the command line, e.g. --image_size 1600 --num_epochs 100).")
    lines = ", ".join(f"{k}={v}" for k, v in settings.items())
    logger.info("profile %s: %s", profile, lines)
    return True


class DatalistError(ValueError):
    """A datalist that cannot be trained on; the message names the file, split and entry."""


def training_datalist(dataset_dir: str | None, phantom_dir: str, *, datalist: str | None = None,
                      cohort_size: int = 40, phantom_spacing_mm: float = 0.2, seed: int = 0,
                      workers: int = 1) -> str:
    """The datalist to train on: the user's (``dataset_dir/datalist.json`` or ``datalist``), or a
    phantom cohort generated once in ``phantom_dir`` and reused by later runs."""
    if datalist:
        path = Path(datalist)
    elif dataset_dir:
        path = Path(dataset_dir) / "datalist.json"
    else:
        from monai_bac.phantom.cohort import ensure_cohort

        logger.info("no dataset_dir given: using the phantom cohort in %s (generated once)", phantom_dir)
        return str(ensure_cohort(phantom_dir, n=int(cohort_size), seed=int(seed),
                                 spacing_mm=float(phantom_spacing_mm), workers=workers, progress=True))
    if not path.is_file():
        raise DatalistError(f"datalist {path} does not exist (expected a MONAI decathlon-style JSON with "
                            f"'training' and 'validation' lists of {{'image': ..., 'label': ...}})")
    return str(path)


def _header_shape(path: str) -> tuple[int, int] | None:
    """(H, W) from the file header only, or None when it cannot be told cheaply."""
    try:
        if path.endswith((".nii", ".nii.gz")):
            import nibabel as nib

            shape = nib.load(path).shape
            return (int(shape[1]), int(shape[0])) if len(shape) >= 2 else None  # stored transposed
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Rows", "Columns"])
        return int(ds.Rows), int(ds.Columns)
    except Exception:  # unreadable files are reported by the loader with a specific message
        return None


def load_split(datalist: str, split: str, required: Sequence[str] = ("image", "label"),
               check_shapes: bool = True, keep_label_gt: bool = True) -> list[dict]:
    """Entries of ``split`` with absolute paths, checked before any training starts.

    ``label_gt`` (an expert or ground-truth label, used for evaluation only) is kept with
    ``keep_label_gt`` and dropped otherwise (training never sees it).

    Raises :class:`DatalistError` naming the datalist, split and entry for an empty split, a
    missing key, a missing file, or a label whose shape differs from its image.
    """
    from monai.data import load_decathlon_datalist

    try:
        items = load_decathlon_datalist(datalist, is_segmentation=True, data_list_key=split)
    except (KeyError, ValueError) as e:
        raise DatalistError(f"datalist {datalist}: no '{split}' list ({e})") from None
    if not items:
        raise DatalistError(f"datalist {datalist}: the '{split}' list is empty")
    for i, item in enumerate(items):
        where = f"datalist {datalist}, {split}[{i}]"
        for key in required:
            if key not in item:
                raise DatalistError(f"{where} has no '{key}' (keys: {sorted(item)})")
        for key in ("image", "label", "label_gt"):
            if key in item and not os.path.isfile(str(item[key])):
                raise DatalistError(f"{where}: {key} file {item[key]} does not exist")
        if check_shapes and "label" in item:
            shape_i, shape_l = _header_shape(str(item["image"])), _header_shape(str(item["label"]))
            if shape_i and shape_l and shape_i != shape_l:
                raise DatalistError(f"{where}: label {item['label']} is {shape_l[0]} x {shape_l[1]} but image "
                                    f"{item['image']} is {shape_i[0]} x {shape_i[1]}")
        if not keep_label_gt:
            item.pop("label_gt", None)
    return items


def latest_checkpoint(ckpt_dir: str) -> str:
    """The newest complete ``checkpoint_epoch=N.pt`` in ``ckpt_dir`` (to resume a killed run).

    A file that is not a complete ``torch.save`` archive (a run killed while writing it, with a
    saver that did not write atomically) is skipped with a warning, and the one before it used.
    """
    import zipfile

    found = glob.glob(os.path.join(ckpt_dir, "checkpoint_epoch=*.pt"))
    found = [p for p in found if p.rsplit("=", 1)[1][: -len(".pt")].isdigit()]
    if not found:
        raise FileNotFoundError(f"no checkpoint_epoch=N.pt in {ckpt_dir} to resume from; "
                                "train once without --resume first")
    for path in sorted(found, key=lambda p: int(p.rsplit("=", 1)[1][: -len(".pt")]), reverse=True):
        if zipfile.is_zipfile(path):  # torch.save writes a zip archive whose directory comes last
            return path
        logger.warning("skipping %s: not a complete checkpoint (a run stopped while writing it?)", path)
    raise FileNotFoundError(f"no complete checkpoint_epoch=N.pt in {ckpt_dir} to resume from "
                            f"({len(found)} incomplete)")


def inference_items(input_path: str, split: str = "test", leave_out: bool = True) -> list[dict]:
    """Inference inputs: one DICOM file, a folder of them (recursively), or a datalist JSON
    (its ``split`` list, or every list when the split is absent).

    In a folder, the files that are not raw mammograms of the run (a DICOMDIR, reports,
    segmentations, tomosynthesis objects, the processed renditions of raw images in the folder:
    :func:`monai_bac.data.study_files.files_to_leave_out`) are left out with a logged reason, as a
    study exported from a PACS holds them; ``leave_out=False`` keeps them (``monai-bac infer``
    reports each itself).
    """
    from monai.data import load_decathlon_datalist

    p = Path(input_path)
    if p.is_dir():
        files = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in (".dcm", ".dicom", ""))
        files = [f for f in files if not os.path.basename(f).startswith(".")]
        if not files:
            raise DatalistError(f"input folder {p} holds no .dcm files")
        left = {}
        if leave_out:
            from monai_bac.data.study_files import files_to_leave_out

            left = files_to_leave_out(files)
            for path, reason in left.items():
                logger.warning("%s: left out: %s", path, reason)
        kept = [f for f in files if f not in left]
        if not kept:
            raise DatalistError(f"input folder {p} holds no raw mammogram: its {len(files)} file(s) were left out "
                                f"(e.g. {next(iter(left.items()))[0]}: {next(iter(left.items()))[1]})")
        return [{"image": f} for f in kept]
    if p.suffix.lower() == ".json":
        content = json.loads(p.read_text())
        keys = [split] if split in content else [k for k, v in content.items() if isinstance(v, list) and v]
        items = [it for k in keys if content[k] for it in load_decathlon_datalist(str(p), True, k)]
        if not items and split in content:
            others = [k for k, v in content.items() if isinstance(v, list) and v]
            raise DatalistError(f"datalist {p}: its '{split}' list is empty; lists with entries: {others or 'none'}")
        if not items:
            raise DatalistError(f"datalist {p} has no entries")
        return items
    if p.is_file():
        return [{"image": str(p)}]
    raise DatalistError(f"inference input {p} does not exist")


def resume_from_latest(trainer, ckpt_dir: str, load_dict: dict, enabled: bool, device=None) -> bool:
    """Attach a loader of the newest epoch checkpoint to ``trainer`` when ``enabled`` (``--resume true``).

    The checkpoint holds the network, optimizer, LR scheduler and trainer state, and the state of
    the best-model saver and of the early stopping (``train#resume_dict``), so a killed run carries
    on from the epoch after the last one it finished and compares its next validations with the
    best one from before the kill. A checkpoint written before those states were saved lacks
    them: such a handler entry of ``load_dict`` is skipped with a warning (the network, optimizer,
    scheduler and trainer are always required).
    """
    if isinstance(enabled, str):  # "--resume false" on the command line arrives as the string "false"
        flag = enabled.strip().lower()
        if flag not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"resume must be true or false, got {enabled!r}")
        enabled = flag in ("true", "1", "yes")
    if not enabled:
        return False
    from ignite.engine import Engine
    from monai.handlers import CheckpointLoader

    path = latest_checkpoint(ckpt_dir)
    logger.info("resuming from %s", path)
    stored = torch.load(path, map_location="cpu", weights_only=True, mmap=True).keys()
    required = (torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler,
                torch.optim.lr_scheduler.ReduceLROnPlateau, Engine)
    missing = [k for k, obj in load_dict.items() if k not in stored and not isinstance(obj, required)]
    if missing:
        logger.warning("%s has no saved state for %s (an older checkpoint): they start afresh", path, missing)
        load_dict = {k: v for k, v in load_dict.items() if k not in missing}
    CheckpointLoader(load_path=path, load_dict=load_dict, map_location=device).attach(trainer)
    return True


def save_model_settings(ckpt_dir: str, settings: dict) -> str:
    """Write the settings a model was trained with beside it (``models/model_settings.json``),
    so that inference, evaluation and the MONAI Label app preprocess the same way."""
    from monai_bac.utils import write_json

    path = os.path.join(ckpt_dir, "model_settings.json")
    write_json(path, {k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v))
                      for k, v in settings.items()})
    return path


def model_setting(ckpt_dir: str, key: str, default: Any = None) -> Any:
    """One setting of the trained model in ``ckpt_dir`` (see :func:`save_model_settings`), else ``default``."""
    path = os.path.join(ckpt_dir, "model_settings.json")
    try:
        with open(path) as f:
            return json.load(f).get(key, default)
    except (OSError, ValueError):
        return default


def evaluation_items(input_path: str, split: str = "test") -> list[dict]:
    """Labelled entries to evaluate (``label`` required; ``has_label_gt`` says whether an expert /
    ground-truth label exists: without one the "gt" columns are scored against ``label``)."""
    items = inference_items(input_path, split)
    for i, item in enumerate(items):
        if "label" not in item:
            raise DatalistError(f"{input_path}, {split}[{i}]: evaluation needs a 'label' (keys: {sorted(item)})")
        item["has_label_gt"] = "label_gt" in item
    return items

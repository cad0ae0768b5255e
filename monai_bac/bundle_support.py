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

__all__ = ["PROFILES", "bundle_root", "resolve_profile", "profile_value", "log_settings", "training_datalist",
           "load_split", "DatalistError", "latest_checkpoint", "inference_items"]

logger = logging.getLogger("monai_bac.bundle")

#: Defaults of each run profile; every one of them is a config key that can be overridden,
#: e.g. ``--image_size 1024`` or ``--num_epochs 5``.
PROFILES: dict[str, dict[str, Any]] = {
    # the paper's recipe (Sec. 3.2, 4.3): 1600 x 1600, up to 100 epochs, batch 3 on a T4
    "gpu": dict(image_size=1600, num_epochs=100, batch_size=3, cohort_size=240, phantom_spacing_mm=0.1,
                crop_to_breast=False, train_patch_size=None, num_workers=4, cache_rate=1.0, learning_rate=1e-4),
    # a useful run on a laptop CPU in minutes: coarser phantom, smaller input, fewer epochs, and
    # the breast cropped before resizing so the small input keeps the BAC a few pixels wide
    # (training on BAC-centred patches, with a higher learning rate since nothing is pretrained)
    "cpu": dict(image_size=384, num_epochs=30, batch_size=2, cohort_size=40, phantom_spacing_mm=0.2,
                crop_to_breast=True, train_patch_size=192, num_workers=0, cache_rate=1.0, learning_rate=1e-3),
}


def bundle_root() -> str:
    """The ``bundle/`` folder of this repository (override ``bundle_root`` for a copy elsewhere)."""
    here = Path(__file__).resolve().parents[1] / "bundle"
    if (here / "configs" / "metadata.json").is_file():
        return str(here)
    if Path("configs/metadata.json").is_file():
        return str(Path(".").resolve())
    raise FileNotFoundError(
        "cannot locate the monai-bac bundle folder; pass --bundle_root /path/to/bundle on the command line"
    )


def resolve_profile(profile: str = "auto") -> str:
    """``auto`` is ``gpu`` when CUDA is available, else ``cpu``."""
    profile = str(profile).lower()
    if profile == "auto":
        profile = "gpu" if torch.cuda.is_available() else "cpu"
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose 'auto', 'gpu' or 'cpu'")
    return profile


def profile_value(profile: str, key: str) -> Any:
    return PROFILES[resolve_profile(profile)][key]


def log_settings(profile: str, settings: dict) -> bool:
    """Say in the log which profile runs and with which settings (returns True for configs)."""
    profile = resolve_profile(profile)
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
    """The newest ``checkpoint_epoch=N.pt`` in ``ckpt_dir`` (to resume a killed run)."""
    found = glob.glob(os.path.join(ckpt_dir, "checkpoint_epoch=*.pt"))
    if not found:
        raise FileNotFoundError(f"no checkpoint_epoch=N.pt in {ckpt_dir} to resume from; "
                                "train once without --resume first")
    return max(found, key=lambda p: int(p.rsplit("=", 1)[1].split(".")[0]))


def inference_items(input_path: str, split: str = "test") -> list[dict]:
    """Inference inputs: one DICOM file, a folder of them (recursively), or a datalist JSON
    (its ``split`` list, or every list when the split is absent)."""
    from monai.data import load_decathlon_datalist

    p = Path(input_path)
    if p.is_dir():
        files = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in (".dcm", ".dicom", ""))
        files = [f for f in files if not os.path.basename(f).startswith(".")]
        if not files:
            raise DatalistError(f"input folder {p} holds no .dcm files")
        return [{"image": f} for f in files]
    if p.suffix.lower() == ".json":
        content = json.loads(p.read_text())
        keys = [split] if split in content else [k for k, v in content.items() if isinstance(v, list) and v]
        items = [it for k in keys if content[k] for it in load_decathlon_datalist(str(p), True, k)]
        if not items:
            raise DatalistError(f"datalist {p} has no entries")
        return items
    if p.is_file():
        return [{"image": str(p)}]
    raise DatalistError(f"inference input {p} does not exist")


def resume_from_latest(trainer, ckpt_dir: str, load_dict: dict, enabled: bool, device=None) -> bool:
    """Attach a loader of the newest epoch checkpoint to ``trainer`` when ``enabled`` (``--resume true``).

    The checkpoint holds the network, optimizer, LR scheduler and trainer state, so a killed run
    carries on from the epoch after the last one it finished.
    """
    if not enabled:
        return False
    from monai.handlers import CheckpointLoader

    path = latest_checkpoint(ckpt_dir)
    logger.info("resuming from %s", path)
    CheckpointLoader(load_path=path, load_dict=load_dict, map_location=device).attach(trainer)
    return True


def save_model_settings(ckpt_dir: str, settings: dict) -> str:
    """Write the settings a model was trained with beside it (``models/model_settings.json``),
    so that inference, evaluation and the MONAI Label app preprocess the same way."""
    os.makedirs(ckpt_dir, exist_ok=True)
    path = os.path.join(ckpt_dir, "model_settings.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v)) for k, v in settings.items()},
                  f, indent=1)
    os.replace(tmp, path)
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

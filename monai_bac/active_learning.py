"""Active-learning scores for BAC annotation: which mammogram should an annotator see next?

Two scores, each a plain function the MONAI Label app (``monailabel_app/``) wraps as a scoring
method, and one selection rule its strategies share:

* **Model uncertainty by test-time augmentation** (:func:`tta_probabilities`,
  :func:`tta_uncertainty`). The network sees the preprocessed image under a fixed set of
  flips (a breast may face either way) and mild intensity changes (the training recipe's
  ``RandScaleIntensityd``); each BAC probability map is mapped back to the original frame and
  the per-pixel variance across augmentations measures how unsure the model is. The score is
  the variance integrated over the image, in mm^2 (``variance_mm2``): the area the augmented
  predictions disagree on, so it does not depend on the pixel grid the network runs at.
* **How much the label correction changes the third-party label** (:func:`correction_change`).
  The paper's point (Sec. 3.3) is that third-party BAC annotations hold false positives
  (micro-calcifications, dense-tissue strands, edges) that a physics-based correction removes.
  Images whose annotation the correction changes most are where the annotation is most likely
  wrong, so they are the most valuable to correct by hand. The score is the fraction of the
  annotation's skeleton length (mm) that :class:`~monai_bac.transforms.CorrectBACLabel` removes
  (``length_removed_fraction``); the fraction of pixels removed is reported beside it.
* :func:`pick_highest` chooses the next image from such scores, skipping images another
  annotator was just given.

Units: lengths in mm, areas in mm^2 (``spacing_mm`` from the image's metadata or an argument).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "DEFAULT_FLIPS",
    "DEFAULT_INTENSITY_SCALES",
    "tta_probabilities",
    "tta_uncertainty",
    "correction_change",
    "correction_change_from_files",
    "pick_highest",
]

#: spatial flips of a (B, C, H, W) batch: none, left-right, up-down, both
DEFAULT_FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))
#: intensity factors applied to the normalised (z-scored) input, as the training recipe's
#: ``RandScaleIntensityd(factors=0.15)`` does (v * (1 + factor))
DEFAULT_INTENSITY_SCALES: tuple[float, ...] = (1.0, 0.9, 1.1)


def _spacing_of(image: Any, spacing_mm: Sequence[float] | None, who: str) -> tuple[float, float]:
    from monai_bac.units import resolve_spacing

    return resolve_spacing(getattr(image, "meta", None), spacing_mm, who)


@torch.no_grad()
def tta_probabilities(
    network: torch.nn.Module,
    image: torch.Tensor,
    flips: Sequence[Sequence[int]] = DEFAULT_FLIPS,
    intensity_scales: Sequence[float] = DEFAULT_INTENSITY_SCALES,
    batch_size: int = 4,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """BAC probability maps of one preprocessed image under test-time augmentation.

    Args:
        network: returns logits (B, C, H, W); it is put in ``eval()`` mode.
        image: the network input, (C, H, W) or (1, C, H, W) (e.g. the bundle's preprocessing output).
        flips: tuples of dims to flip (-1: columns, -2: rows); ``()`` is the identity. Every
            prediction is flipped back, so all maps share the input's frame.
        intensity_scales: factors the input is multiplied by (1.0: unchanged).
        batch_size: augmented copies per forward pass.
        device: where to run (default: the network's device).

    Returns:
        float32 tensor (N, C, H, W) on the CPU, N = len(flips) * len(intensity_scales), of
        sigmoid probabilities.
    """
    if not flips or not intensity_scales:
        raise ValueError("tta_probabilities needs at least one flip and one intensity scale")
    x = torch.as_tensor(image)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"image must be (C, H, W) or (1, C, H, W), got shape {tuple(x.shape)}")
    if hasattr(x, "as_tensor"):
        x = x.as_tensor()
    if device is None:
        param = next(network.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    network.eval()
    x = x.to(device=device, dtype=torch.float32)
    combos = [(tuple(int(d) for d in f), float(s)) for f in flips for s in intensity_scales]
    out = []
    for start in range(0, len(combos), max(1, int(batch_size))):
        chunk = combos[start:start + max(1, int(batch_size))]
        batch = torch.cat([(torch.flip(x, f) if f else x) * s for f, s in chunk], dim=0)
        logits = network(batch)
        if hasattr(logits, "as_tensor"):
            logits = logits.as_tensor()
        probs = torch.sigmoid(logits.float())
        for i, (f, _) in enumerate(chunk):
            out.append(torch.flip(probs[i:i + 1], f) if f else probs[i:i + 1])
    return torch.cat(out, dim=0).cpu()


def tta_uncertainty(
    probs: torch.Tensor | np.ndarray,
    spacing_mm: Sequence[float] | None = None,
    threshold: float = 0.5,
    image: Any = None,
) -> dict[str, float]:
    """Summarise the spread of test-time-augmented probability maps.

    Args:
        probs: (N, C, H, W) or (N, H, W) probabilities from :func:`tta_probabilities`.
        spacing_mm: (row, col) mm of the maps' grid; read from ``image.meta["spacing_mm"]``
            when None (pass the preprocessed image, whose spacing describes the network grid).
        threshold: cut-off for the masks whose disagreement is reported.
        image: optional MetaTensor whose ``meta["spacing_mm"]`` gives the spacing.

    Returns:
        ``variance_mm2`` (the score: per-pixel variance summed over the map, times the pixel area),
        ``mean_variance`` (per pixel), ``max_variance``, ``disagreement_mm2`` (area where the
        thresholded augmented masks are not unanimous), ``mean_bac_mm2`` (area of the mean
        probability above ``threshold``) and ``n_augmentations``.
    """
    row, col = _spacing_of(image, spacing_mm, "tta_uncertainty")
    p = torch.as_tensor(np.asarray(probs) if not isinstance(probs, torch.Tensor) else probs).float()
    if p.ndim == 3:
        p = p[:, None]
    if p.ndim != 4 or p.shape[0] < 1:
        raise ValueError(f"probs must be (N, C, H, W) or (N, H, W), got shape {tuple(p.shape)}")
    area = row * col
    var = p.var(dim=0, unbiased=False) if p.shape[0] > 1 else torch.zeros_like(p[0])
    masks = p > threshold
    unanimous = masks.all(dim=0) | (~masks).all(dim=0)
    return dict(
        variance_mm2=float(var.sum(dtype=torch.float64)) * area,
        mean_variance=float(var.mean(dtype=torch.float64)),
        max_variance=float(var.max()),
        disagreement_mm2=float((~unanimous).sum()) * area,
        mean_bac_mm2=float((p.mean(dim=0) > threshold).sum()) * area,
        n_augmentations=int(p.shape[0]),
    )


def correction_change(
    image: Any,
    label: Any,
    spacing_mm: Sequence[float] | None = None,
    **correction_kwargs: Any,
) -> dict[str, Any]:
    """How much :class:`~monai_bac.transforms.CorrectBACLabel` changes a (third-party) BAC label.

    The breast map (:class:`~monai_bac.transforms.BreastRegion`), dense-tissue thickness (Eq. 4)
    and calcification thickness (Eq. 5) are computed from the raw image, then the label is
    corrected (Sec. 3.3) with the bundle's default thresholds unless ``correction_kwargs`` sets
    them (``min_length_mm``, ``min_mean_calc_mm``, ...).

    Args:
        image: raw mammogram, (1, H, W) MetaTensor as loaded by :func:`monai_bac.data.load_mammogram`
            (the physics needs its ``kvp``, ``thickness_mm``, ... metadata).
        label: binary BAC annotation (1, H, W) or (H, W) on the same grid.
        spacing_mm: (row, col) mm; defaults to the image's ``meta["spacing_mm"]``.

    Returns:
        ``length_removed_fraction`` (the score, 0..1; 0 for an empty label), ``pixels_removed_fraction``,
        ``length_before_mm``, ``length_after_mm``, ``pixels_before``, ``pixels_after``,
        ``n_components``, ``n_removed``, ``n_removed_short``, ``n_removed_low_calc``.
    """
    from monai.data import MetaTensor

    from monai_bac.transforms import BreastRegiond, CalcificationThicknessd, CorrectBACLabeld, DensityMapd

    row, col = _spacing_of(image, spacing_mm, "correction_change")
    lab = torch.as_tensor(np.asarray(label) if not isinstance(label, torch.Tensor) else label)
    if lab.ndim == 2:
        lab = lab[None]
    img = image if isinstance(image, MetaTensor) else MetaTensor(torch.as_tensor(np.asarray(image),
                                                                                  dtype=torch.float32))
    if img.ndim == 2:
        img = img[None]
    if tuple(lab.shape[-2:]) != tuple(img.shape[-2:]):
        raise ValueError(f"correction_change: label (H, W) = {tuple(lab.shape[-2:])} differs from the image's "
                         f"{tuple(img.shape[-2:])}")
    lab = MetaTensor((lab > 0).to(torch.uint8), meta={"spacing_mm": (row, col)})
    if spacing_mm is not None:
        img.meta["spacing_mm"] = (row, col)
    d: dict[str, Any] = {"image": img, "label": lab}
    for t in (BreastRegiond(keys="image"), DensityMapd(keys="image"), CalcificationThicknessd(keys="density"),
              CorrectBACLabeld(keys="label", output_keys="label_corrected", **correction_kwargs)):
        d = t(d)
    report = d["label_corrected"].meta["label_correction"]
    before = int(lab.sum())
    after = int((d["label_corrected"] > 0).sum())
    length_before = float(report["length_before_mm"])
    length_after = float(report["length_after_mm"])
    return dict(
        length_removed_fraction=(length_before - length_after) / length_before if length_before > 0 else 0.0,
        pixels_removed_fraction=(before - after) / before if before > 0 else 0.0,
        length_before_mm=length_before,
        length_after_mm=length_after,
        pixels_before=before,
        pixels_after=after,
        n_components=int(report["n_components"]),
        n_removed=int(report["n_removed"]),
        n_removed_short=int(report["n_removed_short"]),
        n_removed_low_calc=int(report["n_removed_low_calc"]),
    )


def correction_change_from_files(image_path: str, label_path: str, **correction_kwargs: Any) -> dict[str, Any]:
    """:func:`correction_change` of a mammogram file and its label file (checked to share the grid)."""
    from monai_bac.data import LoadMammogramd

    d = LoadMammogramd(keys=["image", "label"])({"image": str(image_path), "label": str(label_path)})
    return correction_change(d["image"], d["label"], **correction_kwargs)


def pick_highest(
    scores: Mapping[str, float | None],
    last_served: Mapping[str, float] | None = None,
    now: float | None = None,
    cooldown_s: float = 3600.0,
) -> str | None:
    """The id with the highest score, skipping ids served less than ``cooldown_s`` seconds ago.

    Ids with no score (None or NaN) come after every scored id. When every id was served
    recently, the one served longest ago is returned, so a strategy always answers. Ties are
    broken by id, so the choice is reproducible.

    Args:
        scores: id -> score (higher: more worth annotating).
        last_served: id -> time (s since the epoch) the id was last handed out.
        now: current time (default ``time.time()``).
        cooldown_s: how long a served id is held back (so two annotators are not given the same image).

    Returns:
        The chosen id, or None when ``scores`` is empty.
    """
    import time

    if not scores:
        return None
    now = time.time() if now is None else float(now)
    last_served = last_served or {}

    def key(item):
        ident, score = item
        missing = score is None or not math.isfinite(float(score))
        return (missing, -(0.0 if missing else float(score)), ident)

    fresh = {k: v for k, v in scores.items() if now - float(last_served.get(k, 0.0)) >= cooldown_s}
    if fresh:
        return min(fresh.items(), key=key)[0]
    return min(scores, key=lambda k: (float(last_served.get(k, 0.0)), key((k, scores[k]))))

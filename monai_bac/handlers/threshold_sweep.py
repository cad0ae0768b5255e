"""Validation threshold sweep (Sec. 4.3): pick the probability cut-off with the best mean Dice.

"A final binary mask is obtained by applying a cut-off threshold to the probability map ...
determined by a parameter sweep from 0.05 to 0.95 at a step of 0.05 on the validation dataset
to achieve a highest dice similarity score." :class:`ThresholdSweep` does this inside any
Ignite/MONAI evaluator, and :func:`read_threshold` gives the result to the inference workflow.

Memory: the handler keeps no images. For each validation image it stores, per threshold t, the
number of predicted pixels ``P_t = #(p >= t)`` and of true positives ``I_t = #(p >= t & y)``,
and the label size ``Y`` (2 T + 1 integers per image), from one bucketing pass over the pixels
above the lowest threshold.

Score: the mean over images of the per-image Dice ``2 I_t / (P_t + Y)``, i.e. exactly what
``monai.metrics.DiceMetric`` (``reduction="mean"``) reports for masks ``p >= t``. An image with
an empty label follows MONAI's ``ignore_empty``: excluded from the mean (True, default), or
scored 1 when ``P_t = 0`` and 0 otherwise (False; then false positives on BAC-free images
count against low thresholds). Ties between thresholds go to the one nearest 0.5 (then the
lower one).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from monai.handlers import from_engine
from monai.utils import evenly_divisible_all_gather, min_version, optional_import

from monai_bac.utils import write_json

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")
idist, _ = optional_import("ignite", "0.4.11", min_version, "distributed")

__all__ = [
    "DEFAULT_THRESHOLDS",
    "threshold_counts",
    "sweep_dice",
    "ThresholdSweep",
    "read_threshold",
    "write_threshold",
]

#: 0.05, 0.10, ..., 0.95 (Sec. 4.3).
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 20))


def _check_thresholds(thresholds: Sequence[float]) -> tuple[float, ...]:
    t = tuple(float(v) for v in thresholds)
    if not t or any(not 0.0 <= v <= 1.0 for v in t) or any(b <= a for a, b in zip(t, t[1:])):
        raise ValueError(f"thresholds must be increasing values in [0, 1], got {thresholds!r}.")
    return t


def _single_channel(x, what: str):
    """(B, N) flattened view of a (B, 1, ...) batch or of a list of (1, ...) images (tensor or ndarray)."""
    if isinstance(x, (list, tuple)):
        x = torch.stack([torch.as_tensor(v) for v in x]) if isinstance(x[0], torch.Tensor) else np.stack(x)
    if isinstance(x, torch.Tensor) and hasattr(x, "as_tensor"):
        x = x.as_tensor()
    if not isinstance(x, torch.Tensor):
        x = np.asarray(x)
    if x.ndim < 3 or x.shape[1] != 1:
        raise ValueError(
            f"{what} must be single-channel probabilities (B, 1, H, W) or a list of (1, H, W); got {tuple(x.shape)}. "
            "Select the foreground channel in output_transform."
        )
    return (x.detach() if isinstance(x, torch.Tensor) else x).reshape(x.shape[0], -1)


@lru_cache(maxsize=32)
def _grid_n(thr: tuple[float, ...], dtype: str) -> int | None:
    """n when the thresholds are consecutive multiples k / n (the default grid: n = 20), else None."""
    t = np.asarray(thr, dtype=dtype)
    for n in range(2, 1001):
        k = np.rint(t.astype(np.float64) * n)
        if np.all(k[1:] - k[:-1] == 1) and np.array_equal(t, (k / n).astype(dtype)):
            return n
    return None


def _uniform_grid(thr: np.ndarray) -> int | None:
    return _grid_n(tuple(thr.tolist()), thr.dtype.str)


def _buckets(p: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """Number of thresholds <= p for every value (intp): ``searchsorted(thr, p, "right")``, fast.

    On a grid of multiples k / n (the default: n = 20) the bucket is floor(p * n) shifted, exact
    except within rounding of a grid point; those few values are recomputed with
    ``searchsorted`` (exact float comparisons). Other thresholds use ``searchsorted`` throughout.
    """
    n = _uniform_grid(thr)
    if n is None or p.size < 4096:
        return np.searchsorted(thr, p, side="right")
    k0 = int(round(float(thr[0]) * n))
    s = np.clip(p * p.dtype.type(n), -1, n + 1)
    bucket = s.astype(np.intp)
    bucket -= k0 - 1
    np.clip(bucket, 0, len(thr), out=bucket)
    near = np.flatnonzero(np.abs(s - np.rint(s)) < 1e-3)
    bucket[near] = np.searchsorted(thr, p[near], side="right")
    return bucket


def _counts_numpy(p: np.ndarray, y: np.ndarray, thr: np.ndarray) -> np.ndarray:
    n_thr = len(thr)
    y_idx = np.flatnonzero(y if y.dtype == bool else (y >= 0.5 if y.dtype.kind == "f" else y != 0))
    above = p >= thr[0]
    # typical network output is mostly background: bucket only the pixels above the first cut-off
    vals = p[above] if np.count_nonzero(above) <= p.size // 4 else p
    hits = np.bincount(_buckets(vals, thr), minlength=n_thr + 1)
    hits_tp = np.bincount(_buckets(p[y_idx], thr), minlength=n_thr + 1)
    cum = lambda h: h[::-1].cumsum()[::-1][1:]  # noqa: E731  #(p >= t_k), k = 1..T
    return np.concatenate([cum(hits), cum(hits_tp), [y_idx.size]])


def _counts_torch(p: torch.Tensor, y: torch.Tensor, thr: torch.Tensor) -> torch.Tensor:
    n_thr = thr.numel()
    y = y if y.dtype == torch.bool else (y >= 0.5 if torch.is_floating_point(y) else y != 0)
    above = p >= thr[0]
    bucket = torch.bucketize(p[above], thr, right=True)
    hits = torch.bincount(bucket, minlength=n_thr + 1)
    hits_tp = torch.bincount(bucket[y[above]], minlength=n_thr + 1)
    cum = lambda h: h.flip(0).cumsum(0).flip(0)[1:]  # noqa: E731  #(p >= t_k)
    return torch.cat([cum(hits), cum(hits_tp), y.sum().reshape(1)])


def threshold_counts(prob, label, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> torch.Tensor:
    """Per-image pixel counts for every threshold.

    Args:
        prob: (B, 1, H, W) probabilities (or a list of (1, H, W)), tensor or ndarray; ``p >= t``
            is foreground, with ``t`` cast to ``prob``'s dtype (as ``prob >= t`` does).
        label: same shape, binary (nonzero, or ``>= 0.5`` for floats, is foreground).
        thresholds: increasing cut-offs in [0, 1].

    Returns:
        (B, 2 T + 1) int64 tensor (CPU, or the inputs' GPU): ``P_t`` for each threshold, then
        ``I_t`` for each threshold, then ``Y``. CUDA tensors are counted on the GPU, anything
        else with numpy.
    """
    thr = _check_thresholds(thresholds)
    p = _single_channel(prob, "prob")
    y = _single_channel(label, "label")
    if isinstance(p, torch.Tensor) and p.device.type != "cpu":
        y = torch.as_tensor(y).to(p.device)
        p = p if torch.is_floating_point(p) else p.float()
        bounds = torch.tensor(thr, dtype=p.dtype, device=p.device)
        return torch.stack([_counts_torch(p[i], y[i], bounds) for i in range(p.shape[0])])
    p = p.cpu().numpy() if isinstance(p, torch.Tensor) else p
    y = y.cpu().numpy() if isinstance(y, torch.Tensor) else y
    p = p if p.dtype.kind == "f" else p.astype(np.float32)
    bounds = np.asarray(thr, dtype=p.dtype)
    return torch.from_numpy(np.stack([_counts_numpy(p[i], y[i], bounds) for i in range(p.shape[0])]).astype(np.int64))


def sweep_dice(counts, ignore_empty: bool = True) -> np.ndarray:
    """Per-image Dice for each threshold from :func:`threshold_counts` rows: (N, T) float64.

    Images with an empty label are nan (``ignore_empty``) or 1/0 by whether anything was predicted.
    """
    c = np.asarray(counts.cpu() if isinstance(counts, torch.Tensor) else counts, dtype=np.float64)
    n_thr = (c.shape[1] - 1) // 2
    pred, inter, lab = c[:, :n_thr], c[:, n_thr : 2 * n_thr], c[:, -1:]
    denom = pred + lab
    with np.errstate(divide="ignore", invalid="ignore"):
        dice = np.where(denom > 0, 2.0 * inter / np.where(denom > 0, denom, 1.0), 1.0)
    empty = np.broadcast_to(lab == 0, dice.shape)
    fill = np.nan if ignore_empty else np.where(pred == 0, 1.0, 0.0)
    return np.where(empty, fill, dice)


def _best(thresholds: Sequence[float], curve: np.ndarray) -> tuple[int | None, float]:
    """Index of the best threshold (ties: nearest 0.5, then lower) and its score."""
    if np.all(np.isnan(curve)):
        return None, math.nan
    top = np.nanmax(curve)
    ties = [i for i, v in enumerate(curve) if not np.isnan(v) and v >= top - 1e-12]
    i = min(ties, key=lambda k: (abs(thresholds[k] - 0.5), thresholds[k]))
    return i, float(curve[i])


def _key(t: float) -> str:
    return f"{t:.4f}".rstrip("0").rstrip(".") if t != 0 else "0"


class ThresholdSweep:
    """Ignite handler: sweep probability cut-offs on the validation set and keep the best one.

    On every ``ITERATION_COMPLETED`` it accumulates per-image counts (:func:`threshold_counts`);
    on ``EPOCH_COMPLETED`` it computes the mean Dice curve (:func:`sweep_dice`, averaged over
    images), picks the best threshold, logs the curve, stores
    ``engine.state.metrics[metric_name]`` (the threshold) and ``[metric_name + "_dice"]`` (its
    mean Dice), and writes ``{"threshold": t, "dice": d, "curve": {...}, ...}`` atomically to
    ``output_path`` (when given), which :func:`read_threshold` reads back.

    Args:
        output_path: json file to write (e.g. ``"models/threshold.json"``); None writes nothing.
        thresholds: increasing cut-offs, default 0.05..0.95 step 0.05 (Sec. 4.3).
        output_transform: extracts ``(probabilities, labels)`` from ``engine.state.output``;
            default ``from_engine(["pred", "label"])``. Probabilities must be single-channel
            (apply the sigmoid in the evaluator's postprocessing, do not threshold there).
        ignore_empty: images with an empty label are left out (True) or scored 1/0 (False).
        metric_name: key in ``engine.state.metrics``.
        only_on_improvement: write the file only in epochs where the evaluator's key metric
            improved (``engine.state.best_metric_epoch == engine.state.epoch``), i.e. when a
            ``CheckpointSaver(save_key_metric=True)`` saves the model the threshold belongs to.
        default_threshold: written when no image has a label (the curve is all nan).
        logger_name: name of the logger used for the curve; default the module logger.

    Example::

        evaluator = SupervisedEvaluator(
            ..., postprocessing=Activationsd(keys="pred", sigmoid=True),
            val_handlers=[ThresholdSweep(output_path="models/threshold.json")])
    """

    def __init__(
        self,
        output_path: str | Path | None = None,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
        output_transform: Callable = from_engine(["pred", "label"]),
        ignore_empty: bool = True,
        metric_name: str = "best_threshold",
        only_on_improvement: bool = False,
        default_threshold: float = 0.5,
        logger_name: str | None = None,
    ) -> None:
        self.thresholds = _check_thresholds(thresholds)
        self.output_path = Path(output_path) if output_path is not None else None
        self.output_transform = output_transform
        self.ignore_empty = ignore_empty
        self.metric_name = metric_name
        self.only_on_improvement = only_on_improvement
        self.default_threshold = float(default_threshold)
        self.logger = logging.getLogger(logger_name or __name__)
        self._counts: list[torch.Tensor] = []
        self.result: dict | None = None

    def attach(self, engine) -> None:
        """Register the reset, update and sweep with ``engine``'s events."""
        engine.add_event_handler(Events.EPOCH_STARTED, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.epoch_completed)

    def reset(self, engine=None) -> None:
        """Forget the accumulated counts (start of an epoch)."""
        self._counts = []

    def update(self, prob, label) -> None:
        """Accumulate the counts of a batch (tensor (B, 1, H, W) or list of (1, H, W))."""
        self._counts.append(threshold_counts(prob, label, self.thresholds).cpu())

    def iteration_completed(self, engine) -> None:
        prob, label = self.output_transform(engine.state.output)
        self.update(prob, label)

    def _gathered(self) -> torch.Tensor:
        width = 2 * len(self.thresholds) + 1
        local = torch.cat(self._counts) if self._counts else torch.zeros((0, width), dtype=torch.int64)
        if idist.get_world_size() > 1:
            local = evenly_divisible_all_gather(local.to(idist.device()), concat=True).cpu()
        return local

    def compute(self) -> dict:
        """The sweep over everything accumulated: threshold, dice, curve and image counts."""
        counts = self._gathered()
        per_image = sweep_dice(counts, self.ignore_empty)
        n_valid = int((~np.isnan(per_image[:, 0])).sum()) if per_image.size else 0
        # an image is nan at every threshold or at none, so no column is all-nan when n_valid > 0
        curve = np.nanmean(per_image, axis=0) if n_valid else np.full(len(self.thresholds), np.nan)
        idx, dice = _best(self.thresholds, curve)
        threshold = self.thresholds[idx] if idx is not None else self.default_threshold
        return {
            "threshold": threshold,
            "dice": dice,
            "curve": {_key(t): float(v) for t, v in zip(self.thresholds, curve)},
            "n_images": int(counts.shape[0]),
            "n_scored": n_valid,
            "ignore_empty": self.ignore_empty,
        }

    def epoch_completed(self, engine) -> None:
        """Sweep, log, store in ``engine.state.metrics`` and write the file."""
        result = self.compute()
        result["epoch"] = int(engine.state.epoch)
        self.result = result
        engine.state.metrics[self.metric_name] = result["threshold"]
        engine.state.metrics[f"{self.metric_name}_dice"] = result["dice"]
        curve = " ".join(f"{k}:{v:.4f}" for k, v in result["curve"].items())
        self.logger.info(
            f"threshold sweep (epoch {result['epoch']}, {result['n_scored']}/{result['n_images']} images scored): "
            f"best threshold {result['threshold']} with mean Dice {result['dice']:.4f}; curve {curve}"
        )
        if result["n_scored"] == 0:
            self.logger.warning(
                "threshold sweep: no validation image has a BAC label; "
                f"keeping the default threshold {self.default_threshold}."
            )
        if self.output_path is None or idist.get_rank() != 0:
            return
        if self.only_on_improvement and getattr(engine.state, "best_metric_epoch", None) != engine.state.epoch:
            return
        write_threshold(self.output_path, result)


def write_threshold(path: str | Path, result: dict) -> Path:
    """Write a sweep result as json, atomically (temp file + rename); nan becomes null."""
    return write_json(path, result, indent=2)


def read_threshold(path: str | Path, default: float = 0.5) -> float:
    """The probability cut-off written by :class:`ThresholdSweep`, or ``default`` if there is no file.

    Raises:
        ValueError: the file exists but holds no valid ``"threshold"`` in [0, 1].
    """
    path = Path(path)
    if not path.is_file():
        return float(default)
    try:
        value = float(json.loads(path.read_text())["threshold"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a threshold file (expected json with a numeric 'threshold').") from e
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{path}: threshold {value} is outside [0, 1].")
    return value

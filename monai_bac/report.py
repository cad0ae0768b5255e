"""A picture report of an evaluation run: Dice and Dice^L per image, and Dice against threshold.

Inputs are the files the bundle already writes:

* ``<eval dir>/<metric>_raw.csv`` from MONAI's ``MetricsSaver`` (``evaluate.json``): one row per
  image, ``filename,class0,mean``; the metrics used are ``dice_gt`` (area Dice against the
  expert / ground-truth label), ``length_dice_gt`` (Dice^L, Eq. 6) and, when present,
  ``dice_label`` (against the training label) and ``cldice_gt``;
* ``models/threshold.json`` from the validation threshold sweep (``"threshold"`` and a
  ``"curve"`` of mean Dice per cut-off).

:func:`make_report` draws both panels with matplotlib (Agg backend, no display needed) into a
PNG and returns the numbers it drew.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from monai_bac.utils import atomic_write_path

__all__ = ["read_metric_csv", "read_threshold_curve", "evaluation_table", "make_report", "METRIC_LABELS"]

#: metric file stem -> legend label
METRIC_LABELS = {
    "dice_gt": "Dice (vs ground truth)",
    "length_dice_gt": "Dice$^L$ (vs ground truth)",
    "cldice_gt": "clDice (vs ground truth)",
    "dice_label": "Dice (vs training label)",
}


def read_metric_csv(path: str | os.PathLike) -> dict[str, float]:
    """``{image file name: value}`` from a MetricsSaver ``*_raw.csv`` (comma or tab separated).

    The value is the ``mean`` column (the single class). ``nan`` (no label) is kept as nan.
    """
    path = Path(path)
    text = path.read_text()
    if not text.strip():
        return {}
    delimiter = "\t" if "\t" in text.splitlines()[0] else ","
    rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    header, body = rows[0], rows[1:]
    if not header or header[0] != "filename":
        raise ValueError(f"{path}: not a MetricsSaver per-image file (first column must be 'filename', got {header[:3]})")
    col = header.index("mean") if "mean" in header else 1
    out = {}
    for row in body:
        if len(row) <= col:
            continue
        try:
            out[row[0]] = float(row[col])
        except ValueError:
            out[row[0]] = float("nan")
    return out


def read_threshold_curve(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, float | None]:
    """``(thresholds, mean Dice, chosen threshold)`` from a ``threshold.json`` of the sweep."""
    data = json.loads(Path(path).read_text())
    curve = data.get("curve") or {}
    if not curve:
        raise ValueError(f"{path}: no 'curve' (expected the output of monai_bac.handlers.ThresholdSweep)")
    pairs = sorted((float(k), float("nan") if v is None else float(v)) for k, v in curve.items())
    t = data.get("threshold")
    return (np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]),
            None if t is None else float(t))


def evaluation_table(eval_dir: str | os.PathLike) -> dict[str, dict[str, float]]:
    """``{metric: {file: value}}`` for every known ``<metric>_raw.csv`` in ``eval_dir``."""
    eval_dir = Path(eval_dir)
    out = {}
    for name in METRIC_LABELS:
        f = eval_dir / f"{name}_raw.csv"
        if f.is_file():
            out[name] = read_metric_csv(f)
    if not out:
        raise FileNotFoundError(f"{eval_dir}: no per-image metric files ({', '.join(n + '_raw.csv' for n in METRIC_LABELS)}); "
                                "run the bundle's evaluation first (inference.json + evaluate.json)")
    return out


def _short(name: str) -> str:
    base = Path(name).name
    for ext in (".nii.gz", ".dcm", ".nii", ".png"):
        if base.endswith(ext):
            return base[: -len(ext)]
    return base


def make_report(eval_dir: str | os.PathLike, out_png: str | os.PathLike,
                threshold_json: str | os.PathLike | None = None, *, title: str | None = None,
                overwrite: bool = False, dpi: int = 120) -> dict[str, Any]:
    """Draw the evaluation report PNG.

    Panel (a): Dice and Dice^L of every image (sorted by Dice^L), with their means.
    Panel (b): mean validation Dice against the probability threshold (the sweep), the chosen
    threshold marked; omitted when there is no ``threshold_json``.

    Returns:
        ``{"png": path, "n_images": n, "mean": {metric: mean}, "per_image": {metric: {case: v}},
        "threshold": t, "curve": {t: dice}}``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    table = evaluation_table(eval_dir)
    curve = None
    if threshold_json is not None and Path(threshold_json).is_file():
        curve = read_threshold_curve(threshold_json)
    files = sorted(set().union(*[set(v) for v in table.values()]))
    order_key = "length_dice_gt" if "length_dice_gt" in table else next(iter(table))
    files.sort(key=lambda f: (np.nan_to_num(table[order_key].get(f, np.nan), nan=-1.0), f))
    n_panels = 2 if curve is not None else 1
    fig, axes = plt.subplots(1, n_panels, figsize=(6.5 * n_panels + max(0, len(files) - 20) * 0.15, 4.6),
                             squeeze=False)
    ax = axes[0, 0]
    x = np.arange(len(files))
    markers = {"dice_gt": ("o", "tab:blue"), "length_dice_gt": ("s", "tab:red"), "cldice_gt": ("^", "tab:green"),
               "dice_label": ("x", "tab:grey")}
    means = {}
    for name, values in table.items():
        y = np.array([values.get(f, np.nan) for f in files], float)
        means[name] = float(np.nanmean(y)) if np.isfinite(y).any() else float("nan")
        mk, colour = markers.get(name, ("o", None))
        ax.plot(x, y, mk, color=colour, label=f"{METRIC_LABELS.get(name, name)}: mean {means[name]:.3f}", ms=5)
        if np.isfinite(means[name]):
            ax.axhline(means[name], color=colour, lw=0.8, ls="--")
    ax.set_xticks(x)
    ax.set_xticklabels([_short(f) for f in files], rotation=70, ha="right", fontsize=7)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("score")
    ax.set_title(f"(a) per image (n = {len(files)}), sorted by {METRIC_LABELS.get(order_key, order_key)}", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    out: dict[str, Any] = {"n_images": len(files), "mean": means,
                           "per_image": {k: {_short(f): v for f, v in vals.items()} for k, vals in table.items()}}
    if curve is not None:
        t, d, chosen = curve
        ax2 = axes[0, 1]
        ax2.plot(t, d, "-o", color="tab:blue", ms=4, label="mean validation Dice")
        if chosen is not None:
            k = int(np.argmin(np.abs(t - chosen)))
            ax2.axvline(chosen, color="tab:red", ls="--", lw=1)
            ax2.plot([t[k]], [d[k]], "*", color="tab:red", ms=12, label=f"chosen threshold {chosen:g} (Dice {d[k]:.3f})")
        ax2.set_xlabel("probability threshold")
        ax2.set_ylabel("mean Dice")
        ax2.set_xlim(0, 1)
        finite = d[np.isfinite(d)]
        ax2.set_ylim(0, max(1e-3, float(finite.max()) * 1.15) if finite.size else 1)
        ax2.set_title("(b) Dice against threshold (validation sweep)", fontsize=9)
        ax2.legend(fontsize=7)
        ax2.grid(alpha=0.3)
        out.update(threshold=chosen, curve={float(a): (None if not math.isfinite(b) else float(b)) for a, b in zip(t, d)})
    name = Path(eval_dir).name
    fig.suptitle(title or ("BAC segmentation evaluation" + ("" if name.lower() == "evaluation" else f": {name}")),
                 fontsize=10)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write_path(out_png, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    out["png"] = str(out_png)
    return out

"""Reproduce the paper's Table 3 / Fig. 8 on the phantom: corrected labels vs third-party labels.

One call generates a phantom cohort with its simulated third-party annotation (TPA) and ground
truth, corrects the TPA with :class:`~monai_bac.transforms.CorrectBACLabel` (``monai-bac
correct-labels``), trains the runs of Table 3 through the bundle (``bundle/configs/train.json``
with overrides, one bundle copy per run and seed), evaluates each on the test split against the
TPA and against the ground truth (``inference.json`` + ``evaluate.json``), and writes a
Table-3-shaped CSV / Markdown table and a Fig.-8-style plot. Every run keeps its configs, its
overrides (``overrides.json``) and its evaluation beside its model.

The phantom's ground truth plays the paper's "ExpertGT" (an independent truth the paper lacked).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["RunSpec", "RUNS", "STUDIES", "reproduce", "summarise"]


@dataclass(frozen=True)
class RunSpec:
    """One row of Table 3."""

    run_id: str
    network: str
    normalisation: str
    labels: str  # "tpa" (third-party) or "corrected" (algorithm)
    size_factor: float = 1.0  # image size relative to the profile's (rt3 uses 1024 / 1600)


RUNS = {
    "ra3": RunSpec("ra3", "deeplabv3p_r34", "log_gamma", "corrected"),
    "ra2": RunSpec("ra2", "unet_r34", "log_gamma", "corrected"),
    "ra1": RunSpec("ra1", "deeplabv3p_mnv3", "log_gamma", "corrected"),
    "ra0": RunSpec("ra0", "deeplabv3p_mnv3", "none", "corrected"),
    "rt4": RunSpec("rt4", "deeplabv3p_mnv3", "log_gamma", "tpa"),
    "rt3": RunSpec("rt3", "deeplabv3p_mnv3", "log_gamma", "tpa", size_factor=1024 / 1600),
    "rt2": RunSpec("rt2", "deeplabv3p_mnv3", "auto_gamma", "tpa"),
    "rt1": RunSpec("rt1", "deeplabv3p_mnv3", "density", "tpa"),
    "rt0": RunSpec("rt0", "deeplabv3p_mnv3", "none", "tpa"),
}

#: the runs and held-out cohort of each profile; the training recipe (cohort size, phantom
#: spacing, image size, epochs, ...) is the bundle's own ``train.json`` profile, so this
#: experiment trains exactly as the bundle does
STUDIES = {
    "cpu": dict(runs=("rt4", "ra1", "ra0"), held_out_size=40),
    "gpu": dict(runs=tuple(RUNS), held_out_size=120),
}


def _copy_bundle(bundle: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(bundle / "configs", dest / "configs", dirs_exist_ok=True)
    return dest


def _workflow(configs: list[Path], workflow_type: str, **override):
    from monai.bundle import ConfigWorkflow

    wf = ConfigWorkflow(config_file=[str(c) for c in configs], workflow_type=workflow_type,
                        logging_file=str(Path(configs[0]).parent / "logging.conf"), **override)
    wf.initialize()
    wf.run()
    wf.finalize()
    return wf


def _read_metrics(path: Path) -> dict[str, float]:
    return {k: float(v) for k, v in (line.split(",") for line in path.read_text().split())}


def prepare_data(out: Path, cohort_size: int, spacing_mm: float, seed: int, workers: int,
                 tpa=None) -> tuple[Path, Path]:
    """The phantom cohort (TPA labels + truth) and its corrected copy; each made once and reused.
    ``tpa``: the annotator (:class:`~monai_bac.phantom.TPAConfig`; None: the default one)."""
    import subprocess
    import sys

    from monai_bac.phantom.cohort import ensure_cohort

    cohort = ensure_cohort(out / "cohort", n=cohort_size, seed=seed, spacing_mm=spacing_mm, workers=workers, tpa=tpa)
    corrected = out / "corrected" / "datalist.json"
    if not corrected.is_file():  # the `monai-bac correct-labels` command, as a user runs it
        code = subprocess.call([sys.executable, "-m", "monai_bac.cli", "correct-labels", "--datalist", str(cohort),
                                "--out", str(corrected.parent), "--workers", str(workers), "--overwrite"])
        if code != 0:
            raise RuntimeError(f"label correction failed (exit {code}); see {corrected.parent}/correction_report.csv")
    return cohort, corrected


def train_one(spec: RunSpec, seed: int, out: Path, cohort: Path, corrected: Path, train: dict,
              bundle: Path) -> tuple[Path, dict]:
    """Train one run of Table 3 through the bundle (reused when ``trained.json`` says it finished).
    A run on TPA labels trains on ``cohort``, any other (corrected, refined) on ``corrected``."""
    root = out / "runs" / f"{spec.run_id}-seed{seed}"
    done = root / "trained.json"
    if done.is_file():
        logger.info("reusing the trained model in %s", root)
        return root, json.loads(done.read_text())
    if root.exists():
        shutil.rmtree(root)  # an unfinished run from before: start it again
    _copy_bundle(bundle, root)
    from monai_bac.bundle_support import training_recipe

    base_size = train.get("image_size") or training_recipe(bundle / "configs" / "train.json", train["profile"])["image_size"]
    size = int(round(base_size * spec.size_factor / 32) * 32)
    overrides = dict(train, bundle_root=str(root), seed=seed, network_name=spec.network,
                     normalisation=spec.normalisation, image_size=size,
                     datalist_file=str(cohort if spec.labels == "tpa" else corrected))
    (root / "overrides.json").write_text(json.dumps(overrides, indent=1))
    t0 = time.perf_counter()
    _workflow([root / "configs" / "train.json"], "train", **overrides)
    info = dict(asdict(spec), seed=seed, image_size=size, train_seconds=round(time.perf_counter() - t0, 1))
    done.write_text(json.dumps(info, indent=1))
    return root, info


def evaluate_one(root: Path, datalist: Path, split: str, name: str) -> dict[str, float]:
    """Dice vs the TPA (``label``), Dice / Dice^L / clDice vs the truth (``label_gt``) on a split."""
    eval_dir = root / "eval" / name
    if not (eval_dir / "metrics.csv").is_file():
        if eval_dir.exists():
            shutil.rmtree(eval_dir)
        _workflow([root / "configs" / "inference.json", root / "configs" / "evaluate.json"], "infer",
                  bundle_root=str(root), input_path=str(datalist), input_split=split, output_dir=str(eval_dir))
    m = _read_metrics(eval_dir / "metrics.csv")
    n = len((eval_dir / "dice_gt_raw.csv").read_text().strip().splitlines()) - 1
    return dict(dice_tpa=m["dice_label"], dice_gt=m["dice_gt"], length_dice_gt=m["length_dice_gt"],
                cldice_gt=m.get("cldice_gt"), n_images=n)


#: codes of the truth's ``tpa_source`` map for the look-alikes the simulated annotator brushed as BAC
LOOKALIKE_CODES = (2, 3, 4)


def _errors_against_truth(mask, gt, lookalikes, spacing_mm, tolerance_mm: float) -> dict[str, float]:
    """Area Dice, and the tolerant precision / recall / look-alike share of one mask (see :func:`error_analysis`)."""
    import numpy as np
    from scipy import ndimage as ndi

    from monai_bac.metrics import mask_dice

    mask, gt = np.asarray(mask) > 0, np.asarray(gt) > 0
    near_gt = ndi.distance_transform_edt(~gt, sampling=spacing_mm) <= tolerance_mm if gt.any() else np.zeros_like(gt)
    near = ndi.distance_transform_edt(~mask, sampling=spacing_mm) <= tolerance_mm if mask.any() else np.zeros_like(mask)
    n, n_gt = int(mask.sum()), int(gt.sum())
    return dict(dice=mask_dice(mask, gt),
                precision_1mm=float((mask & near_gt).sum() / n) if n else float("nan"),
                recall_1mm=float((gt & near).sum() / n_gt) if n_gt else float("nan"),
                lookalike_share=float((mask & lookalikes & ~near_gt).sum() / n) if n else 0.0)


def _entries(datalist: Path, split: str) -> list[dict]:
    content = json.loads(Path(datalist).read_text())
    return [e for k, v in content.items() if isinstance(v, list) and (split == "all" or k == split) for e in v
            if "truth" in e and "label_gt" in e]


def _mean(rows: list[dict], tolerance_mm: float) -> dict[str, float]:
    import numpy as np

    summary = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]} if rows else {}
    return {**summary, "tolerance_mm": tolerance_mm, "n_images": len(rows)}


def error_analysis(root: Path, datalist: Path, split: str = "all", tolerance_mm: float = 1.0) -> dict[str, float]:
    """Where a run's predictions go wrong, from the phantom's truth (means over the images).

    ``precision_1mm``: share of predicted pixels within ``tolerance_mm`` of true BAC;
    ``recall_1mm``: share of true BAC pixels within ``tolerance_mm`` of a prediction;
    ``lookalike_share``: share of predicted pixels on the look-alikes (micro-calcification
    clusters, dense strands, dense edges) that the third-party annotator brushed as BAC, away
    from true BAC - the annotation errors a model can learn, which label correction removes.
    Cached in ``eval/errors_<split>_<cohort folder>.json``.
    """
    import numpy as np

    from monai_bac.bundle_inference import BundleInference
    from monai_bac.data import load_label

    cache = root / "eval" / f"errors_{split}_{Path(datalist).parent.name}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    base = Path(datalist).parent
    engine = BundleInference(root, engine="torch", overrides={"save_transforms": [], "quantify_transforms": [], "report_transforms": []})
    rows = []
    for entry in _entries(datalist, split):
        data, _ = engine(str(base / entry["image"]))
        sp = tuple(float(v) for v in data["pred"].meta["spacing_mm"])
        mask = np.asarray(data["pred"])[0] > 0
        gt = np.asarray(load_label(base / entry["label_gt"], spacing_mm=sp))[0]
        lookalikes = np.isin(np.load(base / entry["truth"])["tpa_source"], LOOKALIKE_CODES)
        rows.append(_errors_against_truth(mask, gt, lookalikes, sp, tolerance_mm))
    summary = _mean(rows, tolerance_mm)
    cache.write_text(json.dumps(summary, indent=1))
    return summary


def label_quality(cohort: Path, corrected: Path, tolerance_mm: float = 1.0) -> dict[str, dict[str, float]]:
    """The training labels themselves against the truth: the TPA and its corrected copy (every image)."""
    import numpy as np

    from monai_bac.data import load_label

    out = {"tpa": [], "corrected": []}
    fixed = {e["case"]: e for e in _entries(corrected, "all")}
    base = Path(cohort).parent
    for entry in _entries(cohort, "all"):
        gt_img = load_label(base / entry["label_gt"])
        sp = tuple(float(v) for v in gt_img.meta["spacing_mm"])
        gt = np.asarray(gt_img)[0]
        lookalikes = np.isin(np.load(base / entry["truth"])["tpa_source"], LOOKALIKE_CODES)
        for name, path in (("tpa", base / entry["label"]),
                           ("corrected", Path(corrected).parent / fixed[entry["case"]]["label"])):
            mask = np.asarray(load_label(path, spacing_mm=sp))[0]
            out[name].append(_errors_against_truth(mask, gt, lookalikes, sp, tolerance_mm))
    return {k: _mean(v, tolerance_mm) for k, v in out.items()}


def run_one(spec: RunSpec, seed: int, out: Path, cohort: Path, corrected: Path, train: dict, bundle: Path,
            held_out: Path | None = None) -> dict:
    """Train one run and evaluate it on the cohort's test split (and on the held-out cohort)."""
    root, row = train_one(spec, seed, out, cohort, corrected, train, bundle)
    row.update({k: v for k, v in evaluate_one(root, cohort, "test", "test").items()})
    if held_out is not None:
        row.update({f"held_out_{k}": v for k, v in evaluate_one(root, held_out, "all", "held_out").items()})
        errors = error_analysis(root, held_out)
        row.update({f"held_out_{k}": v for k, v in errors.items() if k != "tolerance_mm"})
    (root / "result.json").write_text(json.dumps(row, indent=1))
    return row


METRIC_KEYS = ("dice_tpa", "dice_gt", "length_dice_gt", "held_out_dice_tpa", "held_out_dice_gt",
               "held_out_length_dice_gt", "held_out_precision_1mm", "held_out_recall_1mm", "held_out_lookalike_share")


def summarise(rows: list[dict], out: Path, labels: dict | None = None) -> tuple[Path, Path, Path]:
    """Table 3 (mean +- sd over seeds) as CSV and Markdown, and the Fig. 8-style plot.

    ``labels``: :func:`label_quality` of the training labels, tabled with the runs' errors.
    """
    order = [r for r in RUNS if any(row["run_id"] == r for row in rows)]
    table = []
    for run_id in order:
        mine = [r for r in rows if r["run_id"] == run_id]
        entry = dict(run_id=run_id, network=mine[0]["network"], normalisation=mine[0]["normalisation"],
                     image_size=mine[0]["image_size"], labels=mine[0]["labels"], seeds=len(mine))
        for key in METRIC_KEYS:
            if key not in mine[0]:
                continue
            values = [r[key] for r in mine]
            entry[key] = statistics.fmean(values)
            entry[key + "_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
            entry[key + "_per_seed"] = " ".join(f"{v:.4f}" for v in values)
        table.append(entry)
    csv_path = out / "table3.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    sets = [("", "test split")] + ([("held_out_", "held-out cohort")] if "held_out_dice_gt" in table[0] else [])
    md = []
    for prefix, title in sets:
        n = rows[0].get(f"{prefix}n_images")
        md += [f"### {title}" + (f" ({n} images)" if n else ""), "",
               "| Run | Model | Normalisation | Size | Label | Dice vs TPA | Dice vs truth | Dice^L vs truth |",
               "|---|---|---|---|---|---|---|---|"]
        for e in table:
            cells = [f"{e[prefix + k]:.4f} ± {e[prefix + k + '_sd']:.4f}" for k in ("dice_tpa", "dice_gt", "length_dice_gt")]
            label = "Algorithm" if e["labels"] == "corrected" else "TPA"
            md.append(f"| {e['run_id']} | {e['network']} | {e['normalisation']} | {e['image_size']} | {label} | "
                      + " | ".join(cells) + " |")
        md.append("")
    if "held_out_lookalike_share" in table[0]:
        md += ["### where the errors are (held-out cohort, against the truth, 1 mm tolerance)", "",
               "| Run | Label | predicted pixels near true BAC | true BAC found | predicted pixels on look-alikes the TPA brushed |",
               "|---|---|---|---|---|"]
        for e in table:
            cells = [f"{e[k]:.3f} ± {e[k + '_sd']:.3f}" for k in
                     ("held_out_precision_1mm", "held_out_recall_1mm", "held_out_lookalike_share")]
            md.append(f"| {e['run_id']} | {'Algorithm' if e['labels'] == 'corrected' else 'TPA'} | " + " | ".join(cells) + " |")
        md.append("")
    if labels:
        n = labels["tpa"].get("n_images")
        md += [f"### the training labels themselves against the truth (whole cohort, {n} images, 1 mm tolerance)", "",
               "| Label | Dice vs truth | label pixels near true BAC | true BAC covered | label pixels on look-alikes |",
               "|---|---|---|---|---|"]
        for name, title in (("tpa", "TPA"), ("corrected", "Algorithm (corrected TPA)")):
            q = labels[name]
            md.append(f"| {title} | {q['dice']:.3f} | {q['precision_1mm']:.3f} | {q['recall_1mm']:.3f} | "
                      f"{q['lookalike_share']:.3f} |")
        md.append("")
    md_path = out / "table3.md"
    md_path.write_text("\n".join(md) + f"\nmean ± sd over {table[0]['seeds']} training seed(s); per-seed values in table3.csv\n")
    png_path = out / "fig8.png"
    _plot(table, png_path)
    return csv_path, md_path, png_path


def _plot(table: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(table)), 4))
    x = range(len(table))
    prefix = "held_out_" if "held_out_dice_gt" in table[0] else ""
    for key, label, marker in ((prefix + "dice_tpa", "Dice vs TPA", "s"), (prefix + "dice_gt", "Dice vs truth", "o"),
                               (prefix + "length_dice_gt", "Dice^L vs truth", "^")):
        ax.errorbar(list(x), [e[key] for e in table], yerr=[e[key + "_sd"] for e in table], marker=marker,
                    capsize=3, label=label)
    ax.set_xticks(list(x), [e["run_id"] for e in table])
    split = [i for i, e in enumerate(table) if e["labels"] == "tpa"]
    if split and split[0] > 0:
        ax.axvline(split[0] - 0.5, color="grey", lw=1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test score")
    ax.set_title("phantom" + (" (held-out cohort)" if prefix else " (test split)")
                 + ":\ntraining on corrected (ra) vs third-party (rt) labels", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def reproduce(out: str | os.PathLike, bundle: str | os.PathLike, profile: str = "cpu", seeds=(0, 1), runs=None,
              cohort_seed: int = 0, workers: int = 2, held_out_size: int | None = None, **train_overrides) -> dict:
    """Run the whole experiment into ``out`` with the bundle at ``bundle`` (its configs are copied
    per run); finished runs found in ``out`` are reused (resumable)."""
    from monai_bac.bundle_support import training_recipe

    out, bundle = Path(out), Path(bundle)
    out.mkdir(parents=True, exist_ok=True)
    prof = STUDIES[profile]
    recipe = training_recipe(bundle / "configs" / "train.json", profile)
    runs = tuple(runs or prof["runs"])
    unknown = [r for r in runs if r not in RUNS]
    if unknown:
        raise ValueError(f"unknown run ids {unknown}; choose from {list(RUNS)}")
    cohort_size = int(train_overrides.pop("cohort_size", recipe["cohort_size"]))
    spacing = float(train_overrides.pop("phantom_spacing_mm", recipe["phantom_spacing_mm"]))
    train = {"profile": profile, **train_overrides}
    t0 = time.perf_counter()
    cohort, corrected = prepare_data(out, cohort_size, spacing, cohort_seed, workers)
    held_out_size = prof["held_out_size"] if held_out_size is None else int(held_out_size)
    held_out = None
    if held_out_size > 0:  # more test images than a 10 % split gives, from patients no run has seen
        from monai_bac.phantom.cohort import ensure_cohort

        held_out = ensure_cohort(out / "held_out", n=held_out_size, seed=cohort_seed + 1000, spacing_mm=spacing,
                                 workers=workers)
    rows = [run_one(RUNS[r], s, out, cohort, corrected, train, bundle, held_out) for r in runs for s in seeds]
    labels_json = out / "label_quality.json"
    if not labels_json.is_file():
        labels_json.write_text(json.dumps(label_quality(cohort, corrected), indent=1))
    labels = json.loads(labels_json.read_text())
    csv_path, md_path, png_path = summarise(rows, out, labels)
    summary = dict(profile=profile, runs=list(runs), seeds=list(seeds), cohort_size=cohort_size,
                   held_out_size=held_out_size,
                   phantom_spacing_mm=spacing, train=train, minutes=round((time.perf_counter() - t0) / 60, 1),
                   label_quality=labels, table_csv=str(csv_path), table_md=str(md_path), figure=str(png_path))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary

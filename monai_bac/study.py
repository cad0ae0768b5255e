"""Does good annotation help? The annotation study of ``monai-bac reproduce --size``.

For each annotator profile (systematicity s of :class:`~monai_bac.phantom.TPAConfig`: 0 the
random annotator, 1 the systematic one, in between a Bernoulli(s) mixture of their habits) and
each cohort seed, a phantom cohort is annotated by that annotator, its TPA corrected by
``monai-bac correct-labels`` (the paper's Sec. 3.3) and, optionally, refined to the calcified
core; the same network is trained, for each training seed, on

* **rt4**: the TPA (the paper's reference run),
* **ra1**: the algorithm-corrected labels (the paper's headline run),
* **ra1r**: the corrected labels narrowed to their calcified core (:func:`refine_labels`),

and, at one annotator profile, with the other normalisations (**rt0** raw, **rt1** density
map, **rt2** auto-gamma; rt4 is log-gamma). Every model is evaluated on a held-out cohort of
other patients (the same annotator) against three references: the physical truth, the simulated
ExpertGT (:mod:`monai_bac.phantom.expert`: the TPA corrected the way the paper's Sec. 4.2
describes) and the TPA. Per image: Dice, Dice^L (Eq. 6), clDice, precision and recall at 1 mm
and the share of predicted pixels on the look-alikes the annotator brushed.

The gain ra1 - rt4 (and ra1r - rt4) is paired: the same cohort, training seed and held-out
image; its confidence interval is a two-level bootstrap (training units - cohort seed x training
seed - then held-out images within them). From the spread between units it says how many units
would tell a 10 % gain from none (:func:`units_needed`).

Everything is cached under ``out`` (one folder per cohort seed and profile, one per run), so a
second call reuses finished cohorts, corrections, trainings and evaluations; the analysis
(``study.md``, ``study_gains.csv``, ``study_images.csv``, ``study_gain.png``) is rewritten after
every finished run, so a stopped study leaves its partial results.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from monai_bac.reproduce import RUNS, RunSpec, _entries, _errors_against_truth, prepare_data, train_one

logger = logging.getLogger(__name__)

__all__ = ["StudySize", "SIZES", "ARMS", "REFERENCES", "study", "refine_labels", "evaluate_model",
           "paired_gain", "units_needed", "analyse", "reanalyse"]

#: the annotation arms; ra1r trains on the corrected labels narrowed to their calcified core
ARMS = {"rt4": RUNS["rt4"], "ra1": RUNS["ra1"],
        "ra1r": RunSpec("ra1r", "deeplabv3p_mnv3", "log_gamma", "refined")}
#: the normalisation arm (with rt4, log-gamma): raw, density map, auto-gamma
NORMALISATION = ("rt0", "rt1", "rt2")
REFERENCES = ("truth", "expert", "tpa")
METRICS = ("dice", "dice_l", "cldice", "precision_1mm", "recall_1mm", "lookalike_share")
#: the relative gain the study should be able to tell from none
TARGET_GAIN = 0.10


@dataclass(frozen=True)
class StudySize:
    """How big a study is. ``epochs``/``image_size`` None: the bundle profile's own."""

    systematicity: tuple[float, ...]
    train_seeds: tuple[int, ...]
    cohort_seeds: tuple[int, ...]
    cohort_size: int
    held_out_size: int
    spacing_mm: float
    image_size: int | None
    epochs: int | None
    arms: tuple[str, ...] = ("rt4", "ra1", "ra1r")
    normalisation_at: float | None = 0.0  # the profile the normalisation arm runs at (None: no arm)
    bootstrap: int = 2000


SIZES = {
    # the test's: every arm once, one epoch, tiny images
    "tiny": StudySize((0.5,), (0,), (0,), 6, 3, 1.0, 96, 1, normalisation_at=0.5, bootstrap=200),
    # what fitted in an hour on the shared 2-core machine: one cohort, three seeds, short training
    "pilot": StudySize((0.0, 0.5, 1.0), (0, 1, 2), (0,), 20, 16, 0.4, 256, 16, normalisation_at=1.0),
    # about two hours on a quiet 2-core machine (estimated from the pilot's times)
    "small": StudySize((0.0, 0.5, 1.0), (0, 1), (0, 1), 24, 24, 0.4, 256, 20, normalisation_at=1.0),
    # the bundle's CPU recipe (40 images, 384 px, 30 epochs), five profiles, 3 x 3 units
    "full": StudySize((0.0, 0.25, 0.5, 0.75, 1.0), (0, 1, 2), (0, 1, 2), 40, 40, 0.2, None, None,
                      normalisation_at=1.0),
}


# ------------------------------------------------------------------------------------ labels
def refine_labels(corrected: Path, out_dir: Path, threshold_mm: float = 0.02, workers: int = 1) -> Path:
    """Label refinement (beyond the paper): every kept piece of the corrected labels narrowed to
    its calcified core, the pixels whose calcification thickness h_calc (Eq. 5, from the image:
    BreastRegion, DensityMap, CalcificationThickness, as ``correct-labels`` computes it) exceeds
    ``threshold_mm``. A coarse brush becomes a label of the vessel's calcified track. Writes
    ``out_dir/labels/<case>.nii.gz`` and ``out_dir/datalist.json`` (``label`` the refined label);
    reused when the datalist exists for the same threshold."""
    import shutil

    corrected, out = Path(corrected), Path(out_dir)
    datalist_path = out / "datalist.json"
    if datalist_path.is_file() and json.loads(datalist_path.read_text()).get("refinement", {}).get(
            "threshold_mm") == threshold_mm:
        return datalist_path
    if out.exists():
        shutil.rmtree(out)
    content = json.loads(corrected.read_text())
    base = corrected.parent
    (out / "labels").mkdir(parents=True)
    jobs = [(str(base / e["image"]), str(base / e["label"]), str(out / "labels" / f"{e['case']}.nii.gz"), threshold_mm)
            for v in content.values() if isinstance(v, list) for e in v if isinstance(e, dict) and "label" in e]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            kept = list(pool.map(_refine_one, jobs))
    else:
        kept = [_refine_one(j) for j in jobs]
    new = {}
    for key, value in content.items():
        if not isinstance(value, list):
            new[key] = value
            continue
        new[key] = []
        for e in value:
            e = {k: os.path.relpath(base / v, out) if isinstance(v, str) and (base / v).exists() else v
                 for k, v in e.items()}
            e["label"] = f"labels/{e['case']}.nii.gz"
            new[key].append(e)
    new["refinement"] = dict(threshold_mm=threshold_mm, kept_fraction=float(np.mean(kept)) if kept else 0.0)
    datalist_path.parent.mkdir(parents=True, exist_ok=True)
    datalist_path.write_text(json.dumps(new, indent=1))
    return datalist_path


def _refine_one(job: tuple[str, str, str, float]) -> float:
    from monai_bac.data import load_label, load_mammogram
    from monai_bac.data.image_io import save_mask_nifti
    from monai_bac.transforms import BreastRegion, CalcificationThickness, DensityMap

    image_path, label_path, out_path, threshold_mm = job
    image = load_mammogram(image_path)
    spacing = tuple(float(v) for v in image.meta["spacing_mm"])
    label = np.asarray(load_label(label_path, spacing_mm=spacing))[0] > 0
    core = label
    if label.any():
        bmap = np.asarray(BreastRegion()(image))[0]
        calc = np.asarray(CalcificationThickness()(DensityMap(compute_vbd=False)(image, bmap), bmap))[0]
        core = label & (calc > threshold_mm)
    save_mask_nifti(out_path, core.astype(np.uint8), spacing, overwrite=True)
    return float(core.sum() / label.sum()) if label.any() else 1.0


# -------------------------------------------------------------------------------- evaluation
def _scores(pred: np.ndarray, ref: np.ndarray, lookalikes: np.ndarray, spacing) -> dict[str, float]:
    from monai_bac.metrics import compute_cldice, compute_length_dice

    errors = _errors_against_truth(pred, ref, lookalikes, spacing, 1.0)
    p, r = pred[None, None].astype(np.float32), ref[None, None].astype(np.float32)
    return dict(dice=errors["dice"] if ref.any() or pred.any() else float("nan"),
                dice_l=float(compute_length_dice(p, r, spacing_mm=spacing)[0, 0]),
                cldice=float(compute_cldice(p, r, spacing_mm=spacing)[0, 0]),
                precision_1mm=errors["precision_1mm"], recall_1mm=errors["recall_1mm"],
                lookalike_share=errors["lookalike_share"])


def evaluate_model(root: Path, held_out: Path, expert: dict[str, str], threads: int | None = None) -> list[dict]:
    """Every held-out image through the trained model, scored against the truth, the simulated
    ExpertGT and the TPA; cached in ``root/eval/study_images.csv``."""
    from monai_bac.bundle_inference import BundleInference
    from monai_bac.data import load_label

    cache = root / "eval" / "study_images.csv"
    if cache.is_file():
        return [{k: (v if k == "case" else float(v)) for k, v in r.items()} for r in csv.DictReader(open(cache))]
    base = Path(held_out).parent
    engine = BundleInference(root, engine="torch", threads=threads,
                             overrides={"save_transforms": [], "quantify_transforms": [], "report_transforms": []})
    rows = []
    for entry in _entries(held_out, "all"):
        data, _ = engine(str(base / entry["image"]))
        sp = tuple(float(v) for v in data["pred"].meta["spacing_mm"])
        pred = np.asarray(data["pred"])[0] > 0
        lookalikes = np.isin(np.load(base / entry["truth"])["tpa_source"], (2, 3, 4))
        refs = dict(truth=base / entry["label_gt"], expert=Path(expert[entry["case"]]), tpa=base / entry["label"])
        row = {"case": entry["case"]}
        for name, path in refs.items():
            ref = np.asarray(load_label(path, spacing_mm=sp))[0] > 0
            row.update({f"{name}_{k}": v for k, v in _scores(pred, ref, lookalikes, sp).items()})
        rows.append(row)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


# ---------------------------------------------------------------------------------- analysis
def paired_gain(diffs: list[np.ndarray], bases: list[np.ndarray], n_boot: int = 2000, seed: int = 0) -> dict:
    """Mean paired difference (and relative to the base's mean) with 95 % bootstrap intervals.

    ``diffs[u]``, ``bases[u]``: per held-out image, for training unit u (cohort seed x training
    seed). Two levels: units drawn with replacement, then images within each drawn unit (with
    one unit, images only). Images whose difference is nan (empty reference) are left out.
    """
    rng = np.random.default_rng(seed)
    units = [(d[np.isfinite(d) & np.isfinite(b)], b[np.isfinite(d) & np.isfinite(b)]) for d, b in zip(diffs, bases)]
    units = [(d, b) for d, b in units if len(d)]
    if not units:
        return dict(diff=float("nan"), lo=float("nan"), hi=float("nan"), rel=float("nan"), rel_lo=float("nan"),
                    rel_hi=float("nan"), base=float("nan"), n_units=0, n_images=0, unit_sd=float("nan"))
    boot_d, boot_b = [], []
    for d, b in units:  # per unit: n_boot image-resampled means
        idx = rng.integers(0, len(d), (n_boot, len(d)))
        boot_d.append(d[idx].mean(1))
        boot_b.append(b[idx].mean(1))
    boot_d, boot_b = np.stack(boot_d, 1), np.stack(boot_b, 1)  # (n_boot, units)
    k = len(units)
    pick = rng.integers(0, k, (n_boot, k)) if k > 1 else np.zeros((n_boot, 1), int)
    rows = np.arange(n_boot)[:, None]
    mean_d, mean_b = boot_d[rows, pick].mean(1), boot_b[rows, pick].mean(1)
    rel = mean_d / np.where(mean_b > 0, mean_b, np.nan)
    diff = float(np.mean([d.mean() for d, _ in units]))
    base = float(np.mean([b.mean() for _, b in units]))
    return dict(diff=diff, lo=float(np.percentile(mean_d, 2.5)), hi=float(np.percentile(mean_d, 97.5)),
                rel=diff / base if base > 0 else float("nan"), rel_lo=float(np.nanpercentile(rel, 2.5)),
                rel_hi=float(np.nanpercentile(rel, 97.5)), base=base, n_units=k,
                n_images=int(sum(len(d) for d, _ in units)),
                unit_sd=float(np.std([d.mean() for d, _ in units], ddof=1)) if k > 1 else float("nan"),
                image_sd=float(np.mean([d.std(ddof=1) for d, _ in units if len(d) > 1])) if any(
                    len(d) > 1 for d, _ in units) else float("nan"))


def units_needed(sd: float, base: float, gain: float = TARGET_GAIN, power: float = 0.8) -> float:
    """Paired units (or images) needed for a two-sided 5 % test to find a relative ``gain`` of
    ``base`` with ``power``, given the sd of one unit's difference: ((z_.975 + z_power) sd / effect)^2."""
    from statistics import NormalDist

    if not (np.isfinite(sd) and base > 0):
        return float("nan")
    z = NormalDist().inv_cdf(0.975) + NormalDist().inv_cdf(power)
    return float(math.ceil((z * sd / (gain * base)) ** 2))


def _collect(rows: list[dict]) -> dict:
    """rows -> {(s, arm): {(cohort seed, train seed): {case: row}}}. An image whose reference is
    empty (no BAC: its recall is nan) has no area Dice against it, as it has no Dice^L (MONAI's
    ``ignore_empty``); its precision and look-alike share still count."""
    out: dict = {}
    for r in rows:
        r = dict(r)
        for ref in REFERENCES:
            if not np.isfinite(float(r.get(f"{ref}_recall_1mm", 0.0))):
                r[f"{ref}_dice"] = float("nan")
        out.setdefault((r["systematicity"], r["arm"]), {}).setdefault((r["cohort_seed"], r["train_seed"]), {})[
            r["case"]] = r
    return out


def _paired(by: dict, s: float, arm: str, ref_arm: str, key: str, n_boot: int) -> dict | None:
    mine, base = by.get((s, arm), {}), by.get((s, ref_arm), {})
    units = sorted(set(mine) & set(base))
    if not units:
        return None
    diffs, bases = [], []
    for u in units:
        cases = sorted(set(mine[u]) & set(base[u]))
        diffs.append(np.array([mine[u][c][key] - base[u][c][key] for c in cases], float))
        bases.append(np.array([base[u][c][key] for c in cases], float))
    return paired_gain(diffs, bases, n_boot)


def analyse(rows: list[dict], out: Path, size: StudySize, minutes: float, complete: bool) -> dict:
    """Gains with intervals, the normalisation table, the power estimate, the figure; written to ``out``."""
    by = _collect(rows)
    gains = []
    for s in size.systematicity:
        for arm in [a for a in size.arms if a != "rt4"]:
            for ref in REFERENCES:
                for metric in METRICS:
                    g = _paired(by, s, arm, "rt4", f"{ref}_{metric}", size.bootstrap)
                    if g is None:
                        continue
                    g.update(systematicity=s, arm=arm, reference=ref, metric=metric,
                             rt4=g["base"], arm_mean=g["base"] + g["diff"],
                             units_needed=units_needed(g["unit_sd"], g["base"]),
                             images_needed=units_needed(g["image_sd"], g["base"]))
                    gains.append(g)
    norm = []
    if size.normalisation_at is not None:
        s = size.normalisation_at
        for arm in ("rt4",) + NORMALISATION:
            for ref in REFERENCES:
                g = _paired(by, s, arm, "rt4", f"{ref}_dice", size.bootstrap) if arm != "rt4" else None
                units = by.get((s, arm), {})
                vals = [r[f"{ref}_dice"] for u in units.values() for r in u.values()]
                if vals:
                    norm.append(dict(arm=arm, reference=ref, dice=float(np.nanmean(vals)), n_images=len(vals),
                                     n_units=len(units), **({} if g is None else
                                                            dict(diff=g["diff"], lo=g["lo"], hi=g["hi"]))))
    labels = label_quality(out)
    _write_csv(out / "study_images.csv", rows)
    _write_csv(out / "study_label_quality.csv", labels)
    _write_csv(out / "study_gains.csv", gains)
    _write_csv(out / "study_normalisation.csv", norm)
    if gains:
        _figure(gains, out / "study_gain.png")
    summary = dict(size=asdict(size), minutes=round(minutes, 1), complete=complete, n_runs=len(by) and sum(
        len(v) for v in by.values()), gains=gains, normalisation=norm, label_quality=labels)
    (out / "study.json").write_text(json.dumps(summary, indent=1, default=float))
    (out / "study.md").write_text(_markdown(summary))
    return summary


def label_quality(out: Path) -> list[dict]:
    """The training labels themselves against the truth (TPA, corrected, refined; every image of
    each training cohort) and the held-out ExpertGT against the truth, per annotator and cohort
    seed found in ``out``; cached in each folder's ``label_quality.json``."""
    from monai_bac.reproduce import label_quality as quality

    rows = []
    for here in sorted(Path(out).glob("cohort*/s*")):
        cache = here / "label_quality.json"
        if not cache.is_file():
            cohort, corrected = here / "cohort" / "datalist.json", here / "corrected" / "datalist.json"
            if not (cohort.is_file() and corrected.is_file()):
                continue
            found = quality(cohort, corrected)
            found["refined"] = (quality(cohort, here / "refined" / "datalist.json")["corrected"]
                                if (here / "refined" / "datalist.json").is_file() else None)
            held, expert = here / "held_out" / "datalist.json", here / "held_out_expert" / "labels"
            if held.is_file() and expert.is_dir():
                found["expert (held-out)"] = _expert_quality(held, expert)
            cache.write_text(json.dumps(found, indent=1))
        found = json.loads(cache.read_text())
        for name, q in found.items():
            if q:
                rows.append(dict(cohort=here.parent.name, systematicity=float(here.name[1:]), labels=name, **q))
    return rows


def _expert_quality(held: Path, expert_dir: Path) -> dict:
    from monai_bac.data import load_label
    from monai_bac.reproduce import _mean

    rows = []
    base = held.parent
    for entry in _entries(held, "all"):
        gt_img = load_label(base / entry["label_gt"])
        sp = tuple(float(v) for v in gt_img.meta["spacing_mm"])
        lookalikes = np.isin(np.load(base / entry["truth"])["tpa_source"], (2, 3, 4))
        mask = np.asarray(load_label(expert_dir / f"{entry['case']}.nii.gz", spacing_mm=sp))[0]
        rows.append(_errors_against_truth(mask, np.asarray(gt_img)[0], lookalikes, sp, 1.0))
    return _mean(rows, 1.0)


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def _fmt(g: dict, key: str = "diff", lo: str = "lo", hi: str = "hi", digits: int = 3) -> str:
    return f"{g[key]:+.{digits}f} [{g[lo]:+.{digits}f}, {g[hi]:+.{digits}f}]"


def _markdown(summary: dict) -> str:
    size = summary["size"]
    state = "complete" if summary["complete"] else "PARTIAL (the study was stopped or is still running)"
    md = [f"# Annotation study: {state}", "",
          f"systematicity {size['systematicity']}, arms {size['arms']}, training seeds {size['train_seeds']}, "
          f"cohort seeds {size['cohort_seeds']}, {size['cohort_size']} training-cohort and {size['held_out_size']} "
          f"held-out images at {size['spacing_mm']} mm, image size {size['image_size']}, {size['epochs']} epochs; "
          f"{summary['n_runs']} trained runs; {summary['minutes']} min.", "",
          "## Gain over rt4 (paired, 95 % bootstrap CI over units and held-out images)", "",
          "| s | arm | reference | metric | rt4 | arm | difference [CI] | relative [CI] | units | images | "
          "units for 10 % | images for 10 % |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for g in summary["gains"]:
        md.append(f"| {g['systematicity']:g} | {g['arm']} | {g['reference']} | {g['metric']} | {g['rt4']:.3f} | "
                  f"{g['arm_mean']:.3f} | {_fmt(g)} | {_fmt(g, 'rel', 'rel_lo', 'rel_hi', 2)} | {g['n_units']} | "
                  f"{g['n_images']} | {g['units_needed']:g} | {g['images_needed']:g} |")
    if summary.get("label_quality"):
        md += ["", "## The labels themselves against the truth (1 mm tolerance; training cohorts, and the held-out "
               "ExpertGT)", "", "| cohort | s | labels | Dice | pixels near true BAC | true BAC covered | "
               "pixels on brushed look-alikes | images |", "|---|---|---|---|---|---|---|---|"]
        for q in summary["label_quality"]:
            md.append(f"| {q['cohort']} | {q['systematicity']:g} | {q['labels']} | {q['dice']:.3f} | "
                      f"{q['precision_1mm']:.3f} | {q['recall_1mm']:.3f} | {q['lookalike_share']:.3f} | "
                      f"{q['n_images']} |")
    if summary["normalisation"]:
        md += ["", f"## Normalisation (s = {size['normalisation_at']:g}, TPA labels; Dice, difference to rt4 "
               "with 95 % CI)", "", "| run | reference | Dice | - rt4 [CI] | images |", "|---|---|---|---|---|"]
        for n in summary["normalisation"]:
            diff = _fmt(n) if "diff" in n else ""
            md.append(f"| {n['arm']} | {n['reference']} | {n['dice']:.3f} | {diff} | {n['n_images']} |")
    return "\n".join(md) + "\n"


def _figure(gains: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    styles = {("ra1", "truth"): ("C0", "o", -0.02), ("ra1", "expert"): ("C1", "s", 0.0),
              ("ra1r", "truth"): ("C2", "^", 0.02), ("ra1r", "expert"): ("C3", "v", 0.04)}
    # the paper's gains ra1 - rt4 against its ExpertGT (Table 3): Dice 0.4485 - 0.3477, Dice^L 0.5960 - 0.5088
    paper = {"dice": 0.4485 - 0.3477, "dice_l": 0.5960 - 0.5088}
    for ax, metric, title in zip(axes, ("dice", "dice_l"), ("Dice", "Dice^L")):
        for (arm, ref), (colour, marker, dx) in styles.items():
            pts = sorted((g["systematicity"], g["diff"], g["lo"], g["hi"]) for g in gains
                         if g["arm"] == arm and g["reference"] == ref and g["metric"] == metric)
            if not pts:
                continue
            x, y, lo, hi = (np.array(v, float) for v in zip(*pts))
            ax.errorbar(x + dx, y, yerr=[y - lo, hi - y], color=colour, marker=marker,
                        capsize=3, label=f"{arm} - rt4 vs {'ExpertGT' if ref == 'expert' else ref}")
        ax.axhline(0, color="grey", lw=1)
        ax.axhline(paper[metric], color="grey", lw=1, ls=":")
        ax.set_xlabel("annotator systematicity s")
        ax.set_title(f"{title}: gain over the TPA-trained rt4 (held-out cohort)", fontsize=10)
    axes[0].set_ylabel("paired difference, 95 % CI\n(dotted: the paper's ra1 - rt4 vs ExpertGT)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def reanalyse(out: str | os.PathLike) -> dict:
    """The analysis of a study folder again, from its ``study_images.csv`` (no training): for a
    study stopped part-way, or an analysis changed since."""
    out = Path(out)
    size_json = json.loads((out / "study_size.json").read_text())
    size_json.pop("profile", None)
    size = StudySize(**{k: tuple(v) if isinstance(v, list) else v for k, v in size_json.items()})
    rows = [{k: v if k in ("case", "arm") else float(v) for k, v in r.items()}
            for r in csv.DictReader(open(out / "study_images.csv"))]
    for r in rows:
        r["cohort_seed"], r["train_seed"] = int(r["cohort_seed"]), int(r["train_seed"])
    expected = len(size.systematicity) * len(size.train_seeds) * len(size.cohort_seeds) * len(size.arms) + (
        len(NORMALISATION) * len(size.train_seeds) * len(size.cohort_seeds) if size.normalisation_at is not None else 0)
    done = len({(r["systematicity"], r["arm"], r["cohort_seed"], r["train_seed"]) for r in rows})
    previous = json.loads((out / "study.json").read_text()).get("minutes", float("nan")) if (
        out / "study.json").is_file() else float("nan")
    return analyse(rows, out, size, previous, complete=done == expected)


# ------------------------------------------------------------------------------------- study
def study(out: str | os.PathLike, bundle: str | os.PathLike, size: str | StudySize = "small", profile: str = "cpu",
          workers: int = 2, refine_threshold_mm: float = 0.03, threads: int | None = 1, **size_overrides) -> dict:
    """Run (or resume) the annotation study into ``out``; returns the analysis summary.

    ``threads``: torch threads for training and inference (None: torch's default). One thread is
    the default because on a shared 2-core machine two threads per process ran a training step
    10-15 times slower than one (thread contention; measured here).
    """
    import torch

    from monai_bac.phantom import TPAConfig
    from monai_bac.phantom.cohort import ensure_cohort
    from monai_bac.phantom.expert import expert_labels

    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"unknown study size {size!r}; choose from {list(SIZES)}")
        size = SIZES[size]
    given = {k: v for k, v in size_overrides.items() if v is not None}
    if profile == "gpu":  # the bundle's GPU recipe (1600 px, 100 epochs) at the detector's 0.1 mm
        size = replace(size, image_size=None, epochs=None, spacing_mm=0.1)
    size = replace(size, **given)
    unknown = [a for a in size.arms if a not in ARMS]
    if unknown or "rt4" not in size.arms:
        raise ValueError(f"study arms {list(size.arms)}: need rt4 and only {list(ARMS)}")
    out, bundle = Path(out), Path(bundle)
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(int(threads))
    train = {"profile": profile}
    if size.epochs:
        train["num_epochs"] = size.epochs
    if size.image_size:
        train["image_size"] = size.image_size
    (out / "study_size.json").write_text(json.dumps(dict(asdict(size), profile=profile), indent=1))
    t0 = time.perf_counter()
    rows: list[dict] = []
    # training seed outermost: a stopped study has every profile and arm at its first seed(s)
    for t in size.train_seeds:
        for c in size.cohort_seeds:
            for s in size.systematicity:
                here = out / f"cohort{c}" / f"s{s:g}"
                tpa = TPAConfig(systematicity=s)
                cohort, corrected = prepare_data(here, size.cohort_size, size.spacing_mm, c, workers, tpa=tpa)
                labels = {"tpa": cohort, "corrected": corrected}
                if "ra1r" in size.arms:
                    labels["refined"] = refine_labels(corrected, here / "refined", refine_threshold_mm, workers)
                held = ensure_cohort(here / "held_out", n=size.held_out_size, seed=c + 1000,
                                     spacing_mm=size.spacing_mm, workers=workers, tpa=tpa)
                expert = expert_labels(held, here / "held_out_expert")
                arms = list(size.arms) + (list(NORMALISATION) if s == size.normalisation_at else [])
                for arm in arms:
                    spec = ARMS.get(arm) or RUNS[arm]
                    root, _ = train_one(spec, t, here, cohort, labels.get(spec.labels, corrected), train, bundle)
                    for r in evaluate_model(root, held, expert, threads):
                        rows.append(dict(r, systematicity=s, arm=arm, cohort_seed=c, train_seed=t))
                    analyse(rows, out, size, (time.perf_counter() - t0) / 60, complete=False)
    return analyse(rows, out, size, (time.perf_counter() - t0) / 60, complete=True)

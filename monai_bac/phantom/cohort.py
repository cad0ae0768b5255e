"""A phantom cohort on disk: DICOM MG images, NIfTI labels, truth, and a MONAI datalist.

Layout of ``out_dir``::

    images/<case>.dcm            raw "FOR PROCESSING" DICOM MG
    labels/tpa/<case>.nii.gz     simulated third-party annotation ("label")
    labels/gt/<case>.nii.gz      ground-truth BAC mask ("label_gt")
    truth/<case>.npz             breast_map, thickness, h_dt, h_muscle, h_calc, tpa_source
    truth/<case>.json            acquisition metadata and truth figures (VBD, BAC length, ...)
    cohort.csv                   one row per image
    phantom.json                 the generation parameters
    datalist.json                MONAI decathlon-style datalist, written last

Cases come as patients with the four screening views (LCC, LMLO, RCC, RMLO); a cohort of
fewer than 12 images has patients of ``n // 3`` views (LCC first) so that it still has three
patients. The split is 80/10/10 by patient (no patient in two splits), stratified by whether the
patient has BAC, and every split gets a patient: any cohort of 3 or more images has non-empty
training, validation and test lists (:data:`MIN_SPLIT_IMAGES`).
"""

from __future__ import annotations

import csv
import inspect
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from monai_bac.phantom.annotation import TPAConfig
from monai_bac.phantom.effects import Effects
from monai_bac.utils import write_json

__all__ = ["make_cohort", "ensure_cohort", "stratified_split", "views_per_patient", "VIEWS", "MIN_SPLIT_IMAGES"]

logger = logging.getLogger(__name__)

VIEWS = (("L", "CC"), ("L", "MLO"), ("R", "CC"), ("R", "MLO"))
COHORT_VERSION = 4  # 2: realistic physics by default, physics and effects recorded; 3: the edge effect in "all";
# 4: the scatter amplitude set on a homogeneous breast (xray.scatter_field)
#: the smallest cohort whose training, validation and test lists are all non-empty (one patient each)
MIN_SPLIT_IMAGES = 3


def views_per_patient(n: int) -> int:
    """Views per phantom patient in a cohort of ``n`` images: the four screening views, or fewer
    (``n // 3``, at least 1) when ``n`` < 12 so that the cohort still has a patient for each split."""
    return len(VIEWS) if n >= MIN_SPLIT_IMAGES * len(VIEWS) else max(1, n // MIN_SPLIT_IMAGES)


def _case_plan(n: int, seed: int, bac_prevalence: float, breast_bac_given_patient: float,
               vendors: tuple[str, ...]) -> list[dict]:
    """Who has what: patients of :func:`views_per_patient` views, BAC presence per breast, vendor
    per patient."""
    rng = np.random.default_rng([seed, 7919])
    per_patient = views_per_patient(n)
    plan = []
    for p in range(-(-n // per_patient)):
        patient_id = f"PH{seed:03d}-{p:04d}"
        patient_bac = rng.random() < bac_prevalence
        vendor = vendors[rng.integers(len(vendors))]
        breast = {lat: patient_bac and rng.random() < breast_bac_given_patient for lat in "LR"}
        thickness = {lat: float(rng.uniform(35.0, 70.0)) for lat in "LR"}
        for v, (lat, view) in enumerate(VIEWS[:per_patient]):
            if len(plan) == n:
                break
            plan.append(dict(
                case=f"{patient_id}_{lat}{view}", patient_id=patient_id, laterality=lat, view=view,
                vendor=vendor, has_bac=bool(breast[lat]),
                # MLO compression is a little thicker than CC for the same breast
                thickness_mm=thickness[lat] * (1.08 if view == "MLO" else 1.0),
                seed=int(np.random.SeedSequence([seed, p, v]).generate_state(1)[0]),
            ))
    return plan


def stratified_split(groups: dict[str, bool], fractions=(0.8, 0.1, 0.1), seed: int = 0) -> dict[str, str]:
    """Assign each group (patient) to training/validation/test, stratified by its flag.

    Every split gets at least one group when there are three or more.
    """
    names = ("training", "validation", "test")
    rng = np.random.default_rng([seed, 104729])
    out: dict[str, str] = {}
    for flag in (True, False):
        members = sorted(g for g, f in groups.items() if f == flag)
        rng.shuffle(members)
        counts = np.floor(np.asarray(fractions) * len(members)).astype(int)
        for i in np.argsort(-(np.asarray(fractions) * len(members) - counts))[: len(members) - counts.sum()]:
            counts[i] += 1
        bounds = np.cumsum(counts)
        for i, g in enumerate(members):
            out[g] = names[int(np.searchsorted(bounds, i, side="right"))]
    if len(out) >= 3:
        for name in names[1:]:
            if name not in out.values():
                donor = sorted(g for g, s in out.items() if s == "training")[-1]
                out[donor] = name
    return out


def _write_case(args: tuple[dict, str, float | None, tuple, dict, str, str]) -> dict:
    from monai_bac.data.image_io import save_mask_nifti
    from monai_bac.phantom import make_phantom

    case, out_dir, spacing_mm, fov_mm, tpa, physics, effects = args
    out = Path(out_dir)
    ph = make_phantom(case["seed"], view=case["view"], laterality=case["laterality"], spacing_mm=spacing_mm,
                      fov_mm=fov_mm, thickness_mm=case["thickness_mm"], vendor=case["vendor"],
                      has_bac=case["has_bac"], tpa=TPAConfig(**tpa), physics=physics,
                      effects=effects if physics == "realistic" else None)
    name = case["case"]
    m = ph.meta
    ph.write_dicom(out / "images" / f"{name}.dcm", patient_id=case["patient_id"])
    save_mask_nifti(out / "labels" / "tpa" / f"{name}.nii.gz", ph.tpa_mask, m["spacing_mm"], overwrite=True)
    save_mask_nifti(out / "labels" / "gt" / f"{name}.nii.gz", ph.bac_mask, m["spacing_mm"], overwrite=True)
    truth_npz = out / "truth" / f"{name}.npz"
    tmp = truth_npz.with_name(f".{name}.tmp.npz")
    np.savez_compressed(tmp, breast_map=ph.breast_map, thickness=ph.thickness, h_dt=ph.h_dt,
                        h_muscle=ph.h_muscle, h_calc=ph.h_calc, tpa_source=ph.tpa_source)
    os.replace(tmp, truth_npz)
    record = {**case, **ph.record, "meta": m}
    write_json(out / "truth" / f"{name}.json", record)
    return record


def make_cohort(
    out_dir: str | os.PathLike,
    n: int = 20,
    seed: int = 0,
    *,
    spacing_mm: float | None = 0.1,
    fov_mm: tuple[float, float] = (285.0, 239.4),
    bac_prevalence: float = 0.95,
    breast_bac_given_patient: float = 0.95,
    vendors: tuple[str, ...] = ("HOLOGIC", "GE"),
    tpa: TPAConfig | None = None,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    physics: str = "realistic",
    effects: Effects | str | None = None,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Write ``n`` phantom images (patients of four views) and return the datalist path.

    ``bac_prevalence`` is the fraction of patients with BAC (the paper: 95 % of images were
    positive); ``breast_bac_given_patient`` < 1 lets one breast of a patient be BAC-free.
    ``physics`` is "realistic" by default (polyenergetic spectra, scatter, heel effect, vendor
    extras and merged annotation strokes, see :func:`monai_bac.phantom.make_phantom`; ``effects``
    picks some of them), or "ideal" (monochromatic, no scatter: what the fast unit tests use).
    ``spacing_mm=None`` takes each vendor's own pixel pitch.
    An existing cohort is never overwritten unless ``overwrite`` is True.
    """
    out = Path(out_dir)
    datalist_path = out / "datalist.json"
    if datalist_path.exists() and not overwrite:
        raise FileExistsError(f"{datalist_path} exists; pass overwrite=True (--overwrite) to regenerate the cohort")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    tpa = tpa or TPAConfig()
    physics = str(physics).lower()
    if physics not in ("ideal", "realistic"):
        raise ValueError(f"physics must be 'ideal' or 'realistic', got {physics!r}")
    if physics == "ideal" and effects is not None:
        raise ValueError(f"effects={effects!r} need physics='realistic'")
    effects_label = Effects.parse(effects).label if physics == "realistic" else "none"
    for sub in ("images", "labels/tpa", "labels/gt", "truth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    params = _params(n=n, seed=seed, spacing_mm=spacing_mm, fov_mm=fov_mm, bac_prevalence=bac_prevalence,
                     breast_bac_given_patient=breast_bac_given_patient, vendors=vendors, tpa=tpa,
                     fractions=fractions, physics=physics, effects=effects_label)
    plan = _case_plan(n, seed, bac_prevalence, breast_bac_given_patient, tuple(vendors))
    jobs = [(case, str(out), spacing_mm, tuple(fov_mm), asdict(tpa), physics, effects_label) for case in plan]
    records = _run(jobs, workers, progress)

    patients: dict[str, bool] = {}
    for r in records:
        patients[r["patient_id"]] = patients.get(r["patient_id"], False) or r["has_bac"]
    split = stratified_split(patients, fractions, seed)
    empty = [name for name in ("training", "validation", "test") if name not in split.values()]
    if empty:
        logger.warning("a cohort of %d image(s) has %d patient(s): the %s list(s) are empty; generate %d or more "
                       "images to train on it", n, len(patients), " and ".join(empty), MIN_SPLIT_IMAGES)
    datalist: dict = {"description": "monai-bac phantom cohort", "params": params,
                      "training": [], "validation": [], "test": []}
    for r in records:
        name = r["case"]
        datalist[split[r["patient_id"]]].append(dict(
            image=f"images/{name}.dcm", label=f"labels/tpa/{name}.nii.gz", label_gt=f"labels/gt/{name}.nii.gz",
            truth=f"truth/{name}.npz", case=name, patient_id=r["patient_id"], view=r["view"],
            laterality=r["laterality"], has_bac=r["has_bac"],
        ))
    _write_summary(out / "cohort.csv", records, split)
    write_json(out / "phantom.json", params)
    write_json(datalist_path, datalist)
    return datalist_path


def _run(jobs: list, workers: int, progress: bool) -> list[dict]:
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (a log file gets no carriage-return updates)
    bar = tqdm(total=len(jobs), desc="phantom", unit="img", disable=None if progress else True)
    records = []
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for rec in pool.map(_write_case, jobs):
                records.append(rec)
                bar.update()
    else:
        for job in jobs:
            records.append(_write_case(job))
            bar.update()
    bar.close()
    return records


def _write_summary(path: Path, records: list[dict], split: dict[str, str]) -> None:
    cols = ["case", "patient_id", "laterality", "view", "vendor", "split", "has_bac", "compressed_thickness_mm",
            "vbd_percent", "bac_centreline_length_mm", "bac_calcium_mg", "n_clusters", "n_strands", "n_edges",
            "energy_kev"]
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in records:
            w.writerow({**r, "split": split[r["patient_id"]]})
    os.replace(tmp, path)


def _params(**kw) -> dict:
    """The generation parameters as stored in phantom.json (JSON types only)."""
    out = {"version": COHORT_VERSION}
    for k, v in kw.items():
        out[k] = asdict(v) if isinstance(v, TPAConfig) else (list(v) if isinstance(v, tuple) else v)
    if isinstance(out.get("tpa"), dict):
        out["tpa"] = {k: list(v) if isinstance(v, tuple) else v for k, v in out["tpa"].items()}
    return out


def ensure_cohort(out_dir: str | os.PathLike, **params) -> Path:
    """The datalist of a cohort made with ``params`` in ``out_dir``: reused when it exists with
    the same parameters, generated otherwise (a cache for the bundle's default data)."""
    out = Path(out_dir)
    datalist = out / "datalist.json"
    bound = inspect.signature(make_cohort).bind(out, **params)
    bound.apply_defaults()
    given = {k: v for k, v in bound.arguments.items() if k not in ("out_dir", "workers", "overwrite", "progress")}
    given["tpa"] = given["tpa"] or TPAConfig()
    given["physics"] = str(given["physics"]).lower()
    given["effects"] = Effects.parse(given["effects"]).label if given["physics"] == "realistic" else "none"
    if datalist.exists():
        try:
            made = json.loads((out / "phantom.json").read_text())
        except (OSError, ValueError):
            made = None
        if made == _params(**given):
            logger.info("reusing the phantom cohort in %s", out)
            return datalist
        logger.warning("the phantom cohort in %s was made with other parameters; regenerating it", out)
    return make_cohort(out, overwrite=True, **params)

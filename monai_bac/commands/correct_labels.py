"""``monai-bac correct-labels``: correct every BAC label of a datalist into a new folder.

For each item of a MONAI decathlon-style datalist (all splits: any top-level list of dicts) that
has a label, the raw image is read, its breast map found (BreastRegion, or a map file named in the
datalist), converted to dense-tissue thickness (Eq. 4) and calcification thickness (Eq. 5), and the
label corrected by removing components that are too short or carry too little calcium
(the paper's Sec. 3.3; :class:`monai_bac.transforms.CorrectBACLabel`).

Written under ``--out`` (never over an input; the command refuses an output folder that holds an
input file, and never replaces an existing output unless ``--overwrite``)::

    <label path relative to the datalist folder>   corrected labels (same layout as the input)
    correction_report.csv     one row per item: status, components kept/removed by reason,
                              skeleton length before/after (mm), error message if it failed
    removed_components.csv    one row per removed component: where, how long, how calcified, why
    overlays/<label path>.png with --overlays: image, kept (green) and removed components
                              (red: too short, orange: low calcification)
    datalist.json             the same datalist, with ``label`` pointing to the corrected labels
                              (the original in ``label_original``); paths relative to --out

An item that fails (unreadable image, shapes that differ, ...) is reported in the CSV and on
stderr and keeps its original label in the new datalist (``label_corrected`` false); the others
are still processed. The exit status is 0 when every item was corrected, 1 when some failed and
2 when nothing could be started (bad arguments, unsafe output folder).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from monai_bac.ops.label_correction import DEFAULT_MIN_LENGTH_MM, DEFAULT_MIN_MEAN_CALC_MM
from monai_bac.utils import atomic_write_path

logger = logging.getLogger(__name__)

REPORT_COLUMNS = [
    "split", "index", "image", "label", "corrected_label", "status", "error", "n_components", "n_kept",
    "n_removed", "n_removed_short", "n_removed_low_calc", "n_removed_both", "length_before_mm",
    "length_after_mm", "pixels_before", "pixels_after", "p_fat", "energy_kev", "seconds",
]
REMOVED_COLUMNS = ["split", "index", "image", "label", "id", "reason", "length_mm", "core_excess_calc_mm",
                   "mean_calc_mm", "pixels",
                   "area_mm2", "centroid_row_mm", "centroid_col_mm", "bbox_r0", "bbox_c0", "bbox_r1", "bbox_c1"]


def register(sub) -> None:
    p = sub.add_parser("correct-labels", help="remove false-positive components from the BAC labels of a datalist",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datalist", required=True, help="MONAI decathlon-style datalist (JSON)")
    p.add_argument("--out", required=True, help="output folder (created; must not hold any input file)")
    p.add_argument("--base-dir", help="folder the datalist's paths are relative to (default: the datalist's folder)")
    p.add_argument("--label-key", default="label", help="datalist key of the labels to correct (default: label)")
    p.add_argument("--image-key", default="image", help="datalist key of the raw images (default: image)")
    p.add_argument("--breast-map-key", default="breast_map",
                   help="datalist key of a breast-map file to use instead of BreastRegion, when an item has it")
    p.add_argument("--workers", type=int, default=1, help="processes (default: 1)")
    p.add_argument("--overlays", action="store_true", help="write overlay PNGs of kept and removed components")
    p.add_argument("--min-length-mm", type=float, default=DEFAULT_MIN_LENGTH_MM,
                   help=f"minimum skeleton length of a component, mm (default: {DEFAULT_MIN_LENGTH_MM})")
    p.add_argument("--min-mean-calc-mm", type=float, default=DEFAULT_MIN_MEAN_CALC_MM,
                   help="minimum calcification thickness of a component (see --measure), mm "
                        f"(default: {DEFAULT_MIN_MEAN_CALC_MM})")
    p.add_argument("--measure", choices=("core_excess", "mean"), default="core_excess",
                   help="how a component's calcification is measured: core_excess (mean along its centreline above "
                        "the surrounding tissue, the calibrated default) or mean (plain mean over the component)")
    p.add_argument("--opening-mm", type=float, default=3.0,
                   help="size of the opening that estimates the background tissue (Eq. 5), mm (default: 3)")
    p.add_argument("--energy-kev", type=float, default=None,
                   help="effective energy for images without KVP (0018,0060), keV (default: from the DICOM)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs of an earlier run in --out")
    p.set_defaults(func=run)


# ----------------------------------------------------------------------------------- datalist
def _splits(datalist: dict) -> list[str]:
    """Top-level keys holding a list of items (training, validation, test, ...)."""
    return [k for k, v in datalist.items() if isinstance(v, list) and all(isinstance(i, dict) for i in v)]


def _resolve(value: Any, base: Path) -> Path | None:
    if not isinstance(value, str) or not value:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _is_inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _output_name(label: Path, base: Path, used: set[str]) -> str:
    """Where a corrected label goes under ``--out``: its path relative to the datalist folder, or
    ``labels/<file name>`` when it lies elsewhere; made unique."""
    try:
        rel = label.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        rel = f"labels/{label.name}"
    if rel in ("datalist.json", "correction_report.csv", "removed_components.csv") or rel.startswith("overlays/"):
        rel = f"labels/{rel}"
    name, k = rel, 1
    while name in used:
        stem = rel[: -len("".join(Path(rel).suffixes))] if Path(rel).suffixes else rel
        name = f"{stem}_{k}{''.join(Path(rel).suffixes)}"
        k += 1
    used.add(name)
    return name


# ----------------------------------------------------------------------------------- one item
def _overlay_png(path: Path, image_hw: np.ndarray, breast: np.ndarray, label_hw: np.ndarray, kept_hw: np.ndarray,
                 removed: list[dict], overwrite: bool, max_side: int = 1200) -> None:
    from PIL import Image

    from monai_bac.ops.normalize import log_gamma

    grey, _ = log_gamma(image_hw, breast if breast.any() else np.ones_like(breast, bool))
    rgb = np.repeat((255 * (1.0 - grey))[..., None], 3, axis=2).astype(np.float32)  # dense tissue bright
    rgb[~breast] = 0.0
    removed_mask = (label_hw > 0) & (kept_hw == 0)
    short = np.zeros_like(removed_mask)
    for comp in removed:
        if "short" in comp["reason"]:
            r0, c0, r1, c1 = comp["bbox"]
            short[r0:r1, c0:c1] |= removed_mask[r0:r1, c0:c1]
    colours = ((kept_hw > 0, (0, 220, 0)), (removed_mask & ~short, (255, 140, 0)), (short, (255, 0, 0)))
    for mask, colour in colours:
        rgb[mask] = 0.45 * rgb[mask] + 0.55 * np.asarray(colour, np.float32)
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    scale = max_side / max(img.size)
    if scale < 1:
        img = img.resize((max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale))), Image.BILINEAR)
    with atomic_write_path(path, overwrite=overwrite) as tmp:
        img.save(tmp, format="PNG")


def process_item(job: dict) -> dict:
    """Correct one label; returns a report row (status ``ok`` or ``failed``) and removed components."""
    t0 = time.perf_counter()
    row = {k: job.get(k, "") for k in ("split", "index", "image", "label", "corrected_label")}
    try:
        from monai_bac.data.image_io import save_mask_nifti
        from monai_bac.data.loader import load_label, load_mammogram
        from monai_bac.transforms import BreastRegion, CalcificationThickness, CorrectBACLabel, DensityMap
        from monai_bac.transforms.label import removed_components

        def _to_hw(x):
            return np.asarray(x)[0]

        image = load_mammogram(job["image_path"])
        label = load_label(job["label_path"])
        if tuple(image.shape[-2:]) != tuple(label.shape[-2:]):
            raise ValueError(f"label (H, W) = {tuple(label.shape[-2:])} differs from the image's "
                             f"{tuple(image.shape[-2:])}")
        spacing = image.meta.get("spacing_mm")
        if label.meta.get("spacing_mm") is None:
            label.meta["spacing_mm"] = spacing
        image_hw = _to_hw(image)
        if job.get("breast_map_path"):
            bmap = load_label_map(job["breast_map_path"])
            if bmap.shape != image_hw.shape:
                raise ValueError(f"breast map {job['breast_map_path']} has (H, W) = {bmap.shape}, the image "
                                 f"{image_hw.shape}")
        else:
            bmap = _to_hw(BreastRegion()(image))
        density = DensityMap(compute_vbd=False, energy_kev=job["energy_kev"])(image, bmap)
        calc = CalcificationThickness(opening_mm=job["opening_mm"])(density, bmap)
        corrected = CorrectBACLabel(job["min_length_mm"], job["min_mean_calc_mm"], measure=job["measure"])(
            label, calc, bmap)
        info = corrected.meta["label_correction"]
        out_path = Path(job["out_path"])
        out_path.parent.mkdir(parents=True, exist_ok=True)
        save_mask_nifti(out_path, corrected, label.meta["spacing_mm"] or spacing, overwrite=job["overwrite"])
        removed = removed_components(corrected)
        if job.get("overlay_path"):
            Path(job["overlay_path"]).parent.mkdir(parents=True, exist_ok=True)
            _overlay_png(Path(job["overlay_path"]), image_hw, bmap > 0, _to_hw(label), _to_hw(corrected), removed,
                         job["overwrite"])
        row.update(status="ok", error="", **{k: info[k] for k in REPORT_COLUMNS if k in info})
        row.update(pixels_before=int((_to_hw(label) > 0).sum()), pixels_after=int((_to_hw(corrected) > 0).sum()),
                   p_fat=round(float(density.meta["density"]["p_fat"]), 3),
                   energy_kev=round(float(density.meta["density"]["energy_kev"]), 3))
        for k in ("length_before_mm", "length_after_mm"):
            row[k] = round(float(row[k]), 3)
    except Exception as exc:  # a bad item is reported and skipped; the run goes on
        removed = []
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        logger.debug("%s", traceback.format_exc())
    row["seconds"] = round(time.perf_counter() - t0, 3)
    return dict(row=row, removed=removed)


def load_label_map(path: str):
    """A breast map stored as an integer image (NIfTI / PNG / TIFF / npy), codes of DESIGN.md."""
    from monai_bac.data.image_io import load_nifti_2d, load_png_or_tiff

    p = Path(path)
    name = p.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        arr, _ = load_nifti_2d(p)
    elif name.endswith(".npy"):
        arr = np.load(p)
    else:
        arr = load_png_or_tiff(p)
    arr = np.asarray(arr)
    if not np.isin(np.unique(arr), (0, 1, 2, 3)).all():
        raise ValueError(f"{path}: a breast map must hold the codes 0-3 only")
    return arr.astype(np.uint8)


# ----------------------------------------------------------------------------------- the run
def _write_csv(path: Path, columns: list[str], rows: list[dict], overwrite: bool) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    with atomic_write_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(buf.getvalue())


def plan(args) -> tuple[list[dict], dict, Path, Path]:
    """Read the datalist, check the output folder, and list the jobs. Raises ValueError when unsafe."""
    datalist_path = Path(args.datalist).expanduser()
    if not datalist_path.is_file():
        raise ValueError(f"{datalist_path}: no such datalist")
    datalist = json.loads(datalist_path.read_text())
    if not isinstance(datalist, dict):
        raise ValueError(f"{datalist_path}: a decathlon datalist is a JSON object with lists of items")
    base = Path(args.base_dir).expanduser() if args.base_dir else datalist_path.parent
    out = Path(args.out).expanduser()
    splits = _splits(datalist)
    if not splits:
        raise ValueError(f"{datalist_path}: no list of items (e.g. 'training') in the datalist")
    inputs = [datalist_path]
    for split in splits:
        for item in datalist[split]:
            for value in item.values():
                p = _resolve(value, base)
                if p is not None and p.exists():
                    inputs.append(p)
    unsafe = [str(p) for p in inputs if _is_inside(p, out)]
    if unsafe:
        shown = ", ".join(unsafe[:3]) + (", ..." if len(unsafe) > 3 else "")
        raise ValueError(f"--out {out} holds input files ({shown}); "
                         "choose a new folder so that no input can be overwritten")
    if (out / "datalist.json").exists() and not args.overwrite:
        raise ValueError(f"{out / 'datalist.json'} exists (an earlier run); choose a new --out or pass --overwrite")
    used: set[str] = set()
    jobs = []
    for split in splits:
        for index, item in enumerate(datalist[split]):
            label = _resolve(item.get(args.label_key), base)
            if label is None:
                continue
            image = _resolve(item.get(args.image_key), base)
            name = _output_name(label, base, used)
            bmap = _resolve(item.get(args.breast_map_key), base) if args.breast_map_key else None
            jobs.append(dict(
                split=split, index=index, image=str(item.get(args.image_key, "")), label=str(item[args.label_key]),
                corrected_label=name, image_path=str(image) if image else "", label_path=str(label),
                breast_map_path=str(bmap) if bmap is not None else "", out_path=str(out / name),
                overlay_path=str(out / "overlays" / (name[: -len("".join(Path(name).suffixes))] + ".png"))
                if args.overlays else "",
                min_length_mm=args.min_length_mm, min_mean_calc_mm=args.min_mean_calc_mm, measure=args.measure,
                opening_mm=args.opening_mm, energy_kev=args.energy_kev, overwrite=bool(args.overwrite),
            ))
    return jobs, datalist, base, out


def _new_datalist(datalist: dict, base: Path, out: Path, results: dict, label_key: str) -> dict:
    """The input datalist with paths made relative to ``out`` and labels pointing to the corrected ones."""
    new: dict = {}
    for key, value in datalist.items():
        if key not in _splits(datalist):
            new[key] = value
            continue
        items = []
        for index, item in enumerate(value):
            item = dict(item)
            for k, v in list(item.items()):
                p = _resolve(v, base)
                if p is not None and p.exists():
                    item[k] = os.path.relpath(p.resolve(), out.resolve())
            res = results.get((key, index))
            if res is not None:
                item[f"{label_key}_original"] = item.get(label_key)
                item[f"{label_key}_corrected"] = res["status"] == "ok"
                if res["status"] == "ok":
                    item[label_key] = res["corrected_label"]
            items.append(item)
        new[key] = items
    new["label_correction"] = {"label_key": label_key}
    return new


def run(args) -> int:
    try:
        jobs, datalist, base, out = plan(args)
    except (ValueError, OSError) as exc:
        print(f"correct-labels: {exc}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("correct-labels: --workers must be >= 1", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    import monai_bac.data.loader  # noqa: F401  (imported once here, inherited by forked workers)
    import monai_bac.transforms  # noqa: F401

    t0 = time.perf_counter()
    outcomes: list[dict] = []
    bar = tqdm(total=len(jobs), desc="correct-labels", unit="label")
    if args.workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(args.workers, len(jobs))) as pool:
            futures = [pool.submit(process_item, job) for job in jobs]
            for fut in as_completed(futures):
                outcomes.append(fut.result())
                bar.update()
    else:
        for job in jobs:
            outcomes.append(process_item(job))
            bar.update()
    bar.close()
    order = {(j["split"], j["index"]): k for k, j in enumerate(jobs)}
    outcomes.sort(key=lambda o: order[(o["row"]["split"], o["row"]["index"])])
    rows = [o["row"] for o in outcomes]
    removed_rows = []
    for o in outcomes:
        for comp in o["removed"]:
            r0, c0, r1, c1 = comp["bbox"]
            removed_rows.append({**{k: o["row"][k] for k in ("split", "index", "image", "label")}, **comp,
                                 "centroid_row_mm": comp["centroid_mm"][0], "centroid_col_mm": comp["centroid_mm"][1],
                                 "bbox_r0": r0, "bbox_c0": c0, "bbox_r1": r1, "bbox_c1": c1})
    failed = [r for r in rows if r["status"] != "ok"]
    for r in failed:
        print(f"correct-labels: FAILED {r['split']}[{r['index']}] {r['image']}: {r['error']}", file=sys.stderr)
    _write_csv(out / "correction_report.csv", REPORT_COLUMNS, rows, overwrite=True)
    _write_csv(out / "removed_components.csv", REMOVED_COLUMNS, removed_rows, overwrite=True)
    results = {(r["split"], r["index"]): r for r in rows}
    new = _new_datalist(datalist, base, out, results, args.label_key)
    new["label_correction"].update(
        source_datalist=os.path.relpath(Path(args.datalist).expanduser().resolve(), out.resolve()),
        min_length_mm=args.min_length_mm, min_mean_calc_mm=args.min_mean_calc_mm, measure=args.measure,
        opening_mm=args.opening_mm, corrected=len(rows) - len(failed), failed=len(failed))
    with atomic_write_path(out / "datalist.json", overwrite=bool(args.overwrite)) as tmp:
        tmp.write_text(json.dumps(new, indent=1))
    n_removed = sum(int(r.get("n_removed") or 0) for r in rows)
    print(f"corrected {len(rows) - len(failed)}/{len(rows)} labels in {time.perf_counter() - t0:.1f} s "
          f"({n_removed} components removed; {len(failed)} failed); report: {out / 'correction_report.csv'}; "
          f"datalist: {out / 'datalist.json'}")
    return 1 if failed else 0

"""``monai-bac correct-labels``: correct every BAC label of a datalist into a new folder.

For each item of a MONAI decathlon-style datalist (all splits: any top-level list of dicts) that
has a label, the raw image is read, its breast map found (BreastRegion, or a map file named in the
datalist), converted to dense-tissue thickness (Eq. 4) and calcification thickness (Eq. 5), and the
label corrected by removing components that are too short or carry too little calcium
(the paper's Sec. 3.3; :class:`monai_bac.transforms.CorrectBACLabel`).

Written under ``--out`` (never over an input: the command refuses, before writing anything, an
output folder that holds an input file and any output whose real path, symbolic links resolved,
is an input, lies inside one or lies outside ``--out``; and it never replaces an existing output
unless ``--overwrite``)::

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
are still processed.

A stopped run can be completed by running the same command again: an item whose corrected label
exists is reported as "exists, skipped (use --overwrite to redo)" (status ``skipped``) and keeps
that label. Each file is written to a hidden temporary file and renamed, so an existing file is
complete; temporary files a killed run left behind are removed when the next run starts (only
this command's own, inside ``--out``). One run at a time may write to an output folder (a lock
file ``.correct-labels.lock``), and worker processes (``--workers``) end with the command, even
when it is killed. The exit status is 0 when no item failed, 1 when some failed and 2 when
nothing could be started (bad arguments, unsafe output folder, another run writing there).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import multiprocessing
import os
import sys
import threading
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
#: outputs besides the corrected labels and overlays (``--out``/name)
FIXED_OUTPUTS = ("datalist.json", "correction_report.csv", "removed_components.csv")
SKIPPED = "exists, skipped (use --overwrite to redo)"
LOCK_NAME = ".correct-labels.lock"
REMOVED_COLUMNS = ["split", "index", "image", "label", "id", "reason", "length_mm", "core_excess_calc_mm", "typical_calc_mm",
                   "ridge_mm",
                   "mean_calc_mm", "pixels",
                   "area_mm2", "centroid_row_mm", "centroid_col_mm", "bbox_r0", "bbox_c0", "bbox_r1", "bbox_c1"]


def _mm_or_auto(text: str) -> float | str:
    """A threshold in mm, or "auto" (the value calibrated for the image's density model)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of mm or 'auto', got {text!r}") from None


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
    p.add_argument("--min-length-mm", type=_mm_or_auto, default="auto",
                   help="minimum length of a calcified piece, mm (default: auto, the value calibrated for the density "
                        f"model that made h_calc; {DEFAULT_MIN_LENGTH_MM} mm with Eq. 4, i.e. with --energy-kev)")
    p.add_argument("--min-mean-calc-mm", type=_mm_or_auto, default="auto",
                   help="minimum calcification thickness of a piece (see --measure), mm (default: auto, the "
                        f"calibrated value; {DEFAULT_MIN_MEAN_CALC_MM} mm with Eq. 4)")
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


def _real(path: Path | str) -> str:
    """The real path (symbolic links resolved, also in a not-yet-existing path's existing part)."""
    return os.path.realpath(os.path.expanduser(str(path)))


def _within(path: str, folder: str) -> bool:
    """Whether real path ``path`` is ``folder`` or lies inside it."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _check_outputs(inputs: list[Path], outputs: list[Path], out: Path) -> None:
    """Refuse (ValueError) an output folder holding an input, and any output whose real path is an
    input, lies inside an input (a folder), or lies outside the real output folder (a link in it)."""
    real_out = _real(out)
    real_inputs = {_real(p): p for p in inputs}
    held = [str(p) for r, p in real_inputs.items() if _within(r, real_out)]
    if held:
        shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
        raise ValueError(f"--out {out} holds input files ({shown}); "
                         "choose a new folder so that no input can be overwritten")
    for path in outputs:
        real = _real(path)
        link = " (through a symbolic link)" if real != os.path.abspath(path) else ""
        for parent in (real, *map(str, Path(real).parents)):
            if parent in real_inputs:
                raise ValueError(f"output {path} would be written to {real}{link}, which is (or is inside) the "
                                 f"input {real_inputs[parent]}; choose a new --out (without links into the inputs)")
        if not _within(real, real_out):
            raise ValueError(f"output {path} would be written to {real}{link}, outside --out {out}; "
                             "choose a new --out (without links)")


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
    """The mammogram in its display rendition (as every monai-bac overlay) with kept and removed
    pieces in colour and a legend."""
    from monai_bac.visualize import add_legend, display_window, overlay, save_png

    removed_mask = (label_hw > 0) & (kept_hw == 0)
    short = np.zeros_like(removed_mask)
    for comp in removed:
        if "short" in comp["reason"]:
            r0, c0, r1, c1 = comp["bbox"]
            short[r0:r1, c0:c1] |= removed_mask[r0:r1, c0:c1]
    legend = (("kept (BAC)", (0, 220, 0)), ("removed: too little calcium", (255, 140, 0)),
              ("removed: too short", (255, 0, 0)))
    masks = (kept_hw > 0, removed_mask & ~short, short)
    rgb = overlay(display_window(image_hw, breast if breast.any() else None), masks, [c for _, c in legend],
                  alpha=0.55)
    save_png(path, add_legend(rgb, legend), overwrite=overwrite, max_side=max_side)


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
        removed = removed_components(corrected)
        if job.get("overlay_path"):  # before the label: a label on disk means its item is complete
            Path(job["overlay_path"]).parent.mkdir(parents=True, exist_ok=True)
            _overlay_png(Path(job["overlay_path"]), image_hw, bmap > 0, _to_hw(label), _to_hw(corrected), removed,
                         job["overwrite"])
        out_path = Path(job["out_path"])
        out_path.parent.mkdir(parents=True, exist_ok=True)
        save_mask_nifti(out_path, corrected, label.meta["spacing_mm"] or spacing, overwrite=job["overwrite"])
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
    _check_outputs(inputs, [], out)  # before anything else reads or names files under --out
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
    outputs = [out / name for name in FIXED_OUTPUTS]
    outputs += [Path(j[k]) for j in jobs for k in ("out_path", "overlay_path") if j[k]]
    _check_outputs(inputs, outputs, out)
    for job in jobs:  # written atomically, so an existing corrected label is complete
        job["skip"] = not args.overwrite and os.path.lexists(job["out_path"])
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
                item[f"{label_key}_corrected"] = res["status"] in ("ok", "skipped")
                if res["status"] in ("ok", "skipped"):
                    item[label_key] = res["corrected_label"]
            items.append(item)
        new[key] = items
    new["label_correction"] = {"label_key": label_key}
    return new


def _lock(out: Path) -> int | None:
    """Take the output folder's lock (an exclusive ``flock`` on ``.correct-labels.lock``, held by
    this process and its workers until they end, also when killed); None where ``fcntl`` is missing."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        return None
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ValueError(f"another correct-labels run is writing to {out} ({out / LOCK_NAME} is locked); "
                         "wait for it to end or choose another --out") from None
    return fd


def _remove_temp_files(jobs: list[dict], out: Path) -> list[str]:
    """Remove the temporary files a killed run of this command left in ``--out``: the hidden
    ``.<stem>.tmp-<12 hex><suffixes>`` names :func:`~monai_bac.utils.atomic_write_path` gives the
    outputs of this run, in their folders inside ``--out`` (regular files only)."""
    from monai_bac.utils import temp_file_target

    wanted: dict[str, set[str]] = {}
    paths = [out / n for n in FIXED_OUTPUTS] + [Path(j[k]) for j in jobs for k in ("out_path", "overlay_path") if j[k]]
    for path in paths:
        wanted.setdefault(str(path.parent), set()).add(path.name)
    real_out, removed = _real(out), []
    for folder, names in wanted.items():
        if not os.path.isdir(folder) or not _within(_real(folder), real_out):
            continue
        for entry in os.scandir(folder):
            if temp_file_target(entry.name) in names and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(entry.path)
    return removed


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(1)


def _die_with_parent(parent_pid: int) -> None:
    """Worker initializer: the worker ends when the command that started it ends, even by SIGKILL
    (Linux: the kernel sends it SIGKILL, ``prctl(PR_SET_PDEATHSIG)``; elsewhere a thread polls the
    parent's pid)."""
    armed = False
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        armed = ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0) == 0
    if os.getppid() != parent_pid:  # the parent ended before the signal was armed
        os._exit(1)
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def _process_all(todo: list[dict], workers: int, bar) -> list[dict]:
    if workers < 2 or len(todo) < 2:
        outcomes = []
        for job in todo:
            outcomes.append(process_item(job))
            bar.update()
        return outcomes
    # fork on Linux (workers inherit the imported modules; their parent is this process)
    ctx = multiprocessing.get_context("fork") if sys.platform.startswith("linux") else None
    outcomes = []
    with ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx, initializer=_die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        futures = [pool.submit(process_item, job) for job in todo]
        for fut in as_completed(futures):
            outcomes.append(fut.result())
            bar.update()
    return outcomes


def run(args) -> int:
    if args.workers < 1:
        print("correct-labels: --workers must be >= 1", file=sys.stderr)
        return 2
    try:
        jobs, datalist, base, out = plan(args)
        out.mkdir(parents=True, exist_ok=True)
        lock = _lock(out)
    except (ValueError, OSError) as exc:
        print(f"correct-labels: {exc}", file=sys.stderr)
        return 2
    try:
        return _run_locked(args, jobs, datalist, base, out)
    finally:
        if lock is not None:
            os.close(lock)


def _run_locked(args, jobs: list[dict], datalist: dict, base: Path, out: Path) -> int:
    from tqdm import tqdm

    import monai_bac.data.loader  # noqa: F401  (imported once here, inherited by forked workers)
    import monai_bac.transforms  # noqa: F401

    for path in _remove_temp_files(jobs, out):
        print(f"correct-labels: removed {path}, a partial file of a run that was stopped", file=sys.stderr)
    t0 = time.perf_counter()
    outcomes: list[dict] = []
    for job in jobs:
        if job["skip"]:
            row = {k: job.get(k, "") for k in ("split", "index", "image", "label", "corrected_label")}
            outcomes.append(dict(row={**row, "status": "skipped", "error": SKIPPED, "seconds": 0.0}, removed=[]))
            print(f"correct-labels: {job['split']}[{job['index']}] {job['corrected_label']}: {SKIPPED}",
                  file=sys.stderr)
    todo = [job for job in jobs if not job["skip"]]
    bar = tqdm(total=len(todo), desc="correct-labels", unit="label")
    outcomes += _process_all(todo, args.workers, bar)
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
    failed = [r for r in rows if r["status"] == "failed"]
    skipped = [r for r in rows if r["status"] == "skipped"]
    n_ok = len(rows) - len(failed) - len(skipped)
    for r in failed:
        print(f"correct-labels: FAILED {r['split']}[{r['index']}] {r['image']}: {r['error']}", file=sys.stderr)
    _write_csv(out / "correction_report.csv", REPORT_COLUMNS, rows, overwrite=True)
    _write_csv(out / "removed_components.csv", REMOVED_COLUMNS, removed_rows, overwrite=True)
    results = {(r["split"], r["index"]): r for r in rows}
    new = _new_datalist(datalist, base, out, results, args.label_key)
    new["label_correction"].update(
        source_datalist=os.path.relpath(Path(args.datalist).expanduser().resolve(), out.resolve()),
        min_length_mm=args.min_length_mm, min_mean_calc_mm=args.min_mean_calc_mm, measure=args.measure,
        opening_mm=args.opening_mm, corrected=n_ok, skipped=len(skipped), failed=len(failed))
    with atomic_write_path(out / "datalist.json", overwrite=bool(args.overwrite)) as tmp:
        tmp.write_text(json.dumps(new, indent=1))
    n_removed = sum(int(r.get("n_removed") or 0) for r in rows)
    print(f"corrected {n_ok}/{len(rows)} labels in {time.perf_counter() - t0:.1f} s "
          f"({n_removed} components removed; {len(skipped)} existed, skipped; {len(failed)} failed); "
          f"report: {out / 'correction_report.csv'}; "
          f"datalist: {out / 'datalist.json'}")
    return 1 if failed else 0

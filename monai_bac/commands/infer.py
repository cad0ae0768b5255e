"""``monai-bac infer``: segment and quantify BAC on CPU for a DICOM file, a folder or a datalist.

Per image, in ``--out``: ``<case>_bac.nii.gz`` (mask), ``<case>_bac_seg.dcm`` (DICOM SEG
referencing the source image), ``<case>_bac_overlay.png`` (BAC in colour on the normalised
mammogram) and ``<case>_bac.json`` (quantification and timings). Per run: ``results.csv`` (one
row per image, failed ones with the reason), ``patients.csv`` (one summary row per patient) and
``run.json`` (settings, failures, the 4-view presence analysis). Existing outputs are never
replaced without ``--overwrite`` (an image whose outputs exist is reported as skipped; run-level
files get a numbered name). Exit status: 0 when no image failed, 3 when some did, 2 when there is
nothing to run.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

logger = logging.getLogger("monai_bac.infer")

CSV_FIELDS = ["case", "status", "reason", "source", "patient_id", "laterality", "view", "sop_instance_uid",
              "present", "length_mm", "skeleton_length_mm", "n_segments", "area_mm2", "calcium_mg", "calcium_note",
              "annotation_present", "annotation_length_mm", "annotation_calcium_mg", "quality_warning",
              "nifti", "seg", "overlay", "json", "total_seconds"]


def register(sub) -> None:
    p = sub.add_parser("infer", help="segment and quantify BAC on CPU (file, folder or datalist)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="a DICOM file, a folder of DICOM files (searched recursively) or a datalist .json")
    p.add_argument("--model", required=True, help="bundle folder, its models/ folder, or model.pt / model.onnx")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--engine", default="auto", choices=["auto", "onnx", "torch"],
                   help="network runtime: auto = ONNX Runtime when installed, else PyTorch (default: auto)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "int8"],
                   help="ONNX network precision: auto = model.int8.onnx when exported for this model.pt "
                        "(monai-bac export --formats onnx-int8), else float32 (default: auto)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all available cores)")
    p.add_argument("--threshold", type=float, default=None, help="probability cut-off (default: models/threshold.json)")
    p.add_argument("--split", default="all", help="datalist list to run ('all' = every list; default: all)")
    p.add_argument("--config", default=None, help="inference.json to take the preprocessing from (default: the bundle's)")
    p.add_argument("--no-seg", action="store_true", help="do not write DICOM SEG files")
    p.add_argument("--no-overlay", action="store_true", help="do not write overlay PNGs")
    p.add_argument("--no-nifti", action="store_true", help="do not write NIfTI masks")
    p.add_argument("--overlay-max-side", type=int, default=1600, help="longest side of the overlay PNG, 0 = full size")
    p.add_argument("--no-calcium", action="store_true", help="skip the calcium-mass estimate")
    p.add_argument("--allow-processed", action="store_true",
                   help="also run on processed (FOR PRESENTATION) images (flagged; the model expects raw data)")
    p.add_argument("--min-input-fraction", type=float, default=0.5,
                   help="refuse images whose smaller side is below this fraction of the network input")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def gather_items(input_path: str, split: str = "all") -> list[dict]:
    """Inputs as datalist entries (``{"image": ...}`` plus any labels) with absolute paths."""
    import json

    from monai_bac.bundle_support import DatalistError, inference_items

    p = Path(input_path)
    if p.suffix.lower() != ".json":
        return inference_items(str(p))
    try:
        content = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise DatalistError(f"datalist {p} cannot be read: {e}") from None
    lists = {k: v for k, v in content.items() if isinstance(v, list)} if isinstance(content, dict) else {}
    if split != "all":
        if split not in lists:
            raise DatalistError(f"datalist {p} has no '{split}' list (lists: {sorted(lists)})")
        lists = {split: lists[split]}
    items, seen = [], set()
    for key, entries in lists.items():
        for i, entry in enumerate(entries):
            entry = {"image": entry} if isinstance(entry, str) else dict(entry) if isinstance(entry, dict) else {}
            if "image" not in entry:
                raise DatalistError(f"datalist {p}, {key}[{i}] has no 'image'")
            for k in ("image", "label", "label_gt"):
                if k in entry and isinstance(entry[k], str) and not os.path.isabs(entry[k]):
                    entry[k] = str((p.parent / entry[k]).resolve())
            if entry["image"] not in seen:
                seen.add(entry["image"])
                items.append(entry)
    if not items:
        raise DatalistError(f"datalist {p} has no entries")
    return items


def case_names(items: list[dict]) -> list[str]:
    """Unique, readable output names: the file stem, prefixed with parent folders where stems repeat."""
    from monai_bac.transforms.io import case_name

    paths = [Path(str(it["image"])) for it in items]
    names = [case_name(p) for p in paths]
    depth = 0
    while len(set(names)) < len(names) and depth < 6:
        depth += 1
        counts = Counter(names)
        names = [("_".join(p.parts[-1 - depth:-1] + (case_name(p),)) if counts[n] > 1 else n)
                 for p, n in zip(paths, names)]
    seen: Counter = Counter()
    out = []
    for n in names:
        seen[n] += 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return out


def _row(report: dict) -> dict:
    q = report.get("quantification") or {}
    a = report.get("annotation") or {}
    info = report.get("image_info") or {}
    outs = report.get("outputs") or {}
    row = {"case": report.get("case"), "status": report.get("status"), "reason": report.get("reason", ""),
           "source": report.get("source"), "quality_warning": report.get("quality_warning", ""),
           "total_seconds": report.get("total_seconds")}
    for k in ("patient_id", "laterality", "view", "sop_instance_uid"):
        row[k] = info.get(k)
    for k in ("present", "length_mm", "skeleton_length_mm", "n_segments", "area_mm2", "calcium_mg", "calcium_note"):
        row[k] = q.get(k)
    if a and "error" not in a:
        row.update(annotation_present=a.get("present"), annotation_length_mm=a.get("length_mm"),
                   annotation_calcium_mg=a.get("calcium_mg"))
    for k in ("nifti", "seg", "overlay", "json"):
        row[k] = outs.get(k)
    for stage, sec in (report.get("seconds") or {}).items():
        row[f"seconds_{stage}"] = sec
    return row


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _free_name(path: Path, overwrite: bool) -> Path:
    """``path``, or ``name.1.ext``, ``name.2.ext`` ... when it exists and ``overwrite`` is False."""
    if overwrite or not path.exists():
        return path
    stem, suffix = path.name.split(".", 1)[0], "." + path.name.split(".", 1)[1]
    k = 1
    while (path.with_name(f"{stem}.{k}{suffix}")).exists():
        k += 1
    return path.with_name(f"{stem}.{k}{suffix}")


def write_csv(path: Path, rows: list[dict], fields: list[str], overwrite: bool) -> Path:
    from monai_bac.utils import atomic_write_path

    extra = sorted({k for r in rows for k in r} - set(fields))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields + extra, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(r.get(k)) for k in fields + extra})
    path = _free_name(path, overwrite)
    with atomic_write_path(path, overwrite=overwrite) as tmp:
        Path(tmp).write_text(buf.getvalue())
    return path


def run(args) -> int:
    from monai_bac.bundle_support import DatalistError
    from monai_bac.cpu_inference import OUTPUT_SUFFIXES, STAGES, CPUInferenceEngine, process_image, write_json
    from monai_bac.export import ExportError
    from monai_bac.quantify import cohort_analysis, summarise_patients

    try:
        items = gather_items(args.input, args.split)
    except (DatalistError, FileNotFoundError, ValueError) as e:
        print(f"monai-bac infer: {e}", file=sys.stderr)
        return 2
    try:
        engine = CPUInferenceEngine(args.model, engine=args.engine, threads=args.threads, threshold=args.threshold,
                                    config_file=args.config, allow_processed=args.allow_processed,
                                    min_input_fraction=args.min_input_fraction, precision=args.precision)
    except (ExportError, FileNotFoundError, ValueError, ImportError) as e:
        print(f"monai-bac infer: cannot load the model: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    outputs = [k for k in OUTPUT_SUFFIXES if not (k == "seg" and args.no_seg) and not (k == "overlay" and args.no_overlay)
               and not (k == "nifti" and args.no_nifti)]
    names = case_names(items)
    desc = engine.describe()
    logger.info("%d image(s); engine %s (%s), %d threads, network input %d, threshold %.3g", len(items), desc["engine"],
                desc["precision"], desc["threads"], engine.image_size, engine.threshold)
    reports = []
    t0 = time.perf_counter()
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc="monai-bac infer", unit="image", file=sys.stderr)
    for item, case in zip(items, names):
        rep = process_image(engine, item, out, case, outputs=outputs, overwrite=args.overwrite,
                            overlay_max_side=args.overlay_max_side or None, calcium=not args.no_calcium)
        reports.append(rep)
        if rep["status"] == "failed":
            logger.warning("%s: FAILED: %s", case, rep["reason"])
        elif rep["status"] == "skipped":
            logger.info("%s: skipped: %s", case, rep["reason"])
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"{case}: {rep['status']}")
    if bar is not None:
        bar.close()
    wall = time.perf_counter() - t0
    rows = [_row(r) for r in reports]
    results_csv = write_csv(out / "results.csv", rows, CSV_FIELDS, args.overwrite)
    patients = summarise_patients([r for r in rows if r["status"] in ("ok", "skipped")])
    patient_fields = list(patients[0]) if patients else ["patient_id"]
    patients_csv = write_csv(out / "patients.csv", patients, patient_fields, args.overwrite)
    counts = Counter(r["status"] for r in reports)
    ok = [r for r in reports if r["status"] == "ok"]
    timing = {s: statistics.median(r["seconds"][s] for r in ok) for s in STAGES} if ok else {}
    run_info = {
        "input": str(args.input), "out": str(out), "model": desc, "n_images": len(items), "counts": dict(counts),
        "failures": [{"case": r["case"], "source": r["source"], "reason": r["reason"], "error": r.get("error")}
                     for r in reports if r["status"] == "failed"],
        "warnings": [{"case": r["case"], "warning": r["quality_warning"]} for r in reports if r.get("quality_warning")],
        "median_seconds_per_stage": timing,
        "median_seconds_per_image": statistics.median(r["total_seconds"] for r in ok) if ok else None,
        "wall_seconds": wall, "results_csv": str(results_csv), "patients_csv": str(patients_csv),
        "cohort": cohort_analysis(rows),
    }
    run_json = write_json(_free_name(out / "run.json", args.overwrite), run_info, overwrite=args.overwrite)
    print(f"{len(items)} image(s): {counts.get('ok', 0)} ok, {counts.get('failed', 0)} failed, "
          f"{counts.get('skipped', 0)} skipped in {wall:.1f} s ({desc['engine']}, {desc['threads']} threads)")
    for f in run_info["failures"]:
        print(f"  FAILED {f['case']}: {f['reason']}")
    print(f"results: {results_csv}\npatients: {patients_csv}\nrun report: {run_json}")
    return 3 if counts.get("failed") else 0


if __name__ == "__main__":  # pragma: no cover
    from monai_bac.cli import main

    sys.exit(main(["infer", *sys.argv[1:]]))

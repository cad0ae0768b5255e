"""monai-bac infer: segment and quantify BAC on CPU for a DICOM file, a folder or a datalist.

It runs the bundle's own inference workflow (configs/inference.json: preprocessing, network,
threshold, quantification and writers), with the network on ONNX Runtime (float32 or int8) or
PyTorch.

Per image, in --out: <case>_bac.nii.gz (mask), <case>_bac_seg.dcm (DICOM SEG referencing the
source image), <case>_bac_overlay.png (BAC in colour on the mammogram's display rendition) and
<case>_bac.json (status, quantification, timings). An image's files are written together and
committed last: a failed image leaves only its JSON (status "failed" and the reason), and a
rerun retries it. Per run: results.csv (one row per image, failed ones with the reason),
patients.csv (one summary row per patient, from its screening views: a magnification or spot
compression view is counted, not summarised) and run.json (settings, failures, the 4-view
presence analysis). Finished images are skipped on a rerun unless --overwrite is given.

Files that are not raw mammograms of the run (a DICOMDIR, reports, segmentations, and the processed
renditions of raw images the run reads: monai_bac.data.study_files) are "left out", with the reason.

Exit status: 0 every image ok (or skipped as done, or left out), 3 some image failed, 2 nothing to run or a
bad argument / model, 4 the output folder cannot be written (read-only, full disk).
"""

from __future__ import annotations

import argparse
import csv
import errno
import io
import logging
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

logger = logging.getLogger("monai_bac.infer")

#: the status of a file the run leaves out (monai_bac.data.study_files): not an image, or the
#: processed rendition of a raw image the run reads
LEFT_OUT = "left out"
CSV_FIELDS = ["case", "status", "reason", "source", "patient_id", "laterality", "view", "view_modifiers",
              "magnification", "sop_instance_uid", "present", "measured_at", "length_mm", "skeleton_length_mm",
              "n_segments", "area_mm2", "calcium_mg", "calcium_note", "annotation_present", "annotation_length_mm",
              "annotation_calcium_mg", "quality_warning", "nifti", "seg", "overlay", "json", "total_seconds"]


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
    p.add_argument("--config", default=None, help="inference.json to run (default: the model's bundle's)")
    p.add_argument("--spacing", type=float, nargs="+", default=None, metavar="MM",
                   help="pixel spacing in mm (one value, or row and column) for images without it "
                        "(PNG, TIFF); a DICOM's own tag is used otherwise")
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
        return inference_items(str(p), leave_out=False)  # each file left out gets its row in the run's tables
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
    for k in ("patient_id", "laterality", "view", "view_modifiers", "magnification", "sop_instance_uid"):
        row[k] = info.get(k)
    for k in ("present", "measured_at", "length_mm", "skeleton_length_mm", "n_segments", "area_mm2", "calcium_mg",
              "calcium_note"):
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


EXIT_OK, EXIT_NOTHING, EXIT_FAILED, EXIT_UNWRITABLE = 0, 2, 3, 4


def _check_writable(out: Path) -> str | None:
    """None when ``out`` can be created and written, else why not."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".monai-bac-write-test-{os.getpid()}"
        probe.write_bytes(b"0" * 4096)
        probe.unlink()
    except OSError as e:
        return f"{out}: cannot write there ({e.strerror or e})"
    return None


def _done_before(json_path: Path) -> dict | None:
    """The earlier report of an image that finished ok, else None (failed or absent: redo it)."""
    import json

    try:
        old = json.loads(json_path.read_text())
    except (OSError, ValueError):
        return None
    return old if isinstance(old, dict) and old.get("status") == "ok" else None


def _commit(staged: dict[str, str], out: Path) -> dict[str, str]:
    """Move an image's staged files into ``out`` (os.replace: atomic per file)."""
    final = {}
    for kind, path in staged.items():
        dest = out / Path(path).name
        os.replace(path, dest)
        final[kind] = str(dest)
    return final


def _image_report(case: str, entry: dict, data: dict, seconds: dict) -> dict:
    """The report of an image the workflow finished: identifiers, quantification, timings."""
    raw = data.get("raw")
    meta = dict(getattr(raw, "meta", {}) or getattr(data.get("pred"), "meta", {}) or {})
    report = {"case": case, "source": str(entry["image"]), "status": "ok", "reason": "",
              "image_info": {k: meta.get(k) for k in _META_FIELDS}, "quantification": data.get("bac"),
              "seconds": seconds}
    report["image_info"]["shape"] = [int(s) for s in data["pred"].shape[-2:]]
    if data.get("quality_warning"):
        report["quality_warning"] = data["quality_warning"]
    if data.get("notes"):
        report["notes"] = list(data["notes"])
    return report


_META_FIELDS = ("patient_id", "laterality", "view", "view_modifiers", "magnification", "plane_magnification",
                "measured_at", "study_instance_uid",
                "series_instance_uid", "sop_instance_uid", "manufacturer", "presentation", "is_raw", "kvp",
                "spacing_mm")


#: the reader's warnings kept in an image's JSON (``input_warnings``)
_INPUT_WARNINGS = ("MissingTagWarning", "ProcessedImageWarning", "DiagnosticViewWarning")


def _annotation(entry: dict, data: dict, calcium: bool) -> dict | None:
    """Quantification of the entry's annotation (``label_gt``, else ``label``), for comparison."""
    key = next((k for k in ("label_gt", "label") if k in entry), None)
    if key is None:
        return None
    try:
        from monai_bac.data import load_label
        from monai_bac.quantify import quantify_image

        raw = data.get("raw")
        ann = load_label(entry[key], spacing_mm=(raw.meta or {}).get("spacing_mm"),
                         source_uid=(raw.meta or {}).get("sop_instance_uid"), image_shape=tuple(raw.shape[-2:]))
        q = quantify_image(raw, ann, None if data.get("breast_map") is None else data["breast_map"][0].numpy(),
                           calcium=calcium)
        return {"key": key, "path": str(entry[key]), **q.as_dict(segments=False)}
    except Exception as e:  # noqa: BLE001 - the annotation is extra information, never a failure
        return {"key": key, "path": str(entry[key]), "error": f"{type(e).__name__}: {e}"}


def _process(pipeline, entry: dict, case: str, out: Path, staging: Path, overwrite: bool, calcium: bool,
             model: dict) -> dict:
    """One image through the bundle's workflow; never raises for a bad image (only for an output
    folder that cannot be written: full, read-only)."""
    import warnings

    from monai_bac.commands import cli_words
    from monai_bac.transforms.io import OUTPUT_SUFFIXES, wait_for_background_writes
    from monai_bac.utils import write_json

    t0 = time.perf_counter()
    json_path = out / f"{case}{OUTPUT_SUFFIXES['json']}"
    old = None if overwrite else _done_before(json_path)
    if old is not None:
        return {**old, "status": "skipped", "reason": "done in an earlier run (--overwrite redoes it)"}
    staging.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            data, seconds = pipeline({**entry, "case": case})
        report = _image_report(case, entry, data, seconds)
        report["model"] = model
        notes = sorted({f"{w.category.__name__}: {w.message}" for w in caught
                        if w.category.__name__ in _INPUT_WARNINGS})
        if notes:
            report["input_warnings"] = notes
        ann = _annotation(entry, data, calcium)
        if ann is not None:
            report["annotation"] = ann
        report["outputs"] = {**_commit(dict(data.get("outputs") or {}), out), "json": str(json_path)}
        report["total_seconds"] = time.perf_counter() - t0
        write_json(json_path, report, overwrite=True)  # last: its "ok" marks the image done
        return report
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT):
            raise
        reason = f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001 - a bad image must not stop a batch
        reason = f"{type(e).__name__}: {e}"
        if not _expected(e):
            logger.debug("%s: unexpected error", case, exc_info=True)
    finally:
        wait_for_background_writes()  # a failed image's writer may still be busy: let it end, then clean up
        for f in staging.glob(f"{case}_bac*"):
            f.unlink(missing_ok=True)
    reason = cli_words(reason)
    report = {"case": case, "source": str(entry["image"]), "status": "failed", "reason": reason,
              "error": reason.split(":", 1)[0], "model": model, "total_seconds": time.perf_counter() - t0}
    try:
        write_json(json_path, report, overwrite=True)
        report["outputs"] = {"json": str(json_path)}
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT):
            raise
    return report


def _expected(e: Exception) -> bool:
    from monai_bac.data import MammogramReadError
    from monai_bac.transforms import InputRejected

    return isinstance(e, (MammogramReadError, InputRejected, FileNotFoundError, ValueError))


def run(args) -> int:
    import shutil

    from monai_bac.bundle_inference import BundleInference
    from monai_bac.bundle_support import DatalistError
    from monai_bac.commands import fail
    from monai_bac.utils import write_json
    from monai_bac.model_files import ModelError
    from monai_bac.data.study_files import files_to_leave_out
    from monai_bac.quantify import cohort_analysis, summarise_patients

    try:
        items = gather_items(args.input, args.split)
    except (DatalistError, FileNotFoundError, ValueError) as e:
        return fail("infer", e, EXIT_NOTHING)
    out = Path(args.out)
    why = _check_writable(out)
    if why:
        print(f"monai-bac infer: {why}", file=sys.stderr)
        return EXIT_UNWRITABLE
    staging = out / ".monai-bac-staging"
    overrides = {"output_dir": str(staging), "overwrite": True, "overlay": not args.no_overlay,
                 "save_seg": not args.no_seg, "allow_processed": bool(args.allow_processed),
                 "min_input_fraction": float(args.min_input_fraction), "calcium": not args.no_calcium,
                 "save_transforms#0#nifti": not args.no_nifti, "report_transforms#0#report": False,
                 "save_transforms#0#overlay_max_side": args.overlay_max_side or None}
    if args.threshold is not None:
        overrides["threshold"] = float(args.threshold)
    if args.spacing:
        from monai_bac.units import SpacingError, as_spacing

        try:
            spacing = as_spacing(args.spacing, "--spacing")
        except SpacingError as e:
            return fail("infer", e, EXIT_NOTHING)
        overrides["image_transforms#0#spacing_mm"] = list(spacing)
    try:
        pipeline = BundleInference(args.model, config_file=args.config, engine=args.engine, precision=args.precision,
                                   threads=args.threads, overrides=overrides)
    except (ModelError, FileNotFoundError, ValueError, ImportError) as e:
        return fail("infer", f"cannot load the model: {e}", EXIT_NOTHING)
    names = case_names(items)
    left_out = files_to_leave_out([str(item["image"]) for item in items])
    desc = pipeline.describe()
    logger.info("%d image(s); engine %s (%s), network input %d, threshold %.3g", len(items), desc["engine"],
                desc["precision"], pipeline.image_size, pipeline.threshold)
    logging.getLogger("ignite.engine.engine.SupervisedEvaluator").setLevel(logging.CRITICAL)
    reports = []
    t0 = time.perf_counter()
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc="monai-bac infer", unit="image", file=sys.stderr)
    try:
        for item, case in zip(items, names):
            if str(item["image"]) in left_out:
                rep = {"case": case, "source": str(item["image"]), "status": LEFT_OUT,
                       "reason": left_out[str(item["image"])]}
            else:
                rep = _process(pipeline, item, case, out, staging, args.overwrite, not args.no_calcium, desc)
            reports.append(rep)
            if rep["status"] == "failed":
                logger.warning("%s: FAILED: %s", case, rep["reason"])
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{case}: {rep['status']}")
    except OSError as e:
        print(f"\nmonai-bac infer: cannot write to {out} ({e.strerror or e}); the images finished so far are "
              "kept, free space or fix permissions and rerun the same command to do the rest", file=sys.stderr)
        return EXIT_UNWRITABLE
    finally:
        if bar is not None:
            bar.close()
        shutil.rmtree(staging, ignore_errors=True)
    wall = time.perf_counter() - t0
    rows = [_row(r) for r in reports]
    try:
        results_csv = write_csv(out / "results.csv", rows, CSV_FIELDS, args.overwrite)
        patients = summarise_patients([r for r in rows if r["status"] in ("ok", "skipped")])
        patient_fields = list(patients[0]) if patients else ["patient_id"]
        patients_csv = write_csv(out / "patients.csv", patients, patient_fields, args.overwrite)
        counts = Counter(r["status"] for r in reports)
        planes = Counter(r["measured_at"] for r in rows if r.get("measured_at"))
        ok = [r for r in reports if r["status"] == "ok"]
        from monai_bac.bundle_inference import STAGES

        timing = {s: statistics.median(r["seconds"][s] for r in ok) for s in STAGES} if ok else {}
        run_info = {
            "input": str(args.input), "out": str(out), "model": desc, "n_images": len(items), "counts": dict(counts),
            "failures": [{"case": r["case"], "source": r["source"], "reason": r["reason"], "error": r.get("error")}
                         for r in reports if r["status"] == "failed"],
            "left_out": [{"case": r["case"], "source": r["source"], "reason": r["reason"]} for r in reports
                         if r["status"] == LEFT_OUT],
            "warnings": [{"case": r["case"], "warning": r["quality_warning"]} for r in reports
                         if r.get("quality_warning")],
            "measured_at": dict(planes),
            "median_seconds_per_stage": timing,
            "median_seconds_per_image": statistics.median(r["total_seconds"] for r in ok) if ok else None,
            "wall_seconds": wall, "results_csv": str(results_csv), "patients_csv": str(patients_csv),
            "cohort": cohort_analysis(rows),
        }
        run_json = write_json(_free_name(out / "run.json", args.overwrite), run_info, overwrite=args.overwrite)
    except OSError as e:
        print(f"monai-bac infer: cannot write the run tables to {out} ({e.strerror or e})", file=sys.stderr)
        return EXIT_UNWRITABLE
    print(f"{len(items)} image(s): {counts.get('ok', 0)} ok, {counts.get('failed', 0)} failed, "
          f"{counts.get('skipped', 0)} skipped (done before; --overwrite redoes them), {counts.get(LEFT_OUT, 0)} left "
          f"out (not images, or renditions of raw images in this run) in {wall:.1f} s "
          f"({desc['engine']} {desc['precision']})")
    for f in run_info["failures"]:
        print(f"  FAILED {f['case']}: {f['reason']}")
    if len(planes) > 1:  # a cohort of vendors and headers: lengths in the breast and at the detector side by side
        print("  sizes measured in different planes: " + "; ".join(f"{n} {p}" for p, n in planes.most_common())
              + " (results.csv's measured_at; docs/CPU_INFERENCE.md, section 4)")
    print(f"outputs: {out}\nresults: {results_csv}\npatients: {patients_csv}\nrun report: {run_json}")
    return EXIT_FAILED if counts.get("failed") else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    from monai_bac.cli import main

    sys.exit(main(["infer", *sys.argv[1:]]))

"""End-to-end CPU inference of one full-size raw mammogram: PyTorch eager vs ONNX Runtime (float32, int8).

    python benchmarks/bench_cpu_inference.py [--threads 2] [--repeats 3] [--image-size 1600]
                                             [--dicom FILE] [--json OUT.json]

What is timed (``monai_bac.cpu_inference.process_image``, the code ``monai-bac infer`` runs):
load (DICOM read) -> breast_region -> normalise (log-gamma + z-score) -> resize (to 1600 x 1600)
-> network (deeplabv3p_mnv3) -> resize_back (sigmoid + Invertd to 2850 x 2394) -> threshold ->
quantify (length, segments, area, calcium from Eq. 5) -> write (NIfTI, DICOM SEG, overlay PNG,
JSON). The engines (PyTorch eager; ONNX Runtime float32; ONNX Runtime int8, ``model.int8.onnx``
calibrated on other full-size phantoms) run in the same process on the same image, alternately,
after one warm-up run each; the table gives the median over ``--repeats`` runs per stage and the total.
``write`` runs on a second thread while the mask is quantified (and the h_calc map of the
calcium estimate on a third beside the skeletons), so the stage columns add up to more than
the total: the total is the wall time of the whole image.

Input: a full-size (2850 x 2394 at 0.1 mm, GE Pristina geometry, MONOCHROME1 16-bit) raw
"FOR PROCESSING" phantom DICOM written with ``make_phantom`` + ``write_mammogram_dicom``.

Model: random weights (timing does not depend on them) with the segmentation head's bias
shifted so that ~0.5 % of the pixels come out positive, the area of BAC in a typical phantom
(an all-positive mask from an untrained head would time the skeleton of a 2850 x 2394 blob).
The int8 copy of a random network gives a much more scattered mask (its logits all sit near the
cut), so its ``quantify`` is not comparable; ``--model RUN`` uses a trained bundle's weights
instead (e.g. a ``monai-bac reproduce`` run, served at ``--image-size``), whose masks int8 keeps.
A second quantify + write row uses the phantom's ground-truth BAC mask.

Threads: ``--threads`` (default 2) for ONNX Runtime's intra-op pool, torch, and the BLAS /
OpenMP pools. The load average is printed before and after: on a shared machine the numbers
are contended; re-run on a quiet machine for reference figures. CPU seconds (process time)
per run are printed beside the wall time: on a busy machine they are the better guide to what
a quiet machine would do.
"""

from __future__ import annotations

import argparse
import os
import sys

_ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
_ap.add_argument("--threads", type=int, default=2)
_ap.add_argument("--repeats", type=int, default=3)
_ap.add_argument("--image-size", type=int, default=1600)
_ap.add_argument("--dicom", help="a raw DICOM mammogram to use instead of the phantom")
_ap.add_argument("--model", help="a trained bundle (e.g. a `monai-bac reproduce` run) whose model.pt, threshold "
                                 "and settings to use (served at --image-size with this repository's "
                                 "inference.json) instead of random weights")
_ap.add_argument("--positive-fraction", type=float, default=0.005)
_ap.add_argument("--engines", nargs="+", default=["torch", "onnx", "onnx-int8"], choices=["torch", "onnx", "onnx-int8"])
_ap.add_argument("--calibration-images", type=int, default=4,
                 help="onnx-int8: full-size phantoms to calibrate on (and as many others to compare masks on)")
_ap.add_argument("--json", help="also write the results here")
_ap.add_argument("--validate", type=int, default=0, metavar="N",
                 help="also measure length and calcium of the ground-truth masks of N full-size phantoms vs truth")
_ap.add_argument("--only-validate", action="store_true", help="skip the timing, run --validate only")
ARGS = _ap.parse_args()
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)

import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

warnings.filterwarnings("ignore")
torch.set_num_threads(ARGS.threads)
try:
    from threadpoolctl import threadpool_limits

    threadpool_limits(ARGS.threads)
except ImportError:
    pass

from monai_bac.cpu_inference import STAGES, CPUInferenceEngine, process_image  # noqa: E402
from monai_bac.data import load_mammogram, write_mammogram_dicom  # noqa: E402
from monai_bac.export import export_model  # noqa: E402
from monai_bac.networks import build_network  # noqa: E402


def make_dicom(folder: Path, seed: int = 7, name: str = "full_size_raw.dcm") -> tuple[Path, np.ndarray | None]:
    if ARGS.dicom and seed == 7:
        return Path(ARGS.dicom), None
    from monai_bac.phantom import make_phantom

    p = make_phantom(seed, view=("CC", "MLO")[seed % 2], laterality=("L", "R")[(seed // 2) % 2], spacing_mm=0.1,
                     vendor="GE")
    m = p.meta
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    write_mammogram_dicom(path, p.raw, spacing_mm=m["spacing_mm"], kvp=m["kvp"], thickness_mm=m["thickness_mm"],
                          anode=m["anode"], filter=m["filter"], view=m["view"], laterality=m["laterality"],
                          manufacturer=m["manufacturer"], photometric=m["photometric"], bits_stored=m["bits_stored"],
                          patient_id="BENCH")
    return path, p.bac_mask


def trained_model(folder: Path) -> Path:
    """``--model``'s weights, threshold and settings in ``folder / "models"``, served at ``--image-size``."""
    import shutil

    src = Path(ARGS.model) / "models" if (Path(ARGS.model) / "models").is_dir() else Path(ARGS.model)
    models = folder / "models"
    models.mkdir(parents=True)
    for name in ("model.pt", "threshold.json"):
        if (src / name).is_file():
            shutil.copy2(src / name, models / name)
    settings = json.loads((src / "model_settings.json").read_text())
    (models / "model_settings.json").write_text(json.dumps({**settings, "image_size": ARGS.image_size}))
    return models


def make_model(folder: Path, dicom: Path) -> Path:
    """Random deeplabv3p_mnv3 whose head bias gives ~positive_fraction positive pixels on ``dicom``
    (or the trained ``--model``)."""
    if ARGS.model:
        return _export(folder, trained_model(folder))
    models = folder / "models"
    models.mkdir(parents=True)
    (models / "model_settings.json").write_text(json.dumps(
        {"network_name": "deeplabv3p_mnv3", "image_size": ARGS.image_size, "normalisation": "log_gamma",
         "crop_to_breast": False}))
    torch.manual_seed(0)
    net = build_network("deeplabv3p_mnv3").eval()
    torch.save(net.state_dict(), models / "model.pt")
    export_model(models, formats=("onnx",), check_size=ARGS.image_size)  # the exported graph calibrates the bias
    eng = CPUInferenceEngine(models, engine="onnx", threads=ARGS.threads, threshold=0.5)
    d = {"image": str(dicom)}
    for t in eng.preprocessing.transforms:
        d = t(d)
    logits = eng.runner(np.asarray(d["image"])[None])
    head = net.segmentation_head[0]
    with torch.no_grad():
        head.bias -= float(np.quantile(logits, 1.0 - ARGS.positive_fraction))
    torch.save(net.state_dict(), models / "model.pt")
    return _export(folder, models)


def _export(folder: Path, models: Path) -> Path:
    report = export_model(models, formats=("onnx", "torchscript"), check_size=ARGS.image_size, overwrite=True)
    for fmt, r in report["exports"].items():
        print(f"export {fmt}: max |export - pytorch| = {r['max_abs_diff']:.2e} on a {ARGS.image_size} px input "
              f"({r['seconds']:.1f} s)")
    if "onnx-int8" in ARGS.engines:
        calib = folder / "calibration"
        for seed in range(20, 20 + 2 * ARGS.calibration_images):
            make_dicom(calib, seed, f"phantom_{seed}.dcm")
        # timing only: no agreement is demanded (for random weights it says nothing about a
        # trained model; benchmarks/validate_int8.py measures that)
        r = export_model(models, formats=("onnx-int8",), calibration=str(calib), n_calibration=ARGS.calibration_images,
                         n_check=ARGS.calibration_images, min_mask_dice=0.0)["exports"]["onnx-int8"]
        print(f"export onnx-int8 ({r['scheme']}): calibrated on {r['calibration_images']} full-size phantoms "
              f"({r['seconds']:.1f} s); mask Dice vs float32 {r['mask_dice_mean']:.3f} on {r['n_images']} others")
    return models


def validate(n: int) -> list[dict]:
    """Quantification of the ground-truth BAC masks of ``n`` full-size phantoms against their truth."""
    from monai.data import MetaTensor

    from monai_bac.phantom import make_phantom
    from monai_bac.quantify import quantify_image

    print(f"\nvalidation on the ground-truth masks of {n} full-size phantoms (0.1 mm):")
    print("| seed | view | vendor | true length mm | measured mm | error % | skeleton only % | true Ca mg | "
          "estimate mg | error % |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for seed in range(n):
        view, lat, vendor = ("CC", "MLO")[seed % 2], ("L", "R")[(seed // 2) % 2], ("HOLOGIC", "GE")[(seed // 4) % 2]
        p = make_phantom(seed, view=view, laterality=lat, vendor=vendor, spacing_mm=0.1)
        truth_len, truth_ca = p.record["bac_centreline_length_mm"], p.record["bac_calcium_mg"]
        if truth_len == 0:
            continue
        img = MetaTensor(torch.from_numpy(p.linear[None].copy()), meta={**p.meta, "is_raw": True})
        q = quantify_image(img, p.bac_mask, p.breast_map)
        r = dict(seed=seed, view=view, vendor=vendor, truth_mm=truth_len, length_mm=q.length_mm,
                 err=100 * (q.length_mm / truth_len - 1), skel_err=100 * (q.skeleton_length_mm / truth_len - 1),
                 truth_mg=truth_ca, calcium_mg=q.calcium_mg, ca_err=100 * (q.calcium_mg / truth_ca - 1))
        rows.append(r)
        print(f"| {seed} | {view} | {vendor} | {truth_len:.1f} | {q.length_mm:.1f} | {r['err']:+.1f} | "
              f"{r['skel_err']:+.1f} | {truth_ca:.1f} | {q.calcium_mg:.1f} | {r['ca_err']:+.1f} |")
    e = np.array([r["err"] for r in rows])
    c = np.array([r["ca_err"] for r in rows])
    total = 100 * (sum(r["length_mm"] for r in rows) / sum(r["truth_mm"] for r in rows) - 1)
    print(f"length: total {total:+.1f} %, median |error| {np.median(np.abs(e)):.1f} %, max |error| "
          f"{np.abs(e).max():.1f} %, within 5 %: {int((np.abs(e) <= 5).sum())}/{len(e)}; calcium: mean {c.mean():+.1f} %, "
          f"max |error| {np.abs(c).max():.1f} %")
    return rows


def main() -> int:
    if ARGS.only_validate:
        validate(max(ARGS.validate, 1))
        return 0
    print(f"machine: {machine()}; threads {ARGS.threads}; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dicom, gt = make_dicom(tmp)
        img = load_mammogram(dicom)
        print(f"image: {dicom.name} {tuple(img.shape[-2:])} at {img.meta['spacing_mm']} mm; network input "
              f"{ARGS.image_size} x {ARGS.image_size}")
        models = make_model(tmp, dicom)
        spec = {"torch": ("torch", "fp32"), "onnx": ("onnx", "fp32"), "onnx-int8": ("onnx", "int8")}
        engines = {name: CPUInferenceEngine(models, engine=spec[name][0], precision=spec[name][1], threads=ARGS.threads)
                   for name in ARGS.engines}
        runs: dict[str, list[dict]] = {name: [] for name in engines}
        cpu: dict[str, list[float]] = {name: [] for name in engines}
        for rep in range(ARGS.repeats + 1):
            for name, eng in engines.items():
                c0 = time.process_time()
                r = process_image(eng, dicom, tmp / f"out_{name}_{rep}", "bench")
                if r["status"] != "ok":
                    raise SystemExit(f"{name}: {r['reason']}")
                if rep:  # the first round is the warm-up
                    runs[name].append({**r["seconds"], "total": r["total_seconds"]})
                    cpu[name].append(time.process_time() - c0)
        q = r["quantification"]
        print(f"mask: {q['n_segments']} segments, {q['area_mm2']:.0f} mm^2, length {q['length_mm']:.0f} mm")
        cols = list(STAGES) + ["total"]
        print()
        print(f"| engine ({ARGS.threads} threads) | " + " | ".join(cols) + " | CPU s |")
        print("|---" * (len(cols) + 2) + "|")
        results = {}
        for name in engines:
            med = {c: statistics.median(x[c] for x in runs[name]) for c in cols}
            results[name] = {"median_seconds": med, "runs": runs[name], "cpu_seconds": cpu[name]}
            print(f"| {name} | " + " | ".join(f"{med[c]:.3f}" for c in cols) +
                  f" | {statistics.median(cpu[name]):.2f} |")
        if gt is not None:
            from monai_bac.cpu_inference import output_paths, overlay_picture, write_dicom_seg
            from monai_bac.data import save_mask_nifti
            from monai_bac.quantify import quantify_image

            t0 = time.perf_counter()
            qg = quantify_image(img, gt)
            t1 = time.perf_counter()
            paths = output_paths(tmp / "gt", "gt")
            (tmp / "gt").mkdir()
            save_mask_nifti(paths["nifti"], gt, img.meta["spacing_mm"])
            write_dicom_seg(paths["seg"], gt, dicom)
            from PIL import Image

            Image.fromarray(overlay_picture(np.log1p(np.asarray(img)[0]), gt)).save(paths["overlay"], compress_level=1)
            t2 = time.perf_counter()
            print(f"\nground-truth BAC mask: quantify {t1 - t0:.3f} s (breast region included), write {t2 - t1:.3f} s; "
                  f"length {qg.length_mm:.1f} mm, calcium {qg.calcium_mg:.1f} mg")
        print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if ARGS.validate:
            results["validation"] = validate(ARGS.validate)
        if ARGS.json:
            Path(ARGS.json).write_text(json.dumps({"machine": machine(), "threads": ARGS.threads,
                                                   "loadavg_after": os.getloadavg(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

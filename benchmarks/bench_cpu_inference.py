"""End-to-end CPU inference of one full-size raw mammogram, this tree against an earlier one, alternately.

    python benchmarks/bench_cpu_inference.py [--baseline REV_OR_TREE] [--engine onnx|torch]
                                             [--repeats 5] [--threads 2] [--model BUNDLE] [--json OUT]

What is timed: one image through what ``monai-bac infer`` runs, from the DICOM file to the written
outputs (mask NIfTI, DICOM SEG, overlay PNG, JSON report with the quantification): here the
bundle's ``configs/inference.json`` run by :class:`monai_bac.bundle_inference.BundleInference`
with ``monai-bac infer``'s per-image step. With ``--baseline`` (a git revision, checked out into a
temporary worktree, or a folder holding an older checkout), the same image also goes through that
tree's own ``monai-bac infer`` code (before the one-inference-path change: ``CPUInferenceEngine`` +
``process_image``). Each tree runs in its own worker process, loads its model once, warms up
once, and the two are then asked in turn (A B A B ...), so a machine whose speed drifts affects
both alike; the table gives each one's median, min and max wall seconds per image and the median
of the per-pair ratios.

Input: a full-size (2850 x 2394 at 0.1 mm, GE geometry, MONOCHROME1 16-bit) raw phantom DICOM.
Model: random ``deeplabv3p_mnv3`` weights at 1600 x 1600 (timing does not depend on them) with the
segmentation head's bias shifted so that ~0.5 % of the pixels are positive, the area of BAC in a
typical phantom; or ``--model BUNDLE``'s trained weights.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# the worker: one tree's code, one model, one image at a time on request
WORKER = r'''
import json, os, sys, time, warnings
warnings.filterwarnings("ignore")
import logging; logging.disable(logging.WARNING)
bundle, image, out, engine, threads = sys.argv[1:6]
from pathlib import Path
if Path(sys.argv[6]).joinpath("monai_bac", "bundle_inference.py").is_file():
    from monai_bac.bundle_inference import BundleInference
    from monai_bac.commands.infer import _process
    pipe = BundleInference(bundle, engine=engine, precision="fp32", threads=int(threads),
                           overrides={"output_dir": os.path.join(out, ".staging"), "overwrite": True,
                                      "report_transforms#0#report": False})
    model = pipe.describe()
    def run(k):
        rep = _process(pipe, {"image": image}, f"case{k}", Path(out), Path(out) / ".staging", True, True, model)
        return rep["status"], (rep.get("quantification") or {}).get("length_mm")
else:
    from monai_bac.cpu_inference import CPUInferenceEngine, process_image
    eng = CPUInferenceEngine(bundle, engine=engine, precision="fp32", threads=int(threads))
    def run(k):
        rep = process_image(eng, image, out, f"case{k}", overwrite=True)
        return rep["status"], (rep.get("quantification") or {}).get("length_mm")
run(0)  # warm-up
print("ready", flush=True)
for line in sys.stdin:
    k = int(line)
    t = time.perf_counter()
    status, length = run(k)
    print(json.dumps({"seconds": time.perf_counter() - t, "status": status, "length_mm": length}), flush=True)
'''


def make_inputs(tmp: Path, model: str | None, positive_fraction: float) -> tuple[Path, Path]:
    """(a full-size raw phantom DICOM, a models/ folder with model.pt, settings and threshold)."""
    import numpy as np
    import torch

    from monai_bac.data import write_mammogram_dicom
    from monai_bac.networks import build_network
    from monai_bac.phantom import make_phantom

    ph = make_phantom(seed=7, spacing_mm=0.1)
    m = ph.meta
    image = tmp / "full_size.dcm"
    write_mammogram_dicom(image, ph.raw, spacing_mm=m["spacing_mm"], kvp=m["kvp"], thickness_mm=m["thickness_mm"],
                          anode=m["anode"], filter=m["filter"], view=m["view"], laterality=m["laterality"],
                          manufacturer=m["manufacturer"], presentation=m["presentation"],
                          photometric=m["photometric"], bits_stored=m["bits_stored"])
    models = tmp / "models"
    models.mkdir()
    if model:
        src = Path(model) / "models" if (Path(model) / "models").is_dir() else Path(model)
        for f in ("model.pt", "model_settings.json", "threshold.json"):
            shutil.copy(src / f, models / f)
        settings = json.loads((models / "model_settings.json").read_text())
        settings.update(image_size=1600, crop_to_breast=False)
        (models / "model_settings.json").write_text(json.dumps(settings))
        return image, models
    torch.manual_seed(0)
    net = build_network("deeplabv3p_mnv3").eval()
    x = torch.from_numpy(np.log1p(ph.raw.astype(np.float32)))[None, None]
    x = torch.nn.functional.interpolate((x - x.mean()) / x.std(), size=(1600, 1600), mode="area")
    with torch.no_grad():
        logits = net(x).numpy()
    state = net.state_dict()
    bias = next(k for k in state if k.startswith("segmentation_head") and k.endswith("bias"))
    state[bias] = state[bias] - float(np.quantile(logits, 1.0 - positive_fraction))
    torch.save(state, models / "model.pt")
    (models / "model_settings.json").write_text(json.dumps({"network_name": "deeplabv3p_mnv3", "image_size": 1600,
                                                            "normalisation": "log_gamma", "crop_to_breast": False}))
    (models / "threshold.json").write_text(json.dumps({"threshold": 0.5}))
    return image, models


def bundle_for(tree: Path, models: Path, dest: Path) -> Path:
    """A bundle folder with ``tree``'s configs and the shared weights."""
    shutil.copytree(tree / "bundle" / "configs", dest / "configs")
    shutil.copytree(models, dest / "models")
    return dest


def worker(tree: Path, bundle: Path, image: Path, out: Path, engine: str, threads: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(threads)}
    p = subprocess.Popen([sys.executable, "-c", WORKER, str(bundle), str(image), str(out), engine, str(threads),
                          str(tree)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=str(tree))
    line = p.stdout.readline()
    if line.strip() != "ready":
        raise RuntimeError(f"worker for {tree} did not start: {line!r}")
    return p


def ask(p: subprocess.Popen, k: int) -> dict:
    p.stdin.write(f"{k}\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default=None, help="git revision or folder of an earlier checkout to compare with")
    ap.add_argument("--engine", default="onnx", choices=["onnx", "torch"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=None, help="a trained bundle to take the weights from")
    ap.add_argument("--positive-fraction", type=float, default=0.005)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import machine

    tmp = Path(tempfile.mkdtemp(prefix="bench_infer_"))
    trees = {"this tree": REPO}
    worktree = None
    if args.baseline:
        if Path(args.baseline).is_dir():
            trees["baseline"] = Path(args.baseline).resolve()
        else:
            worktree = tmp / "baseline_tree"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", str(worktree), args.baseline],
                           check=True)
            trees["baseline"] = worktree
    procs = {}
    try:
        image, models = make_inputs(tmp, args.model, args.positive_fraction)
        for name, tree in trees.items():
            bundle = bundle_for(tree, models, tmp / f"bundle_{name.replace(' ', '_')}")
            out = tmp / f"out_{name.replace(' ', '_')}"
            out.mkdir()
            procs[name] = worker(tree, bundle, image, out, args.engine, args.threads)
        print(machine())
        rows: dict[str, list[dict]] = {name: [] for name in procs}
        for k in range(1, args.repeats + 1):
            for name, p in procs.items():
                rows[name].append(ask(p, k))
        print(f"\nfull-size image ({args.engine}, {args.threads} threads), wall seconds per image over "
              f"{args.repeats} alternating runs:")
        result = {"machine": machine(), "engine": args.engine, "threads": args.threads, "runs": rows}
        for name, r in rows.items():
            s = [x["seconds"] for x in r]
            print(f"  {name:10s} median {statistics.median(s):.3f}  min {min(s):.3f}  max {max(s):.3f}  "
                  f"(status {r[0]['status']}, BAC length {r[0]['length_mm']} mm)")
        if len(rows) == 2:
            ratios = [a["seconds"] / b["seconds"] for a, b in zip(rows["this tree"], rows["baseline"])]
            result["ratio_median"] = statistics.median(ratios)
            print(f"  this tree / baseline, pair by pair: median {statistics.median(ratios):.3f} "
                  f"(min {min(ratios):.3f}, max {max(ratios):.3f})")
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1))
    finally:
        for p in procs.values():
            p.stdin.close()
            p.wait(timeout=60)
        if worktree is not None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""What int8 quantization does to a trained model's answer, on phantom images with known truth.

    python benchmarks/validate_int8.py --model BUNDLE --calibration DATALIST --check DATALIST
                                       [--calibration-split validation] [--check-split all] [--threads 2]

``BUNDLE`` is a trained bundle (``configs/`` + ``models/model.pt``), e.g. a run of
``monai-bac reproduce`` (``runs/ra1-seed0``). It is copied to a temporary folder (the user's
files are not touched), exported to ONNX float32 and int8 (``monai-bac export --formats onnx
onnx-int8``, calibrated on ``--calibration``), and both engines segment every image of
``--check`` (images the calibration did not see, with ``label_gt``). Per image: Dice between the
float32 and the int8 masks, and Dice / Dice^L of each against the truth; network seconds of each.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import limit_threads, machine  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--calibration", required=True)
    ap.add_argument("--calibration-split", default="validation")
    ap.add_argument("--n-calibration", type=int, default=8)
    ap.add_argument("--check", required=True)
    ap.add_argument("--check-split", default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scope", choices=["decoder", "all"], default="decoder", help="what int8 quantizes")
    args = ap.parse_args()
    limit_threads(args.threads)
    import numpy as np
    import torch

    from monai_bac.bundle_support import inference_items
    from monai_bac.bundle_inference import BundleInference
    from monai_bac.data import load_label
    from monai_bac.export import export_model
    from monai_bac.metrics import compute_length_dice, mask_dice

    print(f"machine: {machine()}; threads {args.threads}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bundle"
        shutil.copytree(Path(args.model) / "configs", root / "configs")
        (root / "models").mkdir()
        for name in ("model.pt", "model_settings.json", "threshold.json"):
            if (Path(args.model) / "models" / name).is_file():
                shutil.copy2(Path(args.model) / "models" / name, root / "models" / name)
        info = export_model(root, formats=("onnx", "onnx-int8"), calibration=args.calibration,
                            calibration_split=args.calibration_split, n_calibration=args.n_calibration, n_check=0,
                            min_mask_dice=0.0, int8_scope=args.scope)
        q = info["exports"]["onnx-int8"]
        print(f"int8 ({q['scheme']}) calibrated on {q['calibration_images']} image(s) of {args.calibration} "
              f"({q['seconds']:.1f} s)")
        no_files = {"save_transforms": [], "quantify_transforms": [], "report_transforms": []}
        engines = {p: BundleInference(root, engine="onnx", precision=p, threads=args.threads, overrides=no_files)
                   for p in ("fp32", "int8")}
        size = engines["fp32"].image_size
        print(f"network input {size} px, threshold {engines['fp32'].threshold:.3g}\n")
        print("| image | Dice fp32 vs int8 | Dice vs truth fp32 | int8 | Dice^L vs truth fp32 | int8 | network s fp32 | int8 |")
        print("|---|---|---|---|---|---|---|---|")
        rows = []
        for item in inference_items(args.check, args.check_split):
            if "label_gt" not in item:
                continue
            res = {p: e({"image": item["image"]}) for p, e in engines.items()}
            masks = {p: np.asarray(d["pred"])[0] > 0 for p, (d, _) in res.items()}
            spacing = [tuple(res["fp32"][0]["pred"].meta["spacing_mm"])]
            truth = np.asarray(load_label(item["label_gt"], spacing_mm=spacing[0]))[0] > 0
            r = {"image": Path(item["image"]).name, "agree": mask_dice(masks["fp32"], masks["int8"])}
            for p in ("fp32", "int8"):
                m = masks[p]
                r[f"dice_{p}"] = mask_dice(m, truth)
                r[f"ldice_{p}"] = float(compute_length_dice(torch.from_numpy(m[None, None]),
                                                            torch.from_numpy(truth[None, None]), spacing,
                                                            ignore_empty=False)[0, 0])
                r[f"net_{p}"] = res[p][1]["network"]
            rows.append(r)
            print(f"| {r['image']} | {r['agree']:.4f} | {r['dice_fp32']:.4f} | {r['dice_int8']:.4f} | "
                  f"{r['ldice_fp32']:.4f} | {r['ldice_int8']:.4f} | {r['net_fp32']:.3f} | {r['net_int8']:.3f} |")
    mean = {k: statistics.fmean(r[k] for r in rows) for k in rows[0] if k != "image"}
    print(f"\n{len(rows)} images; mean: Dice fp32 vs int8 {mean['agree']:.4f} (min {min(r['agree'] for r in rows):.4f}); "
          f"Dice vs truth {mean['dice_fp32']:.4f} -> {mean['dice_int8']:.4f}; Dice^L vs truth {mean['ldice_fp32']:.4f} "
          f"-> {mean['ldice_int8']:.4f}; network {mean['net_fp32']:.3f} s -> {mean['net_int8']:.3f} s at {size} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())

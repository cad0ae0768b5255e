"""``monai-bac export``: write a trained model as ONNX and TorchScript, checked against PyTorch.

The exports go beside ``model.pt`` (or to ``--out``) with ``export.json``, which records the
checkpoint's SHA-256 and, per format, the largest absolute difference of the logits between
the export and PyTorch on the same random input at the served size (``max_abs_diff``).
``monai-bac infer`` then loads ``model.onnx`` directly instead of exporting it in memory.
"""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser("export", help="export a trained model to ONNX / TorchScript (checked against PyTorch)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="bundle folder, its models/ folder, or model.pt")
    p.add_argument("--out", default=None, help="output folder (default: the model's own folder)")
    p.add_argument("--formats", nargs="+", default=["onnx", "torchscript"], choices=["onnx", "torchscript"])
    p.add_argument("--check-size", type=int, default=None,
                   help="side of the check input (default: the model's image_size)")
    p.add_argument("--atol", type=float, default=1e-3, help="largest accepted |export - pytorch| of the logits")
    p.add_argument("--overwrite", action="store_true", help="replace existing exports")
    p.set_defaults(func=run)


def run(args) -> int:
    from monai_bac.export import ExportError, export_model

    try:
        info = export_model(args.model, args.out, tuple(args.formats), check_size=args.check_size, atol=args.atol,
                            overwrite=args.overwrite)
    except (ExportError, FileExistsError, FileNotFoundError) as e:
        print(f"monai-bac export: {e}", file=sys.stderr)
        return 1
    size = info["check_input"][-1]
    print(f"{info['network_name']} from {info['checkpoint']} (check input {size} x {size}):")
    for fmt, r in info["exports"].items():
        print(f"  {fmt:12s} {r['path']}  max |export - pytorch| = {r['max_abs_diff']:.2e} (atol {r['atol']:g})")
    return 0

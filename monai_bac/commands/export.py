"""``monai-bac export``: write a trained model as ONNX and TorchScript, checked against PyTorch.

The exports go beside ``model.pt`` (or to ``--out``) with ``export.json``, which records the
checkpoint's SHA-256 and, per format, the largest absolute difference of the logits between
the export and PyTorch on the same random input at the served size (``max_abs_diff``).
``monai-bac infer`` then loads ``model.onnx`` directly instead of exporting it in memory.

``--formats onnx-int8 --calibration DATALIST`` also writes ``model.int8.onnx``: the ONNX model
quantized to int8, calibrated on the datalist's images through the model's own preprocessing,
with its masks compared with float32 on further images (``monai_bac.quantization``). ``infer``
uses it by default from then on (``--precision fp32`` to keep float32).
"""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("export", help="export a trained model to ONNX / TorchScript (checked against PyTorch)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="bundle folder, its models/ folder, or model.pt")
    p.add_argument("--out", default=None, help="output folder (default: the model's own folder)")
    p.add_argument("--formats", nargs="+", default=["onnx", "torchscript"], choices=["onnx", "torchscript", "onnx-int8"],
                   help="onnx-int8: int8 quantization of model.onnx for faster CPU inference (needs --calibration)")
    p.add_argument("--calibration", default=None,
                   help="onnx-int8: datalist, DICOM folder or file of representative raw images")
    p.add_argument("--calibration-split", default="validation",
                   help="onnx-int8: the datalist list to calibrate on (all lists when absent; default: validation)")
    p.add_argument("--n-calibration", type=int, default=8, help="onnx-int8: images that calibrate (default 8)")
    p.add_argument("--n-check", type=int, default=4,
                   help="onnx-int8: further images the int8 masks are compared with float32 on (default 4)")
    p.add_argument("--min-mask-dice", type=float, default=0.9,
                   help="onnx-int8: refuse the int8 model when its masks agree less with float32 (mean Dice)")
    p.add_argument("--int8-scope", choices=["decoder", "all"], default="decoder",
                   help="onnx-int8: quantize the decoder's convolutions only (default; the encoder stays float32) "
                        "or every layer but the first")
    p.add_argument("--check-size", type=int, default=None,
                   help="side of the check input (default: the model's image_size)")
    p.add_argument("--atol", type=float, default=1e-3, help="accepted |export - pytorch| of the logits: atol + "
                   "rtol x max|logit|")
    p.add_argument("--rtol", type=float, default=1e-4, help="see --atol")
    p.add_argument("--overwrite", action="store_true", help="replace existing exports")
    p.set_defaults(func=run)


def run(args) -> int:
    from monai_bac.commands import fail
    from monai_bac.export import ExportError, export_model

    try:
        info = export_model(args.model, args.out, tuple(args.formats), check_size=args.check_size, atol=args.atol,
                            rtol=args.rtol,
                            overwrite=args.overwrite, calibration=args.calibration,
                            calibration_split=args.calibration_split, n_calibration=args.n_calibration,
                            n_check=args.n_check, min_mask_dice=args.min_mask_dice, int8_scope=args.int8_scope)
    except (ExportError, FileExistsError, FileNotFoundError, ValueError) as e:
        return fail("export", e, 1)
    size = info["check_input"][-1]
    print(f"{info['network_name']} from {info['checkpoint']} (check input {size} x {size}):")
    for fmt, r in info["exports"].items():
        if fmt == "onnx-int8":
            print(f"  {fmt:12s} {r['path']}  ({r['scope']}) mask Dice vs float32 {r['mask_dice_mean']:.4f} "
                  f"(min {r['mask_dice_min']:.4f}, {r['n_images']} image(s)), max |logit diff| {r['max_abs_diff']:.3g}")
        else:
            print(f"  {fmt:12s} {r['path']}  max |export - pytorch| = {r['max_abs_diff']:.2e} (max |logit| "
                  f"{r['max_abs_logit']:.3g}; accepted up to atol {r['atol']:g} + rtol {r['rtol']:g} x max |logit|)")
    return 0

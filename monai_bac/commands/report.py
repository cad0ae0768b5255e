"""``monai-bac report``: a PNG of an evaluation run - Dice and Dice^L per image, Dice against threshold.

Reads ``<eval dir>/*_raw.csv`` (written by the bundle's evaluation, ``inference.json`` +
``evaluate.json``) and the validation threshold sweep ``models/threshold.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("report", help="picture report of an evaluation run (PNG)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--eval", required=True, dest="eval_dir",
                   help="evaluation output folder holding dice_gt_raw.csv, length_dice_gt_raw.csv, ...")
    p.add_argument("--threshold-json", default=None,
                   help="threshold sweep file (default: <eval>/../../models/threshold.json when it exists)")
    p.add_argument("--out", default=None, help="PNG to write (default: <eval>/report.png)")
    p.add_argument("--title", default=None)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from monai_bac.commands import fail
    from monai_bac.report import make_report

    eval_dir = Path(args.eval_dir)
    threshold = args.threshold_json
    if threshold is None:
        guess = eval_dir.parent.parent / "models" / "threshold.json"
        threshold = str(guess) if guess.is_file() else None
    out = Path(args.out) if args.out else eval_dir / "report.png"
    try:
        info = make_report(eval_dir, out, threshold, title=args.title, overwrite=args.overwrite)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        return fail("report", e, 1)
    means = ", ".join(f"{k} {v:.3f}" for k, v in info["mean"].items())
    extra = f"; threshold {info['threshold']:g}" if info.get("threshold") is not None else "; no threshold curve"
    print(f"{info['png']}: {info['n_images']} images, mean {means}{extra}")
    return 0

"""BreastRegion alone on the realistic sets of ``validate_realistic.py``: compressed-region Dice
per image for a few settings of the periphery fit, to choose one (what issue 13's scatter step
was chosen with).

Each ``--data`` folder is a set written by ``validate_realistic.py generate`` (``<case>.dcm`` +
``<case>.npz`` with the true ``breast_map``). Every image is read as a user would
(``load_mammogram``), the compressed thickness from its header (BodyPartThickness), and
:func:`monai_bac.ops.breast_region.analyse_breast_region` runs once per setting. A setting is
``scatter:percentile:tolerance``: the scatter step on (1) or off (0), the fat envelope's
percentile, and how much deeper (ln units) a sector's own plateau may lie than the global one::

    python benchmarks/scan_breast_region.py --data /tmp/bac-cal /tmp/bac-confirm /tmp/bac-val2/main \\
        /tmp/bac-verdict --settings 0:90:0 1:97:0.05 --workers 2

Prints, per setting and per set: mean and worst compressed Dice, the images under 0.90, and the
spread of ln(estimated / true compressed area) (its mean: a periphery too narrow (+) or too wide
(-) on average). The measures use numpy only, never the tree under test.
"""

from __future__ import annotations

import argparse
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate_realistic import TARGETS, dice  # noqa: E402

TARGET = TARGETS["dice_compressed"]


def parse_setting(text: str) -> tuple[bool, float, float]:
    try:
        scatter, pct, tol = text.split(":")
        return scatter == "1", float(pct), float(tol)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a setting is scatter:percentile:tolerance (e.g. 1:97:0.05), got {text!r}")


def run_case(args: tuple[str, list[tuple[bool, float, float]]]) -> dict:
    import torch

    from monai_bac.data import load_mammogram
    from monai_bac.ops.breast_region import analyse_breast_region

    torch.set_num_threads(1)
    path, settings = args
    dcm = Path(path)
    img = load_mammogram(dcm)
    truth = np.load(dcm.with_suffix(".npz"))["breast_map"] == 2
    hw, meta = np.asarray(img)[0], img.meta
    out = dict(case=dcm.stem, set=dcm.parent.name)
    for scatter, pct, tol in settings:
        res = analyse_breast_region(hw, meta["spacing_mm"], meta.get("view"), thickness_mm=meta.get("thickness_mm"),
                                    scatter=scatter, envelope_percentile=pct, deeper_plateau_tolerance=tol)
        comp = res.breast_map == 2
        key = f"{int(scatter)}:{pct:g}:{tol:g}"
        out[key] = (dice(comp, truth), math.log(max(int(comp.sum()), 1) / max(int(truth.sum()), 1)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", required=True, help="set folders of validate_realistic.py generate")
    ap.add_argument("--settings", nargs="+", type=parse_setting, default=[parse_setting("1:97:0.05")],
                    help="scatter:percentile:tolerance (default 1:97:0.05, the transform's default)")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    files = sorted(str(p) for d in args.data for p in Path(d).glob("*.dcm"))
    if not files:
        print(f"no .dcm files in {args.data}", file=sys.stderr)
        return 2
    with ProcessPoolExecutor(max(1, args.workers)) as ex:
        rows = list(ex.map(run_case, [(f, args.settings) for f in files]))
    sets = sorted({r["set"] for r in rows})
    print(f"{len(rows)} images in {len(sets)} sets ({', '.join(sets)}); compressed-region Dice")
    print("| setting | set | N | mean | worst | under 0.90 | ln(est/true area) mean / sd |")
    print("|---|---|---|---|---|---|---|")
    for scatter, pct, tol in args.settings:
        key = f"{int(scatter)}:{pct:g}:{tol:g}"
        for name in sets + ["all"]:
            sel = [r[key] for r in rows if name in ("all", r["set"])]
            d = np.array([v[0] for v in sel])
            q = np.array([v[1] for v in sel])
            print(f"| {key} | {name} | {d.size} | {d.mean():.4f} | {d.min():.3f} | {(d < TARGET).sum()} | "
                  f"{q.mean():+.3f} / {q.std():.3f} |")
        worst = ", ".join("%s %.3f" % (r["case"], r[key][0]) for r in sorted(rows, key=lambda r: r[key][0])[:3])
        print(f"|  | worst | | {worst} | | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

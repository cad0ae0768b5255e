"""The label correction's trade-off on realistic full-size phantoms: look-alikes removed against
true BAC length kept, over a grid of its three thresholds (issue 13).

Runs the chain a user runs (``load_mammogram`` -> ``BreastRegion`` -> ``DensityMap`` ->
``CalcificationThickness``, defaults) once per image of a folder written by
``validate_realistic.py generate`` (use ``--set calibration``, seeds 7000-7047: never tune on the
validation sets), then :func:`monai_bac.ops.label_correction.correct_bac_label` - every step of
it - for each (length, calcium, hysteresis) setting, and counts what ``validate_realistic.py
evaluate`` counts: look-alike pieces removed (>= 80 % of a piece's pixels, apart from BAC and
merged with it) and the share of the true BAC centreline in the annotation that is kept.

Usage::

    python benchmarks/validate_realistic.py generate --set calibration --data /tmp/bac-cal
    python benchmarks/scan_label_correction.py --data /tmp/bac-cal \
        --lengths 6 4 --calcium 0.025 0.03 0.035 0.04 --hystereses 0.5 0.75
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate_realistic import bac_centreline, chain_maps, correction_counts  # noqa: E402


def main(argv=None) -> int:
    import torch

    from monai_bac.ops.label_correction import correct_bac_label

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a folder written by validate_realistic.py generate")
    ap.add_argument("--lengths", type=float, nargs="+", default=[6.0], help="min_length_mm values")
    ap.add_argument("--calcium", type=float, nargs="+", default=[0.04], help="min_mean_calc_mm values")
    ap.add_argument("--hystereses", type=float, nargs="+", default=[0.75])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    data = Path(args.data)
    cases = sorted(p.stem for p in data.glob("*.dcm"))
    if not cases:
        print(f"no cases (*.dcm) in {data}", file=sys.stderr)
        return 2
    grid = list(itertools.product(args.lengths, args.calcium, args.hystereses))
    totals = {g: np.zeros(4) for g in grid}  # look-alike pieces, removed; BAC centreline px, kept
    t0 = time.perf_counter()
    for k, case in enumerate(cases):
        truth = dict(np.load(data / f"{case}.npz"))
        img, bmap, _, calc = chain_maps(data, case)
        sp = tuple(float(s) for s in img.meta["spacing_mm"])
        calc, breast = np.asarray(calc)[0], np.asarray(bmap)[0] > 0
        box, centreline = bac_centreline(truth)
        for g in grid:
            out, _ = correct_bac_label(truth["tpa_mask"], calc, sp, g[0], g[1], breast_mask=breast, hysteresis=g[2])
            c = correction_counts(truth, out, sp[0], box, centreline)
            totals[g] += [c["apart_pieces"] + c["merged_pieces"], c["apart_removed"] + c["merged_removed"],
                          c["bac_skeleton_px_tpa"], c["bac_skeleton_px_kept"]]
        print(f"{k + 1}/{len(cases)} {case}", file=sys.stderr, flush=True)
    print(f"{len(cases)} images of {data}, {time.perf_counter() - t0:.0f} s\n")
    print("| min_length_mm | min_mean_calc_mm | hysteresis | look-alike pieces removed | true BAC length kept |")
    print("|---|---|---|---|---|")
    for g, (n, removed, px, kept) in totals.items():
        print(f"| {g[0]:g} | {g[1]:g} | {g[2]:g} | {removed:.0f}/{n:.0f} = {100 * removed / max(n, 1):.1f} % "
              f"| {100 * kept / max(px, 1):.2f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

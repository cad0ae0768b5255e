"""Calibrate the two thresholds of the BAC label correction on the phantom's simulated TPA.

For every connected component of the simulated third-party annotation (TPA) of a set of
phantom mammograms, this script records

* its skeleton length (mm) and its calcification thickness h_calc (mm), measured exactly as
  :class:`monai_bac.transforms.CorrectBACLabel` measures them: raw image -> DensityMap (Eq. 4)
  -> CalcificationThickness (Eq. 5) with their default parameters, then the default measure
  ``core_excess`` (mean h_calc along the annotation's centreline minus the surrounding tissue's
  level; see :mod:`monai_bac.ops.label_correction`) and, for comparison, the plain mean;
* its type: the majority of the phantom's ``tpa_source`` codes over its pixels
  (1 BAC stroke = true positive; 2 micro-calcification cluster, 3 dense strand, 4 dense edge =
  false positives);
* the length of the ground-truth BAC skeleton lying inside it (mm).

It then scans (min_length_mm, min_mean_calc_mm) on a grid and reports, for each pair, the
fraction of false-positive components removed and the fraction of the TPA's true BAC length
kept. The chosen pair maximises the false-positive removal subject to keeping >= 98 % of the
true BAC length (pooled over the cohort; the acceptance figure is 95 %), preferring the smaller
thresholds among ties (least aggressive). Copy the result into
``monai_bac/ops/label_correction.py`` (DEFAULT_MIN_LENGTH_MM, DEFAULT_MIN_MEAN_CALC_MM).

Usage::

    python benchmarks/calibrate_label_correction.py --n 40 --spacing 0.1 [--seed0 1000] [--features out.npz]

The phantoms are drawn in memory (``make_phantom``; ``Phantom.linear`` is what the loader
returns), alternating CC/MLO, L/R and the two vendor profiles; seeds start at ``--seed0`` so the
calibration set is disjoint from the validation set of ``benchmarks/validate_transforms.py``.
The phantom's true breast map is used (BreastRegion is validated separately).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np

from monai_bac import physics
from monai_bac.ops.density import calcification_thickness, density_map
from monai_bac.ops.label_correction import component_features, label_components
from monai_bac.ops.skeleton import length_density, thin_mask
from monai_bac.phantom import make_phantom

COMBOS = [(v, lat, ven) for ven in ("HOLOGIC", "GE") for v in ("CC", "MLO") for lat in ("L", "R")]
TYPES = {1: "bac", 2: "microcalc", 3: "strand", 4: "edge"}


def image_features(seed: int, view: str, lat: str, vendor: str, spacing: float) -> dict:
    p = make_phantom(seed, view=view, laterality=lat, spacing_mm=spacing, vendor=vendor)
    sp = p.meta["spacing_mm"]
    att = physics.attenuation_from_meta(p.meta)
    h_dt, _ = density_map(p.linear, p.breast_map, att, sp)
    h_calc = calcification_thickness(h_dt, att, sp, breast_mask=p.breast_map > 0)
    labels, n = label_components(p.tpa_mask)
    f = component_features(labels, n, h_calc, sp, breast=p.breast_map > 0)
    # type = majority tpa_source; true BAC length inside each component
    src = p.tpa_source.astype(np.int64)
    votes = np.zeros((n + 1, 5))
    np.add.at(votes, (labels.ravel(), src.ravel()), 1)
    ctype = votes[1:, 1:].argmax(1) + 1
    gt_len = np.bincount(labels.ravel(), weights=length_density(thin_mask(p.bac_mask), sp).ravel(),
                         minlength=n + 1)[1:]
    return dict(length=f["length_mm"], calc=f["core_excess_calc_mm"], mean_calc=f["mean_calc_mm"], ctype=ctype,
                gt_len=gt_len, image=np.full(n, seed), vendor=np.full(n, vendor))


def collect(n: int, seed0: int, spacing: float, progress: bool = True) -> dict:
    parts = []
    t0 = time.perf_counter()
    for i in range(n):
        view, lat, vendor = COMBOS[i % len(COMBOS)]
        parts.append(image_features(seed0 + i, view, lat, vendor, spacing))
        if progress:
            print(f"\r{i + 1}/{n} images, {time.perf_counter() - t0:.0f} s", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def evaluate(feat: dict, min_len: float, min_calc: float, measure: str = "calc") -> dict:
    removed = (feat["length"] < min_len) | (feat[measure] < min_calc)
    fp = feat["ctype"] != 1
    out = dict(min_length_mm=min_len, min_mean_calc_mm=min_calc,
               fp_removed=float(removed[fp].mean()) if fp.any() else float("nan"),
               bac_length_kept=float(feat["gt_len"][~removed].sum() / max(feat["gt_len"].sum(), 1e-9)),
               bac_components_removed=int((removed & ~fp).sum()))
    for code, name in TYPES.items():
        sel = feat["ctype"] == code
        out[f"removed_{name}"] = f"{int(removed[sel].sum())}/{int(sel.sum())}"
    return out


def calibrate(feat: dict, min_kept: float = 0.98, measure: str = "calc") -> tuple[dict, list[dict]]:
    lengths = np.round(np.arange(0.0, 15.01, 0.5), 2)
    calcs = np.round(np.arange(0.0, 0.0801, 0.0025), 4)
    table = [evaluate(feat, a, b, measure) for a in lengths for b in calcs]
    ok = [r for r in table if r["bac_length_kept"] >= min_kept]
    best = max(ok, key=lambda r: (round(r["fp_removed"], 6), -r["min_length_mm"] - 100 * r["min_mean_calc_mm"]))
    return best, table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="number of phantom images")
    ap.add_argument("--spacing", type=float, default=0.1, help="pixel spacing, mm (0.1 = full size)")
    ap.add_argument("--seed0", type=int, default=1000)
    ap.add_argument("--min-kept", type=float, default=0.98, help="true BAC length to keep (fraction)")
    ap.add_argument("--features", help="save the per-component features (.npz) / reuse them if present")
    args = ap.parse_args(argv)
    feat = None
    if args.features:
        try:
            feat = dict(np.load(args.features))
            print(f"reusing features from {args.features}")
        except OSError:
            feat = None
    if feat is None:
        feat = collect(args.n, args.seed0, args.spacing)
        if args.features:
            np.savez(args.features, **feat)
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}; python {platform.python_version()}")
    print(f"{len(feat['length'])} TPA components from {len(np.unique(feat['image']))} images at {args.spacing} mm")
    for code, name in TYPES.items():
        sel = feat["ctype"] == code
        if sel.any():
            q = lambda a: " ".join(f"{v:.3f}" for v in np.percentile(a[sel], [0, 5, 25, 50, 75, 95, 100]))
            print(f"  {name:9s} n={sel.sum():4d}  length_mm p0/5/25/50/75/95/100: {q(feat['length'])}")
            print(f"  {'':9s}         core_excess_calc_mm: {q(feat['calc'])}")
            print(f"  {'':9s}         mean_calc_mm (plain): {q(feat['mean_calc'])}")
    for kept in (0.95, args.min_kept):
        plain, _ = calibrate(feat, kept, "mean_calc")
        print(f"\nfor comparison, the plain mean (measure='mean'), >= {kept:.0%} BAC length kept:\n  " + json.dumps(plain))
    best95, _ = calibrate(feat, 0.95)
    print("core_excess (default measure), >= 95% BAC length kept:\n  " + json.dumps(best95))
    best, table = calibrate(feat, args.min_kept)
    print("\nlength-only and calc-only scans:")
    for r in table:
        if (r["min_mean_calc_mm"] == 0.0 and r["min_length_mm"] % 2 == 0) or (
                r["min_length_mm"] == 0.0 and round(r["min_mean_calc_mm"] / 0.01, 6) % 1 == 0):
            print("  " + json.dumps(r))
    print("\nbest pair (max FP removed with >= {:.0%} BAC length kept):".format(args.min_kept))
    print("  " + json.dumps(best))
    near = [r for r in table if abs(r["min_length_mm"] - best["min_length_mm"]) <= 1.0
            and abs(r["min_mean_calc_mm"] - best["min_mean_calc_mm"]) <= 0.005]
    print("neighbourhood of the best pair:")
    for r in near:
        print("  " + json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Calibrate the two thresholds of the BAC label correction on the phantom's simulated TPA.

The correction decides per *piece* (:mod:`monai_bac.ops.label_correction`), and where a
calcified vessel is cut depends on the calcium threshold, so this script runs the correction
itself (not a proxy) for every threshold pair, on two versions of each phantom's simulated
third-party annotation (TPA):

* ``tpa``: the phantom's TPA as drawn (look-alikes brushed as separate strokes);
* ``merged``: the same TPA where every brushed look-alike (micro-calcification cluster, dense
  strand, dense edge) lying within ``--max-bridge`` mm of a brushed BAC run is joined to it by a
  straight brush stroke (:func:`join_lookalikes`), i.e. brushed in the same stroke.

Each *look-alike* is one 8-connected component of the original TPA whose majority
``tpa_source`` code is not BAC; it counts as removed when at least 80 % of its pixels are
removed. The *BAC length* is the ground-truth BAC centreline (``thin_mask(bac_mask)``, mm)
lying inside the original TPA; the fraction of it inside the corrected mask is "kept".

Image measurements are those of :class:`monai_bac.transforms.CorrectBACLabel`: raw image ->
DensityMap (Eq. 4) -> CalcificationThickness (Eq. 5) with their default parameters, the true
breast map. The expensive part (skeleton, branches, what lies under them:
:func:`~monai_bac.ops.annotation_graph.decompose`) is computed once per label; for every calcium
threshold the pieces are re-cut (:func:`~monai_bac.ops.label_correction.split_pieces`) and
decided; the length threshold is then scanned on the pieces' run lengths. The chosen pair
removes the most look-alikes (pooled over both versions) while keeping ``--min-kept`` (96 %) of
the BAC length in each version (margin over the 95 % acceptance figure), smallest thresholds
among ties. Copy the triple into ``CALIBRATED_THRESHOLDS`` of ``monai_bac/transforms/label.py``
for the density model calibrated (``--physics realistic``: "polyenergetic"; ``--physics ideal``:
the eq4 defaults of ``monai_bac/ops/label_correction.py``).

Usage::

    python benchmarks/calibrate_label_correction.py --n 48 --spacing 0.1 [--seed0 1000]

Seeds start at ``--seed0`` (default 0: the realistic calibration set, seeds 0-47, disjoint from
the realistic validation seeds 5000+ of ``benchmarks/validate_realistic.py``; never calibrate on
those, nor on 1000+). The phantoms cycle HOLOGIC/GE/SIEMENS x CC/MLO x L/R.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np
from scipy import ndimage

import torch
from monai.data import MetaTensor

from monai_bac.ops.label_correction import (DEFAULT_HYSTERESIS, DEFAULT_SPLIT_MM, decide_pieces, decompose,
                                           label_components, split_pieces)
from monai_bac.ops.skeleton import length_density, thin_mask
from monai_bac.phantom import TPAConfig, make_phantom
from monai_bac.transforms import CalcificationThickness, DensityMap

COMBOS = [(v, lat, ven) for ven in ("HOLOGIC", "GE", "SIEMENS") for v in ("CC", "MLO") for lat in ("L", "R")]
TYPES = {1: "bac", 2: "microcalc", 3: "strand", 4: "edge"}
LENGTHS = np.round(np.arange(0.0, 15.01, 0.5), 2)
CALCS = np.round(np.arange(0.0, 0.0801, 0.005), 4)
HYSTERESES = (0.5, 0.75, 1.0)
SPLITS = (4.0,)
#: every (hysteresis, split_mm, calcium threshold) the pieces are cut for (set by main)
CUTS = [(h, 4.0, float(t)) for h in HYSTERESES for t in CALCS]


def join_lookalikes(tpa_mask: np.ndarray, tpa_source: np.ndarray, spacing: float, rng: np.random.Generator,
                    max_bridge_mm: float = 25.0) -> np.ndarray:
    """The TPA with every look-alike joined to its nearest brushed BAC by a straight brush stroke
    (half-width 0.6-1.2 mm) between their closest pixels; look-alikes farther than
    ``max_bridge_mm`` stay as they are."""
    from skimage.draw import line

    labels, n = label_components(tpa_mask)
    kind = ndimage.labeled_comprehension(tpa_source, labels, np.arange(1, n + 1),
                                         lambda v: np.bincount(v, minlength=5)[1:].argmax() + 1, int, 0)
    bac = np.isin(labels, np.flatnonzero(kind == 1) + 1)
    out = tpa_mask.astype(bool).copy()
    if not bac.any():
        return out.astype(np.uint8)
    dist, (ir, ic) = ndimage.distance_transform_edt(~bac, return_indices=True)
    for k in np.flatnonzero(kind != 1) + 1:
        rr, cc = np.nonzero(labels == k)
        i = np.argmin(dist[rr, cc])
        if dist[rr[i], cc[i]] * spacing > max_bridge_mm:
            continue
        lr, lc = line(rr[i], cc[i], ir[rr[i], cc[i]], ic[rr[i], cc[i]])
        stroke = np.zeros(out.shape, bool)
        stroke[lr, lc] = True
        half = rng.uniform(0.6, 1.2) / spacing
        box = (slice(max(lr.min() - int(half) - 1, 0), lr.max() + int(half) + 2),
               slice(max(lc.min() - int(half) - 1, 0), lc.max() + int(half) + 2))
        out[box] |= ndimage.distance_transform_edt(~stroke[box]) <= half
    return out.astype(np.uint8)


def lookalike_units(tpa_source: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The units the correction is judged on: 8-connected components of the TPA pixels brushed
    for one kind (``tpa_source`` code: 1 BAC, 2-4 look-alikes). A look-alike brushed in the same
    stroke as a calcified run (the phantom's ``TPAConfig.merge_rate``) is then still a unit of
    its own, although it shares one connected component of the mask with the run."""
    labels = np.zeros(tpa_source.shape, np.int32)
    kinds = [0]
    n = 0
    for code in TYPES:
        lab, k = label_components(tpa_source == code)
        labels[lab > 0] = lab[lab > 0] + n
        kinds += [code] * k
        n += k
    return labels, np.asarray(kinds[1:], int), n


def image_maps(p, model: str) -> np.ndarray:
    """h_calc of the image as the transforms measure it: DensityMap -> CalcificationThickness
    (their defaults; ``model="eq4"`` for ideal phantoms), the true breast map."""
    img = MetaTensor(torch.from_numpy(p.linear[None].copy()), meta=dict(p.meta))
    bm = p.breast_map[None]
    dens = DensityMap(model=model, compute_vbd=False)(img, bm)
    return CalcificationThickness()(dens, bm).numpy()[0]


def image_records(seed: int, view: str, lat: str, vendor: str, spacing: float, max_bridge_mm: float,
                  tpa: TPAConfig | None = None, model: str = "polyenergetic", **phantom_kw) -> list[dict]:
    """Per label version: for every calcium threshold, per piece: run length, low flag, BAC length
    inside, and the pixels of each look-alike inside (sparse)."""
    p = make_phantom(seed, view=view, laterality=lat, spacing_mm=spacing, vendor=vendor, tpa=tpa, **phantom_kw)
    sp = p.meta["spacing_mm"]
    h_calc = image_maps(p, model)
    labels, kind, n = lookalike_units(p.tpa_source * (p.tpa_mask > 0))
    gt = length_density(thin_mask(p.bac_mask), sp) * (p.tpa_mask > 0)
    merged = join_lookalikes(p.tpa_mask, p.tpa_source, sp[0], np.random.default_rng(seed), max_bridge_mm)
    out = []
    for version, lab in (("tpa", p.tpa_mask), ("merged", merged)):
        dec = decompose(lab, h_calc, sp, p.breast_map > 0)
        obj = labels[dec.px_rows, dec.px_cols]  # original TPA component of every pixel (0: a bridge)
        per_calc = []
        for hyst, split, t in CUTS:
            piece, stretch = split_pieces(dec, t, split_mm=split, hysteresis=hyst)
            f = decide_pieces(dec, piece, stretch, 0.0, t, hysteresis=hyst)
            npc = f["remove"].size
            px = f["px_piece"]
            per_calc.append(dict(  # "weak": removed by a rule of OWN_CALCIUM_RULES, for its own calcium
                run=f["run_length_mm"], low=f["low"], weak=f["own_calcium"],
                gt=np.bincount(px, weights=gt[dec.px_rows, dec.px_cols], minlength=npc),
                pairs=np.unique(np.column_stack([px, obj]), axis=0, return_counts=True)))
        out.append(dict(version=version, per_calc=per_calc, kind=kind,
                        size=np.bincount(labels.ravel(), minlength=n + 1),
                        gt_total=float(gt.sum()), seed=seed))
    return out


def evaluate(records: list[dict], version: str, ci: int, min_len: float) -> dict:
    fp = fp_removed = 0
    by_kind = {k: [0, 0] for k in TYPES}
    gt_total = gt_kept = 0.0
    for rec in records:
        if rec["version"] != version:
            continue
        r = rec["per_calc"][ci]
        remove = r["low"] | (r["run"] < min_len) | r["weak"]  # "weak_calc" does not depend on the length
        (pairs, counts) = r["pairs"]
        removed_px = np.bincount(pairs[:, 1], weights=counts * remove[pairs[:, 0]], minlength=rec["size"].size)
        frac = removed_px / np.maximum(rec["size"], 1)
        for k, kd in enumerate(rec["kind"], start=1):
            by_kind[kd][0] += 1
            by_kind[kd][1] += int(frac[k] >= 0.8)
            if kd != 1:
                fp += 1
                fp_removed += int(frac[k] >= 0.8)
        gt_total += rec["gt_total"]
        gt_kept += float(r["gt"][~remove].sum())
    return dict(fp=fp, fp_removed=fp_removed / max(fp, 1), bac_length_kept=gt_kept / max(gt_total, 1e-9),
                **{f"removed_{TYPES[k]}": f"{v[1]}/{v[0]}" for k, v in by_kind.items()})


def calibrate(records: list[dict], min_kept: float = 0.98) -> tuple[dict, list[dict]]:
    table = []
    for ci, (hyst, split, t) in enumerate(CUTS):
        for length in LENGTHS:
            a, b = evaluate(records, "tpa", ci, length), evaluate(records, "merged", ci, length)
            table.append(dict(min_length_mm=float(length), min_mean_calc_mm=float(t), hysteresis=hyst, split_mm=split,
                              fp_removed=(a["fp_removed"] * a["fp"] + b["fp_removed"] * b["fp"])
                              / max(a["fp"] + b["fp"], 1),
                              bac_kept_tpa=a["bac_length_kept"], bac_kept_merged=b["bac_length_kept"],
                              fp_removed_tpa=a["fp_removed"], fp_removed_merged=b["fp_removed"],
                              **{f"{k}_merged": v for k, v in b.items() if k.startswith("removed_")}))
    ok = [r for r in table if min(r["bac_kept_tpa"], r["bac_kept_merged"]) >= min_kept] or table
    best = max(ok, key=lambda r: (round(r["fp_removed"], 6), -r["min_length_mm"] - 100 * r["min_mean_calc_mm"],
                                  -r["hysteresis"]))
    return best, table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=48, help="number of phantom images")
    ap.add_argument("--spacing", type=float, default=0.1, help="pixel spacing, mm (0.1 = full size)")
    ap.add_argument("--seed0", type=int, default=0)
    ap.add_argument("--max-bridge", type=float, default=25.0, help="longest stroke joining a look-alike to BAC, mm")
    ap.add_argument("--min-kept", type=float, default=0.96,
                    help="true BAC length to keep (fraction; 0.96: a margin over the 95 %% target)")
    ap.add_argument("--physics", default="realistic", choices=("realistic", "ideal"), help="the phantom's image model")
    ap.add_argument("--lookalikes-near-bac", type=float, default=0.5,
                    help="fraction of clusters/strands placed beside or across calcified runs")
    ap.add_argument("--merge-rate", type=float, default=0.5,
                    help="TPAConfig.merge_rate: look-alike strokes carried on to a nearby calcified run")
    ap.add_argument("--show", default=None, metavar="LENGTH,CALC,HYSTERESIS",
                    help="also print the figures of this setting, e.g. 5,0.03,1.0")
    ap.add_argument("--hystereses", default="0.5,0.75,1.0", help="hysteresis values to cut the pieces with")
    ap.add_argument("--splits", default="4", help="split_mm values to cut the pieces with")
    ap.add_argument("--calc-range", default="0,0.08", help="calcium thresholds scanned (mm, step 0.005)")
    args = ap.parse_args(argv)
    global CUTS, HYSTERESES
    HYSTERESES = tuple(float(v) for v in args.hystereses.split(","))
    lo, hi = (float(v) for v in args.calc_range.split(","))
    CUTS = [(h, float(sp), float(t)) for h in HYSTERESES for sp in args.splits.split(",")
            for t in CALCS if lo - 1e-9 <= t <= hi + 1e-9]
    records = []
    t0 = time.perf_counter()
    tpa = TPAConfig(merge_rate=args.merge_rate)
    model = "eq4" if args.physics == "ideal" else "polyenergetic"
    for i in range(args.n):
        view, lat, vendor = COMBOS[i % len(COMBOS)]
        records += image_records(args.seed0 + i, view, lat, vendor, args.spacing, args.max_bridge, tpa=tpa,
                                 model=model, physics=args.physics, lookalikes_near_bac=args.lookalikes_near_bac)
        print(f"\r{i + 1}/{args.n} images, {time.perf_counter() - t0:.0f} s", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}; "
          f"python {platform.python_version()}")
    print(f"{args.n} images at {args.spacing} mm, seeds {args.seed0}-{args.seed0 + args.n - 1}, physics={args.physics}, "
          f"lookalikes_near_bac={args.lookalikes_near_bac}, merge_rate={args.merge_rate}")
    best, table = calibrate(records, args.min_kept)
    print("\nlength-only and calc-only scans:")
    for r in table:
        if r["hysteresis"] == DEFAULT_HYSTERESIS and r["split_mm"] == DEFAULT_SPLIT_MM and ((r["min_mean_calc_mm"] == 0.0 and r["min_length_mm"] % 2 == 0) or (
                r["min_length_mm"] == 0.0 and round(r["min_mean_calc_mm"] / 0.01, 6) % 1 == 0)):
            print("  " + json.dumps(r))
    print(f"\nbest pair (max look-alikes removed with >= {args.min_kept:.0%} BAC length kept in both versions):")
    print("  " + json.dumps(best))
    print("neighbourhood of the best pair:")
    for r in table:
        if (abs(r["min_length_mm"] - best["min_length_mm"]) <= 1.0 and r["hysteresis"] == best["hysteresis"]
                and r["split_mm"] == best["split_mm"]
                and abs(r["min_mean_calc_mm"] - best["min_mean_calc_mm"]) <= 0.0051):
            print("  " + json.dumps(r))
    for length, calc, hyst in ((8.0, 0.04, 0.5), (6.5, 0.04, 0.75)):
        current = [r for r in table if r["min_length_mm"] == length and abs(r["min_mean_calc_mm"] - calc) < 1e-9
                   and r["hysteresis"] == hyst and r["split_mm"] == DEFAULT_SPLIT_MM]
        if current:
            print(f"the earlier setting {length} mm / {calc} mm / hysteresis {hyst}:\n  " + json.dumps(current[0]))
    if args.show:
        length, calc, hyst = (float(v) for v in args.show.split(","))
        shown = [r for r in table if r["min_length_mm"] == length and abs(r["min_mean_calc_mm"] - calc) < 1e-9
                 and r["hysteresis"] == hyst and r["split_mm"] == DEFAULT_SPLIT_MM]
        print(f"the setting {args.show}:\n  " + (json.dumps(shown[0]) if shown else "not on the grid"))
    for h in HYSTERESES:
        for split in sorted({c[1] for c in CUTS}):
            rows = [r for r in table if r["hysteresis"] == h and r["split_mm"] == split
                    and min(r["bac_kept_tpa"], r["bac_kept_merged"]) >= args.min_kept]
            if rows:
                top = max(rows, key=lambda r: (round(r["fp_removed"], 6), -r["min_length_mm"] - 100 * r["min_mean_calc_mm"]))
                print(f"best with hysteresis {h}, split {split} mm:\n  " + json.dumps(top))
    return 0


if __name__ == "__main__":
    sys.exit(main())

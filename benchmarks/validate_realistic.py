"""Validate the transforms on realistic full-size phantoms, and an ablation of the realistic effects (issue 13).

Three steps, so that two source trees (before / after a change to the transforms) are measured
on the very same files:

``generate``: write realistic full-size phantoms (this tree's ``monai_bac.phantom``) as DICOM MG
  (the phantom's writer) + truth (``<case>.npz``: breast map, thickness, h_dt, h_calc, BAC mask,
  simulated annotation and what each annotated pixel was brushed for; ``<case>.json``: the record)
  into ``--data``. ``--set main``: 24 cases, every view x laterality x vendor (CC/MLO, L/R,
  HOLOGIC/GE/SIEMENS at their own pixel pitch) twice, compressed thickness spread evenly over
  30-80 mm, seeds 5000+ (disjoint from every calibration set: label correction 1000-1047, tests
  < 100, transforms validation 0-31). ``--set ablation``: 8 cases (seeds 6000+, 30-80 mm) for each
  configuration of :class:`monai_bac.phantom.Effects`: none (the ideal phantom), each effect alone
  (spectrum, scatter, heel, vendor, merged, edge) and all; the same seeds and thicknesses in every
  configuration, so rows differ by the effect only. Pixel pitch: the vendor's where the ``vendor``
  effect is on, 0.1 mm otherwise. ``--set calibration``: 48 cases made like the main set on seeds
  7000-7047, for choosing a setting (the label correction's issue-13 rules); never tune on main.
  ``--set confirm``: 48 more held-out cases made like the main set on seeds 9000-9047, made after
  the main set's last result, to tell a sampling miss of a pooled figure (the main set holds about
  100 look-alike pieces) from a real one; never used for tuning either (after its one
  evaluation it served for diagnosis, so it is no longer held out for later changes).
  ``--set verdict``: 48 more cases made like the main set on seeds 11000-11047, generated before
  any setting that is to be judged on them was chosen (on the calibration set only), and
  evaluated once per judged tree (for 55ab0e4 and 55cd2c0; it served for diagnosis after).
  ``--set final``: 48 more cases made like the main set on seeds 13000-13047, generated before
  the next setting was chosen; evaluated once per judged tree (5d07c8e and 5d13115, then
  diagnosed). ``--set holdout``: 48 more on seeds 13000-13047's successors, 15000-15047, generated
  before the label correction's median rule was fixed; evaluated once per judged tree.
  ``--set fresh``: 48 more on seeds 17000-17047, generated after DensityMap's periphery bound
  (the envelope never below the compressed region's fat level) was written and before it was
  evaluated on them; evaluated once per judged tree (313a5c0 and the bound). ``--set novel``: 48
  more on seeds 19000-19047, generated after DensityMap's homogeneous SPR reference was written
  and before it was evaluated on them; evaluated once per judged tree. ``--set sealed``: 48 more
  on seeds 23000-23047, generated after the look-alike recount (4a7f650) with no change to the
  transforms pending: a fresh sample of the issue-13 chain against the one before it (44d85b9).
  ``--set blind``: 48 more on seeds 25000-25047, generated after BreastRegion's overlapping sector
  windows were chosen (on the calibration, confirm and verdict sets) and before they were
  evaluated on them; evaluated once per judged tree. ``--set sentinel``: 48 more on seeds
  27000-27047, generated (eleventh session) before any change of that session: the verdict on
  BreastRegion's dense-centre guard (chosen on blind_26) and on whatever that session changes.
  ``--set witness``: 48 more on seeds 29000-29047, generated (thirteenth session) before a label
  correction rule was tried; the rule was not adopted (docs/design-log/label_correction.md,
  "patchy" cross-sections);
  evaluated once (fourteenth session), the verdict on the ``no_ridge`` rule. ``--set assay``: 48 more
  on seeds 31000-31047, generated (fifteenth session) after the label correction's ``own_calc``
  rule was chosen on the ten pooled sets and before it was evaluated on them. ``--set census``: 192
  (four times 48) on seeds 33000-33191, generated (sixteenth session) to measure the current tree with
  intervals half as wide as one set's (a look-alike rate on ~250 pieces has a binomial standard
  error of ~2 points, on ~1000 of ~1 point); read once, with nothing pending
  (docs/validation/realistic_census.md). ``--set tally`` (seeds 34000-34191) and ``--set ledger``
  (35000-35191): 192 each, generated (seventeenth session) before the label-correction setting
  each judges was fixed on development images; read once each (realistic_tally.md,
  realistic_ledger.md). ``--set roster`` (36000-36191): 192, generated (eighteenth session) before
  BreastRegion's narrowed dense-centre guard was judged on it (realistic_roster.md). ``--set docket``
  (37000-37191) and ``--set slate`` (38000-38191): 192 each, generated (nineteenth session) before
  BreastRegion's windows on one width, then a tangent-shape trial, were judged on them
  (realistic_docket.md, realistic_slate.md). ``--set quorum`` (39000-39191): 192, generated
  (twentieth session) before any setting of that session was fixed; read once, with no change
  adopted: the tree of the nineteenth session against the one before it (realistic_quorum.md).
  ``--set tenure`` (40000-40191): 192, generated (twenty-first session) before anything of that
  session was tried, read once as a reading of the tree. ``--set charter`` (41000-41191): 192,
  generated (twenty-first session) after the tenure set showed an abdominal fold kept in the
  breast and before any change for it was tried, read once as the verdict on the thin-fold cut.
  ``--set covenant`` (42000-42191): 192, generated (twenty-first session) after that verdict, as a
  second reading of the same tree, with nothing changed in between. ``--set accord`` (43000-43191):
  192, generated (twenty-second session) before anything of that session was tried: the verdict
  on whatever that session changes, read once. ``--set pledge`` (44000-44191): 192, generated
  (twenty-second session) right after the accord verdict, before anything further was tried.
  ``--set treaty`` (46000-46191): 192, generated (twenty-third session) with the phantom whose
  scatter amplitude is set on a homogeneous breast, before any transform change was tried: the
  first reading of the chain on that phantom, and the verdict on whatever that session changes.
  Every set above it was generated with the phantom before that change (its pages say so).
  ``--set mandate`` (47000-47191): 192, generated (twenty-fourth session) with nothing pending
  that changes a map (that session's changes are bit-identical): a second independent reading of
  the tree the treaty set read, on the same phantom.
  ``--set brief`` (50000-50191): 192, generated (twenty-fifth session) as development data for
  BreastRegion's windows keeping the global fit's kind of edge (tangent or kinked), which passed
  it. ``--set decree`` (51000-51191): 192, generated (twenty-fifth session) right after, before
  either was read: the verdict on that change (not adopted: 1 -> 3 images under compressed Dice
  0.90) and a third fresh reading of the tree on the corrected phantom (realistic_decree.md).
  ``--set writ`` (52000-52191): 192, generated (twenty-sixth session) after the pectoral search's
  capped Hough votes were written and tried on brief_147 alone: the verdict on that change
  (realistic_writ.md). ``--set edict`` (53000-53191): 192, generated (twenty-sixth session) after
  the pectoral search's second, either-polarity line search was written and tried on writ_27 and
  brief_147 alone: the verdict on that change (realistic_edict.md). ``--set canon`` (54000-54191):
  192, generated (twenty-sixth session) after the thin-fold cut's disc following the breast's own
  thin band was written and measured on the stress images: the verdict on it (realistic_canon.md).

``evaluate``: run the transforms of WHICHEVER ``monai_bac`` is importable (``PYTHONPATH=<tree>``) on
  every case, as a user would: ``load_mammogram`` -> ``BreastRegion`` -> ``DensityMap`` ->
  ``CalcificationThickness`` -> ``CorrectBACLabel`` (on the simulated annotation), default
  parameters; writes a per-case CSV (``--out``). The measures use numpy/scipy/scikit-image only,
  never the tree under test:

  * breast Dice (map > 0), compressed Dice (code 2), pectoral Dice (code 3, MLO) against the truth;
  * compressed Dice with the periphery's near-flat rim ignored (information, no target): the true
    periphery pixels whose thickness is within ``FLAT_RIM`` (1 %) of H0 count neither way. The
    truth's compressed region is where the thickness *is* H0; over the last millimetres of a
    periphery that flattens towards it (< 0.8 mm less tissue at 80 mm) the fat level of ln P
    falls by a few hundredths, spread over 10 mm or more, the size of a scatter estimate's error,
    and a map that calls those pixels compressed makes h_dt wrong by < 1 % of H0 there;
  * VBD error (percentage points) against the phantom's VBD;
  * h_dt bounds: share of the true breast pixels (periphery + compressed) where the estimated h_dt
    lies inside [-1 mm, local thickness];
  * h_dt ratio: sum of estimated / sum of true h_dt over the true compressed region;
  * h_calc ratio: estimated / true calcium (sum of h_calc) on the ground-truth BAC pixels;
  * look-alike pieces: every 8-connected piece (>= 1 mm^2) of the annotation brushed for one kind of
    look-alike (``tpa_source`` 2 micro-calcification, 3 strand, 4 dense edge); *merged* when its
    annotated component also holds strokes brushed for BAC (one stroke over both); removed when
    >= 80 % of its pixels are removed (the rule of calibrate_label_correction.py). A piece of
    which at least half the pixels lie on the true BAC (``bac_mask``) is not counted as a
    look-alike (``on_bac_pieces``): a strand stroke laid along a calcified run the annotator did
    not brush as BAC annotates that run, and its centreline already counts in the BAC length
    kept, so the same pixels cannot also be a look-alike that must go;
  * BAC length kept: skeleton pixels of the ground-truth BAC inside the corrected annotation /
    inside the annotation.

``report``: the summary tables (main set: before and after against the targets; ablation: each
  configuration before and after) into ``--md`` (docs/validation/realistic.md);
  ``--pooled-before`` / ``--pooled-after``: several sets' CSVs summarised as one set (pooled
  figures, worst image over all). The two pooled ratios (look-alike pieces removed, BAC length
  kept) come with a 95 % percentile-bootstrap interval that resamples whole images (the pieces of
  one image are not independent): how far the set's figure may sit from the method's.

Targets (issue 13): breast Dice >= 0.98, compressed >= 0.90, pectoral >= 0.85 (every image); VBD
error <= 3 pp mean, <= 5 pp worst; h_dt inside its bounds for >= 99 % of the breast pixels (every
image); look-alike pieces removed >= 90 % (pooled, merged ones included); BAC length kept >= 95 %
(pooled).

Usage (see docs/validation/realistic.md for the run)::

    python benchmarks/validate_realistic.py generate --set main --data /tmp/bac-val/main --workers 2
    python benchmarks/validate_realistic.py generate --set ablation --data /tmp/bac-val/ablation --workers 2
    git worktree add /tmp/bac-before 44d85b9
    PYTHONPATH=/tmp/bac-before python benchmarks/validate_realistic.py evaluate --data /tmp/bac-val/main \\
        --out /tmp/bac-val/main_before.csv --workers 2
    python benchmarks/validate_realistic.py evaluate --data /tmp/bac-val/main --out /tmp/bac-val/main_after.csv
    python benchmarks/validate_realistic.py report --main /tmp/bac-val/main_before.csv /tmp/bac-val/main_after.csv \\
        --ablation /tmp/bac-val/ablation_before.csv /tmp/bac-val/ablation_after.csv --md docs/validation/realistic.md
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import source_tree  # noqa: E402

VIEWS = [(view, lat) for view in ("CC", "MLO") for lat in ("L", "R")]
VENDORS = ("HOLOGIC", "GE", "SIEMENS")
ABLATION = ("none", "spectrum", "scatter", "heel", "vendor", "merged", "edge", "all")
KINDS = {2: "microcalc", 3: "strand", 4: "edge"}  # tpa_source codes of the look-alikes
MIN_PIECE_MM2 = 1.0  # smaller look-alike pieces are slivers where two strokes touch
REMOVED_SHARE = 0.8  # a piece counts as removed when this share of its pixels is gone
ON_BAC_SHARE = 0.5  # a piece this much on the true BAC annotates BAC: not counted as a look-alike
#: the periphery's near-flat rim (thickness within this fraction of H0), ignored by dice_compressed_rim
FLAT_RIM = 0.01
BOOTSTRAP = 2000  # resamples of the images for the pooled ratios' interval
TARGETS = dict(dice_breast=0.98, dice_compressed=0.90, dice_pectoral=0.85, vbd_mean=3.0, vbd_worst=5.0,
               hdt_bounds=0.99, lookalikes_removed=0.90, bac_length_kept=0.95)


# ---------------------------------------------------------------------------------------- generate
#: The sets made like the main one: (repeats of the 12 view x laterality x vendor combinations,
#: first seed, seed of the thickness order, case-name prefix). A new held-out set gets new seeds here.
SETS_LIKE_MAIN = {"main": (2, 5000, 13, "main"), "calibration": (4, 7000, 15, "calib"),
                  "confirm": (4, 9000, 17, "confirm"), "verdict": (4, 11000, 19, "verdict"),
                  "final": (4, 13000, 21, "final"), "holdout": (4, 15000, 23, "holdout"),
                  "fresh": (4, 17000, 25, "fresh"), "novel": (4, 19000, 27, "novel"),
                  "sealed": (4, 23000, 29, "sealed"), "blind": (4, 25000, 31, "blind"),
                  "sentinel": (4, 27000, 33, "sentinel"), "witness": (4, 29000, 35, "witness"),
                  "assay": (4, 31000, 37, "assay"), "census": (16, 33000, 39, "census"),
                  "tally": (16, 34000, 41, "tally"),
                  "ledger": (16, 35000, 43, "ledger"), "roster": (16, 36000, 45, "roster"),
                  "docket": (16, 37000, 47, "docket"), "slate": (16, 38000, 49, "slate"),
                  "quorum": (16, 39000, 51, "quorum"),
                  "tenure": (16, 40000, 53, "tenure"), "charter": (16, 41000, 55, "charter"),
                  "covenant": (16, 42000, 57, "covenant"), "accord": (16, 43000, 59, "accord"),
                  "pledge": (16, 44000, 61, "pledge"), "treaty": (16, 46000, 63, "treaty"),
                  "mandate": (16, 47000, 65, "mandate"), "brief": (16, 50000, 67, "brief"),
                  "decree": (16, 51000, 69, "decree"), "writ": (16, 52000, 71, "writ"),
                  "edict": (16, 53000, 73, "edict"), "canon": (16, 54000, 75, "canon"),
                  "gauge": (16, 55000, 77, "gauge"), "ballot": (16, 56000, 79, "ballot"),
                  "tribune": (16, 57000, 81, "tribune")}
#: Sets made like main but taken WITHOUT an anti-scatter grid (``make_phantom(anti_scatter_grid=False)``,
#: Grid (0018,1166) NONE in the header), as most tomosynthesis units take their projections: the
#: development set, and the verdict set on the grid-aware scatter step (forty-fourth session).
GRIDLESS_SETS = {"gridless_dev": (1, 59100, 83, "gldev"), "gridless": (2, 59200, 85, "gridless")}


def plan(which: str) -> list[dict]:
    """The cases of a set: name, seed, view, laterality, vendor, thickness, effects, spacing."""
    if which in SETS_LIKE_MAIN or which in GRIDLESS_SETS:  # made like main, on own seeds
        repeat, seed0, rng, name = SETS_LIKE_MAIN.get(which) or GRIDLESS_SETS[which]
        combos = [(v, lat, ven) for ven in VENDORS for v, lat in VIEWS] * repeat  # 24 (48)
        thick = np.linspace(30.0, 80.0, len(combos))
        order = np.random.default_rng(rng).permutation(len(combos))  # thickness not tied to the combo
        return [dict(case=f"{name}_{i:02d}_{ven}_{lat}{v}", seed=seed0 + i, view=v, laterality=lat, vendor=ven,
                     thickness_mm=round(float(thick[order[i]]), 1), effects="all", native_pitch=True,
                     grid=which not in GRIDLESS_SETS)
                for i, (v, lat, ven) in enumerate(combos)]
    if which == "ablation":
        combos = [("CC", "L", "HOLOGIC"), ("MLO", "R", "GE"), ("CC", "R", "SIEMENS"), ("MLO", "L", "HOLOGIC"),
                  ("CC", "L", "GE"), ("MLO", "R", "SIEMENS"), ("CC", "R", "HOLOGIC"), ("MLO", "L", "GE")]
        thick = np.linspace(30.0, 80.0, len(combos))
        order = np.random.default_rng(14).permutation(len(combos))
        return [dict(case=f"{fx}_{i}_{ven}_{lat}{v}", seed=6000 + i, view=v, laterality=lat, vendor=ven,
                     thickness_mm=round(float(thick[order[i]]), 1), effects=fx, native_pitch=fx in ("vendor", "all"))
                for fx in ABLATION for i, (v, lat, ven) in enumerate(combos)]
    raise ValueError(f"unknown set {which!r}: one of {', '.join([*SETS_LIKE_MAIN, *GRIDLESS_SETS, 'ablation'])}")


def write_case(args: tuple[dict, str]) -> dict:
    from monai_bac.phantom import make_phantom

    case, out = args
    out = Path(out)
    t0 = time.perf_counter()
    fx = case["effects"]
    ph = make_phantom(case["seed"], view=case["view"], laterality=case["laterality"], vendor=case["vendor"],
                      thickness_mm=case["thickness_mm"], spacing_mm=None if case["native_pitch"] else 0.1,
                      physics="ideal" if fx == "none" else "realistic", effects=None if fx == "none" else fx,
                      anti_scatter_grid=case.get("grid", True))
    seconds = time.perf_counter() - t0
    m = ph.meta
    ph.write_dicom(out / f"{case['case']}.dcm", patient_id=case["case"])
    np.savez_compressed(out / f"{case['case']}.npz", breast_map=ph.breast_map, thickness=ph.thickness,
                        h_dt=ph.h_dt, h_calc=ph.h_calc, bac_mask=ph.bac_mask, tpa_mask=ph.tpa_mask,
                        tpa_source=ph.tpa_source)
    rec = {k: v for k, v in ph.record.items() if k not in ("geometry", "dense")}
    info = dict(case, spacing_mm=m["spacing_mm"][0], shape=list(ph.raw.shape), seconds_phantom=seconds,
                vbd_percent=ph.record["vbd_percent"], record=rec)
    (out / f"{case['case']}.json").write_text(json.dumps(info, indent=1, default=str))
    return info


def generate(args) -> int:
    out = Path(args.data)
    out.mkdir(parents=True, exist_ok=True)
    cases = plan(args.set)
    if args.only:
        cases = [c for c in cases if c["effects"] in args.only]
    t0 = time.perf_counter()
    for k, info in enumerate(_map(write_case, [(c, str(out)) for c in cases], args.workers)):
        print(f"{k + 1}/{len(cases)} {info['case']}: {info['shape'][0]} x {info['shape'][1]} at "
              f"{info['spacing_mm']} mm, phantom {info['seconds_phantom']:.2f} s", flush=True)
    print(f"{len(cases)} cases in {time.perf_counter() - t0:.0f} s -> {out}")
    return 0


def _map(fn, jobs: list, workers: int):
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            yield from pool.map(fn, jobs)
    else:
        yield from map(fn, jobs)


# ---------------------------------------------------------------------------------------- evaluate
def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int((a & b).sum()) / total if total else 1.0


def lookalike_pieces(tpa_mask: np.ndarray, tpa_source: np.ndarray, corrected: np.ndarray, spacing: float,
                     bac_mask: np.ndarray | None = None) -> dict:
    """Counts of the annotation's look-alike pieces (apart / merged with BAC) and of those removed;
    ``on_bac_pieces``: pieces at least ``ON_BAC_SHARE`` on the true BAC (``bac_mask``), not counted."""
    eight = np.ones((3, 3), bool)
    components, _ = ndimage.label(tpa_mask > 0, structure=eight)
    with_bac = np.unique(components[tpa_source == 1])
    min_px = MIN_PIECE_MM2 / spacing**2
    out = {f"{k}_{w}": 0 for k in ("apart", "merged", *KINDS.values()) for w in ("pieces", "removed")}
    out["on_bac_pieces"] = 0
    on_truth = np.zeros(tpa_mask.shape, bool) if bac_mask is None else np.asarray(bac_mask) > 0
    for code, name in KINDS.items():
        pieces, n = ndimage.label(tpa_source == code, structure=eight)
        if not n:
            continue
        idx = np.arange(1, n + 1)
        area = ndimage.sum_labels(np.ones_like(pieces), pieces, idx)
        kept = ndimage.sum_labels(corrected > 0, pieces, idx)
        on_bac = ndimage.sum_labels(on_truth, pieces, idx)
        comp = ndimage.maximum(components, pieces, idx)  # a piece lies inside one component
        for a, k, b, c in zip(area, kept, on_bac, comp):
            if a < min_px:
                continue
            if b >= ON_BAC_SHARE * a:
                out["on_bac_pieces"] += 1
                continue
            removed = int(k <= (1.0 - REMOVED_SHARE) * a)
            for group in ("merged" if c in with_bac else "apart", name):
                out[f"{group}_pieces"] += 1
                out[f"{group}_removed"] += removed
    return out


def chain_maps(data: str | Path, case: str):
    """The chain a user runs, default parameters, up to the calcification map: ``load_mammogram``
    -> ``BreastRegion`` -> ``DensityMap`` -> ``CalcificationThickness``; (image, breast map,
    density, calcification)."""
    from monai_bac.data import load_mammogram
    from monai_bac.transforms import BreastRegion, CalcificationThickness, DensityMap

    img = load_mammogram(Path(data) / f"{case}.dcm")
    bmap = BreastRegion()(img)
    dens = DensityMap()(img, bmap)
    return img, bmap, dens, CalcificationThickness()(dens, bmap)


def dice_flat_rim(est_compressed: np.ndarray, truth_map: np.ndarray, thickness: np.ndarray, h0_mm: float,
                  rim: float = FLAT_RIM) -> float:
    """Compressed-region Dice with the true periphery pixels whose thickness is within ``rim`` x H0
    of H0 counted neither way (see the module docstring)."""
    flat = (truth_map == 1) & (thickness >= (1.0 - rim) * float(h0_mm))
    return dice(est_compressed & ~flat, truth_map == 2)


def bac_centreline(truth: dict) -> tuple[tuple[slice, slice], np.ndarray]:
    """The box around the true BAC and the annotation, and the true BAC centreline in it that the
    annotation covers (what "BAC length kept" is counted on)."""
    from skimage.morphology import skeletonize

    bac, tpa = truth["bac_mask"] > 0, truth["tpa_mask"] > 0
    box = _bbox(bac | tpa)
    return box, skeletonize(bac[box]) & tpa[box]


def correction_counts(truth: dict, corrected: np.ndarray, spacing_mm: float, box, centreline: np.ndarray) -> dict:
    """How a corrected annotation is counted: the BAC centreline pixels in the annotation and kept,
    and the look-alike pieces (:func:`lookalike_pieces`)."""
    out = dict(bac_skeleton_px_tpa=int(centreline.sum()),
               bac_skeleton_px_kept=int((centreline & (corrected[box] > 0)).sum()))
    out.update(lookalike_pieces(truth["tpa_mask"][box], truth["tpa_source"][box], corrected[box], spacing_mm,
                                truth["bac_mask"][box]))
    return out


def evaluate_case(args: tuple[str, str]) -> dict:
    import torch
    from monai.data import MetaTensor

    from monai_bac.transforms import CorrectBACLabel

    torch.set_num_threads(1)
    data, case = args
    info = json.loads((Path(data) / f"{case}.json").read_text())
    truth = dict(np.load(Path(data) / f"{case}.npz"))
    t0 = time.perf_counter()
    img, bmap, dens, calc = chain_maps(data, case)
    sp = tuple(float(s) for s in img.meta["spacing_mm"])
    label = MetaTensor(torch.from_numpy(truth["tpa_mask"][None].copy()), meta={"spacing_mm": sp})
    corrected = CorrectBACLabel()(label, calc, bmap)
    seconds = time.perf_counter() - t0

    est_map = np.asarray(bmap)[0]
    h = np.asarray(dens)[0]
    hc = np.asarray(calc)[0]
    tm, thick = truth["breast_map"], truth["thickness"]
    tissue = (tm == 1) | (tm == 2)
    comp = tm == 2
    inside = (h >= -1.0) & (h <= thick + 1e-3)
    bac = truth["bac_mask"] > 0
    vbd = float(dens.meta["density"]["vbd_percent"])
    counts = correction_counts(truth, np.asarray(corrected)[0], sp[0], *bac_centreline(truth))
    row = dict(
        case=case, effects=info["effects"], view=info["view"], laterality=info["laterality"], vendor=info["vendor"],
        thickness_mm=info["thickness_mm"], spacing_mm=sp[0], seed=info["seed"],
        dice_breast=dice(est_map > 0, tm > 0), dice_compressed=dice(est_map == 2, comp),
        dice_compressed_rim=dice_flat_rim(est_map == 2, tm, thick, info["thickness_mm"]),
        dice_pectoral=dice(est_map == 3, tm == 3) if info["view"] == "MLO" else math.nan,
        vbd_true=info["vbd_percent"], vbd_est=vbd, vbd_error_pp=vbd - info["vbd_percent"],
        hdt_inside_share=float(inside[tissue].mean()), hdt_min_mm=float(h[tissue].min()),
        hdt_ratio_compressed=float(h[comp].sum() / max(truth["h_dt"][comp].sum(), 1e-9)),
        calc_ratio_bac=float(hc[bac].sum() / truth["h_calc"][bac].sum()) if bac.any() else math.nan,
        bac_length_tpa_mm=counts["bac_skeleton_px_tpa"] * sp[0],
        seconds_transforms=round(seconds, 2),
        **counts,
    )
    return row


def _bbox(mask: np.ndarray) -> tuple[slice, slice]:
    """The bounding box of a mask, one pixel wider (the whole image when it is empty)."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return slice(None), slice(None)
    return slice(max(rows[0] - 1, 0), rows[-1] + 2), slice(max(cols[0] - 1, 0), cols[-1] + 2)


def evaluate(args) -> int:
    data = Path(args.data)
    cases = sorted(p.stem for p in data.glob("*.dcm"))
    if args.only:
        cases = [c for c in cases if json.loads((data / f"{c}.json").read_text())["effects"] in args.only]
    if not cases:
        print(f"no cases (*.dcm) in {data}", file=sys.stderr)
        return 2
    tree = source_tree()
    print(f"transforms from {tree}; {len(cases)} cases", flush=True)
    t0 = time.perf_counter()
    rows = []
    for k, row in enumerate(_map(evaluate_case, [(str(data), c) for c in cases], args.workers)):
        rows.append(row)
        print(f"{k + 1}/{len(cases)} {row['case']}: breast {row['dice_breast']:.3f} compressed "
              f"{row['dice_compressed']:.3f} VBD {row['vbd_est']:.1f}/{row['vbd_true']:.1f} h_dt in bounds "
              f"{100 * row['hdt_inside_share']:.1f} % ({row['seconds_transforms']:.1f} s)", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        f.write(f"# transforms: {tree}; {platform.node()} {os.cpu_count()} CPUs, workers {args.workers}; "
                f"{time.perf_counter() - t0:.0f} s\n")
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} cases in {time.perf_counter() - t0:.0f} s -> {out}")
    return 0


# ------------------------------------------------------------------------------------------ report
def read_rows(path: str) -> tuple[str, list[dict]]:
    with open(path) as f:
        header = f.readline().lstrip("# ").strip()
        rows = list(csv.DictReader(f))
    for r in rows:
        for k, v in r.items():
            try:
                r[k] = float(v)
            except (TypeError, ValueError):
                pass
    return header, rows


def ratio_interval(num: np.ndarray, den: np.ndarray, level: float = 0.95, n_boot: int = BOOTSTRAP,
                   seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``sum(num) / sum(den)``, resampling the images (rows) with
    ``scipy.stats.bootstrap`` (paired: an image's two counts go together)."""
    from scipy import stats

    if not len(num):
        return math.nan, math.nan

    def ratio(n, d, axis=-1):
        return n.sum(axis=axis) / np.maximum(d.sum(axis=axis), 1)

    ci = stats.bootstrap((num, den), ratio, paired=True, vectorized=True, method="percentile",
                         confidence_level=level, n_resamples=n_boot, random_state=seed).confidence_interval
    return float(ci.low), float(ci.high)


def summarise(rows: list[dict]) -> dict:
    col = lambda k: np.array([r[k] for r in rows], float)  # noqa: E731
    mlo = col("dice_pectoral")
    mlo = mlo[np.isfinite(mlo)]
    vbd = np.abs(col("vbd_error_pp"))
    pieces = {k: int(col(k).sum()) for k in ("apart_pieces", "apart_removed", "merged_pieces", "merged_removed")}
    all_pieces = pieces["apart_pieces"] + pieces["merged_pieces"]
    calc = col("calc_ratio_bac")
    calc = calc[np.isfinite(calc)]
    return dict(
        n=len(rows),
        dice_breast=(col("dice_breast").mean(), col("dice_breast").min()),
        dice_compressed=(col("dice_compressed").mean(), col("dice_compressed").min()),
        dice_compressed_rim=((col("dice_compressed_rim").mean(), col("dice_compressed_rim").min())
                             if "dice_compressed_rim" in rows[0] else None),
        dice_pectoral=(mlo.mean(), mlo.min()) if mlo.size else (math.nan, math.nan),
        vbd=(vbd.mean(), vbd.max(), col("vbd_error_pp").mean()),
        hdt_bounds=(float(np.mean(col("hdt_inside_share"))), col("hdt_inside_share").min(), col("hdt_min_mm").min()),
        hdt_ratio=(float(np.median(col("hdt_ratio_compressed"))), col("hdt_ratio_compressed").min(),
                   col("hdt_ratio_compressed").max()),
        calc_ratio=(float(np.median(calc)), calc.min(), calc.max()) if calc.size else (math.nan,) * 3,
        lookalikes=((pieces["apart_removed"] + pieces["merged_removed"]) / max(all_pieces, 1),
                    pieces["apart_removed"], pieces["apart_pieces"], pieces["merged_removed"], pieces["merged_pieces"],
                    int(col("on_bac_pieces").sum()) if "on_bac_pieces" in rows[0] else 0),
        bac_kept=col("bac_skeleton_px_kept").sum() / max(col("bac_skeleton_px_tpa").sum(), 1),
        intervals=(ratio_interval(col("apart_removed") + col("merged_removed"),
                                  col("apart_pieces") + col("merged_pieces")),
                   ratio_interval(col("bac_skeleton_px_kept"), col("bac_skeleton_px_tpa"))),
        seconds=float(np.median(col("seconds_transforms"))),
        by_kind=", ".join(f"{k} {int(col(k + '_removed').sum())}/{int(col(k + '_pieces').sum())}"
                          for k in KINDS.values() if k + "_pieces" in rows[0]) or "-",
    )


def verdicts(s: dict) -> dict[str, bool]:
    return dict(
        dice_breast=s["dice_breast"][1] >= TARGETS["dice_breast"],
        dice_compressed=s["dice_compressed"][1] >= TARGETS["dice_compressed"],
        dice_pectoral=not s["dice_pectoral"][1] < TARGETS["dice_pectoral"],
        vbd=s["vbd"][0] <= TARGETS["vbd_mean"] and s["vbd"][1] <= TARGETS["vbd_worst"],
        hdt_bounds=s["hdt_bounds"][1] >= TARGETS["hdt_bounds"],
        lookalikes=s["lookalikes"][0] >= TARGETS["lookalikes_removed"],
        bac_kept=s["bac_kept"] >= TARGETS["bac_length_kept"],
    )


def cells(s: dict) -> dict[str, str]:
    """Table cells of one summary: value text per measure."""
    la = s["lookalikes"]
    return dict(
        dice_breast=f"{s['dice_breast'][0]:.3f} / {s['dice_breast'][1]:.3f}",
        dice_compressed=f"{s['dice_compressed'][0]:.3f} / {s['dice_compressed'][1]:.3f}",
        dice_compressed_rim=("-" if s["dice_compressed_rim"] is None else
                             f"{s['dice_compressed_rim'][0]:.3f} / {s['dice_compressed_rim'][1]:.3f}"),
        dice_pectoral=f"{s['dice_pectoral'][0]:.3f} / {s['dice_pectoral'][1]:.3f}",
        vbd=f"{s['vbd'][0]:.2f} / {s['vbd'][1]:.2f} (bias {s['vbd'][2]:+.2f})",
        hdt_bounds=(f"{100 * s['hdt_bounds'][0]:.2f} / {100 * s['hdt_bounds'][1]:.2f} % "
                    f"(min h_dt {s['hdt_bounds'][2]:.0f} mm)"),
        hdt_ratio=f"{s['hdt_ratio'][0]:.2f} ({s['hdt_ratio'][1]:.2f}-{s['hdt_ratio'][2]:.2f})",
        calc_ratio=f"{s['calc_ratio'][0]:.2f} ({s['calc_ratio'][1]:.2f}-{s['calc_ratio'][2]:.2f})",
        lookalikes=(f"{100 * la[0]:.1f} % (apart {la[1]}/{la[2]}, merged {la[3]}/{la[4]}"
                    + (f"; {la[5]} on the true BAC, not counted)" if la[5] else ")")),
        bac_kept=f"{100 * s['bac_kept']:.1f} %",
        intervals=" / ".join(f"{100 * lo:.1f}-{100 * hi:.1f} %" for lo, hi in s["intervals"]),
        seconds=f"{s['seconds']:.1f}",
        by_kind=s["by_kind"],
    )


MEASURES = [  # (key, row title, target text)
    ("dice_breast", "breast Dice, mean / worst", ">= 0.98 (every image)"),
    ("dice_compressed", "compressed-region Dice, mean / worst", ">= 0.90 (every image)"),
    ("dice_compressed_rim", "compressed-region Dice, periphery within 1 % of H0 ignored, mean / worst", ""),
    ("dice_pectoral", "pectoral Dice (MLO), mean / worst", ">= 0.85 (every image)"),
    ("vbd", "VBD error, mean / worst abs (pp)", "<= 3 mean, <= 5 worst"),
    ("hdt_bounds", "breast pixels with h_dt in [-1 mm, thickness], mean / worst image", ">= 99 % (every image)"),
    ("hdt_ratio", "estimated / true h_dt in the compressed region, median (range)", "1"),
    ("calc_ratio", "estimated / true h_calc on GT BAC, median (range)", "1"),
    ("lookalikes", "look-alike pieces removed (pooled)", ">= 90 % (merged included)"),
    ("by_kind", "look-alike pieces removed, by kind", ""),
    ("bac_kept", "true BAC length kept (pooled)", ">= 95 %"),
    ("intervals", "look-alikes removed / BAC length kept, 95 % interval over images (bootstrap)", ""),
    ("seconds", "transforms per image, median (s)", ""),
]


def _summary_table(before: list[dict], after: list[dict]) -> list[str]:
    """The measure / target / before / after table of two lists of cases."""
    sb, sa = summarise(before), summarise(after)
    vb, va = verdicts(sb), verdicts(sa)
    cb, ca = cells(sb), cells(sa)
    lines = ["| measure | target | before | after |", "|---|---|---|---|"]
    for key, title, target in MEASURES:
        mark = lambda v, k: "" if k not in v else (" (pass)" if v[k] else " (**miss**)")  # noqa: E731
        lines.append(f"| {title} | {target} | {cb[key]}{mark(vb, key)} | {ca[key]}{mark(va, key)} |")
    return lines


def report(args) -> int:
    lines = []
    if args.main:
        (hb, before), (ha, after) = (read_rows(p) for p in args.main)
        lines += [f"### {args.name}: {len(after)} realistic full-size phantoms", "",
                  f"* before: {hb}", f"* after: {ha}", ""]
        lines += _summary_table(before, after)
        lines += ["", "Per case (after): see the CSV written by `evaluate`.", "",
                  "| case | mm | breast | compressed (flat rim ignored) | pectoral | VBD est / true | h_dt in bounds | h_dt ratio | "
                  "look-alikes removed (apart, merged) | BAC kept |", "|---|---|---|---|---|---|---|---|---|---|"]
        rim = lambda r: f" ({r['dice_compressed_rim']:.3f})" if "dice_compressed_rim" in r else ""  # noqa: E731
        for r in after:
            kept = r["bac_skeleton_px_kept"] / r["bac_skeleton_px_tpa"] if r["bac_skeleton_px_tpa"] else math.nan
            lines.append(f"| {r['case']} | {r['thickness_mm']:.0f} | {r['dice_breast']:.3f} | "
                         f"{r['dice_compressed']:.3f}{rim(r)} | {r['dice_pectoral']:.3f} | {r['vbd_est']:.1f} / "
                         f"{r['vbd_true']:.1f} | {100 * r['hdt_inside_share']:.1f} % | "
                         f"{r['hdt_ratio_compressed']:.2f} | {int(r['apart_removed'])}/{int(r['apart_pieces'])}, "
                         f"{int(r['merged_removed'])}/{int(r['merged_pieces'])} | {100 * kept:.0f} % |")
        lines.append("")
    if args.pooled_before or args.pooled_after:
        if not (args.pooled_before and args.pooled_after):
            raise SystemExit("report: --pooled-before and --pooled-after go together")
        sides = [[read_rows(p) for p in paths] for paths in (args.pooled_before, args.pooled_after)]
        before, after = ([r for _, rows in side for r in rows] for side in sides)
        lines += [f"### {args.name}, pooled: {len(after)} realistic full-size phantoms", ""]
        lines += [f"* before: {h} ({len(rows)} cases)" for h, rows in sides[0]]
        lines += [f"* after: {h} ({len(rows)} cases)" for h, rows in sides[1]]
        lines += [""] + _summary_table(before, after) + [""]
    if args.ablation:
        (hb, before), (ha, after) = (read_rows(p) for p in args.ablation)
        lines += [f"### Ablation: {len(after) // len(ABLATION)} phantoms per configuration", "",
                  f"* before: {hb}", f"* after: {ha}", "",
                  "Each cell: before -> after. Targets as above.", "",
                  "| effect on | breast Dice worst | compressed Dice worst | pectoral Dice worst | "
                  "VBD error mean / worst "
                  "(pp) | h_dt in bounds, worst image | h_dt ratio, median | look-alikes removed | BAC length kept |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for fx in ABLATION:
            pair = [summarise([r for r in rows if r["effects"] == fx]) for rows in (before, after)]
            lines.append(f"| {fx} | " + " | ".join(" -> ".join(f(s) for s in pair) for f in ABLATION_CELLS) + " |")
        lines.append("")
    text = "\n".join(lines)
    if args.md:
        _replace_section(Path(args.md), text)
    print(text)
    return 0


ABLATION_CELLS = (  # one text per ablation column, from a summary
    lambda s: f"{s['dice_breast'][1]:.3f}",
    lambda s: f"{s['dice_compressed'][1]:.3f}",
    lambda s: f"{s['dice_pectoral'][1]:.3f}",
    lambda s: f"{s['vbd'][0]:.1f} / {s['vbd'][1]:.1f}",
    lambda s: f"{100 * s['hdt_bounds'][1]:.1f} %",
    lambda s: f"{s['hdt_ratio'][0]:.2f}",
    lambda s: f"{100 * s['lookalikes'][0]:.0f} % ({s['lookalikes'][3]}/{s['lookalikes'][4]} merged)",
    lambda s: f"{100 * s['bac_kept']:.1f} %",
)

BEGIN, END = "<!-- validate_realistic.py report: begin -->", "<!-- validate_realistic.py report: end -->"


def _replace_section(md: Path, text: str) -> None:
    """Write the tables between the report markers of ``md`` (the prose around them stays)."""
    old = md.read_text() if md.exists() else f"{BEGIN}\n{END}\n"
    if BEGIN not in old or END not in old:
        old = old.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
    head, rest = old.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    md.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def _sets_help() -> str:
    """Each set of :data:`SETS_LIKE_MAIN` and :data:`GRIDLESS_SETS` with its cases' seeds, for
    ``generate --help``."""
    per_repeat = len(VENDORS) * len(VIEWS)
    return "; ".join(f"{name}: seeds {seed0}-{seed0 + per_repeat * repeat - 1}"
                     for name, (repeat, seed0, _, _) in {**SETS_LIKE_MAIN, **GRIDLESS_SETS}.items())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="write the phantoms (DICOM + truth)")
    g.add_argument("--set", choices=[*SETS_LIKE_MAIN, *GRIDLESS_SETS, "ablation"],
                   required=True,
                   help="a set made like main on its own seeds (" + _sets_help() + "), or the ablation; "
                        "what each was made and read for: this module's docstring and docs/validation/README.md; "
                        "a new held-out set takes unused seeds (48200-48999, or 56192 and beyond)")
    g.add_argument("--data", required=True)
    g.add_argument("--only", nargs="+", choices=ABLATION, help="ablation: these configurations only")
    g.add_argument("--workers", type=int, default=1)
    e = sub.add_parser("evaluate", help="run the importable tree's transforms on the phantoms of --data")
    e.add_argument("--data", required=True)
    e.add_argument("--out", required=True, help="per-case CSV")
    e.add_argument("--only", nargs="+", choices=ABLATION, help="these configurations only")
    e.add_argument("--workers", type=int, default=1)
    r = sub.add_parser("report", help="summary tables from the CSVs (before, after)")
    r.add_argument("--main", nargs=2, metavar=("BEFORE_CSV", "AFTER_CSV"))
    r.add_argument("--ablation", nargs=2, metavar=("BEFORE_CSV", "AFTER_CSV"))
    r.add_argument("--pooled-before", nargs="+", metavar="CSV", help="several sets' CSVs (before) summarised as one")
    r.add_argument("--pooled-after", nargs="+", metavar="CSV", help="the same sets' CSVs (after)")
    r.add_argument("--name", default="Main set", help="heading of the --main (or pooled) table (e.g. 'Confirm set')")
    r.add_argument("--md", help="write the tables into this Markdown file, between its report markers")
    args = ap.parse_args(argv)
    return {"generate": generate, "evaluate": evaluate, "report": report}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())

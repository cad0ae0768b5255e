"""Validate BreastRegion against the phantom's true breast map on a full-size cohort.

For every case (CC/MLO x L/R x HOLOGIC/GE x seeds, full field of view at ``--spacing``, default
0.1 mm = 2850 x 2394 pixels) the map is computed from ``Phantom.linear`` with the view given
(as a DICOM would give it) and, as a second run, with the view unknown. Reported per image:
Dice of the breast (map > 0), the compressed region (code 2), the periphery (code 1) and, on
MLO views, the pectoral muscle (code 3); the chest-wall side found; the fitted periphery width
against the phantom's; the run time.

Acceptance (issue 3, ideal phantom): breast Dice >= 0.97, pectoral Dice >= 0.85 on MLO,
compressed-region Dice >= 0.9. Issue 13 (``--physics realistic``: polyenergetic spectrum,
scatter behind the grid, heel effect, skin, detector gain/offset/flat field, vendor pitch and
encoding, the MLO paddle rim and abdominal fold): breast >= 0.98, compressed >= 0.90, pectoral
>= 0.85 on CC and MLO, L and R, HOLOGIC / GE / SIEMENS at their own pixel pitch, 30-80 mm.

    python benchmarks/validate_breast_region.py                    # 48 full-size ideal cases
    python benchmarks/validate_breast_region.py --physics realistic --n 24 --before 44d85b9
    python benchmarks/validate_breast_region.py --n 8 --spacing 0.5 --out /tmp/br   # quick look

``--before REV`` also runs the op of git revision REV on the same images (columns ``*_before``).
Writes ``<out>/breast_region.csv`` / ``.md`` (ideal) or ``<out>/breast_region_realistic.csv`` /
``.md`` (per image; summary and per-image table, with the command and the machine); default
``<out>`` = ``docs/validation``. Seeds 1000-1099 are the validation seeds; the parameters were
calibrated on seeds 0-99 (``--seed0 0``).
"""

from __future__ import annotations

import argparse
import csv
import inspect
import io
import math
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import limit_threads, machine  # noqa: E402

limit_threads(1)

import numpy as np  # noqa: E402

from monai_bac.metrics import mask_dice  # noqa: E402
from monai_bac.ops.breast_region import analyse_breast_region  # noqa: E402
from monai_bac.phantom import make_phantom  # noqa: E402
from monai_bac.utils import atomic_write_path  # noqa: E402

THRESHOLDS = {
    "ideal": {"dice_breast": 0.97, "dice_compressed": 0.9, "dice_pectoral": 0.85},
    "realistic": {"dice_breast": 0.98, "dice_compressed": 0.9, "dice_pectoral": 0.85},
}
REPO = Path(__file__).resolve().parents[1]
VENDORS = {"ideal": ("HOLOGIC", "GE"), "realistic": ("HOLOGIC", "GE", "SIEMENS")}
THICKNESS_MM = (30.0, 80.0)  # realistic cases: spread over this range (golden-ratio sequence)


def cases(n: int, seed0: int, physics: str = "ideal"):
    """Balanced design: view x laterality x vendor cycle fastest, then the seed. Ideal cases take
    the phantom's random thickness (35-75 mm), realistic ones a thickness spread evenly over
    30-80 mm (None: random)."""
    combos = [(v, lat, ven) for ven in VENDORS[physics] for lat in ("L", "R") for v in ("CC", "MLO")]
    lo, hi = THICKNESS_MM
    for i in range(n):
        view, lat, vendor = combos[i % len(combos)]
        thickness = None if physics == "ideal" else round(lo + (hi - lo) * ((i * 0.6180339887 + 0.5) % 1.0), 1)
        yield seed0 + i, view, lat, vendor, thickness


def scores(m: np.ndarray, truth: np.ndarray, view: str) -> dict:
    return dict(
        dice_breast=mask_dice(m > 0, truth > 0),
        dice_compressed=mask_dice(m == 2, truth == 2),
        dice_periphery=mask_dice(m == 1, truth == 1),
        dice_pectoral=mask_dice(m == 3, truth == 3) if view == "MLO" else math.nan,
    )


def evaluate(seed: int, view: str, lat: str, vendor: str, spacing: float | None, physics: str = "ideal",
             thickness: float | None = None, before=None) -> dict:
    """One case; ``before`` (a module with ``analyse_breast_region``) adds ``*_before`` columns."""
    ph = make_phantom(seed, view=view, laterality=lat, vendor=vendor, spacing_mm=spacing, physics=physics,
                      thickness_mm=thickness)
    truth = ph.breast_map
    # what a user's DICOM gives: the compressed thickness (BodyPartThickness), for the scatter step;
    # the ideal phantom has no scatter: none is removed there, and nothing is left by a scatter step
    # for the width margin to make up for
    given = dict(thickness_mm=ph.meta["thickness_mm"]) if physics != "ideal" else dict(width_margin=0.0)
    t0 = time.perf_counter()
    res = analyse_breast_region(ph.linear, ph.meta["spacing_mm"], ph.meta["view"], **given)
    seconds = time.perf_counter() - t0
    m = res.breast_map
    extras = [k for k in ("paddle_edge", "abdomen_fold") if ph.record.get(k)]
    row = dict(
        seed=seed, view=view, laterality=lat, vendor=vendor,
        spacing_mm=round(float(ph.meta["spacing_mm"][0]), 3),
        thickness_mm=round(ph.record["compressed_thickness_mm"], 1),
        mlo_extras="+".join(extras) or "-",
        **scores(m, truth, view),
        chest_wall_ok=res.chest_wall == ("left" if lat == "L" else "right"),
        width_true_mm=round(ph.record["periphery_width_mm"], 2),
        width_fit_mm=round(res.periphery_width_mm, 2),
        seconds=round(seconds, 3),
    )
    # the same image with the view unknown (no DICOM ViewPosition)
    m0 = analyse_breast_region(ph.linear, ph.meta["spacing_mm"], None, **given).breast_map
    row["dice_breast_noview"] = mask_dice(m0 > 0, truth > 0)
    row["dice_compressed_noview"] = mask_dice(m0 == 2, truth == 2)
    row["dice_pectoral_noview"] = mask_dice(m0 == 3, truth == 3) if view == "MLO" else math.nan
    row["false_pectoral_noview"] = bool(view == "CC" and (m0 == 3).any())
    if before is not None:
        t0 = time.perf_counter()
        # the same keywords as the tree under test, where the old op has them
        known = inspect.signature(before.analyse_breast_region).parameters
        mb = before.analyse_breast_region(ph.linear, ph.meta["spacing_mm"], ph.meta["view"],
                                          **{k: v for k, v in given.items() if k in known}).breast_map
        row["seconds_before"] = round(time.perf_counter() - t0, 3)
        row.update({f"{k}_before": v for k, v in scores(mb, truth, view).items()})
    return row


def stress_variants(ph, rng) -> dict[str, np.ndarray]:
    """Distortions the phantom does not model, applied to its linear image (or re-formed from its
    truth maps): a linear field non-uniformity (heel effect), scatter (a crude convolution
    model: scatter-to-primary ratio ``k`` times the breast's primary blurred over ~20 mm) and
    other thickness profiles of the uncompressed edge than the phantom's quarter ellipse."""
    from scipy import ndimage

    rec, lin = ph.record, ph.linear
    h0 = rec["compressed_thickness_mm"]
    inside = ph.breast_map > 0
    # relative distance s = d / w back from the phantom's quarter-ellipse thickness
    s = 1.0 - np.sqrt(np.clip(1.0 - (ph.thickness / h0) ** 2, 0.0, 1.0))

    def form(thickness):
        q = rec["air_signal"] * np.exp(-rec["mu_fat"] * thickness
                                       - (rec["mu_dt"] - rec["mu_fat"]) * (ph.h_dt + ph.h_muscle))
        return (q + np.sqrt(q * rec["gain"]) * rng.standard_normal(q.shape)).astype(np.float32)

    hh, ww = lin.shape
    x = np.arange(ww, dtype=np.float32)[None, :] / ww
    x = x if ph.meta["laterality"] == "L" else 1.0 - x  # from the chest wall
    y = np.arange(hh, dtype=np.float32)[:, None] / hh
    blur_px = 20.0 / ph.meta["spacing_mm"][0]
    primary = ndimage.gaussian_filter(lin * inside, blur_px)
    return {
        "heel 20 % across (chest wall -> nipple)": lin * (1.1 - 0.2 * x),
        "heel 20 % along the chest wall": lin * (1.1 - 0.2 * y),
        "scatter, SPR 0.15": lin + 0.15 * primary,
        "scatter, SPR 0.3": lin + 0.3 * primary,
        "edge profile sine": form(h0 * np.sin(np.pi / 2 * np.clip(s, 0, 1)) * inside),
        "edge profile linear": form(h0 * np.clip(s, 0, 1) * inside),
        "edge profile sqrt": form(h0 * np.sqrt(np.clip(s, 0, 1)) * inside),
    }


def stress(n: int, seed0: int, spacing: float) -> list[str]:
    rng = np.random.default_rng(0)
    acc: dict[str, list] = {}
    for seed, view, lat, vendor, _ in cases(n, seed0):
        ph = make_phantom(seed, view=view, laterality=lat, vendor=vendor, spacing_mm=spacing)
        truth = ph.breast_map
        for name, img in stress_variants(ph, rng).items():
            res = analyse_breast_region(img, ph.meta["spacing_mm"], view, width_margin=0.0)  # no scatter
            m = res.breast_map
            acc.setdefault(name, []).append((
                mask_dice(m > 0, truth > 0), mask_dice(m == 2, truth == 2),
                mask_dice(m == 3, truth == 3) if view == "MLO" else math.nan,
                res.periphery_width_mm - ph.record["periphery_width_mm"]))
    lines = ["| distortion | breast Dice mean / min | compressed Dice mean / min | pectoral Dice mean / min "
             "| width error mean / max abs, mm |", "|---|---|---|---|---|"]
    for name, vals in acc.items():
        a = np.array(vals, float)
        pe = a[~np.isnan(a[:, 2]), 2]
        lines.append(f"| {name} | {a[:, 0].mean():.4f} / {a[:, 0].min():.4f} | {a[:, 1].mean():.4f} / "
                     f"{a[:, 1].min():.4f} | {pe.mean():.4f} / {pe.min():.4f} | {a[:, 3].mean():+.1f} / "
                     f"{np.abs(a[:, 3]).max():.1f} |")
    return lines


def fmt(v) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def summary(rows: list[dict], physics: str = "ideal") -> list[tuple[str, int, float, float, str]]:
    out = []
    for key in ("dice_breast", "dice_compressed", "dice_periphery", "dice_pectoral",
                "dice_breast_noview", "dice_compressed_noview", "dice_pectoral_noview",
                "dice_breast_before", "dice_compressed_before", "dice_periphery_before", "dice_pectoral_before"):
        if key not in rows[0]:
            continue
        vals = np.array([r[key] for r in rows], float)
        vals = vals[~np.isnan(vals)]
        if vals.size == 0:
            continue
        thr = THRESHOLDS[physics].get(key.replace("_noview", "").replace("_before", ""))
        verdict = "" if thr is None else ("pass" if vals.min() >= thr else "FAIL") + f" (>= {thr})"
        out.append((key, vals.size, float(vals.mean()), float(vals.min()), verdict))
    return out


def load_before(rev: str, folder: Path):
    """The op module (``monai_bac/ops/breast_region.py``) of git revision ``rev``."""
    from check_library_twins import old_module

    return old_module(rev, "monai_bac/ops/breast_region.py", "breast_region_before", folder)


REALISTIC_NOTES = [
    "## What changed for realistic images, and how it was calibrated",
    "",
    "Seen on realistic phantoms of the calibration seeds (0-99, never the validation seeds "
    "1000-1099; `--seed0 0`, at full size and at 0.3-0.4 mm): the MLO paddle rim (a 1 mm line of "
    "3-8 mm polycarbonate across the field) lies below the skin threshold and joined the breast; "
    "the abdominal fold below an MLO's breast joined it through thin tissue; on two thin SIEMENS "
    "breasts (seeds 22, 35) no breast was found at all, because the heel gradient across the "
    "direct exposure was read as noise (the \"breast vs air\" contrast check compares the contrast "
    "with 10 x the air noise); a heel effect 20 % stronger than the phantom's moved the air level "
    "across the skin threshold, and the whole breast became periphery; a pectoral muscle of low "
    "contrast (an edge tapering over millimetres next to dense tissue) was missed by the Hough "
    "line. The changes, in `monai_bac/ops/breast_region.py`:",
    "",
    "- flat field first: the heel plane is fitted to the direct exposure within 40 mm of a first "
    "outline and removed before the skin line is drawn; the air noise is measured from "
    "neighbouring-pixel differences (a gradient is no noise);",
    "- breast mask: opened by a 4 mm square (`thin_mm=4`: structures narrower than 4 mm are "
    "not breast; the rim is 1 mm plus blur, the narrowest breast part, the axillary tail, is "
    "centimetres), with the image edges extended so the chest wall is not eroded;",
    "- attached bodies: at ln P levels air - f x contrast, f = 0.3, 0.5, 0.7 (`body_fractions`; 0.4 "
    "added later, see below), "
    "the thick parts of the mask are split into components; another one of >= 100 mm^2 reaching "
    "the image edge is cut off along the thinnest tissue (a watershed of ln P from the thick parts);",
    "- pectoral: when the Hough line finds no edge, a search over quadratic edges (chord from "
    "the top to the chest wall, bowed up to 8 % of its length) maximising the integral of the "
    "derivative of ln P across the edge, scored only deeper than 0.8 x the periphery width "
    "(3 mm scale, refined at 1.5 mm), with the same checks.",
    "",
    "The values (4 mm, 40 mm, the three levels, 100 mm^2, the curve family, 8 %, 0.8) were set on "
    "seeds 0-99 and on those seeds' MLO images with the muscle's contrast lowered (muscle path "
    "12-20 % of the thickness rising over 6-10 mm, as in `tests/test_breast_region.py`); the "
    "ideal table (`breast_region.md`) was rerun to check that it did not move. Not changed: the "
    "periphery-width fit; under scatter it has the compressed region's edge within a few mm "
    "(compressed Dice 0.93-0.99 here); fitting one width per breast instead of 8 sectors would "
    "gain ~1 point on this phantom (its periphery width is the same all round, unlike a real "
    "breast's), so the sectors stay.",
    "",
    "Later (issue 13, after the phantom's rim width came to vary round the outline; chosen on the "
    "168 realistic full-size phantoms of `validate_realistic.py`'s calibration, confirm, main and "
    "verdict sets, judged once on its fresh `final` set): with the compressed thickness known "
    "(here `Phantom.meta['thickness_mm']`, in a DICOM BodyPartThickness) a published scatter "
    "estimate (Boone & Cooper 2000, the one DensityMap removes) is subtracted before the "
    "periphery fit; the fat envelope is the 97th percentile per distance bin (was the 90th); a "
    "sector keeps its own fat plateau up to 0.05 ln units deeper than the global one; and a 0.4 "
    "level was added to the attached-body cut (an abdominal fold touching the breast at the chest "
    "wall through a neck narrower than the working grid). The ideal rows pass no thickness (the "
    "ideal phantom has no scatter).",
    "",
    "Later still (twenty-first session): a fold thin all over that meets the breast where the breast "
    "is already thick, which no level separates, is cut off by its extent (`_cut_thin_bodies`: tissue "
    "thinner than half the breast's holding discs of 5 mm, reaching the top or bottom edge; chosen on "
    "`validate_realistic.py`'s docket, slate, quorum and tenure sets, judged on its charter set, "
    "docs/design-log/breast_region.md). It changes none of the images here.",
    "",
    "The one image under 0.90 here, seed 1007 (GE RMLO 71 mm, 0.8965), has its nipple windows fit a "
    "kinked edge (`a = 1`) 34-37 mm wide where the truth is 50-59 mm (docs/design-log/breast_region.md, \"The "
    "misses go both ways\"). Letting the windows keep the global fit's kind of edge lifts it to "
    "0.9625, but failed its fresh verdict set (1 -> 3 images under 0.90, `realistic_decree.md`; "
    "twenty-fifth session) and was not adopted.",
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--physics", choices=("ideal", "realistic"), default="ideal",
                    help="phantom image formation (realistic: HOLOGIC/GE/SIEMENS at their own pitch, 30-80 mm)")
    ap.add_argument("--n", type=int, default=None, help="number of phantoms (default 48 ideal, 24 realistic)")
    ap.add_argument("--seed0", type=int, default=1000, help="first seed (validation: 1000; calibration: 0)")
    ap.add_argument("--spacing", type=float, default=None,
                    help="pixel spacing, mm (default 0.1 = full size for ideal; the vendor's pitch for realistic)")
    ap.add_argument("--before", default=None, metavar="REV",
                    help="also run the op of this git revision on the same images (e.g. 44d85b9)")
    ap.add_argument("--out", default=str(REPO / "docs" / "validation"), help="output folder")
    ap.add_argument("--stress", type=int, default=None,
                    help="phantoms (at --stress-spacing) for the robustness table; 0 skips it (default 12 ideal, 0 "
                         "realistic)")
    ap.add_argument("--stress-spacing", type=float, default=0.5, help="mm")
    args = ap.parse_args(argv)
    realistic = args.physics == "realistic"
    n = args.n if args.n is not None else (24 if realistic else 48)
    spacing = args.spacing if args.spacing is not None or realistic else 0.1
    n_stress = args.stress if args.stress is not None else (0 if realistic else 12)
    command = " ".join(["python benchmarks/validate_breast_region.py",
                        *(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))])

    rows = []
    t_start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        before = load_before(args.before, Path(tmp)) if args.before else None
        for seed, view, lat, vendor, thickness in cases(n, args.seed0, args.physics):
            row = evaluate(seed, view, lat, vendor, spacing, args.physics, thickness, before)
            rows.append(row)
            print(" ".join(f"{k}={fmt(v)}" for k, v in row.items()), flush=True)
    wall = time.time() - t_start
    stress_lines = stress(n_stress, args.seed0, args.stress_spacing) if n_stress > 0 else []

    stem = "breast_region_realistic" if realistic else "breast_region"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    for r in rows:
        writer.writerow({k: fmt(v) for k, v in r.items()})
    with atomic_write_path(out / f"{stem}.csv") as tmp:
        tmp.write_text(buf.getvalue())

    summ = summary(rows, args.physics)
    n_mlo = sum(r["view"] == "MLO" for r in rows)
    times = np.array([r["seconds"] for r in rows])
    werr = np.array([r["width_fit_mm"] - r["width_true_mm"] for r in rows])
    shapes = sorted({f"{r['vendor']} {r['spacing_mm']} mm" for r in rows})
    if realistic:
        what = (f"{len(rows)} full-field-of-view realistic phantoms (`physics=\"realistic\"`, "
                f"`spacing_mm=None`: each vendor's own pitch, full size: {', '.join(shapes)}), "
                f"{len(rows) - n_mlo} CC / {n_mlo} MLO, half left / half right, a third each HOLOGIC "
                "(14-bit, MONOCHROME2) / GE (16-bit, MONOCHROME1, inverted to linear) / SIEMENS, compressed "
                f"thickness {min(r['thickness_mm'] for r in rows)}-{max(r['thickness_mm'] for r in rows)} mm, "
                f"seeds {args.seed0}-{args.seed0 + n - 1}; MLO extras (paddle rim, abdominal fold) as drawn "
                "by the phantom (column `mlo_extras`).")
    else:
        what = (f"{len(rows)} full-field-of-view phantoms at {spacing} mm "
                f"({'full size, 2850 x 2394 pixels' if abs(spacing - 0.1) < 1e-9 else 'reduced resolution'}), "
                f"{len(rows) - n_mlo} CC / {n_mlo} MLO, half left / half right, half HOLOGIC (14-bit, "
                "MONOCHROME2) / half GE (16-bit, MONOCHROME1, inverted to linear), compressed thickness "
                f"35-75 mm, seeds {args.seed0}-{args.seed0 + n - 1}.")
    lines = [
        f"# BreastRegion validation on the {'realistic ' if realistic else ''}phantom",
        "",
        f"Produced by `{command}` on {time.strftime('%Y-%m-%d')} (machine: {machine()}; "
        "a 2-core machine shared with other jobs, one thread for the analysis).",
        "",
        what + " Input: `Phantom.linear` with `spacing_mm`; truth: `Phantom.breast_map`. The \"noview\" "
        "rows are the same images with the view unknown (pectoral searched with stricter checks)."
        + (f" The \"before\" rows are the op of revision `{args.before}` on the same images." if before else ""),
        "",
        "| metric | N | mean | min | acceptance |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {k} | {n} | {mean:.4f} | {mn:.4f} | {verdict} |" for k, n, mean, mn, verdict in summ]
    lines += [
        "",
        f"- chest-wall side found correctly: {sum(r['chest_wall_ok'] for r in rows)}/{len(rows)} "
        "(the laterality tag is not used)",
        f"- false pectoral on CC with the view unknown: {sum(r['false_pectoral_noview'] for r in rows)}"
        f"/{len(rows) - n_mlo}",
        f"- periphery width, fitted - true: mean {werr.mean():+.2f} mm, max |error| {np.abs(werr).max():.2f} mm",
        f"- time per image (analysis only, one thread, contended machine): median {np.median(times):.3f} s, "
        f"max {times.max():.3f} s"
        + (f" (before: median {np.median([r['seconds_before'] for r in rows]):.3f} s)" if before else "")
        + f"; whole run {wall / 60:.1f} min incl. phantom generation",
    ]
    if realistic:
        lines += ["", *REALISTIC_NOTES]
    if stress_lines:
        lines += [
            "",
            "## Beyond the phantom: robustness to what it does not model",
            "",
            f"The phantom has no scatter, a perfectly flat field and exactly the quarter-ellipse edge "
            f"profile the periphery model starts from, so the table above is an upper bound. Below, the "
            f"first {n_stress} cases (same seeds, at {args.stress_spacing} mm) distorted in ways the "
            "phantom does not model (see `stress_variants` in the script); view given.",
            "",
            *stress_lines,
            "",
            "Reading: the flat-field step removes a heel effect; the fitted edge-profile shape follows "
            "other fall-off profiles (a linear ramp, physically unlikely for a bulging edge, is the "
            "hardest: its thin skin-side tissue also moves the skin line inwards, since the skin "
            "threshold sits at 10 % of the air-to-tissue contrast); scatter adds a slow tail to the "
            "compressed region's edge, which the fit can partly read as periphery (periphery too "
            "wide). Real raw images taken with an anti-scatter grid have scatter-to-primary ratios "
            "of roughly 0.1-0.3; the scatter model here is crude (one Gaussian kernel), so read these "
            "rows as an indication, not a measurement. The realistic phantom (`--physics realistic`, "
            "`breast_region_realistic.md`) has a physical scatter and heel model.",
        ]
    lines += [
        "",
        f"Per image (also in `{stem}.csv`):",
        "",
        "| " + " | ".join(rows[0]) + " |",
        "|" + "---|" * len(rows[0]),
    ]
    lines += ["| " + " | ".join(fmt(v) for v in r.values()) + " |" for r in rows]
    with atomic_write_path(out / f"{stem}.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[: lines.index(f"Per image (also in `{stem}.csv`):")]))
    failed = [k for k, *_, verdict in summ if "FAIL" in verdict and not k.endswith(("noview", "before"))]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

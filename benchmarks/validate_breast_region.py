"""Validate BreastRegion against the phantom's true breast map on a full-size cohort.

For every case (CC/MLO x L/R x HOLOGIC/GE x seeds, full field of view at ``--spacing``, default
0.1 mm = 2850 x 2394 pixels) the map is computed from ``Phantom.linear`` with the view given
(as a DICOM would give it) and, as a second run, with the view unknown. Reported per image:
Dice of the breast (map > 0), the compressed region (code 2), the periphery (code 1) and, on
MLO views, the pectoral muscle (code 3); the chest-wall side found; the fitted periphery width
against the phantom's; the run time.

Acceptance (issue 3): breast Dice >= 0.97, pectoral Dice >= 0.85 on MLO, compressed-region
Dice >= 0.9.

    python benchmarks/validate_breast_region.py                    # 48 full-size cases
    python benchmarks/validate_breast_region.py --n 8 --spacing 0.5 --out /tmp/br   # quick look

Writes ``<out>/breast_region.csv`` (per image) and ``<out>/breast_region.md`` (summary and
per-image table, with the command and the machine); default ``<out>`` = ``docs/validation``.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import shlex
import sys
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

THRESHOLDS = {"dice_breast": 0.97, "dice_compressed": 0.9, "dice_pectoral": 0.85}
REPO = Path(__file__).resolve().parents[1]



def cases(n: int, seed0: int):
    """Balanced design: view x laterality x vendor cycle fastest, then the seed."""
    combos = [(v, lat, ven) for ven in ("HOLOGIC", "GE") for lat in ("L", "R") for v in ("CC", "MLO")]
    for i in range(n):
        view, lat, vendor = combos[i % len(combos)]
        yield seed0 + i, view, lat, vendor


def evaluate(seed: int, view: str, lat: str, vendor: str, spacing: float) -> dict:
    ph = make_phantom(seed, view=view, laterality=lat, vendor=vendor, spacing_mm=spacing)
    truth = ph.breast_map
    t0 = time.perf_counter()
    res = analyse_breast_region(ph.linear, ph.meta["spacing_mm"], ph.meta["view"])
    seconds = time.perf_counter() - t0
    m = res.breast_map
    row = dict(
        seed=seed, view=view, laterality=lat, vendor=vendor,
        thickness_mm=round(ph.record["compressed_thickness_mm"], 1),
        dice_breast=mask_dice(m > 0, truth > 0),
        dice_compressed=mask_dice(m == 2, truth == 2),
        dice_periphery=mask_dice(m == 1, truth == 1),
        dice_pectoral=mask_dice(m == 3, truth == 3) if view == "MLO" else math.nan,
        chest_wall_ok=res.chest_wall == ("left" if lat == "L" else "right"),
        width_true_mm=round(ph.record["periphery_width_mm"], 2),
        width_fit_mm=round(res.periphery_width_mm, 2),
        seconds=round(seconds, 3),
    )
    # the same image with the view unknown (no DICOM ViewPosition)
    m0 = analyse_breast_region(ph.linear, ph.meta["spacing_mm"], None).breast_map
    row["dice_breast_noview"] = mask_dice(m0 > 0, truth > 0)
    row["dice_compressed_noview"] = mask_dice(m0 == 2, truth == 2)
    row["dice_pectoral_noview"] = mask_dice(m0 == 3, truth == 3) if view == "MLO" else math.nan
    row["false_pectoral_noview"] = bool(view == "CC" and (m0 == 3).any())
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
    for seed, view, lat, vendor in cases(n, seed0):
        ph = make_phantom(seed, view=view, laterality=lat, vendor=vendor, spacing_mm=spacing)
        truth = ph.breast_map
        for name, img in stress_variants(ph, rng).items():
            res = analyse_breast_region(img, ph.meta["spacing_mm"], view)
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


def summary(rows: list[dict]) -> list[tuple[str, int, float, float, str]]:
    out = []
    for key in ("dice_breast", "dice_compressed", "dice_periphery", "dice_pectoral",
                "dice_breast_noview", "dice_compressed_noview", "dice_pectoral_noview"):
        vals = np.array([r[key] for r in rows], float)
        vals = vals[~np.isnan(vals)]
        if vals.size == 0:
            continue
        thr = THRESHOLDS.get(key.replace("_noview", ""))
        verdict = "" if thr is None else ("pass" if vals.min() >= thr else "FAIL") + f" (>= {thr})"
        out.append((key, vals.size, float(vals.mean()), float(vals.min()), verdict))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=48, help="number of phantoms (default 48)")
    ap.add_argument("--seed0", type=int, default=1000, help="first seed")
    ap.add_argument("--spacing", type=float, default=0.1, help="pixel spacing, mm (0.1 = full size)")
    ap.add_argument("--out", default=str(REPO / "docs" / "validation"), help="output folder")
    ap.add_argument("--stress", type=int, default=12,
                    help="phantoms (at --stress-spacing) for the robustness table; 0 skips it")
    ap.add_argument("--stress-spacing", type=float, default=0.5, help="mm")
    args = ap.parse_args(argv)
    command = " ".join(["python benchmarks/validate_breast_region.py",
                        *(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))])

    rows = []
    t_start = time.time()
    for seed, view, lat, vendor in cases(args.n, args.seed0):
        row = evaluate(seed, view, lat, vendor, args.spacing)
        rows.append(row)
        print(" ".join(f"{k}={fmt(v)}" for k, v in row.items()), flush=True)
    wall = time.time() - t_start
    stress_lines = stress(args.stress, args.seed0, args.stress_spacing) if args.stress > 0 else []

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    for r in rows:
        writer.writerow({k: fmt(v) for k, v in r.items()})
    with atomic_write_path(out / "breast_region.csv") as tmp:
        tmp.write_text(buf.getvalue())

    summ = summary(rows)
    n_mlo = sum(r["view"] == "MLO" for r in rows)
    times = np.array([r["seconds"] for r in rows])
    werr = np.array([r["width_fit_mm"] - r["width_true_mm"] for r in rows])
    lines = [
        "# BreastRegion validation on the phantom",
        "",
        f"Produced by `{command}` on {time.strftime('%Y-%m-%d')} (machine: {machine()}; "
        "a 2-core machine shared with other jobs, one thread for the analysis).",
        "",
        f"{len(rows)} full-field-of-view phantoms at {args.spacing} mm "
        f"({'full size, 2850 x 2394 pixels' if abs(args.spacing - 0.1) < 1e-9 else 'reduced resolution'}), "
        f"{len(rows) - n_mlo} CC / {n_mlo} MLO, half left / half right, half HOLOGIC (14-bit, MONOCHROME2) / "
        "half GE (16-bit, MONOCHROME1, inverted to linear), compressed thickness 35-75 mm, seeds "
        f"{args.seed0}-{args.seed0 + args.n - 1}. Input: `Phantom.linear` with `spacing_mm`; truth: "
        "`Phantom.breast_map`. The \"noview\" rows are the same images with the view unknown "
        "(pectoral searched with stricter checks).",
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
        f"max {times.max():.3f} s; whole run {wall / 60:.1f} min incl. phantom generation",
    ]
    if stress_lines:
        lines += [
            "",
            "## Beyond the phantom: robustness to what it does not model",
            "",
            f"The phantom has no scatter, a perfectly flat field and exactly the quarter-ellipse edge "
            f"profile the periphery model starts from, so the table above is an upper bound. Below, the "
            f"first {args.stress} cases (same seeds, at {args.stress_spacing} mm) distorted in ways the "
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
            "rows as an indication, not a measurement.",
        ]
    lines += [
        "",
        "Per image (also in `breast_region.csv`):",
        "",
        "| " + " | ".join(rows[0]) + " |",
        "|" + "---|" * len(rows[0]),
    ]
    lines += ["| " + " | ".join(fmt(v) for v in r.values()) + " |" for r in rows]
    with atomic_write_path(out / "breast_region.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[: lines.index("Per image (also in `breast_region.csv`):")]))
    failed = [k for k, *_, verdict in summ if "FAIL" in verdict and not k.endswith("noview")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

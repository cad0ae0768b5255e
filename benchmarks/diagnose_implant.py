"""Breast implants through the chain a user runs (docs/design-log/breast_region.md, "A breast implant").

Each fresh seed is made three times with the same anatomy and beam: without an implant, with a
silicone-gel implant and with a saline one (``make_phantom(..., implant=)``, every realistic effect,
the vendor's pitch; BreastImplantPresent (0028,1300) YES with either implant), written as DICOM and
read through ``load_mammogram`` -> ``BreastRegion()`` -> ``DensityMap()``. Per image: breast,
compressed and pectoral Dice against the phantom's map (whose compressed region includes the
implant's shadow: its thickness is the breast's), the shadow's area as BreastRegion and DensityMap
found it against the implant's (outside the pectoral muscle), whether a BreastImplantWarning was
given, the thickness the image implies (DensityMap's check of BodyPartThickness) and whether a
ThicknessMismatchWarning was given, and the VBD error against two truths: the tissue's VBD over the
whole breast (the implant's volume left out), and the VBD of the tissue beside the implant's shadow
(what DensityMap reports once it has found the shadow: nothing behind an implant can be read).

Usage (the tree on ``PYTHONPATH`` is the one measured; an older tree needs this one's
``monai_bac/phantom`` and ``physics.py`` copied in to make the same images):

    python benchmarks/diagnose_implant.py --n 48 --seed 58100 --workers 2 [--csv rows.csv]

``--dense``: each seed made extremely dense (``make_phantom(..., extremely_dense=True)``), without an
implant and with a silicone one, each read with BodyPartThickness at the truth and at 0.85 x it (a
header too thin: dense tissue then reads beyond the glandular bound; docs/design-log/breast_region.md,
"Extremely dense breasts, and a header too thin"). ``--header 1.0 1.15``: read every image with
BodyPartThickness at each of these fractions of the truth (real units read 14-26 % thick, Hauge et
al. 2012).

Seeds 58000-58099 were used developing the implant's detection, 57200-57299 its extremely dense
breasts; diagnoses stay off them.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diagnose_periphery import _fresh_cases  # noqa: E402
from validate_realistic import dice  # noqa: E402

KINDS = (None, "silicone", "saline")
#: ``--dense``: each seed made extremely dense, without an implant and with a silicone one, read with
#: the header's thickness at these fractions of the truth (unless ``--header`` says otherwise).
DENSE_KINDS, DENSE_HEADER = (None, "silicone"), (1.0, 0.85)
COLUMNS = ("seed", "view", "vendor", "thickness_mm", "tag_scale", "implant", "breast_dice", "compressed_dice",
           "pectoral_dice", "implant_cm2", "region_shadow_cm2", "density_shadow_cm2", "warned", "vbd", "vbd_tissue",
           "vbd_beside", "thickness_from_image_mm", "thickness_warned", "implant_bound_thickness_mm", "thickness_check")


def _read(ph, tag_scale: float = 1.0) -> dict:
    """``ph`` written as DICOM (BodyPartThickness at ``tag_scale`` x the truth), read through the chain."""
    from monai_bac.data import load_mammogram
    from monai_bac.ops.breast_region import COMPRESSED, PECTORAL
    from monai_bac.transforms import BreastRegion, DensityMap

    with tempfile.TemporaryDirectory(prefix="bac-implant-") as tmp:
        truth_mm = ph.meta["thickness_mm"]
        ph.meta["thickness_mm"] = round(truth_mm * tag_scale, 1)
        try:
            ph.write_dicom(Path(tmp) / "implant.dcm", patient_id="implant")
        finally:
            ph.meta["thickness_mm"] = truth_mm
        img = load_mammogram(Path(tmp) / "implant.dcm")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bmap = BreastRegion()(img)
        dens = DensityMap()(img, bmap).meta["density"]
    est, truth = np.asarray(bmap)[0], ph.breast_map
    muscle = (truth == PECTORAL) | (est == PECTORAL)
    implant = (ph.h_implant > 0) & (truth != PECTORAL) if ph.h_implant is not None else np.zeros(truth.shape, bool)
    return dict(
        tag_scale=tag_scale, implant=ph.record["implant"]["material"] if ph.record.get("implant") else "none",
        breast_dice=dice(est > 0, truth > 0), compressed_dice=dice(est == COMPRESSED, truth == COMPRESSED),
        pectoral_dice=dice(est == PECTORAL, truth == PECTORAL) if muscle.any() else float("nan"),
        implant_cm2=float(implant.sum() * ph.spacing**2 / 100),
        region_shadow_cm2=float(bmap.meta.get("implant_shadow_cm2", 0.0)),
        density_shadow_cm2=float(dens.get("implant_shadow_cm2", 0.0)),
        warned=any(type(w.message).__name__ == "BreastImplantWarning" for w in caught),
        thickness_from_image_mm=float(dens["thickness_from_image_mm"]),
        thickness_warned=any(type(w.message).__name__ == "ThicknessMismatchWarning" for w in caught),
        implant_bound_thickness_mm=float(dens["implant_bound_thickness_mm"]), thickness_check=dens["thickness_check"],
        vbd=float(dens["vbd_percent"]), vbd_tissue=float(ph.record["vbd_percent"]),
        vbd_beside=float(ph.record["vbd_percent_outside_implant"]))


def _case(job: tuple) -> list[dict]:
    """One seed made without an implant, with a silicone and with a saline one, read through the chain;
    with ``dense``, made extremely dense, without an implant and with a silicone one; each read with the
    header's thickness at each of ``header`` x the truth."""
    from monai_bac.phantom import make_phantom

    seed, view, laterality, vendor, thickness, dense, header = job
    rows = []
    for kind in DENSE_KINDS if dense else KINDS:
        ph = make_phantom(seed, view=view, laterality=laterality, vendor=vendor, thickness_mm=thickness,
                          spacing_mm=None, physics="realistic", implant=kind, extremely_dense=dense)
        for tag_scale in header:
            rows.append(dict(seed=seed, view=view, vendor=vendor, thickness_mm=thickness, **_read(ph, tag_scale)))
    return rows


def _table(rows: list[dict]) -> None:
    print("implant | images | shadow found by BreastRegion / DensityMap | warned | breast Dice worst | compressed Dice "
          "mean / worst / under 0.90 | pectoral Dice mean / worst | VBD error against the tissue: mean / worst abs "
          "(pp) | against the tissue beside the implant: mean / worst abs (pp)")
    for kind, tag_scale in sorted({(x["implant"], x["tag_scale"]) for x in rows}, key=lambda k: (k[0], -k[1])):
        r = [x for x in rows if x["implant"] == kind and x["tag_scale"] == tag_scale]
        comp = np.array([x["compressed_dice"] for x in r])
        pect = np.array([x["pectoral_dice"] for x in r])
        pect = pect[np.isfinite(pect)]
        e_t = np.array([x["vbd"] - x["vbd_tissue"] for x in r])
        e_b = np.array([x["vbd"] - x["vbd_beside"] for x in r])
        print(f"{kind}{'' if tag_scale == 1.0 else f', header {tag_scale:g} x'} | {len(r)} | {sum(x['region_shadow_cm2'] > 0 for x in r)} / "
              f"{sum(x['density_shadow_cm2'] > 0 for x in r)} | {sum(x['warned'] for x in r)} | "
              f"{min(x['breast_dice'] for x in r):.4f} | {comp.mean():.4f} / {comp.min():.3f} / {(comp < 0.9).sum()} | "
              f"{pect.mean():.4f} / {pect.min():.3f} | {e_t.mean():+.2f} / {np.abs(e_t).max():.2f} | "
              f"{e_b.mean():+.2f} / {np.abs(e_b).max():.2f}")
    print("implant | images | ThicknessMismatchWarning given | the image's thickness / the truth: median (range)")
    for kind, tag_scale in sorted({(x["implant"], x["tag_scale"]) for x in rows}, key=lambda k: (k[0], -k[1])):
        r = [x for x in rows if x["implant"] == kind and x["tag_scale"] == tag_scale]
        ratio = np.array([x["thickness_from_image_mm"] / x["thickness_mm"] for x in r])
        ratio = ratio[np.isfinite(ratio)]
        spread = f"{np.median(ratio):.3f} ({ratio.min():.3f}-{ratio.max():.3f})" if ratio.size else "-"
        print(f"{kind}{'' if tag_scale == 1.0 else f', header {tag_scale:g} x'} | {len(r)} | "
              f"{sum(x['thickness_warned'] for x in r)} | {spread}")
    found = [x for x in rows if x["implant"] == "silicone" and x["tag_scale"] == 1.0 and x["density_shadow_cm2"] > 0]
    if found:
        ratio = np.array([x["density_shadow_cm2"] / x["implant_cm2"] for x in found])
        print(f"silicone, DensityMap's shadow / the implant's area: median {np.median(ratio):.3f} "
              f"({ratio.min():.3f}-{ratio.max():.3f})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--seed", type=int, default=58100)
    ap.add_argument("--thickness", type=float, nargs=2, default=(30.0, 80.0))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--csv", default=None, help="write every image's row here")
    ap.add_argument("--dense", action="store_true",
                    help="extremely dense breasts, read with the true header thickness and with 0.85 x it")
    ap.add_argument("--header", type=float, nargs="+", default=None,
                    help="BodyPartThickness written at these fractions of the true thickness (default 1.0)")
    args = ap.parse_args(argv)
    header = tuple(args.header or (DENSE_HEADER if args.dense else (1.0,)))
    cases = [(*case, args.dense, header) for case in _fresh_cases(args)]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(args.workers) as pool:
        rows = [row for rs in pool.map(_case, cases) for row in rs]
    print(f"{args.n} seeds from {args.seed}, CC/MLO x L/R x three vendors at their pitch, "
          f"{args.thickness[0]}-{args.thickness[1]} mm, every realistic effect; " +
          ("each extremely dense, without an implant and with a silicone one" if args.dense
           else "each without an implant, with a silicone and with a saline one") +
          f", read with BodyPartThickness at {', '.join(f'{h:g}' for h in header)} x the truth")
    _table(rows)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

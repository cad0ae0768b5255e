"""monai-bac phantom: write a phantom cohort (DICOM MG, NIfTI labels, truth, datalist).

The datalist splits the patients 80/10/10 into training, validation and test; every split gets
at least one patient when --n is 3 or more (a cohort under 12 images has patients of fewer views).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from monai_bac.phantom import FULL_FOV_MM, TPAConfig, make_cohort
from monai_bac.phantom.cohort import MIN_SPLIT_IMAGES, views_per_patient


def _spacing(text: str) -> float | None:
    """A pixel spacing in mm, or "native" (None: each vendor's own pitch)."""
    if text.strip().lower() == "native":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a spacing in mm or 'native', got {text!r}") from None


def register(sub) -> None:
    p = sub.add_parser("phantom", help="generate a phantom cohort with ground truth",
                       description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--n", type=int, default=20, help=f"number of images (patients of 4 views; of fewer views under 12 images); "
                        f"{MIN_SPLIT_IMAGES} or more to train on it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--spacing", type=_spacing, default=0.1,
                   help="pixel spacing, mm (0.1 = full size), or 'native': each vendor's own detector pitch "
                        "(Hologic 0.07, GE 0.1, Siemens 0.085 mm)")
    p.add_argument("--physics", choices=("realistic", "ideal"), default="realistic",
                   help="realistic: polyenergetic x-rays, scatter, heel effect, detector (docs/PHANTOM.md); ideal: "
                        "monochromatic Beer-Lambert, Eq. (4) exact")
    p.add_argument("--effects", default=None,
                   help="realistic effects on, joined by '+' (spectrum, scatter, heel, vendor, merged, edge), "
                        "or all/none (default: all)")
    p.add_argument("--fov", type=float, nargs=2, default=FULL_FOV_MM, metavar=("H_MM", "W_MM"),
                   help="detector field of view, mm")
    p.add_argument("--bac-prevalence", type=float, default=0.95, help="fraction of patients with BAC")
    p.add_argument("--vendors", nargs="+", default=["HOLOGIC", "GE"], choices=["HOLOGIC", "GE", "SIEMENS"])
    p.add_argument("--miss-rate", type=float, default=TPAConfig.miss_rate, help="TPA: runs missed")
    p.add_argument("--under-rate", type=float, default=TPAConfig.under_rate, help="TPA: runs under-segmented")
    p.add_argument("--fp-microcalc-rate", type=float, default=TPAConfig.fp_microcalc_rate)
    p.add_argument("--fp-strand-rate", type=float, default=TPAConfig.fp_strand_rate)
    p.add_argument("--fp-edge-rate", type=float, default=TPAConfig.fp_edge_rate)
    p.add_argument("--workers", type=int, default=1, help="processes")
    p.add_argument("--overwrite", action="store_true", help="replace an existing cohort in --out")
    p.set_defaults(func=run)


def run(args) -> int:
    from monai_bac.commands import fail

    if args.n < 1:
        print(f"monai-bac phantom: --n {args.n}: the number of images must be 1 or more", file=sys.stderr)
        return 2
    tpa = TPAConfig(miss_rate=args.miss_rate, under_rate=args.under_rate,
                    fp_microcalc_rate=args.fp_microcalc_rate, fp_strand_rate=args.fp_strand_rate,
                    fp_edge_rate=args.fp_edge_rate)
    t0 = time.perf_counter()
    try:
        datalist = make_cohort(args.out, n=args.n, seed=args.seed, spacing_mm=args.spacing, fov_mm=tuple(args.fov),
                               bac_prevalence=args.bac_prevalence, vendors=tuple(args.vendors), tpa=tpa,
                               physics=args.physics, effects=args.effects, workers=args.workers,
                               overwrite=args.overwrite, progress=True)
    except (FileExistsError, ValueError) as e:
        return fail("phantom", e, 2)
    content = json.loads(datalist.read_text())
    splits = ", ".join(f"{k} {len(content[k])}" for k in ("training", "validation", "test"))
    per = views_per_patient(args.n)
    print(f"wrote {args.n} images ({-(-args.n // per)} patients of {per} view{'s' * (per > 1)}) in "
          f"{time.perf_counter() - t0:.1f} s; images per split: {splits}; datalist: {datalist}")
    return 0

"""``monai-bac reproduce``: the paper's Table 3 / Fig. 8 experiment on the phantom."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("reproduce", help="train and compare third-party vs corrected labels on the phantom",
                       description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (finished runs in it are reused)")
    p.add_argument("--bundle", default="bundle", help="the bundle whose configs every run trains with")
    p.add_argument("--profile", choices=["cpu", "gpu"], default="cpu",
                   help="cpu: rt4, ra1, ra0 on a small cohort; gpu: all runs of Table 3 at 1600")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds (>= 2 give a spread)")
    p.add_argument("--runs", nargs="+", default=None, help="run ids (default: the profile's)")
    p.add_argument("--cohort-size", type=int, default=None, help="phantom images")
    p.add_argument("--phantom-spacing", type=float, default=None, help="phantom pixel spacing, mm")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--held-out-size", type=int, default=None,
                   help="images of a second phantom cohort every run is also tested on (0: none; default: the profile's)")
    p.add_argument("--workers", type=int, default=2, help="processes for phantom and label correction")
    p.set_defaults(func=run)


def run(args) -> int:
    from monai_bac.reproduce import reproduce

    overrides = {}
    if args.cohort_size:
        overrides["cohort_size"] = args.cohort_size
    if args.phantom_spacing:
        overrides["phantom_spacing_mm"] = args.phantom_spacing
    if args.epochs:
        overrides["num_epochs"] = args.epochs
    if args.image_size:
        overrides["image_size"] = args.image_size
    summary = reproduce(args.out, args.bundle, profile=args.profile, seeds=tuple(args.seeds), runs=args.runs,
                        workers=args.workers, held_out_size=args.held_out_size, **overrides)
    print(open(summary["table_md"]).read())
    print(f"took {summary['minutes']} min; table {summary['table_csv']}; figure {summary['figure']}")
    return 0

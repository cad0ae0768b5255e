"""``monai-bac reproduce``: the paper's Table 3 / Fig. 8 experiment on the phantom, and with
``--size`` the annotation study (does good annotation help? :mod:`monai_bac.study`)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("reproduce", help="train and compare third-party vs corrected labels on the phantom",
                       description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (finished runs in it are reused)")
    p.add_argument("--bundle", default="bundle", help="the bundle whose configs every run trains with")
    p.add_argument("--profile", choices=["cpu", "gpu"], default="cpu",
                   help="cpu: rt4, ra1, ra0 on a small cohort; gpu: all runs of Table 3 at 1600 "
                        "(with --size: the bundle's GPU training recipe)")
    p.add_argument("--size", choices=["tiny", "pilot", "small", "full"], default=None,
                   help="run the annotation study of this size instead of Table 3: annotator profiles x "
                        "(rt4, ra1, ra1r) x training seeds x cohort seeds, the normalisation arm, paired gains")
    p.add_argument("--systematicity", type=float, nargs="+", default=None,
                   help="study: annotator profiles (default: the size's)")
    p.add_argument("--cohort-seeds", type=int, nargs="+", default=None, help="study: cohort seeds")
    p.add_argument("--refine-threshold", type=float, default=0.03,
                   help="study: h_calc (mm) above which a corrected label's pixel is kept by the refinement (ra1r)")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="training seeds (>= 2 give a spread; default: 0 1, or the study size's)")
    p.add_argument("--runs", nargs="+", default=None, help="run ids (default: the profile's); study: its arms")
    p.add_argument("--cohort-size", type=int, default=None, help="phantom images")
    p.add_argument("--phantom-spacing", type=float, default=None, help="phantom pixel spacing, mm")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--held-out-size", type=int, default=None,
                   help="images of a second phantom cohort every run is also tested on (0: none; default: the profile's)")
    p.add_argument("--workers", type=int, default=2, help="processes for phantom and label correction")
    p.add_argument("--analyse-only", action="store_true",
                   help="study: analyse the finished runs in --out again (study_images.csv), train nothing")
    p.add_argument("--threads", type=int, default=1,
                   help="study: torch threads (0: torch's default; 1 avoids thread contention on a shared machine)")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.size:
        return run_study(args)
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
    summary = reproduce(args.out, args.bundle, profile=args.profile, seeds=tuple(args.seeds or (0, 1)),
                        runs=args.runs, workers=args.workers, held_out_size=args.held_out_size, **overrides)
    print(open(summary["table_md"]).read())
    print(f"took {summary['minutes']} min; table {summary['table_csv']}; figure {summary['figure']}")
    return 0


def run_study(args) -> int:
    from pathlib import Path

    from monai_bac.study import reanalyse, study

    if args.analyse_only:
        summary = reanalyse(args.out)
        print((Path(args.out) / "study.md").read_text())
        return 0

    def tup(v):
        return None if v is None else tuple(v)

    summary = study(args.out, args.bundle, size=args.size, profile=args.profile, workers=args.workers,
                    refine_threshold_mm=args.refine_threshold, threads=args.threads or None, systematicity=tup(args.systematicity),
                    train_seeds=tup(args.seeds), cohort_seeds=tup(args.cohort_seeds), arms=tup(args.runs),
                    cohort_size=args.cohort_size, held_out_size=args.held_out_size,
                    spacing_mm=args.phantom_spacing, image_size=args.image_size, epochs=args.epochs)
    print((Path(args.out) / "study.md").read_text())
    print(f"took {summary['minutes']} min; {args.out}/study_gains.csv, {args.out}/study_gain.png")
    return 0

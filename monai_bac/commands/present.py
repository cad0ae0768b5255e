"""``monai-bac present``: For Presentation renditions of raw mammograms, for viewers (OHIF, PACS).

For each raw (FOR PROCESSING) MG file, writes ``--out/<name>.presentation.dcm``: the paper's
log-gamma image (Eq. 1-2, gamma 1/2) inverted so that dense tissue and calcium are bright on a
black background, as a Digital Mammography X-Ray Image For Presentation (MONOCHROME2, 12 bits,
a VOI window over the breast) in the raw image's study, with a new series, referencing the raw
image (``monai_bac.presentation``). Upload both to the PACS; annotate and run the model on the raw one.

Each rendition also carries a nominal plane in patient space (its own FrameOfReferenceUID,
ImagePositionPatient 0, ImageOrientationPatient along PatientOrientation), which OHIF needs to
overlay a DICOM SEG on it; ``--no-plane`` leaves it out (the plain MG IOD; OHIF then shows the
image but cannot load a SEG onto it).

A file that fails (not DICOM, processed already, no breast found) is named on stderr and the
others are still written. Exit status: 0 all written, 1 some failed.
"""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser("present", help="write For Presentation renditions of raw mammograms (for viewers)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("raw", nargs="+", help="raw (FOR PROCESSING) MG DICOM files")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--gamma", type=float, default=0.5, help="exponent of Eq. (2) (default: the paper's 0.5)")
    p.add_argument("--no-plane", dest="plane", action="store_false",
                   help="no nominal patient-space plane (OHIF cannot then overlay a SEG)")
    p.add_argument("--overwrite", action="store_true", help="replace existing renditions")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from monai_bac.data.errors import MammogramReadError
    from monai_bac.presentation import PresentationError, default_output, write_presentation

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for raw in args.raw:
        target = default_output(raw, out_dir)
        try:
            write_presentation(raw, target, gamma=args.gamma, plane=args.plane, overwrite=args.overwrite)
        except FileExistsError:
            print(f"monai-bac present: {target} exists (pass --overwrite to replace it)", file=sys.stderr)
            failed += 1
        except (MammogramReadError, PresentationError, FileNotFoundError, ValueError) as e:
            print(f"monai-bac present: {e}", file=sys.stderr)
            failed += 1
        else:
            print(f"{raw} -> {target}")
    return 1 if failed else 0

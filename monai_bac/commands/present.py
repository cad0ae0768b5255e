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

``--seg`` takes DICOM SEGs made on the raw images (``monai-bac infer``'s ``<case>_bac_seg.dcm``) and
writes each again on its raw image's rendition, ``--out/<name>.presentation_bac_seg.dcm``, for OHIF to
overlay (a SEG is matched to the raw image it references).

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
    p.add_argument("--seg", nargs="+", default=[], metavar="SEG",
                   help="DICOM SEGs made on these raw images, to write again on their renditions")
    p.add_argument("--no-plane", dest="plane", action="store_false",
                   help="no nominal patient-space plane (OHIF cannot then overlay a SEG)")
    p.add_argument("--overwrite", action="store_true", help="replace existing renditions")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    import pydicom

    from monai_bac.presentation import (PresentationError, default_output, seg_on_rendition, seg_source_uid,
                                        write_presentation)

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    failed, rendition_of = 0, {}  # raw SOPInstanceUID -> its rendition
    for raw in args.raw:
        target = default_output(raw, out_dir)
        if _tried(raw, target, lambda: write_presentation(raw, target, gamma=args.gamma, plane=args.plane,
                                                           overwrite=args.overwrite)):
            rendition_of[pydicom.dcmread(raw, stop_before_pixels=True).SOPInstanceUID] = target
        else:
            failed += 1
    for seg in args.seg:
        try:
            rendition = rendition_of.get(seg_source_uid(seg))
        except PresentationError as e:
            rendition = None
            print(f"monai-bac present: {e}", file=sys.stderr)
        if rendition is None:
            print(f"monai-bac present: {seg}: made on none of the raw images written here", file=sys.stderr)
            failed += 1
            continue
        target = out_dir / f"{rendition.name[:-4]}_bac_seg.dcm"
        failed += not _tried(seg, target, lambda: seg_on_rendition(seg, rendition, target, overwrite=args.overwrite))
    return 1 if failed else 0


def _tried(source, target, write) -> bool:
    """Run ``write()``; print ``source -> target`` or the reason it failed (on stderr); True when written."""
    from monai_bac.data.errors import MammogramReadError
    from monai_bac.dicom_seg import DicomSegError
    from monai_bac.presentation import PresentationError

    try:
        write()
    except FileExistsError:
        print(f"monai-bac present: {target} exists (pass --overwrite to replace it)", file=sys.stderr)
        return False
    except (MammogramReadError, PresentationError, DicomSegError, FileNotFoundError, ValueError) as e:
        print(f"monai-bac present: {e}", file=sys.stderr)
        return False
    print(f"{source} -> {target}")
    return True

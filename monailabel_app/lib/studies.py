"""Make a MONAI Label studies folder from a phantom cohort or a folder of raw DICOM mammograms.

    python monailabel_app/lib/studies.py --phantom data/phantom --out studies
    python monailabel_app/lib/studies.py --dicom /data/raw_mg --out studies [--tpa /data/tpa_labels]
    python monailabel_app/lib/studies.py --phantom data/phantom --out studies_nifti --nifti

The studies folder holds one file per mammogram in its root (``<id>.dcm``, or ``<id>.nii.gz``
with ``--nifti``) and, when third-party labels exist, ``labels/tpa/<id>.nii.gz`` (scored by the
app's ``label_correction`` strategy). Files are copied, never moved or changed; an existing
file in ``--out`` is never overwritten, and nothing is written through a symbolic link (a name
in ``--out`` that is a link, even a dangling one, is kept as it is).

* ``--phantom``: a cohort written by ``monai-bac phantom`` (``images/*.dcm``, ``labels/tpa``,
  ``labels/gt``). Ground truth is left out unless ``--with-gt`` (then ``labels/gt``, for
  comparing corrections with the truth; do not show it to annotators you are measuring).
* ``--dicom``: every DICOM file under the folder (any name, with or without extension) whose
  Modality is MG; the id is its path below the folder with separators replaced by ``_``. Other
  files are skipped and reported. ``--tpa``: a folder of third-party labels ``<id>.nii.gz``.
* ``--nifti``: store NIfTI images made from the DICOMs (the convention of
  :mod:`monai_bac.data.image_io`, so labels overlay them in Slicer). NIfTI keeps only the pixel
  spacing: the acquisition tags the physics needs (kVp, thickness, ...) are lost, so the
  ``label_correction`` score is only available for DICOM studies.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_id(relative: Path) -> str:
    stem = str(relative.with_suffix("") if relative.suffix.lower() in (".dcm", ".dicom") else relative)
    ident = _UNSAFE.sub("_", stem.replace(os.sep, "_")).strip("._") or "image"
    return ident.replace("..", "_")


def _taken(dest: Path) -> bool:
    """True when ``dest`` exists or is a link (even dangling: writing there would write through it)."""
    if os.path.lexists(dest):
        print(f"  exists{' (a symbolic link)' if dest.is_symlink() else ''}, kept: {dest}", file=sys.stderr)
        return True
    return False


def _copy_new(src: Path, dest: Path) -> bool:
    if _taken(dest):
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)
    return True


def _store_image(src: Path, out: Path, ident: str, nifti: bool) -> bool:
    if not nifti:
        return _copy_new(src, out / f"{ident}.dcm")
    from monai_bac.data import load_mammogram, save_image_nifti

    dest = out / f"{ident}.nii.gz"
    if _taken(dest):
        return False
    image = load_mammogram(src)
    save_image_nifti(dest, image[0], image.meta["spacing_mm"])
    return True


def _is_mg_dicom(path: Path) -> str | None:
    """None if ``path`` is a DICOM MG image, else why it is skipped."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:
        return "not DICOM"
    if str(ds.get("Modality", "")).upper() != "MG":
        return f"Modality {ds.get('Modality')!r}, not MG"
    if "Rows" not in ds:
        return "no image"
    return None


def from_phantom(cohort: Path, out: Path, nifti: bool = False, with_gt: bool = False) -> dict[str, int]:
    images = sorted((cohort / "images").glob("*.dcm"))
    if not images:
        raise SystemExit(f"{cohort}: no images/*.dcm; is it a cohort written by `monai-bac phantom`?")
    counts = {"images": 0, "tpa": 0, "gt": 0}
    for src in images:
        ident = src.stem
        counts["images"] += _store_image(src, out, ident, nifti)
        for tag in ("tpa", "gt") if with_gt else ("tpa",):
            label = cohort / "labels" / tag / f"{ident}.nii.gz"
            if label.is_file():
                counts[tag] += _copy_new(label, out / "labels" / tag / label.name)
    return counts


def from_dicom(folder: Path, out: Path, tpa: Path | None = None, nifti: bool = False) -> dict[str, int]:
    counts = {"images": 0, "tpa": 0, "skipped": 0}
    seen: set[str] = set()
    for src in sorted(p for p in folder.rglob("*") if p.is_file()):
        why = _is_mg_dicom(src)
        if why:
            counts["skipped"] += 1
            print(f"  skipped {src}: {why}", file=sys.stderr)
            continue
        ident = _safe_id(src.relative_to(folder))
        if ident in seen:
            raise SystemExit(f"two DICOM files map to the id {ident!r}; rename one of them")
        seen.add(ident)
        counts["images"] += _store_image(src, out, ident, nifti)
        if tpa is not None:
            for ext in (".nii.gz", ".nii"):
                label = tpa / f"{ident}{ext}"
                if label.is_file():
                    counts["tpa"] += _copy_new(label, out / "labels" / "tpa" / label.name)
                    break
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--phantom", type=Path, help="cohort folder written by `monai-bac phantom`")
    source.add_argument("--dicom", type=Path, help="folder of raw DICOM mammograms (searched recursively)")
    parser.add_argument("--out", type=Path, required=True, help="studies folder to create or add to")
    parser.add_argument("--tpa", type=Path, help="with --dicom: folder of third-party labels <id>.nii.gz")
    parser.add_argument("--nifti", action="store_true", help="store NIfTI images made from the DICOMs")
    parser.add_argument("--with-gt", action="store_true", help="with --phantom: also copy labels/gt")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.phantom:
        counts = from_phantom(args.phantom, args.out, args.nifti, args.with_gt)
    else:
        counts = from_dicom(args.dicom, args.out, args.tpa, args.nifti)
    print(f"{args.out}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

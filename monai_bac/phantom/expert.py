"""Simulated expert correction of the third-party annotation: the paper's ExpertGT (Sec. 4.2).

The paper's test labels were "carefully re-annotated by an in-house imaging scientist to remove
the false positive segments from the initial annotation", and some images got "added BACs
segments": the expert *corrected* the TPA, so the ExpertGT keeps the annotator's brush. This
module does the same from the phantom's truth:

* **removes** every false-positive segment: the pixels the annotator brushed for a look-alike
  (``tpa_source`` codes of micro-calcification clusters, dense strands and dense edges,
  :data:`~monai_bac.phantom.annotation.SOURCE_CODES`), including the look-alike part of a stroke
  merged with a calcified run (it carries the look-alike's code). A segment is a connected
  (8-neighbour) piece of those pixels;
* **adds** the calcified stretches the annotator missed (whole missed runs and the unbrushed part
  of under-segmented ones): the centreline of the true BAC farther than ``tolerance_mm`` from what
  the annotator brushed for BAC, in pieces of at least ``min_added_length_mm``, brushed with the
  annotator's own brush half-width;
* **keeps** every pixel the annotator brushed for BAC as it is (the brush, its width, its ends).

The result is the simulated ExpertGT: what an expert who knows the truth makes of the TPA, not
the physical calcification (the phantom's ``label_gt``).
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from monai_bac.phantom.annotation import SOURCE_CODES

__all__ = ["ExpertConfig", "LOOKALIKE_CODES", "expert_correct", "annotator_brush_mm", "expert_labels"]

#: ``tpa_source`` codes of the look-alikes an annotator can brush as BAC
LOOKALIKE_CODES = tuple(v for k, v in SOURCE_CODES.items() if k != "bac")


@dataclass(frozen=True)
class ExpertConfig:
    """How the simulated expert corrects a TPA.

    ``tolerance_mm``: a true-BAC centreline pixel within this distance of a pixel brushed for BAC
    counts as annotated; ``min_added_length_mm``: missed stretches shorter than this are left out
    (an expert adds segments, not specks at the end of a brushed run).
    """

    tolerance_mm: float = 0.0
    min_added_length_mm: float = 2.0

    def __post_init__(self):
        if not (self.tolerance_mm >= 0 and self.min_added_length_mm >= 0):
            raise ValueError("ExpertConfig.tolerance_mm and min_added_length_mm must be >= 0 mm")


def expert_correct(tpa_source: np.ndarray, bac_mask: np.ndarray, spacing_mm, brush_halfwidth_mm: float,
                   config: ExpertConfig | None = None) -> tuple[np.ndarray, dict]:
    """The expert's correction of one TPA.

    Args:
        tpa_source: (H, W) codes of what each TPA pixel was brushed for (0: not brushed).
        bac_mask: (H, W) true BAC (the phantom's ``label_gt``).
        spacing_mm: (row, col) pixel spacing, mm.
        brush_halfwidth_mm: the annotator's brush, mm (:func:`annotator_brush_mm`).

    Returns:
        (expert mask uint8, report) with the numbers and pixels of removed segments (by kind) and
        of added stretches.
    """
    from monai_bac.ops.skeleton import component_skeleton_lengths, skeletonize_mask

    config = config or ExpertConfig()
    source, truth = np.asarray(tpa_source), np.asarray(bac_mask) > 0
    if source.shape != truth.shape:
        raise ValueError(f"tpa_source (H, W) = {source.shape} differs from bac_mask's {truth.shape}")
    if not brush_halfwidth_mm > 0:
        raise ValueError(f"brush_halfwidth_mm must be > 0 mm, got {brush_halfwidth_mm}")
    sp = tuple(float(v) for v in np.broadcast_to(np.asarray(spacing_mm, float), (2,)))
    eight = np.ones((3, 3), bool)

    false_pos = np.isin(source, LOOKALIKE_CODES)
    _, n_removed = ndi.label(false_pos, eight)
    kept = source == SOURCE_CODES["bac"]

    centreline = skeletonize_mask(truth)
    if kept.any():
        far = ndi.distance_transform_edt(~kept, sampling=sp) > config.tolerance_mm
        centreline &= far
    pieces, n_pieces = ndi.label(centreline, eight)
    lengths = component_skeleton_lengths(pieces, sp, centreline)[1:n_pieces + 1] if n_pieces else np.zeros(0)
    chosen = np.flatnonzero(lengths >= config.min_added_length_mm) + 1
    added_line = np.isin(pieces, chosen)
    added = np.zeros_like(kept)
    if added_line.any():
        added = ndi.distance_transform_edt(~added_line, sampling=sp) <= brush_halfwidth_mm
    expert = kept | added
    report = dict(
        n_removed_segments=int(n_removed),
        removed_pixels=int(false_pos.sum()),
        removed_pixels_by_kind={k: int((source == v).sum()) for k, v in SOURCE_CODES.items() if v in LOOKALIKE_CODES},
        n_added_segments=int(len(chosen)),
        added_length_mm=float(lengths[chosen - 1].sum()) if len(chosen) else 0.0,
        added_pixels=int((added & ~kept).sum()),
        kept_pixels=int(kept.sum()),
        brush_halfwidth_mm=float(brush_halfwidth_mm),
        tolerance_mm=config.tolerance_mm,
        min_added_length_mm=config.min_added_length_mm,
    )
    return expert.astype(np.uint8), report


def annotator_brush_mm(tpa_record: dict) -> float:
    """The annotator's brush half-width (mm) from a phantom's TPA record: the median of its BAC
    strokes (``bac_brush_halfwidths_mm``), else of all its strokes, else the configured systematic
    brush (an annotation with no stroke)."""
    for key in ("bac_brush_halfwidths_mm", "brush_halfwidths_mm"):
        if tpa_record.get(key):
            return float(statistics.median(tpa_record[key]))
    config = tpa_record.get("config", {})
    low, high = config.get("brush_halfwidth_mm", (0.6, 1.4))
    return float(config.get("systematic_halfwidth_mm", (low + high) / 2))


def expert_labels(datalist: str | os.PathLike, out_dir: str | os.PathLike, config: ExpertConfig | None = None) -> dict:
    """The simulated ExpertGT of every image of a phantom cohort (all splits), written as
    ``<out_dir>/labels/<case>.nii.gz`` with a per-image ``report.json``; returns {case: path}.

    Reused when ``report.json`` exists for the same cohort (``phantom.json``) and config.
    """
    from dataclasses import asdict

    from monai_bac.data import load_label
    from monai_bac.data.image_io import save_mask_nifti

    config = config or ExpertConfig()
    datalist, out = Path(datalist), Path(out_dir)
    base = datalist.parent
    made_with = dict(phantom=json.loads((base / "phantom.json").read_text()), expert=asdict(config))
    report_path = out / "report.json"
    if report_path.is_file():
        done = json.loads(report_path.read_text())
        if done.get("made_with") == made_with:
            return {case: str(out / "labels" / f"{case}.nii.gz") for case in done["images"]}
    content = json.loads(datalist.read_text())
    entries = [e for v in content.values() if isinstance(v, list) for e in v
               if isinstance(e, dict) and "truth" in e and "label_gt" in e]
    if not entries:
        raise ValueError(f"{datalist}: no entry has 'truth' and 'label_gt' (not a phantom cohort)")
    images = {}
    (out / "labels").mkdir(parents=True, exist_ok=True)
    for entry in entries:
        truth_npz = base / entry["truth"]
        gt = load_label(base / entry["label_gt"])
        spacing = tuple(float(v) for v in gt.meta["spacing_mm"])
        record = json.loads(truth_npz.with_suffix(".json").read_text())
        mask, report = expert_correct(np.load(truth_npz)["tpa_source"], np.asarray(gt)[0], spacing,
                                      annotator_brush_mm(record.get("tpa", {})), config)
        save_mask_nifti(out / "labels" / f"{entry['case']}.nii.gz", mask, spacing, overwrite=True)
        images[entry["case"]] = report
    report_path.write_text(json.dumps(dict(made_with=made_with, images=images), indent=1))
    return {case: str(out / "labels" / f"{case}.nii.gz") for case in images}

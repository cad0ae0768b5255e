"""BAC quantification: from a mask to clinical numbers, per image, breast, patient and cohort.

Per image (:func:`quantify_mask`, :func:`quantify_image`):

* ``present``: the mask has at least one segment (``min_segment_mm`` long; 0 by default, so
  any non-empty mask counts, as in the paper's Fig. 10).
* ``length_mm``: total BAC length, the geodesic length of the mask's skeleton - the Guo-Hall
  thinning and the 8-neighbour step lengths that Dice^L uses (:mod:`monai_bac.ops.skeleton`,
  Sec. 3.4: BAC is measured clinically by length) - with two corrections that make it an
  estimate of the *centreline* length of the calcified vessel:

  1. **Spurs.** Thinning a band with square-cut ends leaves a fork at each end (two short
     branches into the corners) and small branches where the outline is ragged. A terminal
     branch (end point to junction) no longer than ``prune_factor`` times the inscribed radius
     at its junction (from the Euclidean distance transform) is removed; a real side branch is
     longer than that.
  2. **Ends.** A skeleton stops about one vessel radius short of each end of the object. Each
     end point is extended by the local inscribed radius ``r = EDT(end) - s/2`` (the distance
     to the nearest background pixel centre, less half a pixel to reach the object's edge); a
     skeleton of a single pixel (a round speck) counts ``2 r``.

  ``skeleton_length_mm`` keeps the plain Dice^L skeleton length for comparison. On the phantom
  the corrected length of the ground-truth mask is within a few percent of the true centreline
  length (tests/test_quantify.py, docs/CPU_INFERENCE.md). Two effects remain: the 8-neighbour
  step length over-reads oblique digital curves by up to ~8 % (~4 % on average; the same
  measure as Dice^L, kept for consistency), and vessels that cross or overlap in projection
  merge into one skeleton, so overlapping stretches count once where the truth counts both.
* ``n_segments``: 8-connected components of the mask (``min_segment_mm`` long).
* ``area_mm2``: mask area.
* ``calcium_mg``: calcium mass from the calcification-thickness map (Eq. 5, h_calc in mm of
  hydroxyapatite), summed over the mask dilated by ``zone_mm`` (the detector blur spreads the
  calcium signal a little beyond the mask; noise in h_calc is zero-mean and averages out),
  times the pixel area and the density of hydroxyapatite,
  :data:`HYDROXYAPATITE_DENSITY_MG_PER_MM3` = 3.16 mg/mm^3. It needs the raw (FOR PROCESSING)
  image and its physics metadata (KVP, anode, filter); without them it is ``None`` and
  ``calcium_note`` says why.

**In the breast, not at the detector.** Length, area and calcium are measured with the image's
spacing divided by ``plane_magnification`` (the reader's, from the DICOM header:
:func:`~monai_bac.data.dicom_read.header_measurement_plane`; ``measured_at`` says which plane):
the diverging beam magnifies the breast onto the detector by the EstimatedRadiographicMagnification
Factor, 1.05-1.1 in contact, 1.5-2 on a magnification stand, so a length read at the detector is
that much too long and an area or a mass its square. The calcification thickness h_calc comes from
attenuation along the ray and needs no correction; the zone (``zone_mm``, the detector's blur) stays
at the detector. Without a factor in the header the measures are at the detector
(``measured_at`` "detector plane").

Per breast and per patient (:func:`summarise_breasts`, :func:`summarise_patients`): a breast
has BAC when any of its views has; its length is the *largest* over its views (CC and MLO
image the same arteries, so adding them would count each vessel twice); a patient's length and
calcium are the sums over the two breasts. Only screening views count: a magnification or spot
compression view of a diagnostic work-up (rows whose ``view_modifiers`` or ``magnification``
say so, :func:`~monai_bac.data.views.diagnostic_view_reason`) is left out of every summary and
counted in ``n_diagnostic_views``; magnified, its length would read as the breast's largest.

Cohort (:func:`presence_agreement`, the paper's Sec. 4.5 and Fig. 10): for patients with all
four views (LCC, LMLO, RCC, RMLO), presence in the left vs the right breast (pairs LCC-RCC and
LMLO-RMLO) and in the CC vs the MLO view (pairs LCC-LMLO and RCC-RMLO), as 2 x 2 confusion
matrices (rows: left / CC; columns: right / MLO; order absent, present) with the weighted F1
score (the left / CC side taken as reference, weights = its class counts, as
``sklearn.metrics.f1_score(average="weighted")``), the agreement rate and the discordant pairs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from monai_bac.data.views import diagnostic_view_reason
from monai_bac.ops.skeleton import NEIGHBOUR_OFFSETS, foreground_groups, skeleton_points, thin_box
from monai_bac.physics import HYDROXYAPATITE_DENSITY_MG_PER_MM3
from monai_bac.units import as_spacing

__all__ = [
    "HYDROXYAPATITE_DENSITY_MG_PER_MM3",
    "BACQuantification",
    "SegmentStats",
    "centreline_skeleton",
    "bac_length_mm",
    "calc_thickness_near_mask",
    "quantify_mask",
    "quantify_image",
    "measurement_plane",
    "summarise_breasts",
    "summarise_patients",
    "presence_agreement",
    "weighted_f1",
    "cohort_analysis",
    "VIEW_NAMES",
]

_EIGHT = np.ones((3, 3), bool)
#: the four screening views, in the order of the paper's Fig. 10
VIEW_NAMES = ("LCC", "LMLO", "RCC", "RMLO")


def _mask_hw(mask) -> np.ndarray:
    m = np.asarray(mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 2:
        raise ValueError(f"expected a (H, W) or (1, H, W) mask, got shape {m.shape}")
    return m > 0


def _skeleton_graph(skel: np.ndarray):
    """Pixels of a skeleton (zero border) as a graph: (rows, cols, edge list (i, j, step mm unit-free), degree).

    Sparse: the cost follows the number of skeleton pixels, not the size of the box.
    """
    r, c = np.nonzero(skel)
    idx = np.full(skel.shape, -1, np.int64)
    idx[r, c] = np.arange(r.size)
    src, dst = [], []
    for dr, dc in NEIGHBOUR_OFFSETS:
        j = idx[r + dr, c + dc]
        ok = j >= 0
        src.append(np.flatnonzero(ok))
        dst.append(j[ok])
    src, dst = np.concatenate(src), np.concatenate(dst)
    degree = np.bincount(src, minlength=r.size)
    return r, c, src, dst, degree


@lru_cache(maxsize=8)
def _distance_window(sr: float, sc: float, max_mm: float) -> np.ndarray:
    """Distances (mm) from the centre of a window reaching ``max_mm`` each way (read-only, cached)."""
    kr, kc = int(math.ceil(max_mm / sr)), int(math.ceil(max_mm / sc))
    yy, xx = np.mgrid[-kr:kr + 1, -kc:kc + 1]
    dist = np.hypot(yy * sr, xx * sc)
    dist.setflags(write=False)
    return dist


def _inscribed_radius(mask: np.ndarray, rows: np.ndarray, cols: np.ndarray, sp: tuple[float, float],
                      max_mm: float = 4.0) -> np.ndarray:
    """Distance (mm) from each (row, col) of ``mask`` to the nearest background pixel centre.

    The Euclidean distance transform at a few points, searched in a window of ``max_mm``
    (a calcified vessel is at most ~2 mm wide; farther values are capped at ``max_mm``).
    A kept fast path: ``scipy.ndimage.distance_transform_edt`` of each segment's box gives the
    same values (to the last bit of rounding) but costs the whole box for a handful of points;
    on a full-size image with 50 predicted segments it took ~1 s of ~8 s per image (12 %,
    ``benchmarks/bench_cpu_inference.py`` profile on a loaded 2-core machine).
    """
    out = np.full(rows.shape, max_mm, np.float64)
    if rows.size == 0:
        return out
    dist = _distance_window(sp[0], sp[1], max_mm)
    kr, kc = dist.shape[0] // 2, dist.shape[1] // 2
    bg = np.ones((mask.shape[0] + 2 * kr, mask.shape[1] + 2 * kc), bool)
    np.logical_not(mask, out=bg[kr:kr + mask.shape[0], kc:kc + mask.shape[1]])
    for i, (r, c) in enumerate(zip(rows, cols)):
        win = bg[r:r + 2 * kr + 1, c:c + 2 * kc + 1]
        if win.any():
            out[i] = min(max_mm, float(dist[win].min()))
    return out


def _prune_spurs(skel: np.ndarray, mask: np.ndarray, sp: tuple[float, float], prune_factor: float) -> np.ndarray:
    """Remove terminal branches no longer than ``prune_factor`` x the inscribed radius at their junction."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    r, c, src, dst, degree = _skeleton_graph(skel)
    junction = degree >= 3
    if not junction.any():
        return skel
    n = r.size
    inner = ~junction[src] & ~junction[dst]
    graph = coo_matrix((np.ones(int(inner.sum())), (src[inner], dst[inner])), shape=(n, n))
    _, seg = connected_components(graph, directed=False)
    seg = np.where(junction, -1, seg)
    n_seg = int(seg.max()) + 1
    if n_seg <= 0:
        return skel
    rest = ~junction
    # length of each branch: its pixels' steps (axial or diagonal), plus the step onto the junction
    step = np.hypot((r[dst] - r[src]) * sp[0], (c[dst] - c[src]) * sp[1])
    seg_len = np.bincount(seg[src[inner]], weights=0.5 * step[inner], minlength=n_seg) + min(sp)
    has_end = np.bincount(seg[rest & (degree == 1)], minlength=n_seg) > 0
    to_j = rest[src] & junction[dst]  # edges from a branch pixel onto a junction pixel
    j_idx = np.unique(dst[to_j])
    j_rad = np.zeros(n)
    j_rad[j_idx] = _inscribed_radius(mask, r[j_idx], c[j_idx], sp)
    radius = np.zeros(n_seg)
    np.maximum.at(radius, seg[src[to_j]], j_rad[dst[to_j]])
    touches = np.bincount(seg[src[to_j]], minlength=n_seg) > 0
    kill = has_end & touches & (seg_len <= prune_factor * radius)
    if not kill.any():
        return skel
    out = skel.copy()
    gone = rest & kill[np.maximum(seg, 0)]
    out[r[gone], c[gone]] = False
    return thin_box(out)  # junction clusters left behind thin to a 1-pixel line


def _group_skeleton(sub: np.ndarray, sp: tuple[float, float], prune_factor: float, end_correction: bool):
    """Skeleton pixels, length shares and end corrections of one small (H, W) mask (local indices)."""
    sub = np.pad(sub, 1)
    skel = thin_box(sub)
    if prune_factor and prune_factor > 0:
        skel = _prune_spurs(skel, sub, sp, prune_factor)
    r, c, w = skeleton_points(skel, sp)
    er, ec, ee = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
    if end_correction:
        gr, gc, _, _, degree = _skeleton_graph(skel)
        half = 0.5 * min(sp)
        for sel, factor in ((degree == 1, 1.0), (degree == 0, 2.0)):
            r_e, c_e = gr[sel], gc[sel]
            er.append(r_e)
            ec.append(c_e)
            ee.append(factor * np.maximum(_inscribed_radius(sub, r_e, c_e, sp) - half, 0.0))
    return r - 1, c - 1, w, np.concatenate(er) - 1, np.concatenate(ec) - 1, np.concatenate(ee)


def centreline_skeleton(mask, spacing_mm, prune_factor: float = 2.0, end_correction: bool = True):
    """Skeleton of a BAC mask prepared for length measurement, with its end corrections.

    Returns:
        ``(rows, cols, weights, end_rows, end_cols, end_mm)``: the skeleton pixels with their
        length shares (mm, as :func:`monai_bac.ops.skeleton.skeleton_points`) after spur pruning,
        and the end points with the length added at each (mm; empty without ``end_correction``).
    """
    m = _mask_hw(mask)
    sp = as_spacing(spacing_mm)
    parts = []
    for rs, cs, sub in foreground_groups(m):
        r, c, w, er, ec, ee = _group_skeleton(sub, sp, prune_factor, end_correction)
        parts.append((r + rs.start, c + cs.start, w, er + rs.start, ec + cs.start, ee))
    if not parts:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0), z, z, np.zeros(0)
    return tuple(np.concatenate(x) for x in zip(*parts))


def bac_length_mm(mask, spacing_mm, prune_factor: float = 2.0, end_correction: bool = True) -> float:
    """Total centreline length (mm) of a BAC mask; see the module docstring for the method."""
    _, _, w, _, _, e = centreline_skeleton(mask, spacing_mm, prune_factor, end_correction)
    return float(w.sum() + e.sum())


def _mask_hw_float(a) -> np.ndarray:
    a = np.asarray(a.detach().cpu().numpy() if hasattr(a, "detach") else a, dtype=np.float32)
    return a[0] if a.ndim == 3 and a.shape[0] == 1 else a


def _zone_disk(sp: tuple[float, float], zone_mm: float) -> np.ndarray:
    """Footprint of a dilation by ``zone_mm`` (an ellipse in pixels for anisotropic spacing)."""
    if not 0 <= zone_mm <= 3.0:
        raise ValueError(f"zone_mm must be within 0-3 mm, got {zone_mm}")
    kr, kc = int(round(zone_mm / sp[0])), int(round(zone_mm / sp[1]))
    yy, xx = np.mgrid[-kr:kr + 1, -kc:kc + 1]
    return (yy * sp[0]) ** 2 + (xx * sp[1]) ** 2 <= zone_mm**2 + 1e-9


def calc_thickness_near_mask(image, mask, breast_map=None, spacing_mm=None, meta: Mapping | None = None,
                             margin_mm: float | None = None, density_kwargs: Mapping | None = None,
                             **calc_kwargs) -> np.ndarray:
    """Calcification thickness h_calc (mm, Eq. 5) of a raw image, computed only near a mask.

    Same numbers as :class:`monai_bac.transforms.DensityMap` followed by
    :class:`monai_bac.transforms.CalcificationThickness` on the whole image, inside a margin of
    the mask's foreground boxes. With Eq. (4) (``density_kwargs={"model": "eq4"}``) only the
    fatty reference P_fat is global: it is found once on the compressed region and both maps are
    computed on the boxes alone, at a fraction of the cost for a sparse BAC mask. The
    polyenergetic model (the default) has more that is global (scatter estimate, heel trend,
    detector offset), so h_dt is computed once on the whole image and only Eq. (5) (an opening of
    ``opening_mm``, local) runs on the boxes. Pixels away from the mask are 0.

    Args:
        image: (H, W) or (1, H, W) raw image, linear in exposure (MetaTensor or array).
        mask: (H, W) or (1, H, W) BAC mask.
        breast_map: docs/ARCHITECTURE.md breast map; computed with BreastRegion when None.
        spacing_mm, meta: replace ``image.meta`` (spacing, kvp, anode, filter).
        margin_mm: box margin around the mask; default opening + 4 smoothing sigmas + 1 mm.
        density_kwargs: arguments of :class:`DensityMap` (``model``, ``scatter``, ...).
        calc_kwargs: arguments of :class:`CalcificationThickness` (``opening_mm``, ``smooth_mm``, ...).

    Raises:
        monai_bac.physics.MissingPhysicsError: KVP (0018,0060) or the spacing is missing.
    """
    import torch
    from monai.data import MetaTensor

    from monai_bac.ops.density import fat_reference
    from monai_bac.phantom import COMPRESSED
    from monai_bac.transforms import BreastRegion, CalcificationThickness, DensityMap

    meta = dict(meta if meta is not None else getattr(image, "meta", {}) or {})
    if spacing_mm is not None:
        meta["spacing_mm"] = tuple(float(s) for s in spacing_mm)
    sp = as_spacing(meta.get("spacing_mm"))
    raw = _mask_hw_float(image)
    m = _mask_hw(mask)
    out = np.zeros(raw.shape, np.float32)
    if not m.any():
        return out
    if breast_map is None:
        bmap = np.asarray(BreastRegion()(MetaTensor(torch.from_numpy(raw[None].copy()), meta=dict(meta))))[0]
    else:
        bmap = np.asarray(breast_map.detach().cpu().numpy() if hasattr(breast_map, "detach") else breast_map)
        bmap = bmap[0] if bmap.ndim == 3 else bmap
    dm = DensityMap(**{**dict(density_kwargs or {}), "compute_vbd": False})
    ct = CalcificationThickness(**calc_kwargs)
    if dm.model == "eq4":
        dm.attenuation(meta)  # raises MissingPhysicsError naming the tag before any work
        p_fat = fat_reference(raw, bmap == COMPRESSED, sp, dm.erode_mm, dm.block_mm, dm.fat_percentile, dm.offset)
        if not (np.isfinite(p_fat) and p_fat > 0):
            return out
        dm.p_fat = float(p_fat)
        density = None
    else:
        dm.beam(meta)  # raises MissingPhysicsError naming the tag before any work
        density = dm(MetaTensor(torch.from_numpy(raw[None].copy()), meta=dict(meta)), bmap[None])
        if density.meta["density"]["empty"]:
            return out
        density_meta = dict(density.meta)
        density = np.asarray(density)[0]
    # reach of Eq. 4-5 at a pixel: the opening's square plus 3 sigmas of both Gaussians
    reach_mm = ct.opening_mm + 3.0 * (ct.smooth_mm + dm.smooth_mm)
    write_mm = 1.0  # values are kept within this distance of the mask's boxes (>= any zone_mm used)
    if margin_mm is None:
        margin_mm = reach_mm + write_mm + max(sp)
    kr, kc = int(math.ceil(margin_mm / sp[0])), int(math.ceil(margin_mm / sp[1]))
    wr, wc = int(math.ceil(write_mm / sp[0])), int(math.ceil(write_mm / sp[1]))
    h, w = raw.shape
    for rs, cs, _ in foreground_groups(m):
        r0, r1 = max(rs.start - kr, 0), min(rs.stop + kr, h)
        c0, c1 = max(cs.start - kc, 0), min(cs.stop + kc, w)
        bm_box = np.ascontiguousarray(bmap[r0:r1, c0:c1])[None]
        if density is None:
            img_box = MetaTensor(torch.from_numpy(np.ascontiguousarray(raw[r0:r1, c0:c1])[None]), meta=dict(meta))
            h_dt_box = dm(img_box, bm_box)
        else:
            h_dt_box = MetaTensor(torch.from_numpy(np.ascontiguousarray(density[r0:r1, c0:c1])[None]),
                                  meta=density_meta)
        hc = np.asarray(ct(h_dt_box, bm_box))[0]
        w0, w1 = max(rs.start - wr, 0), min(rs.stop + wr, h)
        v0, v1 = max(cs.start - wc, 0), min(cs.stop + wc, w)
        out[w0:w1, v0:v1] = hc[w0 - r0:w1 - r0, v0 - c0:v1 - c0]
    return out


@dataclass
class SegmentStats:
    """One 8-connected BAC segment."""

    label: int
    length_mm: float
    area_mm2: float
    calcium_mg: float | None
    bbox: tuple[int, int, int, int]  # row0, col0, row1, col1 (exclusive), pixels


@dataclass
class BACQuantification:
    """The quantification of one image (see the module docstring for the definitions)."""

    present: bool
    length_mm: float
    skeleton_length_mm: float
    n_segments: int
    area_mm2: float
    calcium_mg: float | None
    calcium_volume_mm3: float | None
    calcium_note: str
    spacing_mm: tuple[float, float]  # the image's (the detector's for a DICOM file)
    plane_magnification: float = 1.0  # sizes are measured with spacing_mm / plane_magnification
    measured_at: str = "as given"
    hydroxyapatite_density_mg_per_mm3: float = HYDROXYAPATITE_DENSITY_MG_PER_MM3
    segments: list[SegmentStats] = field(default_factory=list)

    def as_dict(self, segments: bool = True) -> dict[str, Any]:
        d = asdict(self)
        if not segments:
            d.pop("segments")
        d["spacing_mm"] = list(self.spacing_mm)
        return d

    def summary(self) -> dict[str, Any]:
        """The flat fields (no per-segment list), for a CSV row."""
        return self.as_dict(segments=False)


def _segment_boxes(m: np.ndarray) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    """Every 8-connected component of ``m`` in ``scipy.ndimage.label``'s order:
    ((row0, col0, row1, col1), its mask in that box)."""
    lab, _ = ndi.label(m, _EIGHT)
    return [((sl[0].start, sl[1].start, sl[0].stop, sl[1].stop), lab[sl] == k)
            for k, sl in enumerate(ndi.find_objects(lab), start=1) if sl is not None]


@dataclass
class _Segment:
    """One segment's geometry, kept for its calcium sum: its box (with the zone's margin) and lengths."""

    r0: int
    c0: int
    box: np.ndarray
    length_mm: float
    skeleton_mm: float
    bbox: tuple[int, int, int, int]


def _measure_segments(m: np.ndarray, sp: tuple[float, float], disk: np.ndarray, min_segment_mm: float,
                      prune_factor: float, end_correction: bool) -> list[_Segment]:
    """Length of every segment, each in its own bounding box (plus the zone): the cost follows the
    segments, not the image."""
    kr, kc = disk.shape[0] // 2, disk.shape[1] // 2
    H, W = m.shape
    out = []
    for (gr0, gc0, gr1, gc1), own in _segment_boxes(m):
        r0, c0 = max(gr0 - kr - 1, 0), max(gc0 - kc - 1, 0)
        r1, c1 = min(gr1 + kr + 1, H), min(gc1 + kc + 1, W)
        box = np.zeros((r1 - r0, c1 - c0), bool)
        box[gr0 - r0:gr1 - r0, gc0 - c0:gc1 - c0] = own
        _, _, w, _, _, ee = _group_skeleton(box, sp, prune_factor, end_correction)
        skel_len = float(w.sum())
        length = skel_len + float(ee.sum())
        if length >= min_segment_mm:
            out.append(_Segment(r0, c0, box, length, skel_len, (gr0, gc0, gr1, gc1)))
    return out


def _segment_calcium(segments: list[_Segment], h: np.ndarray, sp: tuple[float, float], disk: np.ndarray) -> list[float]:
    """Calcium (mg) of each segment: h_calc over its zone; zone pixels shared by two segments count for the first."""
    claimed = np.zeros(h.shape, bool)
    out = []
    for s in segments:
        r1, c1 = s.r0 + s.box.shape[0], s.c0 + s.box.shape[1]
        zone = ndi.binary_dilation(s.box, disk)  # the box holds the zone's margin
        zone &= ~claimed[s.r0:r1, s.c0:c1]
        claimed[s.r0:r1, s.c0:c1] |= zone
        out.append(float(h[s.r0:r1, s.c0:c1][zone].sum(dtype=np.float64)) * sp[0] * sp[1]
                   * HYDROXYAPATITE_DENSITY_MG_PER_MM3)
    return out


def _quantification(segments: list[_Segment], calcium: list[float] | None, sp: tuple[float, float],
                    plane: tuple[float, str], zone_mm: float, calcium_note: str) -> BACQuantification:
    msp = _in_breast(sp, plane[0])
    stats = [SegmentStats(i + 1, s.length_mm, float(s.box.sum()) * msp[0] * msp[1],
                          None if calcium is None else calcium[i], s.bbox) for i, s in enumerate(segments)]
    total = None
    if calcium is not None:
        total = float(sum(calcium))
        calcium_note = f"h_calc (Eq. 5) summed over the mask dilated by {zone_mm:g} mm"
    return BACQuantification(
        present=bool(stats), length_mm=float(sum(s.length_mm for s in stats)),
        skeleton_length_mm=float(sum(s.skeleton_mm for s in segments)), n_segments=len(stats),
        area_mm2=float(sum(s.area_mm2 for s in stats)), calcium_mg=total,
        calcium_volume_mm3=None if total is None else total / HYDROXYAPATITE_DENSITY_MG_PER_MM3,
        calcium_note=calcium_note, spacing_mm=sp, plane_magnification=plane[0], measured_at=plane[1],
        segments=stats)


def _in_breast(sp: tuple[float, float], plane_magnification: float) -> tuple[float, float]:
    """The spacing in the breast: the image's divided by the magnification onto the detector."""
    return sp[0] / plane_magnification, sp[1] / plane_magnification


def measurement_plane(meta: Mapping | None, plane_magnification: float | None = None) -> tuple[float, str]:
    """``(plane_magnification, measured_at)`` from an argument, else the reader's meta, else (1, "as given")."""
    meta = meta or {}
    if plane_magnification is None:
        plane_magnification = meta.get("plane_magnification")
        if plane_magnification is None:
            return 1.0, "as given"
        measured_at = meta.get("measured_at") or "as given"
        if isinstance(measured_at, (list, tuple)):  # a collated batch of one
            measured_at = measured_at[0]
        return float(np.asarray(plane_magnification).ravel()[0]), str(measured_at)
    f = float(plane_magnification)
    if not (math.isfinite(f) and 1.0 <= f <= 4.0):
        raise ValueError(f"plane_magnification must be within 1-4 (a projection's), got {plane_magnification!r}")
    return f, "breast plane (plane_magnification argument)" if f != 1.0 else "as given"


def quantify_mask(mask, spacing_mm=None, calc_thickness=None, *, min_segment_mm: float = 0.0,
                  prune_factor: float = 2.0, end_correction: bool = True, zone_mm: float = 0.2,
                  calcium_note: str = "", plane_magnification: float | None = None) -> BACQuantification:
    """Quantify a BAC mask (see the module docstring).

    Each segment is measured in its own bounding box, so a sparse full-size mask costs little.
    Zone pixels shared by two segments count once (for the first).

    Args:
        mask: (H, W) or (1, H, W) binary mask (numpy, torch or MetaTensor).
        spacing_mm: (row, col) mm; default ``mask.meta["spacing_mm"]``.
        calc_thickness: h_calc map (mm) on the mask's grid for the calcium mass; None: no mass.
        min_segment_mm: segments shorter than this are ignored (not counted, not measured).
        prune_factor, end_correction: skeleton corrections (:func:`centreline_skeleton`).
        zone_mm: dilation of the mask for the calcium sum (at most 3 mm, at the detector).
        calcium_note: stored when ``calc_thickness`` is None (why there is no mass).
        plane_magnification: sizes are measured with ``spacing_mm / plane_magnification`` (1-4);
            default ``mask.meta``'s (the reader's, see the module docstring), else 1.
    """
    mask_meta = getattr(mask, "meta", None) or {}
    if spacing_mm is None:
        spacing_mm = mask_meta.get("spacing_mm")
    sp = as_spacing(spacing_mm)
    plane = measurement_plane(mask_meta, plane_magnification)
    m = _mask_hw(mask)
    h = None
    if calc_thickness is not None:
        h = _mask_hw_float(calc_thickness)
        if h.shape != m.shape:
            raise ValueError(f"calc_thickness shape {h.shape} differs from the mask's {m.shape}")
    disk = _zone_disk(sp, zone_mm)
    msp = _in_breast(sp, plane[0])
    segments = _measure_segments(m, msp, disk, min_segment_mm, prune_factor, end_correction)
    calcium = _segment_calcium(segments, h, msp, disk) if h is not None else None
    return _quantification(segments, calcium, sp, plane, zone_mm, calcium_note)


def quantify_image(image, mask, breast_map=None, *, spacing_mm=None, meta: Mapping | None = None,
                   calcium: bool = True, min_segment_mm: float = 0.0, prune_factor: float = 2.0,
                   end_correction: bool = True, zone_mm: float = 0.2,
                   density_kwargs: Mapping | None = None,
                   plane_magnification: float | None = None) -> BACQuantification:
    """:func:`quantify_mask` plus the calcium mass from the raw image where physics allows.

    ``density_kwargs`` go to :class:`~monai_bac.transforms.DensityMap` (e.g. ``{"model": "eq4"}``
    for a scatter-free, monochromatic image such as the ideal phantom). ``plane_magnification``:
    as :func:`quantify_mask`, default from ``meta`` (the image's).

    The mass needs a raw (FOR PROCESSING) image and its KVP (0018,0060) (with anode / filter for
    the effective energy); otherwise ``calcium_mg`` is None and ``calcium_note`` names the reason.
    The h_calc map (:func:`calc_thickness_near_mask`) is computed on a second thread while the
    segments are measured (both spend their time in numpy / scipy, which release the GIL).
    """
    from monai_bac.physics import MissingPhysicsError

    meta = dict(meta if meta is not None else getattr(image, "meta", {}) or {})
    if spacing_mm is None:
        spacing_mm = meta.get("spacing_mm")
    sp = as_spacing(spacing_mm)
    plane = measurement_plane(meta, plane_magnification)
    msp = _in_breast(sp, plane[0])
    m = _mask_hw(mask)
    disk = _zone_disk(sp, zone_mm)
    note = ""
    if not calcium:
        note = "calcium not requested"
    elif meta.get("is_raw") is False:
        note = "no calcium mass: processed (FOR PRESENTATION) image; Eq. 5 needs raw detector values"
    h_future = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="monai-bac-hcalc") as pool:
        if not note and m.any():
            h_future = pool.submit(calc_thickness_near_mask, image, m, breast_map, spacing_mm, meta,
                                   density_kwargs=density_kwargs)
        segments = _measure_segments(m, msp, disk, min_segment_mm, prune_factor, end_correction)
    masses = None if note else []  # no segment: 0 mg
    if h_future is not None:
        try:
            masses = _segment_calcium(segments, h_future.result(), msp, disk)
        except MissingPhysicsError as e:
            masses, note = None, f"no calcium mass: {e}"
    return _quantification(segments, masses, sp, plane, zone_mm, note)


# ------------------------------------------------------------------------------ breast / patient
def _is_diagnostic(row: Mapping) -> bool:
    return bool(diagnostic_view_reason(row.get("view_modifiers"), _num(row.get("magnification"))))


def _view_key(row: Mapping) -> str | None:
    """"LCC", "LMLO", "RCC" or "RMLO" for a screening view; None otherwise (a diagnostic view too)."""
    if _is_diagnostic(row):
        return None
    lat, view = str(row.get("laterality") or "").upper(), str(row.get("view") or "").upper()
    key = f"{lat}{view}"
    return key if key in VIEW_NAMES else None


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _truthy(v) -> bool | None:
    if v is None or v == "":
        return None
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "y")
    return bool(v)


def summarise_breasts(rows: Iterable[Mapping], present_key: str = "present", length_key: str = "length_mm",
                      calcium_key: str = "calcium_mg") -> list[dict]:
    """One row per (patient, laterality) from per-image rows (``patient_id``, ``laterality``,
    ``view``, ``view_modifiers``, ``magnification`` and the quantification fields). Rows whose
    ``present`` is missing (failed images) are ignored, diagnostic views counted in
    ``n_diagnostic_views`` and otherwise left out. Length and calcium: the largest over the
    breast's screening views."""
    groups: dict[tuple, list] = defaultdict(list)
    diagnostic: dict[tuple, int] = defaultdict(int)
    for row in rows:
        if _truthy(row.get(present_key)) is None:
            continue
        breast = (str(row.get("patient_id")), str(row.get("laterality") or "").upper())
        if _is_diagnostic(row):
            diagnostic[breast] += 1
        else:
            groups[breast].append(row)
    out = []
    for (pid, lat), items in sorted(groups.items()):
        lengths = [x for x in (_num(r.get(length_key)) for r in items) if x is not None]
        calcium = [x for x in (_num(r.get(calcium_key)) for r in items) if x is not None]
        out.append(dict(
            patient_id=pid, laterality=lat,
            views=",".join(sorted(str(r.get("view") or "?").upper() for r in items)),
            present=any(_truthy(r.get(present_key)) for r in items),
            length_mm=max(lengths) if lengths else None,
            length_mm_mean=float(np.mean(lengths)) if lengths else None,
            calcium_mg=max(calcium) if calcium else None,
            n_images=len(items), n_diagnostic_views=diagnostic[(pid, lat)]))
    return out


def summarise_patients(rows: Iterable[Mapping], present_key: str = "present", length_key: str = "length_mm",
                       calcium_key: str = "calcium_mg") -> list[dict]:
    """One summary row per patient: views available, whether all four are, BAC presence per view
    and per breast, and the patient's length / calcium (sum over breasts of each breast's
    largest view value); screening views only, the diagnostic ones counted in
    ``n_diagnostic_views`` (see :func:`summarise_breasts`)."""
    rows = list(rows)
    breasts = summarise_breasts(rows, present_key, length_key, calcium_key)
    by_patient: dict[str, dict] = {}
    for row in rows:
        pid = str(row.get("patient_id"))
        p = by_patient.setdefault(pid, dict(patient_id=pid, n_images=0, n_failed=0, n_diagnostic_views=0,
                                            **{f"{v}_present": None for v in VIEW_NAMES},
                                            **{f"{v}_length_mm": None for v in VIEW_NAMES}))
        p["n_images"] += 1
        present = _truthy(row.get(present_key))
        if present is None:
            p["n_failed"] += 1
            continue
        if _is_diagnostic(row):
            p["n_diagnostic_views"] += 1
            continue
        key = _view_key(row)
        if key:
            prev = p[f"{key}_present"]
            p[f"{key}_present"] = bool(present) or bool(prev)
            length = _num(row.get(length_key))
            if length is not None:
                p[f"{key}_length_mm"] = max(length, p[f"{key}_length_mm"] or 0.0)
    for p in by_patient.values():
        own = [b for b in breasts if b["patient_id"] == p["patient_id"]]
        p["views_available"] = ",".join(v for v in VIEW_NAMES if p[f"{v}_present"] is not None)
        p["complete_4_views"] = all(p[f"{v}_present"] is not None for v in VIEW_NAMES)
        p["left_present"] = next((b["present"] for b in own if b["laterality"] == "L"), None)
        p["right_present"] = next((b["present"] for b in own if b["laterality"] == "R"), None)
        p["present"] = any(b["present"] for b in own) if own else None
        p["n_breasts_with_bac"] = sum(bool(b["present"]) for b in own)
        lengths = [b["length_mm"] for b in own if b["length_mm"] is not None]
        calcium = [b["calcium_mg"] for b in own if b["calcium_mg"] is not None]
        p["length_mm"] = float(sum(lengths)) if lengths else None
        p["calcium_mg"] = float(sum(calcium)) if calcium else None
    return [by_patient[k] for k in sorted(by_patient)]


# ------------------------------------------------------------------------------------- cohort
def weighted_f1(reference: Sequence[bool], other: Sequence[bool]) -> float:
    """F1 of ``other`` against ``reference`` per class, averaged with the reference's class counts
    (``sklearn.metrics.f1_score(reference, other, average="weighted", zero_division=0)``)."""
    a = np.asarray(reference, bool)
    b = np.asarray(other, bool)
    if a.size == 0:
        return float("nan")
    total = 0.0
    for cls in (False, True):
        support = int((a == cls).sum())
        if support == 0:
            continue
        tp = int(((a == cls) & (b == cls)).sum())
        pred = int((b == cls).sum())
        precision = tp / pred if pred else 0.0
        recall = tp / support
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        total += support * f1
    return total / a.size


_PAIRS = {
    "left_right": (("LCC", "RCC"), ("LMLO", "RMLO")),
    "cc_mlo": (("LCC", "LMLO"), ("RCC", "RMLO")),
}


def presence_agreement(rows: Iterable[Mapping], present_key: str = "present") -> dict[str, Any]:
    """Fig. 10 of the paper: presence agreement L vs R and CC vs MLO over complete patients.

    Args:
        rows: per-image rows with ``patient_id``, ``laterality`` (L/R), ``view`` (CC/MLO) and a
            presence field ``present_key`` (bool, or None / missing for a failed image). A view
            imaged twice (a technical repeat) is present when either image is, as in
            :func:`summarise_patients`; diagnostic views are left out.
        present_key: which presence to analyse (e.g. ``"present"`` for predictions,
            ``"annotation_present"`` for annotations).

    Returns:
        ``{"n_patients", "n_incomplete", "left_right": {...}, "cc_mlo": {...}}``, each comparison
        with ``confusion`` (2 x 2, rows: left / CC, columns: right / MLO; index 0 absent,
        1 present), ``weighted_f1``, ``agreement`` (fraction of concordant pairs), ``n_pairs``
        and ``discordant`` (the patients and views that disagree).
    """
    views: dict[str, dict[str, bool | None]] = defaultdict(dict)
    for row in rows:
        key = _view_key(row)
        if key is None:
            continue
        seen, present = views[str(row.get("patient_id"))].get(key), _truthy(row.get(present_key))
        views[str(row.get("patient_id"))][key] = present if seen is None else seen or bool(present)
    complete = {p: v for p, v in views.items() if all(v.get(k) is not None for k in VIEW_NAMES)}
    out: dict[str, Any] = {"present_key": present_key, "n_patients": len(complete),
                           "n_incomplete": len(views) - len(complete)}
    for name, pairs in _PAIRS.items():
        a, b, disc = [], [], []
        for pid in sorted(complete):
            for first, second in pairs:
                x, y = bool(complete[pid][first]), bool(complete[pid][second])
                a.append(x)
                b.append(y)
                if x != y:
                    disc.append({"patient_id": pid, first: x, second: y})
        conf = np.zeros((2, 2), int)
        for x, y in zip(a, b):
            conf[int(x), int(y)] += 1
        out[name] = {"confusion": conf.tolist(), "labels": ["absent", "present"],
                     "rows": "left" if name == "left_right" else "CC",
                     "columns": "right" if name == "left_right" else "MLO",
                     "weighted_f1": weighted_f1(a, b), "agreement": float(np.mean(np.equal(a, b))) if a else float("nan"),
                     "n_pairs": len(a), "discordant": disc}
    return out


def cohort_analysis(rows: Iterable[Mapping], sources: Mapping[str, str] | None = None) -> dict[str, Any]:
    """:func:`presence_agreement` for several presence fields, e.g. annotations and predictions.

    ``sources`` maps a name to a row field; default ``{"prediction": "present",
    "annotation": "annotation_present"}``, a source being skipped when no row has its field.
    """
    rows = list(rows)
    sources = dict(sources or {"prediction": "present", "annotation": "annotation_present"})
    out = {}
    for name, key in sources.items():
        if any(_truthy(r.get(key)) is not None for r in rows):
            out[name] = presence_agreement(rows, key)
    return out

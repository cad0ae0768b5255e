"""Simulated third-party annotation (TPA) with the errors the paper describes (Fig. 4, Sec. 4.2).

A non-expert annotator brushes BAC with a coarse brush, misses some calcified runs and
under-segments others, and brushes look-alikes as BAC: micro-calcification clusters, linear
dense-tissue strands and the edges of dense tissue. Each error happens at a configured rate,
and the number of each is exact per image (``round(rate * available)``) so it can be checked.
Strokes can also merge a look-alike with a nearby calcified run into one connected component
(``merge_rate``), and a *systematic* annotator brushes every look-alike of its kinds with one
brush width (``profile="systematic"``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial import cKDTree

from monai_bac.phantom.anatomy import Artery, Cluster, DenseEdge, Strand
from monai_bac.phantom.curves import path_length, polyline_band
from monai_bac.phantom.grid import Grid

__all__ = ["TPAConfig", "SOURCE_CODES", "simulate_annotation"]

#: Codes of the ``tpa_source`` truth map: which object each annotated pixel was brushed for.
SOURCE_CODES = {"bac": 1, "microcalc": 2, "strand": 3, "edge": 4}


@dataclass(frozen=True)
class TPAConfig:
    """Error rates and habits of the simulated third-party annotator.

    ``profile="random"`` (default) brushes each kind of look-alike at its rate with a brush of
    random width; ``profile="systematic"`` brushes *every* look-alike of ``systematic_kinds``
    with one brush width (``systematic_halfwidth_mm``): an annotator with a consistent habit.
    ``merge_rate`` is the fraction of brushed look-alikes lying within ``merge_reach_mm`` of an
    annotated calcified run whose stroke carries on to the run: one connected component that
    holds both (the look-alike part is still coded as the look-alike in ``tpa_source``).
    """

    miss_rate: float = 0.15  # calcified runs not annotated at all
    under_rate: float = 0.3  # annotated runs of which only a part is brushed
    under_fraction: tuple[float, float] = (0.45, 0.8)  # the part that is brushed
    fp_microcalc_rate: float = 0.6  # micro-calcification clusters brushed as BAC
    fp_strand_rate: float = 0.5  # dense-tissue strands brushed as BAC
    fp_edge_rate: float = 0.5  # dense-tissue edges brushed as BAC
    brush_halfwidth_mm: tuple[float, float] = (0.6, 1.4)  # coarse brush
    merge_rate: float = 0.0  # look-alike strokes carried on to a nearby annotated calcified run
    merge_reach_mm: float = 8.0  # how far a look-alike may be from the run to be merged with it
    profile: str = "random"  # "random" or "systematic"
    systematic_kinds: tuple[str, ...] = ("microcalc", "strand", "edge")
    systematic_halfwidth_mm: float = 1.0

    def __post_init__(self):
        for name in ("miss_rate", "under_rate", "fp_microcalc_rate", "fp_strand_rate", "fp_edge_rate", "merge_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"TPAConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.profile not in ("random", "systematic"):
            raise ValueError(f"TPAConfig.profile must be 'random' or 'systematic', got {self.profile!r}")
        unknown = set(self.systematic_kinds) - {"microcalc", "strand", "edge"}
        if unknown:
            raise ValueError(f"TPAConfig.systematic_kinds: unknown {sorted(unknown)}; use microcalc, strand, edge")
        if not (self.systematic_halfwidth_mm > 0 and self.merge_reach_mm > 0):
            raise ValueError("TPAConfig.systematic_halfwidth_mm and merge_reach_mm must be > 0 mm")

    def to_dict(self) -> dict:
        return asdict(self)


def _subpath(points: np.ndarray, start: float, stop: float) -> np.ndarray:
    """The part of a polyline between two arc lengths (mm), resampled at the original step."""
    cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    t = np.concatenate([[start], cum[(cum > start) & (cum < stop)], [stop]])
    return np.column_stack([np.interp(t, cum, points[:, 0]), np.interp(t, cum, points[:, 1])])


def _pick(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    k = int(round(rate * n))
    return np.sort(rng.choice(n, size=k, replace=False)) if k else np.zeros(0, int)


def simulate_annotation(
    rng: np.random.Generator,
    grid: Grid,
    config: TPAConfig,
    arteries: list[Artery],
    clusters: list[Cluster],
    strands: list[Strand],
    edges: list[DenseEdge],
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Brush the TPA; returns (mask uint8, source uint8 codes, record of what was done)."""
    source = np.zeros(grid.shape[0] * grid.shape[1], np.uint8)
    record: dict = {"config": config.to_dict()}
    systematic = config.profile == "systematic"
    widths: list[float] = []

    def brush(points: np.ndarray, code: int) -> None:
        half = config.systematic_halfwidth_mm if systematic else rng.uniform(*config.brush_halfwidth_mm)
        widths.append(float(half))
        band = polyline_band(points, half, grid)
        hit = band.index[source[band.index] == 0]
        source[hit] = code

    def rate(kind: str, value: float) -> float:
        return 1.0 if systematic and kind in config.systematic_kinds else value

    runs = [(a, r) for a in arteries for r in a.runs]
    missed = set(_pick(rng, len(runs), config.miss_rate).tolist())
    kept = [i for i in range(len(runs)) if i not in missed]
    under = set(np.asarray(kept)[_pick(rng, len(kept), config.under_rate)].tolist()) if kept else set()
    annotated_length = 0.0
    bac_paths = []
    for i in kept:
        art, run = runs[i]
        start, stop = run.start, run.stop
        if i in under:
            frac = rng.uniform(*config.under_fraction)
            start = rng.uniform(start, stop - frac * (stop - start))
            stop = start + frac * (run.stop - run.start)
        bac_paths.append(_subpath(art.points, start, stop))
        brush(bac_paths[-1], SOURCE_CODES["bac"])
        annotated_length += stop - start
    record.update(bac_runs=len(runs), bac_missed=len(missed), bac_under=len(under),
                  bac_annotated_length_mm=annotated_length)

    vessel_pts = np.concatenate([a.points for a in arteries]) if arteries else np.zeros((0, 2))
    tree = cKDTree(vessel_pts) if len(vessel_pts) else None
    strokes: list[tuple[str, int, np.ndarray]] = []  # look-alike strokes: (kind, index, centreline)

    chosen = _pick(rng, len(clusters), rate("microcalc", config.fp_microcalc_rate))
    for j in chosen:
        specks = clusters[j].specks[:, :2]
        centred = specks - specks.mean(0)
        axis = np.linalg.svd(centred, full_matrices=False)[2][0] if len(specks) > 1 else np.array([1.0, 0.0])
        strokes.append(("microcalc", int(j), specks[np.argsort(centred @ axis)]))
        brush(strokes[-1][2], SOURCE_CODES["microcalc"])
    record.update(microcalc_clusters=len(clusters), microcalc_brushed=len(chosen))

    chosen = _pick(rng, len(strands), rate("strand", config.fp_strand_rate))
    for j in chosen:
        pts = strands[j].points
        if systematic:  # the whole strand
            strokes.append(("strand", int(j), pts))
        else:
            length = path_length(pts)
            frac = rng.uniform(0.6, 1.0)
            start = rng.uniform(0.0, (1.0 - frac) * length)
            strokes.append(("strand", int(j), _subpath(pts, start, start + frac * length)))
        brush(strokes[-1][2], SOURCE_CODES["strand"])
    record.update(strands=len(strands), strands_brushed=len(chosen))

    chosen, brushed = _pick(rng, len(edges), rate("edge", config.fp_edge_rate)), 0
    for j in chosen:
        ring = edges[j].outline
        n = len(ring)
        arc_mm = 15.0 if systematic else rng.uniform(8.0, 25.0)
        span = max(2, int(n * arc_mm / max(path_length(np.vstack([ring, ring[:1]])), 1e-6)))
        best, fallback = None, (-1.0, None)
        for _ in range(20):  # an arc that does not touch an artery, so the error stays separate
            k = rng.integers(n)
            arc = ring[np.arange(k, k + span) % n]
            gap = tree.query(arc)[0].min() if tree is not None else np.inf
            if gap > 4.0:
                best = arc
                break
            fallback = max(fallback, (gap, arc), key=lambda g: g[0])
        if best is None and systematic:  # this annotator brushes every edge, touching or not
            best = fallback[1]
        if best is not None:
            strokes.append(("edge", int(j), best))
            brush(best, SOURCE_CODES["edge"])
            brushed += 1
    record.update(edges=len(edges), edges_brushed=brushed)

    merged: list[tuple[str, int]] = []
    eligible: list[tuple[str, int, np.ndarray]] = []
    if config.merge_rate > 0 and bac_paths and strokes:
        bac_pts = np.concatenate(bac_paths)
        bac_tree = cKDTree(bac_pts)
        for kind, j, pts in strokes:
            dist, idx = bac_tree.query(pts)
            i = int(np.argmin(dist))
            if dist[i] <= config.merge_reach_mm:
                eligible.append((kind, j, np.vstack([pts[i], bac_pts[idx[i]]])))
        for k in _pick(rng, len(eligible), config.merge_rate):
            kind, j, bridge = eligible[k]
            brush(bridge, SOURCE_CODES[kind])  # the stroke slides on to the calcified run
            merged.append((kind, j))
    record.update(profile=config.profile, merge_eligible=len(eligible), merged_strokes=len(merged), merged=merged,
                  brush_halfwidths_mm=sorted(set(round(w, 6) for w in widths)))

    source = source.reshape(grid.shape)
    return (source > 0).astype(np.uint8), source, record

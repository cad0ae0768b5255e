"""Simulated third-party annotation (TPA) with the errors the paper describes (Fig. 4, Sec. 4.2).

A non-expert annotator brushes BAC with a coarse brush, misses some calcified runs and
under-segments others, and brushes look-alikes as BAC: micro-calcification clusters, linear
dense-tissue strands and the edges of dense tissue. Each error happens at a configured rate,
and the number of each is exact per image (``round(rate * available)``) so it can be checked.
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
    """Error rates of the simulated third-party annotator."""

    miss_rate: float = 0.15  # calcified runs not annotated at all
    under_rate: float = 0.3  # annotated runs of which only a part is brushed
    under_fraction: tuple[float, float] = (0.45, 0.8)  # the part that is brushed
    fp_microcalc_rate: float = 0.6  # micro-calcification clusters brushed as BAC
    fp_strand_rate: float = 0.5  # dense-tissue strands brushed as BAC
    fp_edge_rate: float = 0.5  # dense-tissue edges brushed as BAC
    brush_halfwidth_mm: tuple[float, float] = (0.6, 1.4)  # coarse brush

    def __post_init__(self):
        for name in ("miss_rate", "under_rate", "fp_microcalc_rate", "fp_strand_rate", "fp_edge_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"TPAConfig.{name} must be in [0, 1], got {getattr(self, name)}")

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

    def brush(points: np.ndarray, code: int) -> None:
        half = rng.uniform(*config.brush_halfwidth_mm)
        band = polyline_band(points, half, grid)
        hit = band.index[source[band.index] == 0]
        source[hit] = code

    runs = [(a, r) for a in arteries for r in a.runs]
    missed = set(_pick(rng, len(runs), config.miss_rate).tolist())
    kept = [i for i in range(len(runs)) if i not in missed]
    under = set(np.asarray(kept)[_pick(rng, len(kept), config.under_rate)].tolist()) if kept else set()
    annotated_length = 0.0
    for i in kept:
        art, run = runs[i]
        start, stop = run.start, run.stop
        if i in under:
            frac = rng.uniform(*config.under_fraction)
            start = rng.uniform(start, stop - frac * (stop - start))
            stop = start + frac * (run.stop - run.start)
        brush(_subpath(art.points, start, stop), SOURCE_CODES["bac"])
        annotated_length += stop - start
    record.update(bac_runs=len(runs), bac_missed=len(missed), bac_under=len(under),
                  bac_annotated_length_mm=annotated_length)

    vessel_pts = np.concatenate([a.points for a in arteries]) if arteries else np.zeros((0, 2))
    tree = cKDTree(vessel_pts) if len(vessel_pts) else None

    chosen = _pick(rng, len(clusters), config.fp_microcalc_rate)
    for j in chosen:
        specks = clusters[j].specks[:, :2]
        centred = specks - specks.mean(0)
        axis = np.linalg.svd(centred, full_matrices=False)[2][0] if len(specks) > 1 else np.array([1.0, 0.0])
        brush(specks[np.argsort(centred @ axis)], SOURCE_CODES["microcalc"])
    record.update(microcalc_clusters=len(clusters), microcalc_brushed=len(chosen))

    chosen = _pick(rng, len(strands), config.fp_strand_rate)
    for j in chosen:
        pts = strands[j].points
        length = path_length(pts)
        frac = rng.uniform(0.6, 1.0)
        start = rng.uniform(0.0, (1.0 - frac) * length)
        brush(_subpath(pts, start, start + frac * length), SOURCE_CODES["strand"])
    record.update(strands=len(strands), strands_brushed=len(chosen))

    chosen, brushed = _pick(rng, len(edges), config.fp_edge_rate), 0
    for j in chosen:
        ring = edges[j].outline
        n = len(ring)
        span = max(2, int(n * rng.uniform(8.0, 25.0) / max(path_length(np.vstack([ring, ring[:1]])), 1e-6)))
        best = None
        for _ in range(20):  # an arc that does not touch an artery, so the error stays separate
            k = rng.integers(n)
            arc = ring[np.arange(k, k + span) % n]
            if tree is None or tree.query(arc)[0].min() > 4.0:
                best = arc
                break
        if best is not None:
            brush(best, SOURCE_CODES["edge"])
            brushed += 1
    record.update(edges=len(edges), edges_brushed=brushed)

    source = source.reshape(grid.shape)
    return (source > 0).astype(np.uint8), source, record

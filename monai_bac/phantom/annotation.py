"""Simulated third-party annotation (TPA) with the errors the paper describes (Fig. 4, Sec. 4.2).

A non-expert annotator brushes BAC with a coarse brush, misses some calcified runs and
under-segments others, and brushes look-alikes as BAC: micro-calcification clusters, linear
dense-tissue strands and the edges of dense tissue. Each error happens at a configured rate,
and the number of each is exact per image (``round(rate * available)``) so it can be checked.
Strokes can also merge a look-alike with a nearby calcified run into one connected component
(``merge_rate``), and a *systematic* annotator brushes every look-alike of its kinds with one
brush width (``systematicity=1``, ``profile="systematic"``); ``systematicity`` between 0 and 1
mixes the two habits look-alike by look-alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial import cKDTree

from monai_bac.phantom.anatomy import Artery, Cluster, DenseEdge, Strand
from monai_bac.phantom.curves import path_length, polyline_band
from monai_bac.phantom.grid import Grid

__all__ = ["TPAConfig", "SOURCE_CODES", "PROFILES", "simulate_annotation", "profile_of"]

#: Codes of the ``tpa_source`` truth map: which object each annotated pixel was brushed for.
SOURCE_CODES = {"bac": 1, "microcalc": 2, "strand": 3, "edge": 4}
#: annotator profiles, by systematicity: 0, between 0 and 1, 1
PROFILES = ("random", "mixed", "systematic")


def profile_of(systematicity: float) -> str:
    """The annotator profile of a systematicity: "random" (0), "systematic" (1) or "mixed"."""
    return "random" if systematicity == 0.0 else "systematic" if systematicity == 1.0 else "mixed"


@dataclass(frozen=True)
class TPAConfig:
    """Error rates and habits of the simulated third-party annotator.

    ``systematicity`` s in [0, 1] says how consistent the annotator's habit is. s = 0 (default,
    ``profile="random"``) brushes each kind of look-alike at its rate with a brush of random
    width; s = 1 (``profile="systematic"``) brushes *every* look-alike of ``systematic_kinds``
    (the whole strand, a 15 mm arc of an edge) with one brush width
    (``systematic_halfwidth_mm``): an annotator with a consistent habit, which a network can
    learn. In between (``profile="mixed"``) each stroke - every look-alike, and every annotated
    calcified run - draws its habit on its own: systematic with probability s (Bernoulli(s)),
    random otherwise. A look-alike of ``systematic_kinds`` with the systematic habit is always
    brushed, in the systematic way; of those with the random habit ``round(rate * n)`` are
    brushed, in the random way (so a kind is brushed at about s + (1 - s) * rate). A stroke's
    habit also sets its brush width. s = 0 and s = 1 draw no habits: their annotation is
    bit-identical to the random and systematic profiles. ``profile`` is derived from s (passing
    ``profile="systematic"`` alone sets s = 1).
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
    profile: str = "random"  # "random" (s = 0), "systematic" (s = 1) or "mixed": derived from systematicity
    systematicity: float = 0.0  # probability that a stroke follows the systematic habit
    systematic_kinds: tuple[str, ...] = ("microcalc", "strand", "edge")
    systematic_halfwidth_mm: float = 1.0

    def __post_init__(self):
        for name in ("miss_rate", "under_rate", "fp_microcalc_rate", "fp_strand_rate", "fp_edge_rate", "merge_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"TPAConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.profile not in PROFILES:
            raise ValueError(f"TPAConfig.profile must be one of {PROFILES}, got {self.profile!r}")
        s = float(self.systematicity)
        if self.profile == "systematic" and s == 0.0:  # the profile named alone
            s = 1.0
        if not 0.0 <= s <= 1.0:
            raise ValueError(f"TPAConfig.systematicity must be in [0, 1], got {self.systematicity}")
        derived = profile_of(s)
        if self.profile != "random" and self.profile != derived:
            raise ValueError(f"TPAConfig.profile={self.profile!r} contradicts systematicity={s} ({derived!r})")
        object.__setattr__(self, "systematicity", s)
        object.__setattr__(self, "profile", derived)
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
    s = config.systematicity
    widths: list[float] = []
    habits = {"bac": 0, "microcalc": 0, "strand": 0, "edge": 0}  # strokes drawn with the systematic habit

    def brush(points: np.ndarray, code: int, systematic: bool) -> None:
        half = config.systematic_halfwidth_mm if systematic else rng.uniform(*config.brush_halfwidth_mm)
        widths.append(float(half))
        band = polyline_band(points, half, grid)
        hit = band.index[source[band.index] == 0]
        source[hit] = code

    def draw_habits(n: int) -> np.ndarray:
        """Which of n strokes follow the systematic habit: Bernoulli(s); no draw at s = 0 or 1."""
        return rng.random(n) < s if 0.0 < s < 1.0 else np.full(n, s == 1.0)

    def choose(kind: str, n: int, value: float) -> tuple[np.ndarray, np.ndarray]:
        """The look-alikes of a kind that are brushed, and the habit of each."""
        habit = draw_habits(n)
        if kind not in config.systematic_kinds or s == 0.0:
            return _pick(rng, n, value), habit
        if s == 1.0:  # every one (the same draws as the systematic profile has always made)
            return _pick(rng, n, 1.0), habit
        steady, casual = np.flatnonzero(habit), np.flatnonzero(~habit)
        return np.sort(np.concatenate([steady, casual[_pick(rng, len(casual), value)]])).astype(int), habit

    runs = [(a, r) for a in arteries for r in a.runs]
    missed = set(_pick(rng, len(runs), config.miss_rate).tolist())
    kept = [i for i in range(len(runs)) if i not in missed]
    under = set(np.asarray(kept)[_pick(rng, len(kept), config.under_rate)].tolist()) if kept else set()
    annotated_length = 0.0
    bac_paths = []
    bac_habit = draw_habits(len(kept))
    for i, steady in zip(kept, bac_habit):
        art, run = runs[i]
        start, stop = run.start, run.stop
        if i in under:
            frac = rng.uniform(*config.under_fraction)
            start = rng.uniform(start, stop - frac * (stop - start))
            stop = start + frac * (run.stop - run.start)
        bac_paths.append(_subpath(art.points, start, stop))
        brush(bac_paths[-1], SOURCE_CODES["bac"], bool(steady))
        habits["bac"] += int(steady)
        annotated_length += stop - start
    record.update(bac_runs=len(runs), bac_missed=len(missed), bac_under=len(under),
                  bac_annotated_length_mm=annotated_length)

    vessel_pts = np.concatenate([a.points for a in arteries]) if arteries else np.zeros((0, 2))
    tree = cKDTree(vessel_pts) if len(vessel_pts) else None
    strokes: list[tuple[str, int, np.ndarray]] = []  # look-alike strokes: (kind, index, centreline)
    steady_of: dict[tuple[str, int], bool] = {}  # the habit of each look-alike stroke

    chosen, habit = choose("microcalc", len(clusters), config.fp_microcalc_rate)
    for j in chosen:
        specks = clusters[j].specks[:, :2]
        centred = specks - specks.mean(0)
        axis = np.linalg.svd(centred, full_matrices=False)[2][0] if len(specks) > 1 else np.array([1.0, 0.0])
        strokes.append(("microcalc", int(j), specks[np.argsort(centred @ axis)]))
        brush(strokes[-1][2], SOURCE_CODES["microcalc"], bool(habit[j]))
        habits["microcalc"] += int(habit[j])
        steady_of[("microcalc", int(j))] = bool(habit[j])
    record.update(microcalc_clusters=len(clusters), microcalc_brushed=len(chosen))

    chosen, habit = choose("strand", len(strands), config.fp_strand_rate)
    for j in chosen:
        pts = strands[j].points
        if habit[j]:  # the whole strand
            strokes.append(("strand", int(j), pts))
        else:
            length = path_length(pts)
            frac = rng.uniform(0.6, 1.0)
            start = rng.uniform(0.0, (1.0 - frac) * length)
            strokes.append(("strand", int(j), _subpath(pts, start, start + frac * length)))
        brush(strokes[-1][2], SOURCE_CODES["strand"], bool(habit[j]))
        habits["strand"] += int(habit[j])
        steady_of[("strand", int(j))] = bool(habit[j])
    record.update(strands=len(strands), strands_brushed=len(chosen))

    (chosen, habit), brushed = choose("edge", len(edges), config.fp_edge_rate), 0
    for j in chosen:
        ring = edges[j].outline
        n = len(ring)
        arc_mm = 15.0 if habit[j] else rng.uniform(8.0, 25.0)
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
        if best is None and habit[j]:  # this annotator brushes every edge, touching or not
            best = fallback[1]
        if best is not None:
            strokes.append(("edge", int(j), best))
            brush(best, SOURCE_CODES["edge"], bool(habit[j]))
            habits["edge"] += int(habit[j])
            steady_of[("edge", int(j))] = bool(habit[j])
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
            brush(bridge, SOURCE_CODES[kind], steady_of[(kind, j)])  # the stroke slides on to the calcified run
            merged.append((kind, j))
    record.update(profile=config.profile, systematicity=s, systematic_strokes=habits, merge_eligible=len(eligible),
                  merged_strokes=len(merged), merged=merged, brush_halfwidths_mm=sorted(set(round(w, 6) for w in widths)),
                  bac_brush_halfwidths_mm=[round(w, 6) for w in widths[:len(bac_paths)]])

    source = source.reshape(grid.shape)
    return (source > 0).astype(np.uint8), source, record

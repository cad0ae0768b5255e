"""What the phantom's breast contains: dense tissue, arteries with BAC, and the distractors.

Every structure is a thickness map along the beam (mm) of one material, so the image is
formed by Beer-Lambert physics in :mod:`monai_bac.phantom.detector`:

* dense (fibroglandular) tissue: a smooth power-law random field (P(f) ~ f^-beta, beta ~ 3
  as measured on mammograms), with a few sharp-edged dense plateaus (dense-tissue edges);
* arteries: tapered cylinders of soft tissue along smooth branching paths; BAC is a
  calcified shell in the vessel wall (medial calcification), whose chord through the beam
  gives the tram-track look, continuous or broken into beads (segmental), with gaps;
* micro-calcification clusters (hydroxyapatite specks) and linear dense-tissue strands.

Thin structures are averaged over the pixel across their axis, so phantoms at coarse
spacings keep the right integrated thickness.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from monai_bac.phantom.curves import PolylineBand, path_length, polyline_band, random_path
from monai_bac.phantom.geometry import BreastGeometry
from monai_bac.phantom.grid import Grid, gaussian_blur

__all__ = ["Artery", "CalcifiedRun", "Cluster", "Strand", "DenseEdge", "dense_tissue", "grow_arteries",
           "calcify", "render_arteries", "place_clusters", "render_clusters", "grow_strands",
           "render_strands", "dense_plateaus", "calcified_sites", "place_clusters_near", "grow_strands_across"]

_SUB = np.linspace(-0.4, 0.4, 5)  # sub-pixel offsets across a thin structure (fraction of a pixel)


def sample_pixels(rng: np.random.Generator, mask: np.ndarray, n: int, tries: int = 200) -> np.ndarray:
    """Up to ``n`` random (row, col) pixels where ``mask`` is True (rejection sampling: cheaper
    than listing every pixel of a full-size mask)."""
    h, w = mask.shape
    out = []
    for _ in range(tries):
        rc = np.column_stack([rng.integers(0, h, 4 * n), rng.integers(0, w, 4 * n)])
        out.extend(rc[mask[rc[:, 0], rc[:, 1]]])
        if len(out) >= n:
            break
    return np.asarray(out[:n], dtype=np.int64).reshape(-1, 2)


def _chord(radius: np.ndarray | float, d: np.ndarray) -> np.ndarray:
    """Chord length (mm) through a cylinder of ``radius`` at lateral distance ``d``."""
    return 2.0 * np.sqrt(np.clip(np.square(radius) - np.square(d), 0.0, None))


def _across(band: PolylineBand, grid: Grid) -> np.ndarray:
    """Distances of the sub-samples across the structure, (M, 5)."""
    return np.abs(band.distance[:, None] + _SUB[None, :] * grid.spacing)


# ----------------------------------------------------------------------------------- dense tissue
def powerlaw_noise(rng: np.random.Generator, shape: tuple[int, int], beta: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian field with power spectrum ~ f^-beta."""
    spec = np.fft.rfft2(rng.standard_normal(shape))
    f = np.hypot(np.fft.fftfreq(shape[0])[:, None], np.fft.rfftfreq(shape[1])[None, :])
    f[0, 0] = np.inf
    field_ = np.fft.irfft2(spec * f ** (-beta / 2.0), s=shape)
    return ((field_ - field_.mean()) / field_.std()).astype(np.float32)


#: ``extreme=True``: the glandular share of the breast's area and its largest fraction of the
#: thickness (the default draws 15-60 % and 30-75 %), as in an extremely dense breast (BI-RADS d).
EXTREME_AREA_FRACTION = (0.6, 0.9)
EXTREME_F_MAX = (0.85, 1.0)


def _rescale(u: float, drawn: tuple[float, float], to: tuple[float, float]) -> float:
    """``u``, drawn uniform in ``drawn``, moved to the same place in ``to``."""
    return to[0] + (u - drawn[0]) / (drawn[1] - drawn[0]) * (to[1] - to[0])


def dense_tissue(rng: np.random.Generator, grid: Grid, geo: BreastGeometry,
                 extreme: bool = False) -> tuple[np.ndarray, dict]:
    """Fibroglandular thickness h_dt (mm) as a fraction of the local breast thickness; ``extreme``
    draws an extremely dense breast (:data:`EXTREME_AREA_FRACTION`, :data:`EXTREME_F_MAX`) from the
    same random numbers, so the rest of the phantom stays the seed's."""
    coarse = grid.coarse()
    noise = grid.upsample(powerlaw_noise(rng, coarse.shape, beta=rng.uniform(2.6, 3.2)), coarse)
    area_fraction = rng.uniform(0.15, 0.6)
    f_max = rng.uniform(0.3, 0.75)
    if extreme:
        area_fraction = _rescale(area_fraction, (0.15, 0.6), EXTREME_AREA_FRACTION)
        f_max = _rescale(f_max, (0.3, 0.75), EXTREME_F_MAX)
    inner = geo.inside & ~geo.pectoral
    tau = np.quantile(noise[inner][:: max(1, inner.sum() // 200_000)], 1.0 - area_fraction) if inner.any() else 0.0
    # smoothstep: exactly zero below tau, so a real share of the breast is pure fat (Volpara's reference)
    s = np.clip((noise - tau) / 0.8, 0.0, 1.0)
    frac = f_max * s  # f_max s^2 (3 - 2 s), in place
    frac *= s
    s *= 2.0
    np.subtract(3.0, s, out=s)
    frac *= s
    # glandular tissue lies under a layer of subcutaneous fat: none in the thin periphery
    w = geo.periphery_width_mm
    depth = geo.skin_distance_mm - 0.5 * w
    depth /= 0.5 * w + 10.0
    frac *= np.clip(depth, 0.0, 1.0, out=depth)
    frac[~inner] = 0.0
    frac *= geo.thickness_mm
    params = dict(area_fraction=area_fraction, f_max=f_max, **({"extreme": True} if extreme else {}))
    return frac.astype(np.float32, copy=False), params


@dataclass
class DenseEdge:
    """A sharp-edged dense plateau; its outline is where annotators mistake an edge for BAC."""

    outline: np.ndarray  # (N, 2) mm, closed polygon
    height_mm: float


def dense_plateaus(rng: np.random.Generator, grid: Grid, geo: BreastGeometry, h_dt: np.ndarray,
                   n: int) -> list[DenseEdge]:
    """Add ``n`` dense plateaus with sharp edges to ``h_dt`` in place."""
    edges: list[DenseEdge] = []
    centres = sample_pixels(rng, geo.breast_map == 2, n)
    for cy, cx in centres * grid.spacing:
        ry, rx = rng.uniform(8, 22, size=2)
        rot = rng.uniform(0, np.pi)
        harm = [(k, rng.uniform(-0.12, 0.12), rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4)]
        def radius(t):
            return 1.0 + sum(e * np.cos(k * t + p) for k, e, p in harm)

        def to_image(ly, lx):
            return cy + ly * np.cos(rot) + lx * np.sin(rot), cx - ly * np.sin(rot) + lx * np.cos(rot)

        t = np.linspace(0, 2 * np.pi, 360, endpoint=False)
        outline = np.stack(to_image(ry * radius(t) * np.sin(t), rx * radius(t) * np.cos(t)), 1)
        height = rng.uniform(3.0, 7.0)
        r0, c0 = np.floor(outline.min(0) / grid.spacing).astype(int) - 2
        r1, c1 = np.ceil(outline.max(0) / grid.spacing).astype(int) + 3
        r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, grid.shape[0]), min(c1, grid.shape[1])
        if r1 <= r0 or c1 <= c0:
            continue
        dy = (np.arange(r0, r1, dtype=np.float32) * grid.spacing - cy)[:, None]
        dx = (np.arange(c0, c1, dtype=np.float32) * grid.spacing - cx)[None, :]
        ly, lx = dy * np.cos(rot) - dx * np.sin(rot), dy * np.sin(rot) + dx * np.cos(rot)  # inverse rotation
        t = np.arctan2(ly / ry, lx / rx)
        inside = np.hypot(ly / ry, lx / rx) < radius(t)  # star-shaped: exact inside test in polar form
        plateau = gaussian_blur(inside.astype(np.float32), 0.06 / grid.spacing) * height
        roi = (slice(r0, r1), slice(c0, c1))
        cap = 0.85 * geo.thickness_mm[roi] * (geo.breast_map[roi] == 2)
        h_dt[roi] = np.minimum(h_dt[roi] + plateau, np.maximum(cap, h_dt[roi]))
        edges.append(DenseEdge(outline, height))
    return edges


# ------------------------------------------------------------------------------- arteries and BAC
@dataclass
class CalcifiedRun:
    """A calcified stretch of an artery between arc lengths ``start`` and ``stop`` (mm)."""

    start: float
    stop: float
    kind: str  # "tram" (continuous shell) or "segmental" (beads)
    wall_mm: float  # thickness of the calcified shell
    bead_mm: float = 0.0  # segmental: bead length
    gap_mm: float = 0.0  # segmental: gap between beads

    def mask(self, t: np.ndarray) -> np.ndarray:
        on = (t >= self.start) & (t <= self.stop)
        if self.kind == "segmental":
            on &= np.mod(t - self.start, self.bead_mm + self.gap_mm) < self.bead_mm
        return on

    def pieces(self) -> list[tuple[float, float]]:
        """Arc-length intervals that are calcified (the beads of a segmental run)."""
        if self.kind != "segmental":
            return [(self.start, self.stop)]
        out, t = [], self.start
        while t < self.stop:
            out.append((t, min(t + self.bead_mm, self.stop)))
            t += self.bead_mm + self.gap_mm
        return out


@dataclass
class Artery:
    points: np.ndarray  # (N, 2) mm
    radius_mm: float  # outer radius at the start
    taper: float  # fractional radius loss over the length
    runs: list[CalcifiedRun] = field(default_factory=list)

    @property
    def length(self) -> float:
        return path_length(self.points)

    def radius(self, t: np.ndarray) -> np.ndarray:
        return self.radius_mm * (1.0 - self.taper * np.clip(t / max(self.length, 1e-6), 0, 1))


def _inside_fn(geo: BreastGeometry, grid: Grid, margin_mm: float):
    """Point test: inside the breast, away from the skin and outside the pectoral muscle."""
    ok = (geo.skin_distance_mm > margin_mm) & ~geo.pectoral
    h, w = grid.shape

    def inside(y: float, x: float) -> bool:
        r, c = int(round(y / grid.spacing)), int(round(x / grid.spacing))
        return 0 <= r < h and 0 <= c < w and bool(ok[r, c])

    return inside


def grow_arteries(rng: np.random.Generator, grid: Grid, geo: BreastGeometry) -> list[Artery]:
    """Arterial trees entering from the chest wall and running towards the nipple."""
    inside = _inside_fn(geo, grid, margin_mm=3.0)
    nipple = (geo.params["center_mm"], geo.params["a_mm"])
    col = min(int(8.0 / grid.spacing), grid.shape[1] - 1)
    rows = np.flatnonzero((geo.skin_distance_mm[:, col] > 15.0) & ~geo.pectoral[:, col])
    arteries: list[Artery] = []
    if len(rows) == 0:
        return arteries
    for _ in range(rng.integers(2, 6)):
        start = (rows[rng.integers(len(rows))] * grid.spacing, rng.uniform(2.0, 10.0))
        heading = np.arctan2(nipple[0] - start[0], nipple[1] - start[1]) + rng.normal(0, 0.3)
        trunk = random_path(rng, start, heading, rng.uniform(70, 190), inside, target=nipple, pull=0.004)
        if path_length(trunk) < 20:
            continue
        r0 = rng.uniform(0.6, 1.0)
        arteries.append(Artery(trunk, r0, rng.uniform(0.0, 0.3)))
        for _ in range(rng.integers(1, 4)):
            k = int(len(trunk) * rng.uniform(0.2, 0.7))
            d = trunk[min(k + 1, len(trunk) - 1)] - trunk[k]
            h = np.arctan2(d[0], d[1]) + rng.choice([-1, 1]) * rng.uniform(0.3, 0.8)
            branch = random_path(rng, tuple(trunk[k]), h, rng.uniform(20, 70), inside)
            if path_length(branch) >= 10:
                arteries.append(Artery(branch, r0 * rng.uniform(0.6, 0.8), rng.uniform(0.0, 0.3)))
    return arteries


def calcify(rng: np.random.Generator, arteries: list[Artery]) -> None:
    """Put calcified runs (tram-track or segmental, with gaps) on some of the arteries."""
    chosen = [a for a in arteries if rng.random() < 0.6] or arteries[: 1]
    for art in chosen:
        t = rng.uniform(0.0, 0.3) * art.length
        while t < art.length - 10.0:
            length = min(rng.uniform(10.0, 50.0), art.length - t)
            if length >= 8.0:
                if rng.random() < 0.65:
                    run = CalcifiedRun(t, t + length, "tram", rng.uniform(0.015, 0.08))
                else:
                    run = CalcifiedRun(t, t + length, "segmental", rng.uniform(0.04, 0.15),
                                       bead_mm=rng.uniform(3.0, 7.0), gap_mm=rng.uniform(0.5, 1.5))
                art.runs.append(run)
            t += length + rng.uniform(2.0, 20.0)


def render_arteries(grid: Grid, arteries: list[Artery], h_dt: np.ndarray, h_calc: np.ndarray) -> list[PolylineBand]:
    """Add each artery's soft tissue to ``h_dt`` and its calcified shell to ``h_calc`` (in place).

    The shell chord is 2(sqrt(r_o^2 - d^2) - sqrt(r_i^2 - d^2)): small in the middle and
    peaking at the walls, which is the tram-track appearance of medial calcification.
    """
    bands = []
    flat_dt, flat_calc = h_dt.reshape(-1), h_calc.reshape(-1)
    for art in arteries:
        band = polyline_band(art.points, art.radius_mm + grid.spacing, grid)
        d = _across(band, grid)
        r_out = art.radius(band.arclength)[:, None]
        soft = _chord(r_out, d).mean(1)
        calc = np.zeros_like(soft)
        for run in art.runs:
            on = run.mask(band.arclength)
            if on.any():
                shell = _chord(r_out[on], d[on]) - _chord(r_out[on] - run.wall_mm, d[on])
                calc[on] = np.maximum(calc[on], shell.mean(1))
        flat_dt[band.index] += soft - calc
        flat_calc[band.index] += calc
        bands.append(band)
    return bands


# ---------------------------------------------------------------------------------- distractors
@dataclass
class Cluster:
    """A micro-calcification cluster: specks (y, x, radius) in mm."""

    specks: np.ndarray  # (K, 3)

    @property
    def center(self) -> np.ndarray:
        return self.specks[:, :2].mean(0)


def _far_from(points: np.ndarray | None, min_mm: float):
    tree = cKDTree(points) if points is not None and len(points) else None
    return lambda p: tree is None or tree.query(p)[0] >= min_mm


def place_clusters(rng: np.random.Generator, grid: Grid, geo: BreastGeometry, n: int,
                   avoid: np.ndarray | None) -> list[Cluster]:
    candidates = sample_pixels(rng, (geo.breast_map == 2) & (geo.skin_distance_mm > geo.periphery_width_mm + 5),
                               50 * n)
    far = _far_from(avoid, 6.0)
    clusters: list[Cluster] = []
    for c in candidates * grid.spacing:
        if len(clusters) == n:
            break
        if not far(c):
            continue
        k = rng.integers(5, 16)
        spread = rng.uniform(1.0, 2.5)
        xy = c + rng.normal(0, spread / 2, size=(k, 2))
        clusters.append(Cluster(np.column_stack([xy, rng.uniform(0.1, 0.3, size=k)])))
    return clusters


def render_clusters(grid: Grid, clusters: list[Cluster], h_calc: np.ndarray) -> None:
    """Spherical hydroxyapatite specks, averaged over 3 x 3 sub-pixels."""
    sub = (np.arange(3) - 1) / 3.0 * grid.spacing
    for cl in clusters:
        for y, x, r in cl.specks:
            r0, c0 = int((y - r) / grid.spacing) - 1, int((x - r) / grid.spacing) - 1
            r1, c1 = int((y + r) / grid.spacing) + 2, int((x + r) / grid.spacing) + 2
            r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, grid.shape[0]), min(c1, grid.shape[1])
            if r1 <= r0 or c1 <= c0:
                continue
            yy = np.arange(r0, r1)[:, None, None, None] * grid.spacing + sub[None, None, :, None]
            xx = np.arange(c0, c1)[None, :, None, None] * grid.spacing + sub[None, None, None, :]
            h_calc[r0:r1, c0:c1] += _chord(r, np.hypot(yy - y, xx - x)).mean(axis=(2, 3))


@dataclass
class Strand:
    """A linear dense-tissue strand (a ligament seen edge-on)."""

    points: np.ndarray
    half_width_mm: float
    thickness_mm: float


def grow_strands(rng: np.random.Generator, grid: Grid, geo: BreastGeometry, n: int,
                 avoid: np.ndarray | None) -> list[Strand]:
    inside = _inside_fn(geo, grid, margin_mm=geo.periphery_width_mm + 2.0)
    candidates = sample_pixels(rng, (geo.breast_map == 2) & (geo.skin_distance_mm > geo.periphery_width_mm + 5),
                               30 * n)
    far = _far_from(avoid, 4.0)
    strands: list[Strand] = []
    for start in candidates * grid.spacing:
        if len(strands) == n:
            break
        pts = random_path(rng, tuple(start), rng.uniform(0, 2 * np.pi), rng.uniform(12, 40), inside, wander=0.03)
        if path_length(pts) < 10 or not all(far(p) for p in pts[::4]):
            continue
        strands.append(Strand(pts, rng.uniform(0.3, 0.7), rng.uniform(1.0, 3.5)))
    return strands


def render_strands(grid: Grid, strands: list[Strand], h_dt: np.ndarray) -> None:
    """Dense-tissue ridges: thickness T * sqrt(1 - (d / w)^2) across the strand."""
    flat = h_dt.reshape(-1)
    for s in strands:
        band = polyline_band(s.points, s.half_width_mm + grid.spacing, grid)
        d = _across(band, grid)
        flat[band.index] += s.thickness_mm * 0.5 * _chord(s.half_width_mm, d).mean(1) / s.half_width_mm


# ------------------------------------------------------------------ look-alikes beside the arteries
def calcified_sites(arteries: list[Artery], step_mm: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Points (mm) on the calcified runs of the arteries, every ``step_mm``, with unit normals to
    the vessel; all vessel points when no artery is calcified. Where look-alikes go to sit next
    to or across BAC."""
    pts, normals = [], []
    for art in arteries:
        seg = np.diff(art.points, axis=0)
        cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(seg, axis=1))])
        intervals = [(r.start, r.stop) for r in art.runs] or ([(0.0, cum[-1])] if not any(a.runs for a in arteries)
                                                               else [])
        for start, stop in intervals:
            t = np.arange(start, stop, step_mm)
            if len(t) == 0:
                continue
            k = np.clip(np.searchsorted(cum, t) - 1, 0, len(seg) - 1)
            tangent = seg[k] / np.maximum(np.linalg.norm(seg[k], axis=1, keepdims=True), 1e-9)
            pts.append(np.column_stack([np.interp(t, cum, art.points[:, 0]), np.interp(t, cum, art.points[:, 1])]))
            normals.append(np.column_stack([-tangent[:, 1], tangent[:, 0]]))
    if not pts:
        return np.zeros((0, 2)), np.zeros((0, 2))
    return np.concatenate(pts), np.concatenate(normals)


def place_clusters_near(rng: np.random.Generator, grid: Grid, geo: BreastGeometry, n: int,
                        sites: tuple[np.ndarray, np.ndarray]) -> list[Cluster]:
    """``n`` micro-calcification clusters 1.5-4 mm beside a calcified run (their specks may touch
    the vessel): where an annotator's stroke for one slides onto the other."""
    pts, normals = sites
    inside = _inside_fn(geo, grid, margin_mm=3.0)
    clusters: list[Cluster] = []
    for _ in range(20 * n):
        if len(clusters) == n or len(pts) == 0:
            break
        i = rng.integers(len(pts))
        c = pts[i] + normals[i] * rng.choice([-1.0, 1.0]) * rng.uniform(1.5, 4.0)
        if not inside(*c):
            continue
        k = rng.integers(5, 16)
        xy = c + rng.normal(0, rng.uniform(1.0, 2.5) / 2, size=(k, 2))
        clusters.append(Cluster(np.column_stack([xy, rng.uniform(0.1, 0.3, size=k)])))
    return clusters


def grow_strands_across(rng: np.random.Generator, grid: Grid, geo: BreastGeometry, n: int,
                        sites: tuple[np.ndarray, np.ndarray]) -> list[Strand]:
    """``n`` dense strands that cross a calcified run at 45-90 degrees (or run alongside it)."""
    pts, normals = sites
    inside = _inside_fn(geo, grid, margin_mm=geo.periphery_width_mm + 2.0)
    strands: list[Strand] = []
    for _ in range(20 * n):
        if len(strands) == n or len(pts) == 0:
            break
        i = rng.integers(len(pts))
        normal_angle = np.arctan2(normals[i][0], normals[i][1])
        heading = normal_angle + rng.choice([-1.0, 1.0]) * rng.uniform(0.0, np.pi / 4)
        half = rng.uniform(8.0, 18.0)
        start = pts[i] - half * np.array([np.sin(heading), np.cos(heading)])
        if not inside(*start):
            continue
        path = random_path(rng, tuple(start), heading, 2 * half, inside, wander=0.02)
        if path_length(path) < 1.5 * half:  # must reach across the vessel
            continue
        strands.append(Strand(path, rng.uniform(0.3, 0.7), rng.uniform(1.0, 3.5)))
    return strands

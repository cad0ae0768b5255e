"""An annotation read as a skeleton graph: steps 1-2 of :mod:`monai_bac.ops.label_correction`.

The label correction decides per *piece* of an annotation, so it first reads the annotation as
a graph (:func:`decompose`):

1. **Skeleton.** Each 8-connected component's one-pixel skeleton (Guo-Hall,
   :func:`~monai_bac.ops.skeleton.thin_mask`, the skeleton of every length in this project) is
   read as a graph of 8-connected pixels (:mod:`scipy.sparse.csgraph`; a diagonal step that cuts
   across a skeleton pixel is not an edge, as in the length table). Pixels with three or more
   neighbours are junctions; terminal branches shorter than ``spur_mm`` (thinning spurs of a
   wide brush, 2 mm) are pruned first.
2. **Branches** (skeleton between junctions and ends) are ordered along their path (one
   depth-first walk) and every mask pixel is given to its nearest branch pixel
   (``distance_transform_edt(return_indices=True)``), so the h_calc under the annotation (its
   core within ``core_mm`` of the skeleton, less the unannotated tissue's level around it,
   :func:`local_background`), the annotation's width and the strongest ridge along the path
   (:mod:`monai_bac.ops.path_ridge`, at :func:`ridge_sigma_mm`) become profiles along the path.

Everything here is independent of the correction's thresholds, so a calibration computes it once
per image (:class:`Decomposition`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import csgraph

from monai_bac.ops.path_ridge import path_ridge_strength, path_tangents
from monai_bac.ops.resample import bounding_box
from monai_bac.ops.skeleton import skeleton_points, thin_mask
from monai_bac.units import as_spacing

__all__ = ["DEFAULT_CORE_MM", "DEFAULT_RING_MM", "DEFAULT_SPUR_MM", "TANGENT_HALF_MM", "RIDGE_SIGMAS_MM",
           "EIGHT_CONNECTED", "Decomposition", "decompose", "label_components", "local_background",
           "graph_components", "pitch_at_most", "ridge_sigma_mm"]

#: half-width of the core track around the skeleton, mm
DEFAULT_CORE_MM = 0.5
#: half-side of the square over which the surrounding tissue's h_calc is averaged, mm
DEFAULT_RING_MM = 3.0
#: terminal skeleton branches shorter than this are thinning spurs, not branches, mm
DEFAULT_SPUR_MM = 2.0
#: the path's tangent is the chord over this distance either side of a skeleton pixel, mm
TANGENT_HALF_MM = 0.7
#: the scales (mm) of the ridge along the path (the label correction's ``no_ridge`` rule): the finest
#: the pixels resolve is read (:func:`ridge_sigma_mm`)
RIDGE_SIGMAS_MM = (0.2, 0.6)
#: 8-connectivity: the annotation's components, and the correction's pixel groups
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a binary (H, W) mask: (int32 labels, count)."""
    labels, n, _ = _labelled_objects(mask)
    return labels, n


def _labelled_objects(mask: np.ndarray) -> tuple[np.ndarray, int, list]:
    """:func:`label_components` and each component's slices (``ndimage.find_objects``), both
    computed on the mask's bounding box only: an annotation covers a small part of a mammogram,
    and labelling the whole image cost a fifth of the correction's time. The numbering is the
    same as on the whole image (raster order of each component's first pixel)."""
    m = np.asarray(mask)
    m = m if m.dtype == bool else m > 0
    labels = np.zeros(m.shape, np.int32)
    box = bounding_box(m)
    if box is None:
        return labels, 0, []
    r0, c0 = box[0].start, box[1].start
    sub, n = ndimage.label(m[box], structure=EIGHT_CONNECTED)
    labels[box] = sub
    slices = [None if b is None else (slice(b[0].start + r0, b[0].stop + r0), slice(b[1].start + c0, b[1].stop + c0))
              for b in ndimage.find_objects(sub, max_label=n)]
    return labels, int(n), slices


def local_background(calc: np.ndarray, annotated: np.ndarray, breast: np.ndarray | None, spacing_mm,
                     ring_mm: float = DEFAULT_RING_MM, box: tuple[slice, slice] | None = None) -> np.ndarray:
    """Mean h_calc of the unannotated breast pixels in a ``2 ring_mm`` square around each pixel.

    Computed with separable box sums (cost independent of ``ring_mm``) on ``box`` only (the
    result is zero elsewhere); pixels with no unannotated breast pixel around get 0.
    """
    sr, sc = as_spacing(spacing_mm, "local_background: spacing_mm")
    out = np.zeros(calc.shape, np.float32)
    if box is None:
        box = (slice(0, calc.shape[0]), slice(0, calc.shape[1]))
    kr, kc = int(round(ring_mm / sr)), int(round(ring_mm / sc))
    # the box sums need the neighbourhood of the box
    ext = (slice(max(box[0].start - kr, 0), min(box[0].stop + kr, calc.shape[0])),
           slice(max(box[1].start - kc, 0), min(box[1].stop + kc, calc.shape[1])))
    valid = ~np.asarray(annotated, dtype=bool)[ext]
    if breast is not None:
        valid &= np.asarray(breast, dtype=bool)[ext]
    w = valid.astype(np.float32)
    v = np.where(valid, np.asarray(calc, dtype=np.float32)[ext], np.float32(0.0))
    size = (2 * kr + 1, 2 * kc + 1)
    num = ndimage.uniform_filter(v, size, mode="constant")
    den = ndimage.uniform_filter(w, size, mode="constant")
    bg = np.divide(num, den, out=np.zeros_like(num), where=den > 1e-6)
    out[ext] = bg
    return out


def _union_box(slices) -> tuple[slice, slice]:
    present = [b for b in slices if b is not None]
    return (slice(min(b[0].start for b in present), max(b[0].stop for b in present)),
            slice(min(b[1].start for b in present), max(b[1].stop for b in present)))


# ------------------------------------------------------------------------------ skeleton graph
def _skeleton_edges(rows: np.ndarray, cols: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges (i < j by construction of the offsets) between 8-connected skeleton pixels.

    ``rows``/``cols`` are in row-major order (as ``np.nonzero`` returns them). A diagonal step is
    left out where one of the two pixels it cuts across is on the skeleton (the path goes
    through that pixel), as in :func:`~monai_bac.ops.skeleton.length_lut`.
    """
    key = rows * (width + 2) + (cols + 1)  # sorted, no wrap-around between rows

    def find(dr: int, dc: int) -> np.ndarray:
        k = key + dr * (width + 2) + dc
        pos = np.minimum(np.searchsorted(key, k), key.size - 1)
        return np.where(key[pos] == k, pos, -1)

    east, south, west = find(0, 1), find(1, 0), find(0, -1)
    se = np.where((east < 0) & (south < 0), find(1, 1), -1)
    sw = np.where((west < 0) & (south < 0), find(1, -1), -1)
    src, dst = [], []
    for nb in (east, south, se, sw):
        ok = nb >= 0
        src.append(np.flatnonzero(ok))
        dst.append(nb[ok])
    return np.concatenate(src), np.concatenate(dst)


def graph_components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected-component label of each of ``n`` nodes of the graph with edges (i, j)."""
    g = sparse.coo_matrix((np.ones(i.size, np.int8), (i, j)), shape=(n, n))
    return csgraph.connected_components(g, directed=False)[1]


@dataclass
class Decomposition:
    """An annotation read as skeleton branches, with what lies under each branch pixel.

    Everything here is independent of the thresholds (:func:`split_pieces` and
    :func:`decide_pieces` use it), so a calibration computes it once per image.

    Node arrays (one entry per skeleton pixel of the pruned skeleton, row-major): ``rows``,
    ``cols``, ``comp`` (component id), ``branch`` (branch id, -1 for junction pixels), ``hub``
    (junction group id, -1 elsewhere) and, for branch pixels, the sums over the mask pixels
    nearest to them: ``n_px``, ``n_core``, ``core_calc``, ``core_bg``, ``all_calc``, the same
    three core sums over the core pixels outside every junction's disc (``n_free``,
    ``free_calc``, ``free_bg``: the label correction's reading of the core outside junctions) and ``length`` (mm: the length share
    of the full skeleton's pixels, spurs and junctions included, so that the pieces' lengths add
    up to the annotation's). ``order``: the branch pixels, branch
    after branch, each branch along its path; ``edges``: the skeleton graph's edges (i, j);
    ``hub_edges``: (hub, node) pairs where a junction touches a branch. Pixel arrays: ``px_rows``,
    ``px_cols``, ``px_node`` (nearest branch pixel). ``ridge``: per branch pixel, the strongest
    ridge along the path among the mask pixels nearest to it (:mod:`monai_bac.ops.path_ridge`, mm
    of h_calc; -inf for a pixel with none; at :func:`ridge_sigma_mm`); None without a calcification
    map or at pixels too coarse for every scale of ``RIDGE_SIGMAS_MM``.
    """

    shape: tuple[int, int]
    spacing: tuple[float, float]
    n_components: int
    rows: np.ndarray
    cols: np.ndarray
    comp: np.ndarray
    branch: np.ndarray
    hub: np.ndarray
    n_px: np.ndarray
    n_core: np.ndarray
    core_calc: np.ndarray
    core_bg: np.ndarray
    all_calc: np.ndarray
    length: np.ndarray
    order: np.ndarray
    edges: tuple[np.ndarray, np.ndarray]
    hub_edges: np.ndarray
    px_rows: np.ndarray
    px_cols: np.ndarray
    px_node: np.ndarray
    has_calc: bool
    length_total_mm: float
    px_dist: np.ndarray | None = None
    radius: np.ndarray | None = None
    px_excess: np.ndarray | None = None
    n_free: np.ndarray | None = None
    free_calc: np.ndarray | None = None
    free_bg: np.ndarray | None = None
    ridge: np.ndarray | None = None


def _prune_spurs(n: int, ei: np.ndarray, ej: np.ndarray, weight: np.ndarray, comp: np.ndarray,
                 spur_mm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop terminal branches shorter than ``spur_mm``; returns (active, junction, branch label)."""
    active = np.ones(n, bool)
    for _ in range(8):
        on = active[ei] & active[ej]
        deg = np.bincount(ei[on], minlength=n) + np.bincount(ej[on], minlength=n)
        junction = active & (deg >= 3)
        # a component whose skeleton is all junction pixels is one branch
        lonely = np.bincount(comp[active & ~junction], minlength=comp.max() + 1) == 0
        junction &= ~lonely[comp]
        bnode = active & ~junction
        inner = on & bnode[ei] & bnode[ej]
        lab = graph_components(n, ei[inner], ej[inner])
        if spur_mm <= 0:
            break
        cross = on & (junction[ei] ^ junction[ej])
        touching = np.where(junction[ei[cross]], lab[ej[cross]], lab[ei[cross]])
        nl = lab.max() + 1
        touches = np.bincount(touching, minlength=nl) > 0
        terminal = np.bincount(lab[bnode & (deg <= 1)], minlength=nl) > 0
        blen = np.bincount(lab[bnode], weights=weight[bnode], minlength=nl)
        spur = touches & terminal & (blen < spur_mm)
        drop = bnode & spur[lab]
        if not drop.any():
            break
        active &= ~drop
    return active, junction, np.where(bnode, lab, -1)


def _path_order(n: int, ei: np.ndarray, ej: np.ndarray, branch: np.ndarray) -> np.ndarray:
    """Branch pixels, branch after branch, each in path order (one depth-first walk from a root
    tied to one end of every branch; a closed loop is opened at its first pixel)."""
    inner = (branch[ei] >= 0) & (branch[ei] == branch[ej])
    i, j = ei[inner], ej[inner]
    bdeg = np.bincount(i, minlength=n) + np.bincount(j, minlength=n)
    nodes = np.flatnonzero(branch >= 0)
    if nodes.size == 0:
        return nodes
    b = branch[nodes]
    ends = nodes[bdeg[nodes] <= 1]
    nb = branch.max() + 1
    start = np.full(nb, -1)
    start[branch[ends][::-1]] = ends[::-1]  # first end of each branch
    loops = np.flatnonzero(start < 0)
    loops = loops[np.isin(loops, b)]
    if loops.size:
        first = np.full(nb, -1)
        first[b[::-1]] = nodes[::-1]
        start[loops] = first[loops]
        # open each loop: drop one edge at its start
        at = np.flatnonzero(np.isin(i, first[loops]) | np.isin(j, first[loops]))
        owner = np.where(np.isin(i[at], first[loops]), i[at], j[at])
        _, once = np.unique(owner, return_index=True)
        keep = np.ones(i.size, bool)
        keep[at[once]] = False
        i, j = i[keep], j[keep]
    starts = start[start >= 0]
    root = n
    g = sparse.coo_matrix((np.ones(i.size + starts.size, np.int8),
                           (np.concatenate([i, np.full(starts.size, root)]), np.concatenate([j, starts]))),
                          shape=(n + 1, n + 1)).tocsr()
    order = csgraph.depth_first_order(g, root, directed=False, return_predecessors=False)
    return order[1:]


def _skeleton(labels: np.ndarray, slices, spacing: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Skeleton pixels (row-major) of all components and their length shares, thinned component by
    component on its bounding box (as :func:`thin_mask` of the whole mask, at a cost that follows
    the annotated area)."""
    parts = []
    for k, box in enumerate(slices, start=1):
        if box is not None:
            r, c, w = skeleton_points(thin_mask(labels[box] == k), spacing)
            parts.append((r + box[0].start, c + box[1].start, w))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    rows, cols, weight = (np.concatenate(v) for v in zip(*parts))
    order = np.lexsort((cols, rows))
    return rows[order], cols[order], weight[order]


def decompose(label: np.ndarray, calc_thickness: np.ndarray | None, spacing_mm, breast_mask: np.ndarray | None = None,
              core_mm: float = DEFAULT_CORE_MM, ring_mm: float = DEFAULT_RING_MM,
              spur_mm: float = DEFAULT_SPUR_MM) -> Decomposition:
    """Read an annotation as skeleton branches (steps 1-2 of the module docstring)."""
    sr, sc = as_spacing(spacing_mm, "correct_bac_label: spacing_mm")
    mask = np.asarray(label) > 0
    labels, ncomp, slices = _labelled_objects(mask)
    rows, cols, weight = _skeleton(labels, slices, (sr, sc))
    n = rows.size
    comp = labels[rows, cols] if n else np.zeros(0, np.int32)
    ei, ej = _skeleton_edges(rows, cols, mask.shape[1]) if n else (np.zeros(0, int), np.zeros(0, int))
    if n:
        active, junction, branch = _prune_spurs(n, ei, ej, weight, comp, spur_mm)
    else:
        active, junction, branch = np.zeros(0, bool), np.zeros(0, bool), np.zeros(0, int)
    # keep the pruned skeleton's pixels only (spur pixels now belong to the branch pixels nearest to them)
    keep = np.flatnonzero(active)
    remap = np.full(n, -1)
    remap[keep] = np.arange(keep.size)
    on = active[ei] & active[ej]
    ei, ej = remap[ei[on]], remap[ej[on]]
    rows_a, cols_a, comp_a = rows[keep], cols[keep], comp[keep]
    junction, old_branch = junction[keep], branch[keep]
    branch = np.full(keep.size, -1, np.int64)
    branch[old_branch >= 0] = np.unique(old_branch[old_branch >= 0], return_inverse=True)[1]
    m = keep.size
    hub = np.full(m, -1)
    jn = np.flatnonzero(junction)
    if jn.size:
        jj = junction[ei] & junction[ej]
        hub[jn] = np.unique(graph_components(m, ei[jj], ej[jj])[jn], return_inverse=True)[1]
    cross = junction[ei] ^ junction[ej]
    hub_edges = np.column_stack([np.where(junction[ei[cross]], hub[ei[cross]], hub[ej[cross]]),
                                 np.where(junction[ei[cross]], ej[cross], ei[cross])])
    order = _path_order(m, ei, ej, branch)

    # every mask pixel -> its nearest branch pixel, component by component (cost ~ annotated area)
    calc = None if calc_thickness is None else np.asarray(calc_thickness, dtype=np.float32)
    bg = None
    if calc is not None and ncomp:
        bg = local_background(calc, mask, breast_mask, (sr, sc), ring_mm, _union_box(slices))
    def by_component(nodes):  # the nodes sorted by component, and each component's slice bounds
        nodes = nodes[np.argsort(comp_a[nodes], kind="stable")]
        return nodes, np.searchsorted(comp_a[nodes], np.arange(1, ncomp + 2))

    bnodes_sorted, bounds = by_component(np.flatnonzero(branch >= 0))
    jnodes_sorted, jbounds = by_component(np.flatnonzero(junction))
    px_r, px_c, px_n, px_d, px_j = [], [], [], [], []
    radius = np.zeros(m)  # the mask's inscribed radius at every branch pixel (its brush radius), mm
    for k, box in enumerate(slices, start=1):
        if box is None:  # pragma: no cover - ndimage.label numbers components densely
            continue
        sub = labels[box] == k
        seeds = bnodes_sorted[bounds[k - 1]:bounds[k]]
        r0, c0 = box[0].start, box[1].start
        pr, pc = np.nonzero(sub)
        if seeds.size == 0:  # pragma: no cover - thinning keeps a pixel of every component
            continue
        seed_img = np.ones(sub.shape, bool)
        seed_img[rows_a[seeds] - r0, cols_a[seeds] - c0] = False
        dist, (ir, ic) = ndimage.distance_transform_edt(seed_img, sampling=(sr, sc), return_indices=True)
        inscribed = ndimage.distance_transform_edt(sub, sampling=(sr, sc))
        radius[seeds] = inscribed[rows_a[seeds] - r0, cols_a[seeds] - c0]
        jn_k = jnodes_sorted[jbounds[k - 1]:jbounds[k]]
        px_j.append(_in_junction_discs(inscribed, rows_a[jn_k] - r0, cols_a[jn_k] - c0, (sr, sc))[pr, pc])
        node_img = np.full(sub.shape, -1, np.int64)
        node_img[rows_a[seeds] - r0, cols_a[seeds] - c0] = seeds
        px_r.append(pr + r0)
        px_c.append(pc + c0)
        px_n.append(node_img[ir[pr, pc], ic[pr, pc]])
        px_d.append(dist[pr, pc])
    cat = (lambda parts, dt: np.concatenate(parts) if parts else np.zeros(0, dt))
    px_rows, px_cols, px_node, px_dist = cat(px_r, np.int64), cat(px_c, np.int64), cat(px_n, np.int64), cat(px_d, float)
    core = px_dist <= core_mm
    free = core & ~cat(px_j, bool)
    px_w = np.zeros(px_rows.size)
    if n:  # the full skeleton's length shares, given to the pixels' nearest branch pixels
        key_px = px_rows * mask.shape[1] + px_cols
        key_sk = rows * mask.shape[1] + cols
        pos = np.minimum(np.searchsorted(key_sk, key_px), n - 1)
        hit = key_sk[pos] == key_px
        px_w[hit] = weight[pos[hit]]
    count = (lambda sel, w=None: np.bincount(px_node[sel], weights=None if w is None else w[sel], minlength=m)
             .astype(float))
    allpx = np.ones(px_rows.size, bool)
    if calc is not None and bg is not None:
        vcalc = calc[px_rows, px_cols].astype(float)
        vbg = bg[px_rows, px_cols].astype(float)
    else:
        vcalc = vbg = np.zeros(px_rows.size)
    ridge = None
    sigma = ridge_sigma_mm((sr, sc))
    if calc is not None and sigma is not None:  # the strongest ridge along the path in each cross-section
        ty, tx = path_tangents(rows_a, cols_a, order, branch, (sr, sc), TANGENT_HALF_MM)
        px_ridge = path_ridge_strength(calc, px_rows, px_cols, ty[px_node], tx[px_node], (sr, sc), sigma)
        ridge = np.full(m, -np.inf)
        np.maximum.at(ridge, px_node, px_ridge)
    return Decomposition(
        shape=mask.shape, spacing=(sr, sc), n_components=ncomp, rows=rows_a, cols=cols_a, comp=comp_a,
        branch=branch, hub=hub, n_px=count(allpx), n_core=count(core), core_calc=count(core, vcalc),
        core_bg=count(core, vbg), all_calc=count(allpx, vcalc), length=count(allpx, px_w), order=order,
        edges=(ei, ej), hub_edges=hub_edges, px_rows=px_rows, px_cols=px_cols, px_node=px_node,
        has_calc=calc is not None,
        length_total_mm=float(weight.sum()), px_dist=px_dist, radius=radius,
        px_excess=vcalc - vbg, n_free=count(free), free_calc=count(free, vcalc), free_bg=count(free, vbg),
        ridge=ridge)


def pitch_at_most(spacing: tuple[float, float], limit_mm: float) -> bool:
    """Whether both pixel sides are at most ``limit_mm`` (a relative 1e-6 over it still counts: a
    header's 0.1000001 mm is a 0.1 mm pixel). The pitch guards of the own-calcium rules."""
    return max(spacing) <= limit_mm * (1.0 + 1e-6)


def ridge_sigma_mm(spacing: tuple[float, float]) -> float | None:
    """The scale of the ``no_ridge`` rule at a pixel spacing: the finest of ``RIDGE_SIGMAS_MM``
    the pixels resolve (pitch at most sigma / 2), None where none is."""
    return next((s for s in RIDGE_SIGMAS_MM if pitch_at_most(spacing, 0.5 * s)), None)


def _in_junction_discs(inscribed: np.ndarray, jr: np.ndarray, jc: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """Pixels inside the maximal disc of a junction pixel (jr, jc): nearer to it than the mask's
    inscribed radius there (``inscribed``: the mask's distance map on its box)."""
    if jr.size == 0:
        return np.zeros(inscribed.shape, bool)
    seeds = np.ones(inscribed.shape, bool)
    seeds[jr, jc] = False
    dist, (ir, ic) = ndimage.distance_transform_edt(seeds, sampling=spacing, return_indices=True)
    return dist <= inscribed[ir, ic]

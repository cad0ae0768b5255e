"""Shadows darker than breast tissue can cast: a silicone implant, or another radio-opaque object.

No breast tissue attenuates more than glandular tissue, so behind a breast of compressed thickness
H0 no primary signal is weaker than behind H0 of glandular tissue: ``ln(P / P_fat) >= L_g(H0)``
(:func:`glandular_bound`: the last point of ``TransmittedBeam.glandular_curve``, the curve Eq. (4) is
inverted on). A silicone-gel implant (polydimethylsiloxane: about 2.5 times the attenuation of
glandular tissue at mammographic energies) casts a shadow beyond that bound. Read as tissue,
such a shadow is "100 % dense": a breast with an implant came out at a VBD of 50 % where its
tissue holds 2 %, and in a CC view the shadow's dark mass drew the fatty envelope that
BreastRegion fits, so the compressed region shrank to the implant's middle.

:func:`implant_shadow` finds the shadow in ``excess = ln(P / P_fat) / L_g(H0)``, scatter removed
(both callers place fat through H0 from the direct exposure and the spectrum, each on its own
scatter-corrected signal: BreastRegion on its 0.5 mm grid, DensityMap on its primary): a large
connected region beyond the bound whose median lies well beyond it. Its extent is not where the
excess crosses the bound, which moves with the bound's scale (a header's thickness 15 % too thick
drew the shadow 10-30 % smaller, the implant's edge then read as dense tissue): an implant is a lens
whose path falls steeply at its edge, so the edge is placed where the excess falls fastest, by a
watershed on its gradient between the region and what lies well beyond it (:func:`lens_edge`),
then widened by :data:`SHADOW_MARGIN_MM`. Scatter fills the shadow (behind a thick
breast it carries more signal than the primary that crosses the implant), so the margin between
the shadow and tissue is smaller than the attenuation alone would give. A saline implant
attenuates like water, just beyond glandular tissue, and casts no such shadow: only the header's
BreastImplantPresent (0028,1300) tells of it.

The bound is placed by the compressed thickness, and a unit's readout of it runs up to 26 % high
(:data:`READOUT_HIGH`): read against a thickness that much too great, a silicone implant behind a
thick breast no longer passes (4 of 24 development images at 15 % high, their VBD then 42-50 pp
above the tissue's). When the header says an implant is there, its callers look again at the bound
of the thinnest breast the readout allows (:func:`bound_thicknesses`), and not only when nothing
passed the first: a readout too thick can leave just the implant's thickest middle over the bound of
the thickness in use, the rest of the implant then read as dense tissue (:func:`shadow_over_bounds`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

from monai_bac.ops.resample import block_factors, block_mean, bounding_box
from monai_bac.units import as_spacing

__all__ = ["BreastImplantWarning", "EDGE_EXCESS", "SHADOW_EXCESS", "MIN_SHADOW_MM2", "SHADOW_MARGIN_MM", "EXTENT_MM",
           "BEYOND_EXCESS", "EDGE_SMOOTH_MM", "FULL_SHADOW_EXCESS", "CELL_MM", "READOUT_HIGH", "bound_thicknesses",
           "glandular_bound", "implant_shadow", "implant_shadow_in_image", "lens_edge", "shadow_over_bounds",
           "thinnest_readout"]


class BreastImplantWarning(UserWarning):
    """An implant's shadow was found, so the VBD is that of the tissue beside it; or the header says
    there is an implant and none was seen (a saline implant reads as dense tissue)."""


#: A shadow is made of pixels beyond the glandular bound: ``excess = ln(P / P_fat) / L_g(H0) > 1``.
EDGE_EXCESS = 1.0
#: ... and its median pixel lies this far beyond it. Breast tissue never does: the pectoral muscle
#: (about as attenuating as glandular tissue, and not breast) reads up to 1.2 on the realistic
#: phantoms, their densest breast tissue up to 1.1, an implant's shadow 1.3-1.7.
SHADOW_EXCESS = 1.1
#: A smaller shadow (mm^2) is not taken: clips and markers are left to the bound on h_dt, an
#: implant seen through a compressed breast covers 40 cm^2 or more.
MIN_SHADOW_MM2 = 2000.0
#: The shadow's edge (:func:`lens_edge`) is looked for up to this far (mm) beyond the region over
#: the bound; what lies further, or reads below :data:`BEYOND_EXCESS` (tissue, mostly fat), is not
#: the implant ...
EXTENT_MM = 15.0
BEYOND_EXCESS = 0.25
#: ... on the excess smoothed over this much (mm: the cell's noise) ...
EDGE_SMOOTH_MM = 0.5
#: ... and the shadow is widened by this much (mm) beyond the edge.
SHADOW_MARGIN_MM = 1.5
#: A shadow whose median excess lies this far beyond its bound is the whole implant; one nearer the
#: bound is only its middle, the bound too loose (a readout too thick: :func:`shadow_over_bounds`). At
#: the true readout the development implants' shadows read 1.45-1.85, under a readout 25 % high
#: 1.06-1.17 (seeds 58488-58511, docs/design-log/breast_region.md).
FULL_SHADOW_EXCESS = 1.3
#: Cell (mm) on which the shadow is found: an implant is centimetres wide.
CELL_MM = 0.5
#: How far above the breast's thickness a unit's readout runs: up to 14 % with rigid paddles and
#: 26 % with flexible ones (Hauge et al., Med Phys 39:263, 2012).
READOUT_HIGH = 0.26


def thinnest_readout(thickness_mm: float) -> float:
    """The thinnest breast (mm) whose readout can be ``thickness_mm`` (:data:`READOUT_HIGH`)."""
    return float(thickness_mm) / (1.0 + READOUT_HIGH)


def bound_thicknesses(thickness_mm: float, implant_expected: bool) -> tuple[float, ...]:
    """The thicknesses whose glandular bound a shadow is looked for beyond, in turn, until one gives
    it: the one in use; and when the header reports an implant, the :func:`thinnest_readout` of it
    (a readout too thick loosens the bound past a silicone implant behind a thick breast)."""
    h = float(thickness_mm)
    return (h, thinnest_readout(h)) if implant_expected else (h,)


def glandular_bound(beam, thickness_mm: float) -> float:
    """``L_g(H0) = ln S(0, H0) - ln S(H0, 0)`` (< 0) of ``beam``
    (:class:`~monai_bac.physics.TransmittedBeam`): how far glandular tissue through the whole
    thickness lies below fat through it, the last point of its ``glandular_curve``."""
    h = float(thickness_mm)
    return float(beam.log_signal(0.0, h) - beam.log_signal(h, 0.0))


def implant_shadow(excess: np.ndarray, region: np.ndarray, spacing_mm, edge_excess: float = EDGE_EXCESS,
                   shadow_excess: float = SHADOW_EXCESS, min_area_mm2: float = MIN_SHADOW_MM2,
                   margin_mm: float = SHADOW_MARGIN_MM) -> np.ndarray | None:
    """The pixels of ``region`` in the shadow of something denser than breast tissue, or None.

    Args:
        excess: ``ln(P / P_fat) / L_g(H0)`` per pixel, scatter removed: 0 for fat, 1 for glandular
            tissue through the whole compressed thickness H0 (the most any tissue attenuates); on a
            grid of about :data:`CELL_MM` (an implant is centimetres wide).
        region: where to look (the breast without its pectoral muscle).
        spacing_mm: the grid's spacing (row, col).
    Returns:
        bool mask of ``excess``'s shape (the connected regions beyond ``edge_excess`` of at least
        ``min_area_mm2`` whose median lies beyond ``shadow_excess``, holes filled, drawn out to
        their :func:`lens_edge` and widened by ``margin_mm``, within ``region``), or None when there
        is none.
    """
    sr, sc = as_spacing(spacing_mm)
    region = np.asarray(region, bool)
    labels, n = ndimage.label(region & (np.asarray(excess) > edge_excess))
    if n == 0:
        return None
    index = np.arange(1, n + 1)
    areas = ndimage.sum_labels(np.ones(region.shape, np.float32), labels, index) * (sr * sc)
    medians = np.asarray(ndimage.median(excess, labels, index))
    keep = index[(areas >= min_area_mm2) & (medians > shadow_excess)]
    if keep.size == 0:
        return None
    shadow = lens_edge(ndimage.binary_fill_holes(np.isin(labels, keep)), excess, region, (sr, sc))
    near = ndimage.distance_transform_edt(~shadow, sampling=(sr, sc))  # mm to the shadow
    return (near <= margin_mm) & region


def lens_edge(core: np.ndarray, excess: np.ndarray, region: np.ndarray, spacing_mm) -> np.ndarray:
    """``core`` drawn out to the implant's edge: a watershed (scikit-image) on the gradient of the
    smoothed ``excess`` from ``core`` and from what is not the implant (outside ``region``, further
    than :data:`EXTENT_MM` from ``core``, or below :data:`BEYOND_EXCESS`), so the edge lies where
    the excess falls fastest whatever the bound's scale."""
    sr, sc = as_spacing(spacing_mm)
    # beyond EXTENT_MM (and the smoothing's reach) everything is "not the implant": work in the box
    box = bounding_box(core, int(np.ceil((EXTENT_MM + 4.0 * EDGE_SMOOTH_MM) / min(sr, sc))) + 1)
    edge = np.zeros(core.shape, bool)
    if box is None:
        return edge
    core, excess, region = core[box], np.asarray(excess)[box], np.asarray(region, bool)[box]
    smooth = ndimage.gaussian_filter(np.where(region, excess, 0.0).astype(np.float32),
                                     (EDGE_SMOOTH_MM / sr, EDGE_SMOOTH_MM / sc))
    gy, gx = np.gradient(smooth, sr, sc)
    markers = np.zeros(core.shape, np.int32)
    markers[~region | (excess < BEYOND_EXCESS)
            | (ndimage.distance_transform_edt(~core, sampling=(sr, sc)) > EXTENT_MM)] = 1
    markers[core] = 2
    edge[box] = watershed(np.hypot(gy, gx), markers) == 2
    return edge


def shadow_over_bounds(excesses, region: np.ndarray, spacing_mm,
                       full_excess: float = FULL_SHADOW_EXCESS) -> tuple[np.ndarray | None, int]:
    """:func:`implant_shadow` read against each bound of :func:`bound_thicknesses` in turn.

    ``excesses`` yields the excess against each bound (an iterable: each is made only when asked for).
    The first bound a shadow passes gives it. When it only just passes (its median excess under
    ``full_excess``), the looser bounds after it (the header reports an implant) add the connected
    parts of their own shadows that overlap it: under a readout too thick only the implant's thickest
    middle passes the bound of the thickness in use, :func:`lens_edge` draws it out at most
    :data:`EXTENT_MM`, and the rest of the implant would be read as dense tissue
    (docs/design-log/breast_region.md, "The shadow under a readout too thick"). A shadow well beyond
    its bound is whole already: a looser bound would only join the dense tissue beside it (at the
    thinnest readout's bound tissue passes once it is about half glandular).

    Returns (the shadow, the index of the bound that first gave it), or (None, -1).
    """
    shadow, first = None, -1
    for k, excess in enumerate(excesses):
        if shadow is None:
            shadow = implant_shadow(excess, region, spacing_mm)
            if shadow is not None:
                first = k
                if np.median(np.asarray(excess)[shadow]) >= full_excess:
                    break
            continue
        found = implant_shadow(excess, region, spacing_mm)
        if found is not None:
            labels, _ = ndimage.label(found)
            touching = np.unique(labels[shadow & found])
            shadow = shadow | np.isin(labels, touching[touching > 0])
    return shadow, first


def implant_shadow_in_image(primary: np.ndarray, references, region: np.ndarray,
                            spacing_mm) -> tuple[np.ndarray | None, int]:
    """:func:`implant_shadow` of a full-resolution image: ``primary`` (scatter and offset removed),
    read on :data:`CELL_MM` cells against each of ``references`` in turn (:func:`shadow_over_bounds`):
    ``(log_fat, bound)`` pairs, ln of fat through the compressed thickness (one number, or one per
    image column: the heel effect) and the glandular bound (:func:`glandular_bound`, < 0) of each of
    :func:`bound_thicknesses`. The cells are read once for all of them. Returns (the mask at full
    resolution, the index of the pair that first gave it), or (None, -1)."""
    references = [(log_fat, float(bound)) for log_fat, bound in references]
    for _, bound in references:
        if not bound < 0:
            raise ValueError(f"bound must be < 0 (ln units below fat), got {bound}")
    sr, sc = as_spacing(spacing_mm)
    fr, fc = block_factors((sr, sc), CELL_MM)
    cells = np.log(np.maximum(block_mean(primary, fr, fc), 1e-6))
    inside = block_mean(np.asarray(region, np.float32), fr, fc) > 0.5

    def excesses():
        for log_fat, bound in references:
            fat = np.broadcast_to(np.asarray(log_fat, np.float32), np.asarray(primary).shape[1:])
            yield (cells - block_mean(fat[None, :], 1, fc)) / np.float32(bound)

    shadow, k = shadow_over_bounds(excesses(), inside, (sr * fr, sc * fc))
    if shadow is None:
        return None, -1
    h, w = np.asarray(primary).shape
    return np.repeat(np.repeat(shadow, fr, axis=0), fc, axis=1)[:h, :w] & np.asarray(region, bool), k

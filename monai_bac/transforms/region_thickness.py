"""The compressed thickness behind BreastRegion's scatter step, and the map made with it.

BreastRegion removes a scatter estimate for the compressed thickness before it fits the periphery
(:func:`monai_bac.ops.breast_region.analyse_breast_region`, step 4); without it the periphery of a
thick breast comes out too narrow. The thickness is the one given, else the header's
BodyPartThickness (0018,11A0). Where neither is known (the attribute is Type 3, and exports and
anonymisers drop it), or where ``"image"`` is asked for, it is the thickness the image's air-to-fat
contrast implies (:func:`monai_bac.ops.density.image_thickness`, DensityMap's own estimate), read on a
first map; the map is then made again with it. Without the tube set-up (KVP (0018,0060),
AnodeTargetMaterial, FilterMaterial) or a direct exposure beside the breast the image gives none,
and the map keeps the header's thickness, or is made without the step (docs/design-log/breast_region.md,
"An image without BodyPartThickness").

It is also where an image stored turned (the head side at the bottom, or the breast along the
columns, as PatientOrientation (0020,0020) says: :func:`monai_bac.orientation.head_up`) is turned
for the analysis and its map turned back: the one route every breast map takes (BreastRegion, the
transforms that make their own map, the rendition).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from monai_bac.ops.breast_region import BreastRegionResult, analyse_breast_region
from monai_bac.ops.density import image_thickness
from monai_bac.orientation import head_up
from monai_bac.physics import beam_from_meta, behind_grid

__all__ = ["FROM_IMAGE", "HEADER", "positive_or_none", "breast_region_with_thickness"]

#: ``thickness_mm`` asking for the image's own thickness.
FROM_IMAGE = "image"
#: Where the thickness came from when the header gave it.
HEADER = "BodyPartThickness (0018,11A0)"


def positive_or_none(value) -> float | None:
    """A thickness from the metadata, or None when it is absent or not a positive number (a
    header's 0 means "not recorded")."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _turned_back(result: BreastRegionResult, transpose: bool, reverse_rows: bool) -> BreastRegionResult:
    """``result`` of an image analysed turned (:func:`monai_bac.orientation.head_up`), its map and
    exposed field turned back to the stored orientation (the pectoral edge and the sector widths stay
    in the analysed frame)."""
    bmap, box = result.breast_map, result.exposed_box
    if reverse_rows:
        bmap = bmap[::-1]
        if box is not None:
            box = (slice(bmap.shape[0] - box[0].stop, bmap.shape[0] - box[0].start), box[1])
    if transpose:
        bmap = bmap.T
        box = None if box is None else (box[1], box[0])
    result.breast_map, result.exposed_box = np.ascontiguousarray(bmap), box
    return result


def _beam(meta: Mapping):
    """(the image's :class:`~monai_bac.physics.TransmittedBeam`, "") or (None, why not)."""
    if meta.get("kvp") is None:
        return None, "no KVP (0018,0060) for the spectrum"
    try:
        return beam_from_meta(meta), ""
    except ValueError as err:  # a tube set-up the spectrum model does not know
        return None, f"AnodeTargetMaterial (0018,1191) / FilterMaterial (0018,7050): {err}"


def _from_image(image_hw: np.ndarray, first: BreastRegionResult, spacing_mm, meta: Mapping,
                first_mm: float | None, beam, why: str) -> tuple[float | None, str]:
    """The image's thickness read on the map ``first`` with ``beam``, or (None, why not)."""
    if not first.found:
        return None, "no breast"
    if beam is None:
        return None, why
    return image_thickness(image_hw, first.breast_map, beam, spacing_mm, meta.get("laterality"), first_mm,
                           grid=behind_grid(meta))


def breast_region_with_thickness(image_hw: np.ndarray, spacing_mm, view: str | None, meta: Mapping,
                                 thickness_mm: float | str | None = None, scatter: bool = True,
                                 **options) -> tuple[BreastRegionResult, float | None, str]:
    """:func:`~monai_bac.ops.breast_region.analyse_breast_region` with the compressed thickness
    resolved as the module docstring says.

    Args:
        image_hw: (H, W) raw values linear in exposure.
        spacing_mm, view: as for ``analyse_breast_region``.
        meta: the image's metadata (``thickness_mm``, ``kvp``, ``anode``, ``filter``, ``laterality``,
            the detector's keys, ``breast_implant_present``, ``anti_scatter_grid``).
        thickness_mm: a number (mm) wins; None: the header's, else the image's; ``"image"``: the
            image's, else the header's.
        scatter: whether the scatter step runs (``"none"`` in BreastRegion): without it no thickness
            is used or estimated.
        options: the other keyword arguments of ``analyse_breast_region``.

    Returns:
        (result, the thickness the scatter step used (mm) or None, where it came from: ``"argument"``,
        :data:`HEADER`, ``"image"``, or what was missing).

    An image that PatientOrientation (0020,0020) says is stored turned (the head side at the bottom,
    or the breast along the columns: :func:`monai_bac.orientation.head_up`) is analysed turned to the
    usual orientation, as the chest wall is looked for at a side and the pectoral muscle in the upper
    chest-wall corner; its map comes back in the stored orientation.
    """
    transpose, reverse_rows = head_up(meta.get("patient_orientation"))
    if not (transpose or reverse_rows):
        return _with_thickness(image_hw, spacing_mm, view, meta, thickness_mm, scatter, **options)
    turned = np.asarray(image_hw)
    if transpose:
        turned, spacing_mm = turned.T, (spacing_mm[1], spacing_mm[0])
    if reverse_rows:
        turned = turned[::-1]
    result, used, source = _with_thickness(np.ascontiguousarray(turned), spacing_mm, view, meta, thickness_mm,
                                           scatter, **options)
    return _turned_back(result, transpose, reverse_rows), used, source


def _with_thickness(image_hw: np.ndarray, spacing_mm, view: str | None, meta: Mapping,
                    thickness_mm: float | str | None, scatter: bool, **options) -> tuple[BreastRegionResult,
                                                                                          float | None, str]:
    """:func:`breast_region_with_thickness` of an image stored the usual way (or turned to it)."""
    beam, why_no_beam = _beam(meta)  # the spectrum also tells an implant's shadow from tissue
    implant_expected = meta.get("breast_implant_present") == "YES"

    def analyse(h: float | None) -> BreastRegionResult:
        return analyse_breast_region(image_hw, spacing_mm, view, thickness_mm=h, scatter=scatter, beam=beam,
                                     implant_expected=implant_expected, grid=behind_grid(meta), **options)

    if not scatter:
        return analyse(None), None, "none (scatter='none')"
    header = positive_or_none(meta.get("thickness_mm"))
    if thickness_mm is not None and thickness_mm != FROM_IMAGE:
        return analyse(float(thickness_mm)), float(thickness_mm), "argument"
    if thickness_mm is None and header is not None:
        return analyse(header), header, HEADER
    first = analyse(header)
    found, why = _from_image(image_hw, first, spacing_mm, meta, header, beam, why_no_beam)
    if found is not None:
        return analyse(found), found, FROM_IMAGE
    if header is not None:
        return first, header, f"{HEADER} (the image gives no thickness: {why})"
    return first, None, f"none (no BodyPartThickness (0018,11A0), and the image gives no thickness: {why})"

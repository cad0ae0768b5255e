"""Breast region map (the paper's Sec. 3.1, Fig. 2) as MONAI transforms.

:class:`BreastRegion` (array) and :class:`BreastRegiond` (dictionary) wrap
:func:`monai_bac.ops.breast_region.analyse_breast_region`: from a raw mammogram *linear in
exposure* (breast = low values) they compute the segmentation map that the three
normalisations of the paper (Eq. 1-2, Eq. 3 and Eq. 4) work in:

0 background, 1 periphery (uncompressed rim), 2 compressed (paddle-contact) region,
3 pectoral muscle (MLO views).

The paper used VolparaDensity's maps; this is a classical re-implementation (flat field, Otsu
background with a near-air skin threshold, automatic chest-wall side, Hough-line or curved
pectoral muscle, periphery width from a fit of the Beer-Lambert thickness fall-off), see the ops
module for the method. It reads the image, its spacing and view, and the compressed thickness
(BodyPartThickness; without it, the thickness the image implies) for the scatter it removes first
(:mod:`monai_bac.transforms.region_thickness`); validated on ideal and
realistic (scatter, heel, vendor pitch, paddle rim, abdominal fold) phantoms in
``docs/validation/breast_region*.md``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms.transform import MapTransform, Transform
from monai.utils import ensure_tuple_rep, get_equivalent_dtype
from monai.utils.enums import TransformBackends
from monai.utils.type_conversion import convert_to_dst_type, convert_to_numpy

from monai_bac.transforms.region_thickness import FROM_IMAGE, breast_region_with_thickness
from monai_bac.transforms.utils import SCATTER_MODELS, meta_of, resolve_spacing_mm

__all__ = ["BreastRegion", "BreastRegiond", "BreastRegionD", "BreastRegionDict"]

class BreastRegion(Transform):
    """Breast region map of a raw mammogram: background / periphery / compressed / pectoral.

    The map all normalisations of the paper need (Sec. 3.1, Fig. 2; used by Eq. 2, Eq. 3 and
    P_fat of Eq. 4), by classical image analysis (no network):

    * background: Otsu on ln(P), skin line at ``air - skin_fraction * (air - tissue)``, drawn
      after a heel effect is flattened (fitted to the direct exposure); structures narrower than
      4 mm (an MLO's paddle rim) and a body attached through thin tissue, or thin all over
      across the top or bottom edge (the abdominal fold), are not breast;
    * chest-wall side: found from the image (the laterality tag is not trusted), so left- and
      right-facing breasts work alike and the output keeps the input's orientation;
    * pectoral muscle (``view`` "MLO"; with no view it is searched with stricter checks): a
      weighted Hough line on the ln(P) gradient, validated and refined to a curved edge; when
      none passes, a search over quadratic edges finds a curved or low-contrast muscle;
    * compressed region vs periphery: the periphery width (mm) is fitted to the Beer-Lambert
      fall-off of the fat signal towards the skin line, per angular sector, after a published
      scatter estimate (Boone & Cooper 2000, as in :class:`~monai_bac.transforms.DensityMap`)
      is removed when the compressed thickness is known.

    An image with no breast gives an all-zero map.

    Args:
        spacing_mm: (row, col) pixel spacing in mm; when given it wins over the image's
            ``meta["spacing_mm"]``. One of the two is required.
        view: "CC" or "MLO"; when given it wins over ``meta["view"]``. None and no metadata:
            the view is unknown and a pectoral muscle is looked for with stricter checks.
        work_spacing_mm: spacing (mm) of the block-averaged copy the analysis runs on; the
            skin line is refined at full resolution.
        skin_fraction: where the skin line lies between the air level (0) and the median
            tissue level (1) of ln(P).
        n_sectors: angular sectors for the periphery width (1: one width for the breast).
        min_breast_area_mm2: a smaller object is not a breast (all-zero map).
        pectoral: True/False forces/skips the pectoral search; None decides from the view.
        thickness_mm: compressed breast thickness (mm) for the scatter step; when given it wins over
            ``meta["thickness_mm"]`` (DICOM BodyPartThickness (0018,11A0)). Neither: the thickness
            the image implies (DensityMap's estimate from the air-to-fat contrast, read on a first
            map; the map is made again with it), which needs KVP, AnodeTargetMaterial and
            FilterMaterial; without those the scatter is not removed (the periphery then tends to
            come out too narrow on thick breasts). ``"image"``: the image's even when the header
            has one (a unit whose readout is off), the header's when the image gives none
            (:mod:`monai_bac.transforms.region_thickness`).
        scatter: ``"published"`` (default): remove the scatter estimate for the thickness before
            the periphery is fitted (behind an anti-scatter grid, or without one where
            ``meta["anti_scatter_grid"]`` says "NO"); ``"none"``: don't (a scatter-free, simulated
            image).
        width_margin: the periphery is drawn this fraction wider than fitted (None: by view,
            :data:`monai_bac.ops.breast_region.WIDTH_MARGIN`, 8 % CC and 2 % MLO: on realistic
            images the fitted widths come out short, CC views more, mostly by what the scatter
            step leaves; docs/design-log/breast_region.md, "A margin per view"); 0 for a simulated
            image without scatter.
        dtype: output dtype (uint8).

    ``__call__(img, spacing_mm=None, view=None)``: ``img`` is (1, H, W) (or (H, W)) numpy,
    torch or MetaTensor, raw values linear in exposure (what ``monai_bac.data.load_mammogram``
    returns). The result has the same type, shape and device; a MetaTensor's metadata is
    copied from the image and extended with ``breast_map_source`` ("BreastRegion"),
    ``chest_wall_side`` ("left"/"right", "" without a breast), ``periphery_width_mm`` (NaN
    without a breast), ``pectoral_found``, ``scatter_thickness_mm`` (the thickness the scatter step
    used, NaN for none), ``scatter_thickness_source`` (``"argument"``, ``"BodyPartThickness
    (0018,11A0)"``, ``"image"``, or what was missing) and ``implant_shadow_cm2`` (the area of an
    implant's shadow kept out of the periphery fit, :mod:`monai_bac.ops.implant`; 0 when none was
    found, or none was looked for: that needs the compressed thickness and KVP, anode and filter;
    when BreastImplantPresent (0028,1300) is YES and nothing passes the glandular bound, or what
    passes only just does, it is looked for again at the bound of the thinnest breast the thickness
    readout allows).

    Raises:
        MissingPhysicsError: neither ``spacing_mm`` nor ``meta["spacing_mm"]`` is available.
    """

    backend = [TransformBackends.NUMPY]

    def __init__(
        self,
        spacing_mm: Sequence[float] | float | None = None,
        view: str | None = None,
        work_spacing_mm: float = 0.5,
        skin_fraction: float = 0.1,
        n_sectors: int = 8,
        min_breast_area_mm2: float = 500.0,
        pectoral: bool | None = None,
        thickness_mm: float | str | None = None,
        scatter: str = "published",
        width_margin: float | None = None,
        dtype: Any = np.uint8,
    ) -> None:
        if not work_spacing_mm > 0:
            raise ValueError(f"work_spacing_mm must be > 0 (mm), got {work_spacing_mm}")
        if not 0 < skin_fraction < 1:
            raise ValueError(f"skin_fraction must lie in (0, 1), got {skin_fraction}")
        if int(n_sectors) < 1:
            raise ValueError(f"n_sectors must be >= 1, got {n_sectors}")
        if isinstance(thickness_mm, str) and thickness_mm != FROM_IMAGE:
            raise ValueError(f"thickness_mm must be a number (mm), 'image' or None, got {thickness_mm!r}")
        if thickness_mm is not None and thickness_mm != FROM_IMAGE and not float(thickness_mm) > 0:
            raise ValueError(f"thickness_mm must be > 0 (mm), got {thickness_mm}")
        scatter = str(scatter).lower()
        if scatter not in SCATTER_MODELS:
            raise ValueError(f"scatter must be one of {SCATTER_MODELS}, got {scatter!r}")
        if width_margin is not None and not 0.0 <= float(width_margin) < 0.5:
            raise ValueError(f"width_margin must lie in [0, 0.5) (a fraction of the width), got {width_margin}")
        self.thickness_mm = thickness_mm if thickness_mm in (None, FROM_IMAGE) else float(thickness_mm)
        self.scatter = scatter
        self.width_margin = None if width_margin is None else float(width_margin)
        self.spacing_mm = spacing_mm
        self.view = view
        self.work_spacing_mm = float(work_spacing_mm)
        self.skin_fraction = float(skin_fraction)
        self.n_sectors = int(n_sectors)
        self.min_breast_area_mm2 = float(min_breast_area_mm2)
        self.pectoral = pectoral
        self.dtype = dtype

    def __call__(
        self,
        img: NdarrayOrTensor,
        spacing_mm: Sequence[float] | float | None = None,
        view: str | None = None,
        meta: Mapping | None = None,
    ) -> NdarrayOrTensor:
        """Compute the map; ``meta`` supplies metadata for a plain array (a MetaTensor's own
        metadata wins)."""
        info = dict(meta or {})
        info.update(meta_of(img))
        given = spacing_mm if spacing_mm is not None else self.spacing_mm
        spacing = resolve_spacing_mm(info, given, type(self).__name__)
        view = view if view is not None else self.view if self.view is not None else info.get("view")
        arr = convert_to_numpy(img)
        if arr.ndim == 3:
            if arr.shape[0] != 1:
                raise ValueError(f"BreastRegion expects one channel (1, H, W), got shape {tuple(arr.shape)}")
            hw = arr[0]
        elif arr.ndim == 2:
            hw = arr
        else:
            raise ValueError(f"BreastRegion expects (1, H, W) or (H, W), got shape {tuple(arr.shape)}")
        res, thickness, source = breast_region_with_thickness(
            hw,
            spacing,
            None if view is None else str(view),
            info,
            thickness_mm=self.thickness_mm,
            scatter=self.scatter == "published",
            work_spacing_mm=self.work_spacing_mm,
            skin_fraction=self.skin_fraction,
            n_sectors=self.n_sectors,
            min_breast_area_mm2=self.min_breast_area_mm2,
            pectoral=self.pectoral,
            width_margin=self.width_margin,
        )
        out = res.breast_map[None] if arr.ndim == 3 else res.breast_map
        dtype = self.dtype
        if isinstance(img, torch.Tensor):
            dtype = get_equivalent_dtype(dtype, torch.Tensor)
        result, *_ = convert_to_dst_type(np.ascontiguousarray(out), img, dtype=dtype)
        if isinstance(result, MetaTensor):
            result.meta["breast_map_source"] = "BreastRegion"
            result.meta["chest_wall_side"] = res.chest_wall or ""  # no None: DataLoader collation
            result.meta["periphery_width_mm"] = float(res.periphery_width_mm) if res.found else float("nan")
            result.meta["pectoral_found"] = res.pectoral is not None
            result.meta["scatter_thickness_mm"] = float("nan") if thickness is None else float(thickness)
            result.meta["scatter_thickness_source"] = source
            result.meta["implant_shadow_cm2"] = res.implant_shadow_mm2 / 100.0
        return result


class BreastRegiond(MapTransform):
    """Dictionary-based wrapper of :class:`BreastRegion` (Sec. 3.1, Fig. 2).

    Computes the breast map of ``d[key]`` and stores it under ``map_key``. A map already in
    the data (e.g. the user's own, or VolparaDensity's) takes precedence: the transform then
    does nothing, unless ``overwrite=True``.

    Args:
        keys: image key(s), e.g. ``"image"``.
        map_key: where the map goes (default ``"breast_map"``); one per key or one for all.
        overwrite: recompute even when ``map_key`` is already present.
        spacing_mm, view, work_spacing_mm, skin_fraction, n_sectors, min_breast_area_mm2,
            pectoral, thickness_mm, scatter, width_margin, dtype: see :class:`BreastRegion`. For a plain (non-MetaTensor) image the
            metadata is read from ``d[f"{key}_meta_dict"]`` when present.
        allow_missing_keys: don't raise an exception if a key is missing.
    """

    backend = BreastRegion.backend

    def __init__(
        self,
        keys: KeysCollection,
        map_key: Sequence[Hashable] | Hashable = "breast_map",
        overwrite: bool = False,
        spacing_mm: Sequence[float] | float | None = None,
        view: str | None = None,
        work_spacing_mm: float = 0.5,
        skin_fraction: float = 0.1,
        n_sectors: int = 8,
        min_breast_area_mm2: float = 500.0,
        pectoral: bool | None = None,
        thickness_mm: float | str | None = None,
        scatter: str = "published",
        width_margin: float | None = None,
        dtype: Any = np.uint8,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.map_key = ensure_tuple_rep(map_key, len(self.keys))
        self.overwrite = bool(overwrite)
        self.region = BreastRegion(
            spacing_mm=spacing_mm,
            view=view,
            work_spacing_mm=work_spacing_mm,
            skin_fraction=skin_fraction,
            n_sectors=n_sectors,
            min_breast_area_mm2=min_breast_area_mm2,
            pectoral=pectoral,
            thickness_mm=thickness_mm,
            scatter=scatter,
            width_margin=width_margin,
            dtype=dtype,
        )

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key, map_key in self.key_iterator(d, self.map_key):
            if not self.overwrite and d.get(map_key) is not None:
                continue  # the user's map takes precedence
            meta = d.get(f"{key}_meta_dict") if not isinstance(d[key], MetaTensor) else None
            d[map_key] = self.region(d[key], meta=meta if isinstance(meta, Mapping) else None)
        return d


BreastRegionD = BreastRegionDict = BreastRegiond

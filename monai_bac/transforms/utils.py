"""Helpers shared by the transforms of this package: metadata, shapes, spacing, breast map.

Each transform accepts numpy, torch or MetaTensor images of shape (1, H, W) or (H, W), works on
an (H, W) numpy view (:func:`to_hw`) and returns its result in the input's type with the
input's metadata (:func:`like`). Physical quantities come from an explicit argument or the
metadata, and a missing one raises an error naming the tag and the argument
(:class:`~monai_bac.physics.MissingPhysicsError`; for the pixel spacing
:class:`~monai_bac.units.SpacingError`, :func:`resolve_spacing_mm`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms.transform import MapTransform, Transform
from monai.utils.enums import MetaKeys
from monai.utils.type_conversion import convert_to_dst_type, convert_to_numpy, get_equivalent_dtype

from monai_bac.physics import MissingPhysicsError


__all__ = ["BREAST_REGIONS", "BreastMapd", "ForeignLoaderError", "ReorientedImageError", "breast_pixels", "meta_of", "source_name", "to_hw", "like", "resolve_spacing_mm", "compute_breast_map",
           "breast_map_hw", "dict_breast_map", "nan_if_none", "SCATTER_MODELS"]

#: how BreastRegion and DensityMap treat scatter: remove the published estimate, or not at all
SCATTER_MODELS = ("published", "none")

#: breast map codes that are breast tissue (periphery, compressed, pectoral)
from monai_bac.breast_map import BREAST_REGIONS  # noqa: E402


class ForeignLoaderError(MissingPhysicsError):
    """The image was loaded by a reader that is not this package's (MONAI's ``LoadImage`` with its own
    readers): its meta has none of the acquisition keys, and its pixels may be transposed or inverted."""


class ReorientedImageError(ValueError):
    """A mammogram's rows no longer run as its file stores them: a MONAI spatial transform
    (``Orientation``, ``Rotate90``, a flip along spatial axis 0) was applied after loading."""


#: the key every loader of this package writes, never None (monai_bac.data.loader.LOADED_BY)
_OWN_LOADER_KEY = "loaded_by"


def _check_rows_as_stored(meta: Mapping) -> None:
    """Refuse a mammogram (of this package's loader) whose affine says its rows were swapped with its
    columns or reversed since loading. The loader's affine (:func:`monai_bac.data.loader.mammogram_affine`)
    has the axis codes ``("P", "L")`` (nibabel's ``aff2axcodes``: a row step towards P, a column step
    towards L); ``("P", "R")``, a left-right flip, is what the other breast looks like and is allowed,
    a small rotation too (the codes are the nearest axes)."""
    if _OWN_LOADER_KEY not in meta or meta.get(MetaKeys.AFFINE) is None:
        return
    a = np.asarray(convert_to_numpy(meta[MetaKeys.AFFINE]), dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 3:
        return
    from nibabel.orientations import aff2axcodes

    codes = aff2axcodes(a)
    if codes[0] == "P":
        return
    raise ReorientedImageError(
        f"{source_name(meta)}: the image's rows no longer run as the file stores them (its affine's axis codes are "
        f"{''.join(codes)}, not PL or PR): a MONAI Orientation(d), Rotate90(d), Transpose "
        "or Flip along spatial axis 0 after loading? The monai-bac transforms take a mammogram as stored, the head "
        "side at the top (BreastRegion finds the pectoral muscle in the upper chest-wall corner; a left-right flip "
        "is fine). Apply such transforms after them, or leave Orientation out: a mammogram has no RAS orientation "
        "to restore")


def meta_of(img: Any) -> dict:
    """The metadata dict of a MetaTensor, else an empty dict.

    Raises:
        ReorientedImageError: this package's MetaTensor, its rows swapped or reversed since loading.
        ForeignLoaderError: the MetaTensor came from a MONAI reader other than
            :class:`~monai_bac.data.MammogramReader` (its meta has MONAI's ``original_channel_dim``
            but not this package's keys). ITKReader and PydicomReader give a mammogram in (x, y) order,
            MONOCHROME1 as stored (ITK) or inverted against the full bit range (pydicom), and without
            kVp, thickness, anode/filter, grid or view: nothing physical computed from it would hold.
    """
    if not isinstance(img, MetaTensor):
        return {}
    meta = dict(img.meta)
    if MetaKeys.ORIGINAL_CHANNEL_DIM in meta and _OWN_LOADER_KEY not in meta:
        raise ForeignLoaderError(
            f"{source_name(meta)}: loaded by a reader that is not monai-bac's (its meta has MONAI's "
            f"'{MetaKeys.ORIGINAL_CHANNEL_DIM}' but not '{_OWN_LOADER_KEY}', 'spacing_mm', 'kvp', ...): MONAI's "
            "ITKReader and PydicomReader give a mammogram transposed (x, y), MONOCHROME1 as stored or inverted, and "
            "without its acquisition tags (spacing, kVp, thickness, anode/filter, grid, view). Load it with "
            "LoadImaged(keys, reader=\"monai_bac.data.MammogramReader\") (a label: "
            "reader=MammogramReader(label=True), dtype=numpy.uint8) or with monai_bac.data.LoadMammogramd; an array "
            "you know to hold raw values in (row, col) order goes in as a plain tensor (img.as_tensor()), with its "
            "physics as arguments")
    _check_rows_as_stored(meta)
    return meta


def source_name(meta: Mapping) -> str:
    name = meta.get("filename_or_obj")
    return str(name) if name else "image"


def to_hw(img: Any, name: str = "image") -> np.ndarray:
    """(H, W) numpy view of a (1, H, W) or (H, W) array/tensor."""
    arr = convert_to_numpy(img)
    if arr.ndim == 3:
        if arr.shape[0] != 1:
            raise ValueError(f"{name} must have one channel (1, H, W), got shape {tuple(arr.shape)}")
        arr = arr[0]
    elif arr.ndim != 2:
        raise ValueError(f"{name} must be (1, H, W) or (H, W), got shape {tuple(arr.shape)}")
    return arr


def like(out_hw: np.ndarray, img: Any, dtype=None, meta_update: Mapping | None = None):
    """``out_hw`` in the type, shape (channel or not) and device of ``img``; MetaTensor meta copied
    from ``img`` and extended with ``meta_update``."""
    out = out_hw[None] if np.ndim(img) == 3 else out_hw
    if dtype is None:
        dtype = out.dtype
    if isinstance(img, torch.Tensor):
        dtype = get_equivalent_dtype(dtype, torch.Tensor)
    result, *_ = convert_to_dst_type(np.ascontiguousarray(out), img, dtype=dtype)
    if isinstance(result, MetaTensor) and meta_update:
        for k, v in meta_update.items():
            result.meta[k] = v
    return result


def resolve_spacing_mm(meta: Mapping, given: Sequence[float] | float | None, who: str) -> tuple[float, float]:
    """Pixel spacing (row, col) mm: the argument wins, then ``meta["spacing_mm"]``
    (:func:`monai_bac.units.resolve_spacing`; raises its ``SpacingError``)."""
    from monai_bac.units import resolve_spacing

    return resolve_spacing(meta, given, who)


def compute_breast_map(image_hw: np.ndarray, meta: Mapping, spacing: tuple[float, float] | None) -> np.ndarray:
    """Breast map from the image as ``BreastRegion()`` makes it (its op and the thickness of its scatter
    step, :mod:`monai_bac.transforms.region_thickness`; imported here, when first needed)."""
    from monai_bac.transforms.region_thickness import breast_region_with_thickness

    if spacing is None:
        spacing = resolve_spacing_mm(meta, None, "BreastRegion")
    result, _, _ = breast_region_with_thickness(image_hw, spacing, meta.get("view"), meta)
    return np.asarray(result.breast_map, dtype=np.uint8)


def breast_map_hw(breast_map: Any, image_hw: np.ndarray, meta: Mapping, spacing=None) -> np.ndarray:
    """(H, W) uint8 breast map: the given one (checked), else computed by BreastRegion."""
    if breast_map is None:
        return compute_breast_map(image_hw, meta, spacing)
    bmap = to_hw(breast_map, "breast_map")
    if bmap.shape != image_hw.shape:
        raise ValueError(f"{source_name(meta)}: breast_map (H, W) = {bmap.shape} differs from the image's {image_hw.shape}")
    return bmap.astype(np.uint8, copy=False) if bmap.dtype != bool else bmap.astype(np.uint8)


def dict_breast_map(d: dict, key: Hashable | None, img: Any, store: bool) -> Any:
    """The breast map of a data dict (``d[key]``), or one computed from ``img`` (stored when asked)."""
    if key is not None and key in d and d[key] is not None:
        return d[key]
    meta = meta_of(img)
    bmap = compute_breast_map(to_hw(img), meta, None)
    if store and key is not None:
        d[key] = like(bmap, img, dtype=np.uint8, meta_update={"breast_map_source": "BreastRegion"})
    return bmap


def nan_if_none(v):
    return float("nan") if v is None else v


def breast_pixels(img: Any, breast_map: Any, regions: Sequence[int], spacing_mm, who: str) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) image and the boolean mask of its breast pixels (map codes in ``regions``); the
    map is computed by BreastRegion when not given."""
    meta = meta_of(img)
    image = to_hw(img)
    spacing = resolve_spacing_mm(meta, spacing_mm, who) if breast_map is None else None
    return image, np.isin(breast_map_hw(breast_map, image, meta, spacing), regions)


class BreastMapd(MapTransform):
    """Base of the dictionary transforms whose array transform is called as ``t(img, breast_map)``.

    The breast map is read from ``breast_map_key``; when the data has none it is computed by
    BreastRegion from the first image and stored there (``store_breast_map``) for the next
    transforms of the chain. Each key is transformed in place.
    """

    def __init__(self, keys: KeysCollection, transform: Transform, breast_map_key: str | None = "breast_map",
                 store_breast_map: bool = True, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.transform = transform
        self.breast_map_key = breast_map_key
        self.store_breast_map = store_breast_map

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            bmap = dict_breast_map(d, self.breast_map_key, d[key], self.store_breast_map)
            d[key] = self.transform(d[key], bmap)
        return d

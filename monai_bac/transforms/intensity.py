"""Intensity normalisations of raw mammograms (the paper's Sec. 3.1) as MONAI transforms.

* :class:`LogGammaNormalize` / :class:`LogGammaNormalized`: simple gamma correction, Eq. (1)-(2).
* :class:`AutoGammaNormalize` / :class:`AutoGammaNormalized`: self-adaptive contrast, Eq. (3),
  with a provably convergent update in place of the printed Eq. (3a) (see
  :mod:`monai_bac.ops.normalize`).

Both need the breast region (codes 1-3 of the breast map, DESIGN.md). The array classes take it
as the ``breast_map`` argument of ``__call__``; the dictionary classes read ``breast_map_key``
(default ``"breast_map"``). When no map is given it is computed by ``BreastRegion``
(:mod:`monai_bac.ops.breast_region`) from the image, its spacing and view; the dictionary
classes then store it under ``breast_map_key`` for the next transforms of the chain.

This module also holds the small helpers the other transform modules of the package share.
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
from monai.utils.enums import TransformBackends
from monai.utils.type_conversion import convert_to_dst_type, convert_to_numpy

from monai_bac.ops.normalize import auto_gamma, log_gamma
from monai_bac.physics import MissingPhysicsError

__all__ = [
    "LogGammaNormalize",
    "LogGammaNormalized",
    "LogGammaNormalizeD",
    "LogGammaNormalizeDict",
    "AutoGammaNormalize",
    "AutoGammaNormalized",
    "AutoGammaNormalizeD",
    "AutoGammaNormalizeDict",
]

BREAST_REGIONS = (1, 2, 3)


# --------------------------------------------------------------------------- shared helpers
def _meta_of(img: Any) -> dict:
    """The metadata dict of a MetaTensor, else an empty dict."""
    return dict(img.meta) if isinstance(img, MetaTensor) else {}


def _source(meta: Mapping) -> str:
    name = meta.get("filename_or_obj")
    return str(name) if name else "image"


def _to_hw(img: Any, name: str = "image") -> np.ndarray:
    """(H, W) numpy view of a (1, H, W) or (H, W) array/tensor."""
    arr = convert_to_numpy(img)
    if arr.ndim == 3:
        if arr.shape[0] != 1:
            raise ValueError(f"{name} must have one channel (1, H, W), got shape {tuple(arr.shape)}")
        arr = arr[0]
    elif arr.ndim != 2:
        raise ValueError(f"{name} must be (1, H, W) or (H, W), got shape {tuple(arr.shape)}")
    return arr


def _like(out_hw: np.ndarray, img: Any, dtype=None, meta_update: Mapping | None = None):
    """``out_hw`` in the type, shape (channel or not) and device of ``img``; MetaTensor meta copied
    from ``img`` and extended with ``meta_update``."""
    out = out_hw[None] if np.ndim(img) == 3 else out_hw
    if dtype is None:
        dtype = out.dtype
    if isinstance(img, torch.Tensor):
        dtype = torch.from_numpy(np.zeros(0, dtype=dtype)).dtype
    result, *_ = convert_to_dst_type(np.ascontiguousarray(out), img, dtype=dtype)
    if isinstance(result, MetaTensor) and meta_update:
        for k, v in meta_update.items():
            result.meta[k] = v
    return result


def _spacing_mm(meta: Mapping, given: Sequence[float] | float | None, who: str) -> tuple[float, float]:
    """Pixel spacing (row, col) mm: the argument wins, then ``meta["spacing_mm"]``."""
    value = given if given is not None else meta.get("spacing_mm")
    if value is None:
        raise MissingPhysicsError(
            f"{_source(meta)}: the pixel spacing is missing from the image metadata ('spacing_mm', from "
            f"ImagerPixelSpacing (0018,1164) / PixelSpacing (0028,0030)); pass spacing_mm=(row_mm, col_mm) to {who}"
        )
    if isinstance(value, (np.ndarray, torch.Tensor)):
        value = convert_to_numpy(value).ravel().tolist()
    if np.isscalar(value):
        value = (value, value)
    sr, sc = float(value[0]), float(value[1])
    if not (sr > 0 and sc > 0):
        raise ValueError(f"{_source(meta)}: spacing_mm must be positive, got {value}")
    return sr, sc


def _compute_breast_map(image_hw: np.ndarray, meta: Mapping, spacing: tuple[float, float] | None) -> np.ndarray:
    """Breast map from the image with BreastRegion's op (imported here, when first needed)."""
    from monai_bac.ops.breast_region import breast_region_map

    if spacing is None:
        spacing = _spacing_mm(meta, None, "BreastRegion")
    return np.asarray(breast_region_map(image_hw, spacing, view=meta.get("view")), dtype=np.uint8)


def _breast_map_hw(breast_map: Any, image_hw: np.ndarray, meta: Mapping, spacing=None) -> np.ndarray:
    """(H, W) uint8 breast map: the given one (checked), else computed by BreastRegion."""
    if breast_map is None:
        return _compute_breast_map(image_hw, meta, spacing)
    bmap = _to_hw(breast_map, "breast_map")
    if bmap.shape != image_hw.shape:
        raise ValueError(f"{_source(meta)}: breast_map (H, W) = {bmap.shape} differs from the image's {image_hw.shape}")
    return bmap.astype(np.uint8, copy=False) if bmap.dtype != bool else bmap.astype(np.uint8)


def _dict_breast_map(d: dict, key: Hashable | None, img: Any, store: bool) -> Any:
    """The breast map of a data dict (``d[key]``), or one computed from ``img`` (stored when asked)."""
    if key is not None and key in d and d[key] is not None:
        return d[key]
    meta = _meta_of(img)
    bmap = _compute_breast_map(_to_hw(img), meta, None)
    if store and key is not None:
        d[key] = _like(bmap, img, dtype=np.uint8, meta_update={"breast_map_source": "BreastRegion"})
    return bmap


def _nan_if_none(v):
    return float("nan") if v is None else v


# --------------------------------------------------------------------------- simple gamma
class LogGammaNormalize(Transform):
    """Simple gamma correction of a raw mammogram, Eq. (1)-(2) of the paper.

    ``out = [(ln(I + 1) - min) / (max - min)] ** gamma`` inside the breast, where ``min`` and
    ``max`` are the extremes of ``ln(I + 1)`` inside the breast region; every pixel outside the
    breast gets ``background``. The output lies in [0, 1] in the breast.

    Args:
        gamma: the exponent; the paper uses 1/2.
        background: the constant written outside the breast.
        regions: breast-map codes that make up the breast (default: periphery, compressed region
            and pectoral muscle, i.e. everything but the background).
        percentiles: (low, high) percentiles replacing the min and max (default (0, 100): the
            paper's plain min and max).
        spacing_mm: (row, col) mm, only needed when the breast map must be computed and the
            image has no ``spacing_mm`` metadata.
        dtype: output dtype.

    ``__call__(img, breast_map=None)``: ``img`` (1, H, W) (or (H, W)) numpy array, tensor or
    MetaTensor of raw values; ``breast_map`` the DESIGN.md map (or a boolean mask), computed by
    BreastRegion when None. Returns the same type; a MetaTensor keeps its metadata and gains
    ``meta["log_gamma"]`` = {gamma, log_min, log_max, breast_mean, empty}. An image without
    breast pixels comes back filled with ``background`` (``empty`` = True).
    """

    backend = [TransformBackends.NUMPY, TransformBackends.TORCH]

    def __init__(
        self,
        gamma: float = 0.5,
        background: float = 0.0,
        regions: Sequence[int] = BREAST_REGIONS,
        percentiles: Sequence[float] = (0.0, 100.0),
        spacing_mm: Sequence[float] | None = None,
        dtype: Any = np.float32,
    ) -> None:
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.gamma = float(gamma)
        self.background = float(background)
        self.regions = tuple(int(r) for r in regions)
        self.percentiles = (float(percentiles[0]), float(percentiles[1]))
        self.spacing_mm = spacing_mm
        self.dtype = dtype

    def __call__(self, img: NdarrayOrTensor, breast_map: NdarrayOrTensor | None = None) -> NdarrayOrTensor:
        meta = _meta_of(img)
        image = _to_hw(img)
        spacing = _spacing_mm(meta, self.spacing_mm, type(self).__name__) if breast_map is None else None
        bmap = _breast_map_hw(breast_map, image, meta, spacing)
        mask = np.isin(bmap, self.regions)
        out, info = log_gamma(image, mask, self.gamma, self.background, self.percentiles)
        info = {k: _nan_if_none(v) for k, v in info.items()}
        return _like(out, img, self.dtype, {"log_gamma": info})


class LogGammaNormalized(MapTransform):
    """Dictionary-based wrapper of :class:`LogGammaNormalize` (Eq. 1-2).

    Args:
        keys: images to normalise (in place), e.g. ``"image"``.
        breast_map_key: key of the breast map; when absent from the data it is computed by
            BreastRegion from the first image and stored under this key (``store_breast_map``).
        store_breast_map: keep a computed breast map in the data.
        allow_missing_keys: don't raise for missing keys.
        other arguments: see :class:`LogGammaNormalize`.
    """

    backend = LogGammaNormalize.backend

    def __init__(
        self,
        keys: KeysCollection = "image",
        breast_map_key: str | None = "breast_map",
        gamma: float = 0.5,
        background: float = 0.0,
        regions: Sequence[int] = BREAST_REGIONS,
        percentiles: Sequence[float] = (0.0, 100.0),
        spacing_mm: Sequence[float] | None = None,
        dtype: Any = np.float32,
        store_breast_map: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.breast_map_key = breast_map_key
        self.store_breast_map = store_breast_map
        self.transform = LogGammaNormalize(gamma, background, regions, percentiles, spacing_mm, dtype)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            bmap = _dict_breast_map(d, self.breast_map_key, d[key], self.store_breast_map)
            d[key] = self.transform(d[key], bmap)
        return d


# --------------------------------------------------------------------------- self-adaptive gamma
class AutoGammaNormalize(Transform):
    """Self-adaptive contrast adjustment, Eq. (3) of the paper, with a convergent update.

    ``Y = minmax_breast(ln(I + 1))`` (Eq. 1-2 with exponent 1), then ``out = Y ** G`` with the
    total exponent ``G`` (the product of the paper's gamma_i) chosen so that the mean of ``out``
    inside the breast equals ``target_mean`` within ``tol``.

    Deviation from the paper: Eq. (3a) as printed, ``gamma_{i+1} = gamma_i ln(Ybar - Ybar_i)``,
    is undefined when the mean overshoots the target and changes the sign of gamma whenever the
    gap is below 1. Here ``G`` is found by bracketed Illinois/regula-falsi iteration on ``log G``
    starting at ``G = 1``; because the breast mean of ``Y ** G`` is continuous and strictly
    decreasing in ``G``, it converges for every target in (0, 1) that the image can reach (see
    :mod:`monai_bac.ops.normalize` for the proof sketch). ``max_iter`` bounds the number of
    evaluations, like the paper's "set number of iterations".

    Args:
        target_mean: target mean intensity in the breast, in (0, 1).
        max_iter: most iterations.
        tol: stop when ``|mean - target_mean| <= tol``.
        background, regions, percentiles, spacing_mm, dtype: as in :class:`LogGammaNormalize`.

    Returns the same type as the input; a MetaTensor gains ``meta["auto_gamma"]`` = {gamma,
    iterations, breast_mean, target_mean, converged, reachable, log_min, log_max}. An image
    without breast pixels comes back filled with ``background`` (gamma nan, converged False).
    """

    backend = [TransformBackends.NUMPY, TransformBackends.TORCH]

    def __init__(
        self,
        target_mean: float = 0.5,
        max_iter: int = 50,
        tol: float = 1e-3,
        background: float = 0.0,
        regions: Sequence[int] = BREAST_REGIONS,
        percentiles: Sequence[float] = (0.0, 100.0),
        spacing_mm: Sequence[float] | None = None,
        dtype: Any = np.float32,
    ) -> None:
        if not 0.0 < target_mean < 1.0:
            raise ValueError(f"target_mean must be in (0, 1), got {target_mean}")
        self.target_mean = float(target_mean)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.background = float(background)
        self.regions = tuple(int(r) for r in regions)
        self.percentiles = (float(percentiles[0]), float(percentiles[1]))
        self.spacing_mm = spacing_mm
        self.dtype = dtype

    def __call__(self, img: NdarrayOrTensor, breast_map: NdarrayOrTensor | None = None) -> NdarrayOrTensor:
        meta = _meta_of(img)
        image = _to_hw(img)
        spacing = _spacing_mm(meta, self.spacing_mm, type(self).__name__) if breast_map is None else None
        bmap = _breast_map_hw(breast_map, image, meta, spacing)
        mask = np.isin(bmap, self.regions)
        out, res = auto_gamma(image, mask, self.target_mean, self.max_iter, self.tol, self.background,
                              self.percentiles)
        info = {k: _nan_if_none(v) for k, v in res.as_dict().items()}
        return _like(out, img, self.dtype, {"auto_gamma": info})


class AutoGammaNormalized(MapTransform):
    """Dictionary-based wrapper of :class:`AutoGammaNormalize` (Eq. 3).

    Args:
        keys: images to normalise (in place), e.g. ``"image"``.
        breast_map_key: key of the breast map; computed by BreastRegion and stored when absent.
        store_breast_map: keep a computed breast map in the data.
        allow_missing_keys: don't raise for missing keys.
        other arguments: see :class:`AutoGammaNormalize`.
    """

    backend = AutoGammaNormalize.backend

    def __init__(
        self,
        keys: KeysCollection = "image",
        breast_map_key: str | None = "breast_map",
        target_mean: float = 0.5,
        max_iter: int = 50,
        tol: float = 1e-3,
        background: float = 0.0,
        regions: Sequence[int] = BREAST_REGIONS,
        percentiles: Sequence[float] = (0.0, 100.0),
        spacing_mm: Sequence[float] | None = None,
        dtype: Any = np.float32,
        store_breast_map: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.breast_map_key = breast_map_key
        self.store_breast_map = store_breast_map
        self.transform = AutoGammaNormalize(target_mean, max_iter, tol, background, regions, percentiles,
                                            spacing_mm, dtype)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            bmap = _dict_breast_map(d, self.breast_map_key, d[key], self.store_breast_map)
            d[key] = self.transform(d[key], bmap)
        return d


LogGammaNormalizeD = LogGammaNormalizeDict = LogGammaNormalized
AutoGammaNormalizeD = AutoGammaNormalizeDict = AutoGammaNormalized

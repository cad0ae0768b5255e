"""Intensity normalisations of raw mammograms (the paper's Sec. 3.1) as MONAI transforms.

* :class:`LogGammaNormalize` / :class:`LogGammaNormalized`: simple gamma correction, Eq. (1)-(2).
* :class:`AutoGammaNormalize` / :class:`AutoGammaNormalized`: self-adaptive contrast, Eq. (3),
  with a provably convergent update in place of the printed Eq. (3a) (see
  :mod:`monai_bac.ops.normalize`).

Both need the breast region (codes 1-3 of the breast map, docs/ARCHITECTURE.md). The array classes take it
as the ``breast_map`` argument of ``__call__``; the dictionary classes read ``breast_map_key``
(default ``"breast_map"``). When no map is given it is computed by ``BreastRegion``
(:mod:`monai_bac.ops.breast_region`) from the image, its spacing and view; the dictionary
classes then store it under ``breast_map_key`` for the next transforms of the chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms.transform import Transform
from monai.utils.enums import TransformBackends

from monai_bac.ops.normalize import auto_gamma, log_gamma
from monai_bac.transforms.utils import BREAST_REGIONS, BreastMapd, breast_pixels, like, nan_if_none

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
    MetaTensor of raw values; ``breast_map`` the docs/ARCHITECTURE.md map (or a boolean mask), computed by
    BreastRegion when None. Returns the same type; a MetaTensor keeps its metadata and gains
    ``meta["log_gamma"]`` = {gamma, log_min, log_max, breast_mean, empty}. An image without
    breast pixels comes back filled with ``background`` (``empty`` = True).
    """

    backend = [TransformBackends.NUMPY]  # the op runs in numpy (torch input is converted, the output converted back)

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
        image, mask = breast_pixels(img, breast_map, self.regions, self.spacing_mm, type(self).__name__)
        out, info = log_gamma(image, mask, self.gamma, self.background, self.percentiles)
        info = {k: nan_if_none(v) for k, v in info.items()}
        return like(out, img, self.dtype, {"log_gamma": info})


class LogGammaNormalized(BreastMapd):
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
        super().__init__(keys, LogGammaNormalize(gamma, background, regions, percentiles, spacing_mm, dtype),
                         breast_map_key, store_breast_map, allow_missing_keys)



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

    backend = [TransformBackends.NUMPY]  # the op runs in numpy (torch input is converted, the output converted back)

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
        image, mask = breast_pixels(img, breast_map, self.regions, self.spacing_mm, type(self).__name__)
        out, res = auto_gamma(image, mask, self.target_mean, self.max_iter, self.tol, self.background,
                              self.percentiles)
        info = {k: nan_if_none(v) for k, v in res.as_dict().items()}
        return like(out, img, self.dtype, {"auto_gamma": info})


class AutoGammaNormalized(BreastMapd):
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
        transform = AutoGammaNormalize(target_mean, max_iter, tol, background, regions, percentiles, spacing_mm, dtype)
        super().__init__(keys, transform, breast_map_key, store_breast_map, allow_missing_keys)



LogGammaNormalizeD = LogGammaNormalizeDict = LogGammaNormalized
AutoGammaNormalizeD = AutoGammaNormalizeDict = AutoGammaNormalized

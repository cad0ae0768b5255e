"""Small dictionary transforms that join the library's transforms into the bundle's pipelines."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing
from monai.transforms import MapTransform, Resize, Resized
from monai.utils import TraceKeys

__all__ = ["NORMALISATIONS", "InputRejected", "CheckMammogramd", "NormalizeMammogramd", "UpdateSpacingd", "DropEmptyMetad", "DefaultKeyd",
           "ResizeWithInverseMode", "ResizeWithInverseModed"]

#: The paper's normalisations (Sec. 3.1, Table 3) by the name the bundle uses.
NORMALISATIONS = ("none", "log_gamma", "auto_gamma", "density")


class NormalizeMammogramd(MapTransform):
    """Apply one of the paper's normalisations to the raw image, chosen by name.

    ``none`` keeps the raw values (the paper's "Raw image" runs), ``log_gamma`` is Eq. (1)-(2),
    ``auto_gamma`` Eq. (3) and ``density`` replaces the image by the dense-tissue thickness
    map of Eq. (4) in mm. The breast map is read from ``breast_map_key``. A z-score
    (``NormalizeIntensityd``) usually follows, as in the paper (Sec. 4.3).
    """

    def __init__(self, keys: KeysCollection, method: str = "log_gamma", breast_map_key: str = "breast_map",
                 allow_missing_keys: bool = False, **kwargs: Any) -> None:
        super().__init__(keys, allow_missing_keys)
        method = str(method).lower().replace("-", "_")
        if method not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {method!r}")
        self.method = method
        from monai_bac import transforms as T

        if method == "log_gamma":
            self._fn = T.LogGammaNormalize(**kwargs)
        elif method == "auto_gamma":
            self._fn = T.AutoGammaNormalize(**kwargs)
        elif method == "density":  # the volumetric density is not needed to normalise
            self._fn = T.DensityMap(**{"compute_vbd": False, **kwargs})
        else:
            self._fn = None
        self.breast_map_key = breast_map_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if self._fn is None:
            return d
        breast_map = d.get(self.breast_map_key)
        for key in self.key_iterator(d):
            d[key] = self._fn(d[key], breast_map=breast_map)
        return d


class InputRejected(ValueError):
    """An input the model must not be run on (a processed image, an image far smaller than the input)."""


class CheckMammogramd(MapTransform):
    """Refuse, with :class:`InputRejected` naming the file, an image the model must not see.

    * A processed (FOR PRESENTATION) image, unless ``allow_processed``: the model was trained
      on raw detector data, and the paper's normalisations (Eq. 1-4) assume it.
    * An image whose smaller side is below ``min_input_fraction`` x ``image_size``: upsampling
      it to the network input would invent detail the model never saw.
    * An image in which ``BreastRegion`` found no breast (``breast_map_key`` all background),
      when that key is present.
    """

    def __init__(self, keys: KeysCollection = "image", image_size: int = 1600, min_input_fraction: float = 0.5,
                 allow_processed: bool = False, breast_map_key: str = "breast_map",
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.image_size, self.min_input_fraction = int(image_size), float(min_input_fraction)
        self.allow_processed, self.breast_map_key = bool(allow_processed), breast_map_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            meta = getattr(img, "meta", {}) or {}
            source = meta.get("filename_or_obj", key)
            if meta.get("is_raw") is False and not self.allow_processed:
                raise InputRejected(
                    f"{source}: processed (FOR PRESENTATION) image; the model was trained on raw (FOR PROCESSING) "
                    "detector data and its output on a processed image is not meaningful (allow_processed / "
                    "--allow-processed runs it anyway)")
            h, w = (int(s) for s in img.shape[-2:])
            if min(h, w) < self.min_input_fraction * self.image_size:
                raise InputRejected(
                    f"{source}: image is {h} x {w} pixels, far smaller than the network input {self.image_size} x "
                    f"{self.image_size} (smaller side below {self.min_input_fraction:g} x {self.image_size}); "
                    "upsampling it would invent detail the model never saw - not a full-field mammogram?")
            breast = d.get(self.breast_map_key)
            if breast is not None and not bool((breast > 0).any()):
                raise InputRejected(
                    f"{source}: no breast found in the image (the breast region is empty: no tissue darker than the "
                    "direct exposure by more than its noise); not a mammogram, or an exposure without a breast?")
        return d


class UpdateSpacingd(MapTransform):
    """Refresh ``meta['spacing_mm']`` from the current affine after spatial transforms.

    Resizing or cropping a MetaTensor updates its affine but not the ``spacing_mm`` entry that
    the physical metrics (Dice^L) and transforms read; this keeps them in step.
    """

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            if isinstance(img, MetaTensor):
                spacing = affine_to_spacing(img.affine, r=img.ndim - 1)
                img.meta["spacing_mm"] = tuple(float(s) for s in spacing)
        return d


class DropEmptyMetad(MapTransform):
    """Remove meta entries whose value is None (a DICOM tag the file lacks), so batches collate."""

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            if isinstance(img, MetaTensor):
                for k in [k for k, v in img.meta.items() if v is None]:
                    del img.meta[k]
        return d


class DefaultKeyd(MapTransform):
    """Give each missing key in ``keys`` the value of ``source`` (a copy of the reference).

    Used for ``label_gt`` (an expert or ground-truth label, for evaluation only): where a dataset
    has none, the metrics "against label_gt" are computed against ``label`` instead.
    """

    def __init__(self, keys: KeysCollection, source: Hashable = "label") -> None:
        super().__init__(keys, allow_missing_keys=True)
        self.source = source

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.keys:
            if key not in d and self.source in d:
                d[key] = d[self.source]
        return d


class ResizeWithInverseMode(Resize):
    """MONAI ``Resize`` whose inverse interpolates with its own mode (default bilinear).

    Shrinking a mammogram to the network input is best done by area averaging (anti-aliased: a
    thin BAC keeps its share of intensity), but enlarging the prediction back with area
    interpolation degenerates to a one-to-two-pixel box filter: blockier than bilinear and, in
    PyTorch, single-threaded for a one-channel image (1600 x 1600 -> 2850 x 2394 on 2 cores:
    55 ms area, 6 ms bilinear). ``Invertd`` then uses ``inverse_mode``.
    """

    def __init__(self, *args: Any, inverse_mode: str = "bilinear", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inverse_mode = str(inverse_mode)

    def inverse_transform(self, data, transform):
        info = dict(transform[TraceKeys.EXTRA_INFO])
        info["mode"] = self.inverse_mode
        if self.inverse_mode not in ("linear", "bilinear", "bicubic", "trilinear"):
            info["align_corners"] = TraceKeys.NONE  # only the linear modes take align_corners
        return super().inverse_transform(data, {**transform, TraceKeys.EXTRA_INFO: info})


class ResizeWithInverseModed(Resized):
    """Dictionary ``Resized`` whose inverse (``Invertd``) interpolates with ``inverse_mode``;
    see :class:`ResizeWithInverseMode`. The other arguments are ``Resized``'s."""

    def __init__(self, keys: KeysCollection, spatial_size, *args: Any, inverse_mode: str = "bilinear",
                 size_mode: str = "all", lazy: bool = False, **kwargs: Any) -> None:
        super().__init__(keys, spatial_size, size_mode, *args, lazy=lazy, **kwargs)
        self.resizer = ResizeWithInverseMode(spatial_size=spatial_size, size_mode=size_mode, lazy=lazy,
                                             inverse_mode=inverse_mode)

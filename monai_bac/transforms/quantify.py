"""Measuring a predicted BAC mask as a post-transform: length, segments, area, calcium.

:class:`QuantifyBACd` is the one place where a prediction becomes numbers: the bundle's
inference, ``monai-bac infer`` and the MONAI Label app all run it from ``configs/inference.json``,
so the BAC length a user reads does not depend on the tool (:mod:`monai_bac.quantify`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform
from monai.utils import convert_to_numpy

__all__ = ["QuantifyBACd"]


class QuantifyBACd(MapTransform):
    """Quantify the BAC mask in ``keys`` (back on the image's grid) into ``data[output_key]``.

    The result is :meth:`monai_bac.quantify.BACQuantification.as_dict`: ``present``,
    ``length_mm`` (centreline length, the paper's clinical measure), ``n_segments``,
    ``area_mm2``, ``calcium_mg`` (from Eq. 5 on ``raw_key``, the raw image as loaded, where its
    physics tags allow; else None with ``calcium_note``) and the segments, measured in the breast
    where the raw image's header gives the magnification (``measured_at``,
    ``plane_magnification``). A mask covering more than ``max_mask_fraction`` of the image is no
    BAC (a failed model or a wrong input): it is flagged in ``quality_warning`` and not measured.

    Args:
        keys: the mask key (``pred``).
        raw_key: the raw image as loaded (for the calcium mass); None or absent: no mass.
        breast_map_key: the breast map on the image's grid (limits the h_calc background).
        output_key: where the dictionary goes.
        calcium: estimate the calcium mass.
        max_mask_fraction: see above.
        density_kwargs: arguments of :class:`~monai_bac.transforms.DensityMap` for the calcium mass.
    """

    def __init__(self, keys: KeysCollection = "pred", raw_key: str | None = "raw", breast_map_key: str = "breast_map",
                 output_key: str = "bac", calcium: bool = True, max_mask_fraction: float = 0.05,
                 density_kwargs: Mapping | None = None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.density_kwargs = dict(density_kwargs or {})
        self.raw_key, self.breast_map_key, self.output_key = raw_key, breast_map_key, output_key
        self.calcium, self.max_mask_fraction = bool(calcium), float(max_mask_fraction)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        from monai_bac.quantify import measurement_plane, quantify_image
        from monai_bac.units import resolve_spacing

        d = dict(data)
        for key in self.key_iterator(d):
            pred = d[key]
            meta = dict(getattr(pred, "meta", {}) or {})
            spacing = resolve_spacing(meta, None, "QuantifyBACd")
            raw = d.get(self.raw_key) if self.raw_key else None
            raw_meta = dict(getattr(raw, "meta", {}) or meta)
            factor, measured_at = measurement_plane(raw_meta)
            mask = convert_to_numpy(pred)[0] > 0
            fraction = float(mask.mean()) if mask.size else 0.0
            if fraction > self.max_mask_fraction:
                d["quality_warning"] = (f"the mask covers {100 * fraction:.1f} % of the image (> "
                                        f"{100 * self.max_mask_fraction:g} %): not a plausible BAC segmentation; "
                                        "length and calcium not measured")
                d[self.output_key] = {"present": True, "length_mm": None, "skeleton_length_mm": None,
                                      "n_segments": None,
                                      "area_mm2": float(mask.sum() * spacing[0] * spacing[1]) / factor**2,
                                      "calcium_mg": None, "calcium_volume_mm3": None,
                                      "calcium_note": "not measured (implausible mask)", "spacing_mm": list(spacing),
                                      "plane_magnification": factor, "measured_at": measured_at, "segments": []}
                continue
            breast = d.get(self.breast_map_key)
            breast = None if breast is None else convert_to_numpy(breast)[0].astype(np.uint8, copy=False)
            image = raw if raw is not None else np.zeros((1, 1, 1), np.float32)
            q = quantify_image(image, mask, breast, spacing_mm=spacing, meta=raw_meta,
                               calcium=self.calcium and raw is not None, density_kwargs=self.density_kwargs)
            d[self.output_key] = q.as_dict()
        return d

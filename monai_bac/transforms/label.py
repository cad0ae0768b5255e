"""Automatic correction of BAC annotations (the paper's Sec. 3.3, Fig. 6) as MONAI transforms.
:class:`CorrectBACLabel` / :class:`CorrectBACLabeld` cut a BAC annotation into pieces along its
skeleton (at junctions, and where the calcification thickness h_calc of Eq. 5 or the annotated
width changes markedly along the path) and drop the pieces whose calcified run is shorter than
``min_length_mm`` (stand-alone micro-calcifications) and those whose calcification is below
``min_mean_calc_mm`` (dense-tissue strands and edges), so that a look-alike brushed in the same
stroke as a calcified vessel is removed and the vessel kept. The defaults were calibrated on the
phantom's simulated third-party annotation (:mod:`monai_bac.ops.label_correction`,
``benchmarks/calibrate_label_correction.py``).

The corrected label's metadata (``meta["label_correction"]``) holds the thresholds, the numbers
of pieces kept and removed (by reason), the skeleton length before and after, the removed pieces
(``removed_json``; parse it with :func:`removed_components`) and every piece with its decision
(``pieces_json``; :func:`correction_pieces`) as JSON strings. Everything in it is a number or a
string, so batches of corrected labels still collate in a MONAI ``DataLoader``.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms.transform import MapTransform, Transform
from monai.utils import ensure_tuple_rep
from monai.utils.enums import TransformBackends

from monai_bac.ops.label_correction import (
    DEFAULT_CORE_MM,
    DEFAULT_HYSTERESIS,
    DEFAULT_MIN_LENGTH_MM,
    DEFAULT_MIN_MEAN_CALC_MM,
    DEFAULT_RING_MM,
    DEFAULT_SPLIT_MM,
    DEFAULT_SPUR_MM,
    DEFAULT_WIDTH_RATIO,
    MEASURES,
    correct_bac_label,
)
from monai_bac.transforms.utils import breast_map_hw, like, meta_of, resolve_spacing_mm, source_name, to_hw
from monai_bac.transforms.physics import CalcificationThicknessd

#: Thresholds (min_length_mm, min_mean_calc_mm, hysteresis) calibrated per density model, i.e.
#: for the h_calc each model produces (docs/TRANSFORMS.md): ``"polyenergetic"`` on the 48 full-size
#: realistic phantoms of ``benchmarks/validate_realistic.py generate --set calibration`` (seeds
#: 7000-7047, every effect, vendor pitch, 30-80 mm; ``benchmarks/scan_label_correction.py``): the
#: setting removing the most look-alike pieces while keeping >= 95 % of the true BAC length; its
#: calcium threshold re-chosen (0.0375 -> 0.035 mm) with the no_ridge rule's 0.2 mm scale on the
#: 328 development images of the seventeenth session (docs/design-log/label_correction.md);
#: anything else (``model="eq4"``, a map without that record) on the ideal phantoms: the values in
#: :mod:`monai_bac.ops.label_correction` (benchmarks/calibrate_label_correction.py).
CALIBRATED_THRESHOLDS: dict[str, tuple[float, float, float]] = {
    "polyenergetic": (6.0, 0.035, 0.65),
    "eq4": (DEFAULT_MIN_LENGTH_MM, DEFAULT_MIN_MEAN_CALC_MM, DEFAULT_HYSTERESIS),
}

__all__ = [
    "CALIBRATED_THRESHOLDS",
    "CorrectBACLabel",
    "CorrectBACLabeld",
    "CorrectBACLabelD",
    "CorrectBACLabelDict",
    "removed_components",
    "correction_pieces",
    "correction_meta",
]


def _auto_or(value, name: str):
    if value is None or value == "auto":
        return value
    if isinstance(value, str):
        raise ValueError(f"{name} must be a number, None or 'auto', got {value!r}")
    return float(value)


def correction_meta(report: Mapping) -> dict:
    """The collate-safe metadata entry for a correction report of :func:`correct_bac_label`."""
    nan = float("nan")
    return dict(
        min_length_mm=nan if report["min_length_mm"] is None else float(report["min_length_mm"]),
        min_mean_calc_mm=nan if report["min_mean_calc_mm"] is None else float(report["min_mean_calc_mm"]),
        measure=str(report["measure"]),
        n_components=int(report["n_components"]), n_pieces=int(report["n_pieces"]),
        n_connected_components=int(report["n_connected_components"]),
        n_kept=int(report["n_kept"]), n_removed=int(report["n_removed"]),
        n_removed_short=int(report["n_removed_short"]), n_removed_low_calc=int(report["n_removed_low_calc"]),
        n_removed_both=int(report["n_removed_both"]),
        length_before_mm=float(report["length_before_mm"]), length_after_mm=float(report["length_after_mm"]),
        removed_json=json.dumps(report["removed"]),
        pieces_json=json.dumps(report["pieces"]),
    )


def _entry(label_or_meta: Any) -> Mapping | None:
    meta = label_or_meta.meta if isinstance(label_or_meta, MetaTensor) else label_or_meta
    return (meta or {}).get("label_correction")


def removed_components(label_or_meta: Any) -> list[dict]:
    """The removed pieces (``id``, ``component``, ``bbox``, ``centroid``, ``centroid_mm``, ``pixels``,
    ``area_mm2``, ``length_mm``, ``run_length_mm``, ``width_mm``, ``mean_calc_mm``,
    ``core_excess_calc_mm``, ``stretch_calc_mm``, ``reason``) recorded by :class:`CorrectBACLabel`
    in a corrected label's metadata (or in its ``meta`` dict)."""
    entry = _entry(label_or_meta)
    return json.loads(entry["removed_json"]) if entry else []


def correction_pieces(label_or_meta: Any) -> list[dict]:
    """Every piece (kept or not; the keys of :func:`removed_components` plus ``kept``) recorded by
    :class:`CorrectBACLabel` in a corrected label's metadata (or in its ``meta`` dict)."""
    entry = _entry(label_or_meta)
    return json.loads(entry["pieces_json"]) if entry and "pieces_json" in entry else []


class CorrectBACLabel(Transform):
    """Remove false-positive pieces from a BAC annotation (the paper's Sec. 3.3).

    The annotation is cut into pieces along its skeleton: at junctions, and where the
    calcification (Eq. 5) or the annotated width changes markedly along the path (stretches of
    at least ``split_mm``). A piece whose calcification thickness (mm; pooled over the connected
    pieces of the same calcium class) is below ``min_mean_calc_mm`` is removed as "low_calc"
    (dense-tissue strands and edges, also when brushed in the same stroke as a vessel); a piece
    whose calcified run (the connected pieces passing the calcium test) is shorter than
    ``min_length_mm`` as "short" (stand-alone micro-calcifications). Both thresholds are
    physical, so they hold at any pixel spacing.

    The calcification is, by default (``measure="core_excess"``), the mean h_calc along the
    centreline (within ``core_mm`` of the skeleton) minus the mean h_calc of the unannotated
    breast tissue around it (``ring_mm``): this removes the dilution by a brush wider than the
    vessel and the residual texture that Eq. (5)'s opening leaves in dense tissue.
    ``measure="mean"`` is the paper's plain mean (recalibrate the threshold for it). See
    :mod:`monai_bac.ops.label_correction`.

    The thresholds default to ``"auto"``: the values calibrated for the density model that made
    ``calc_thickness`` (``meta["calc_thickness"]["model"]``; :data:`CALIBRATED_THRESHOLDS`): the
    polyenergetic model's h_calc of a real (or realistic) image, or Eq. (4)'s of an ideal one.

    Args:
        min_length_mm: minimum length of a calcified run, mm (None: no length test; "auto").
        min_mean_calc_mm: minimum calcification, mm (None: no calcification test, and no
            ``calc_thickness`` needed; "auto").
        measure: ``"core_excess"`` (default) or ``"mean"``.
        core_mm, ring_mm: widths of the core track and of the surrounding tissue, mm.
        spacing_mm: (row, col) mm replacing the label's (or the calcification map's)
            ``meta["spacing_mm"]``.
        split_mm, spur_mm, width_ratio, hysteresis: how the annotation is cut into pieces
            (:func:`monai_bac.ops.label_correction.correct_bac_label`; hysteresis "auto": the
            calibrated one with "auto" thresholds, else 0.5).

    ``__call__(label, calc_thickness=None, breast_map=None)``: ``label`` (1, H, W) binary
    annotation (numpy, tensor or MetaTensor), ``calc_thickness`` the (1, H, W) h_calc map of
    :class:`~monai_bac.transforms.CalcificationThickness`, ``breast_map`` limits the surrounding
    tissue to the breast (when None, the non-zero pixels of ``calc_thickness``). Returns the
    corrected label in the label's type and dtype; a MetaTensor gains ``meta["label_correction"]``
    (see :func:`correction_meta` and :func:`removed_components`). An empty label comes back
    empty (``n_components`` 0).
    """

    backend = [TransformBackends.NUMPY]  # the op runs in numpy (torch input is converted, the output converted back)

    def __init__(
        self,
        min_length_mm: float | str | None = "auto",
        min_mean_calc_mm: float | str | None = "auto",
        spacing_mm: Sequence[float] | None = None,
        measure: str = "core_excess",
        core_mm: float = DEFAULT_CORE_MM,
        ring_mm: float = DEFAULT_RING_MM,
        split_mm: float = DEFAULT_SPLIT_MM,
        spur_mm: float = DEFAULT_SPUR_MM,
        width_ratio: float | None = DEFAULT_WIDTH_RATIO,
        hysteresis: float | str = "auto",
    ) -> None:
        self.min_length_mm = _auto_or(min_length_mm, "min_length_mm")
        self.min_mean_calc_mm = _auto_or(min_mean_calc_mm, "min_mean_calc_mm")
        self.hysteresis = _auto_or(hysteresis, "hysteresis")
        self.spacing_mm = spacing_mm
        if measure not in MEASURES:
            raise ValueError(f"measure must be 'core_excess' or 'mean', got {measure!r}")
        self.measure, self.core_mm, self.ring_mm = measure, float(core_mm), float(ring_mm)
        self.split = dict(split_mm=float(split_mm), spur_mm=float(spur_mm),
                          width_ratio=None if width_ratio is None else float(width_ratio))

    def thresholds(self, calc_meta: Mapping) -> tuple[float | None, float | None, float]:
        """(min_length_mm, min_mean_calc_mm, hysteresis) for a calcification map with metadata
        ``calc_meta``: the given values, "auto" ones from :data:`CALIBRATED_THRESHOLDS`."""
        entry = calc_meta.get("calc_thickness") if isinstance(calc_meta.get("calc_thickness"), Mapping) else {}
        model = str(entry.get("model", "")).split(" ")[0]
        calibrated = CALIBRATED_THRESHOLDS.get(model, CALIBRATED_THRESHOLDS["eq4"])
        if self.min_length_mm != "auto" or self.min_mean_calc_mm != "auto":
            # thresholds given: the hysteresis they were chosen with (the triples go together)
            calibrated = calibrated[:2] + (DEFAULT_HYSTERESIS,)
        return tuple(c if v == "auto" else v for v, c in
                     zip((self.min_length_mm, self.min_mean_calc_mm, self.hysteresis), calibrated))

    def __call__(self, label: NdarrayOrTensor, calc_thickness: NdarrayOrTensor | None = None,
                 breast_map: NdarrayOrTensor | None = None) -> NdarrayOrTensor:
        meta = meta_of(label)
        calc_meta = meta_of(calc_thickness)
        who = type(self).__name__
        if self.spacing_mm is None and meta.get("spacing_mm") is None and calc_meta.get("spacing_mm") is not None:
            spacing = resolve_spacing_mm(calc_meta, None, who)
        else:
            spacing = resolve_spacing_mm(meta, self.spacing_mm, who)
        lab = to_hw(label, "label")
        calc = None
        breast = None
        if self.min_mean_calc_mm is not None:
            if calc_thickness is None:
                raise ValueError(
                    f"{source_name(meta)}: {who} needs the calcification thickness map (CalcificationThickness, Eq. 5) "
                    f"to test min_mean_calc_mm={self.min_mean_calc_mm}; pass calc_thickness=..., or "
                    "min_mean_calc_mm=None to correct by length only")
            calc = to_hw(calc_thickness, "calc_thickness")
            if calc.shape != lab.shape:
                raise ValueError(f"{source_name(meta)}: calc_thickness (H, W) = {calc.shape} differs from the label's "
                                 f"{lab.shape}")
            breast = breast_map_hw(breast_map, lab, meta) > 0 if breast_map is not None else calc != 0
        min_length, min_calc, hysteresis = self.thresholds(calc_meta)
        out, report = correct_bac_label(lab, calc, spacing, min_length, min_calc, self.measure,
                                        breast, self.core_mm, self.ring_mm, hysteresis=hysteresis, **self.split)
        return like(out.astype(lab.dtype, copy=False), label, lab.dtype, {"label_correction": correction_meta(report)})


class CorrectBACLabeld(MapTransform):
    """Dictionary-based wrapper of :class:`CorrectBACLabel`.

    Corrects the label(s) at ``keys`` (default ``"label"``) in place, or into ``output_keys``.
    The calcification map is read from ``calc_key`` (default ``"calc_thickness"``); when it is
    missing it is computed (and stored) from ``density_key`` or, failing that, from
    ``image_key`` with :class:`~monai_bac.transforms.CalcificationThicknessd` (whose arguments
    ``calc_kwargs`` may set).

    Args:
        keys: labels to correct.
        output_keys: where to write the corrected labels (None: in place).
        calc_key, density_key, image_key, breast_map_key: keys of the maps used.
        calc_kwargs: arguments of :class:`~monai_bac.transforms.CalcificationThicknessd` used when
            the calcification map must be computed.
        allow_missing_keys: don't raise for missing labels.
        other arguments: see :class:`CorrectBACLabel`.
    """

    backend = CorrectBACLabel.backend

    def __init__(
        self,
        keys: KeysCollection = "label",
        calc_key: str = "calc_thickness",
        output_keys: KeysCollection | None = None,
        min_length_mm: float | str | None = "auto",
        min_mean_calc_mm: float | str | None = "auto",
        spacing_mm: Sequence[float] | None = None,
        measure: str = "core_excess",
        core_mm: float = DEFAULT_CORE_MM,
        ring_mm: float = DEFAULT_RING_MM,
        density_key: str = "density",
        image_key: str | None = "image",
        breast_map_key: str | None = "breast_map",
        calc_kwargs: Mapping[str, Any] | None = None,
        allow_missing_keys: bool = False,
        split_mm: float = DEFAULT_SPLIT_MM,
        spur_mm: float = DEFAULT_SPUR_MM,
        width_ratio: float | None = DEFAULT_WIDTH_RATIO,
        hysteresis: float | str = "auto",
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_keys = self.keys if output_keys is None else ensure_tuple_rep(output_keys, len(self.keys))
        self.calc_key = calc_key
        self.breast_map_key = breast_map_key
        self.transform = CorrectBACLabel(min_length_mm, min_mean_calc_mm, spacing_mm, measure, core_mm, ring_mm,
                                         split_mm, spur_mm, width_ratio, hysteresis)
        self._calc = CalcificationThicknessd(keys=density_key, output_keys=calc_key, breast_map_key=breast_map_key,
                                             image_key=image_key, **dict(calc_kwargs or {}))

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key, out_key in self.key_iterator(d, self.output_keys):
            calc = None
            if self.transform.min_mean_calc_mm is not None:
                if self.calc_key not in d:
                    d = self._calc(d)
                calc = d[self.calc_key]
            bmap = d.get(self.breast_map_key) if self.breast_map_key is not None else None
            d[out_key] = self.transform(d[key], calc, bmap)
        return d


CorrectBACLabelD = CorrectBACLabelDict = CorrectBACLabeld

"""Physics-based maps of raw mammograms as MONAI transforms: dense-tissue thickness (Eq. 4) and
calcification thickness (Eq. 5).

* :class:`DensityMap` / :class:`DensityMapd`: h_dt in mm (Eq. 4), with the fatty reference found
  in the compressed region, plus the volumetric breast density in the metadata.
* :class:`CalcificationThickness` / :class:`CalcificationThicknessd`: h_calc in mm (Eq. 5), the
  background tissue from a grey opening whose size is given in mm.

The attenuation coefficients (mm^-1) come from :mod:`monai_bac.physics` at the image's
effective energy, derived from the metadata ``kvp`` (DICOM KVP (0018,0060)), ``anode`` and
``filter``; explicit arguments (``energy_kev``, ``mu_fat``, ``mu_dt``, ``mu_calc``) replace
them. A missing tag raises :class:`monai_bac.physics.MissingPhysicsError` naming the tag and the
argument that can replace it.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms.transform import MapTransform, Transform
from monai.utils import ensure_tuple_rep
from monai.utils.enums import TransformBackends

from monai_bac.ops.density import (calcification_thickness, density_map, density_map_polyenergetic,
                                   volumetric_breast_density)
from monai_bac.ops.primary import chest_wall_side, estimate_offset
from monai_bac.ops.implant import BreastImplantWarning
from monai_bac.ops.thickness_check import PROVISIONAL_THICKNESS_MM, ThicknessMismatchWarning
from monai_bac.orientation import head_up
from monai_bac.physics import (Attenuation, MissingPhysicsError, attenuation_at, beam_from_meta, behind_grid,
                               effective_energy_kev)
from monai_bac.transforms.utils import (
    SCATTER_MODELS,
    breast_map_hw,
    dict_breast_map,
    like,
    meta_of,
    resolve_spacing_mm,
    source_name,
    to_hw,
)

__all__ = [
    "DensityMap",
    "DensityMapd",
    "DensityMapD",
    "DensityMapDict",
    "ThicknessMismatchWarning",
    "BreastImplantWarning",
    "CalcificationThickness",
    "CalcificationThicknessd",
    "CalcificationThicknessD",
    "CalcificationThicknessDict",
]


def _energy(meta: Mapping, energy_kev: float | None, who: str, replace: str) -> float:
    """Effective energy (keV): the argument, else from KVP (0018,0060) + anode/filter in the meta."""
    if energy_kev is not None:
        return float(energy_kev)
    kvp = meta.get("kvp")
    if kvp is None:
        raise MissingPhysicsError(
            f"{source_name(meta)}: KVP (0018,0060) is missing from the image metadata ('kvp'), so {who} cannot find the "
            f"effective energy; pass energy_kev=... (keV, e.g. 18.0, the paper's value) or {replace} (mm^-1) to {who}"
        )
    return float(effective_energy_kev(float(kvp), meta.get("anode"), meta.get("filter")))


def _thickness(meta: Mapping, thickness_mm: float | None, who: str,
               needed_for: str = "the volumetric breast density; or compute_vbd=False") -> float:
    value = thickness_mm if thickness_mm is not None else meta.get("thickness_mm")
    if value is None:
        raise MissingPhysicsError(
            f"{source_name(meta)}: BodyPartThickness (0018,11A0) is missing from the image metadata ('thickness_mm'), "
            f"needed for {needed_for.split('; or ')[0]}; pass thickness_mm=... (compressed thickness, mm)"
            + (f" or {needed_for.split('; or ')[1]}" if "; or " in needed_for else "") + f" to {who}"
        )
    value = float(value)
    if not value > 0:
        raise ValueError(f"{source_name(meta)}: compressed thickness must be > 0 mm, got {value}")
    return value


MODELS = ("polyenergetic", "eq4")
#: DensityMap warns when the header's thickness and the image's differ by more than this fraction:
#: the image's estimate spreads by a few percent on the phantoms and may be some percent off on a
#: real unit (its spectrum, its paddle), while readouts are off by up to 14-26 % (Hauge et al., Med
#: Phys 39:263, 2012).
THICKNESS_TOLERANCE = 0.10
#: ``thickness_check`` of an image whose header reports an implant and whose thickness reads more than
#: the tolerance *thicker* than the one in use: not taken as a readout too thin, and no warning. Beside
#: an implant the fatty reference may hold denser tissue than fat (little fat is left beside it, least
#: in an extremely dense breast), which reads thick: on fresh seeds every false alarm at the true
#: readout read thicker (10 of 120, 7 of them of 24 extremely dense breasts), while a thinner reading
#: was right 173 times and misled once (docs/design-log/breast_region.md, "Only a thinner image warns
#: beside an implant"). Without the header's word the comparison warns either way: a shadow there may
#: be dense tissue under too thin a readout, which a thicker image tells.
THICKER_BESIDE_IMPLANT = (
    "thicker than the thickness in use, but not taken as a readout too thin: BreastImplantPresent (0028,1300) is "
    "YES, and beside an implant the fatty reference may hold denser tissue than fat, which reads thick")


class DensityMap(Transform):
    """Dense-tissue thickness h_dt (mm) of a raw mammogram: Eq. (4) of the paper, for real x-rays.

    The paper's Eq. (4), ``h_dt = ln(P / P_fat) / (mu_fat - mu_dt)``, assumes one x-ray energy
    and a raw value ``P`` that is all primary signal. A real raw image (and the phantom's
    ``physics="realistic"``) has a polyenergetic beam that hardens in the breast, 10-40 % scatter
    behind the grid, the heel effect and a detector offset. Two models:

    * ``model="polyenergetic"`` (default, for real images):
      :func:`monai_bac.ops.density.density_map_polyenergetic` - the detector offset removed
      (``offset``; ``"auto"`` reads it from an unexposed border when there is one), scatter
      removed before Eq. (4) (``scatter="published"``: the convolution model of Boone & Cooper
      2000 with a published SPR behind the grid, :mod:`monai_bac.ops.primary`), P_fat as a
      trend along the chest-wall -> nipple axis (``heel``), and ``ln(P / P_fat)`` mapped to
      glandular thickness through the polyenergetic curve of the image's spectrum at the
      compressed thickness (:func:`monai_bac.physics.transmitted_beam`: SpekPy spectrum for
      KVP/AnodeTargetMaterial/FilterMaterial, xraydb attenuation, the detector's absorption;
      cached per set-up). The periphery is read against its own fatty envelope and local
      thickness; h_dt is bounded to ``[lower_mm, local thickness]``. Needs KVP (0018,0060),
      AnodeTargetMaterial (0018,1191), FilterMaterial (0018,7050) and BodyPartThickness
      (0018,11A0). For a scatter-free polyenergetic image pass ``scatter="none"``.
    * ``model="eq4"``: the paper's Eq. (4) with one coefficient pair - from the tables at the
      effective energy of the kVp (:mod:`monai_bac.physics`), or ``energy_kev=18`` for the
      paper's own values, or ``mu_fat``/``mu_dt``. Exact for the phantom's ``physics="ideal"``
      (monochromatic, no scatter): use it there. Giving ``mu_fat``/``mu_dt``/``energy_kev``
      selects it.

    P_fat (both models) is the 99th percentile of 1 mm cell means in the compressed region eroded
    by 5 mm (:func:`monai_bac.ops.density.fat_reference`; per 10 mm band along the chest-wall ->
    nipple axis with ``heel``), robust to noise and outliers, unlike a single maximum pixel.
    The volumetric breast density (dense volume / breast volume, pectoral muscle excluded) is
    computed too when ``compute_vbd``.

    Args:
        model: ``"polyenergetic"`` (default) or ``"eq4"``.
        scatter: ``"published"`` (default) or ``"none"`` (polyenergetic model only). The published
            SPR is the one behind an anti-scatter grid, or without one where the header says so
            (``meta["anti_scatter_grid"]`` "NO", from Grid (0018,1166) NONE: most tomosynthesis
            projections; :func:`monai_bac.ops.primary.published_spr`).
        spr: scatter-to-primary ratio at the breast's centre (of a homogeneous breast of this outline)
            replacing the published one.
        spr_scale: factor on the published SPR (e.g. for a grid with a known Bucky factor).
        heel: fit P_fat as a trend along the chest-wall -> nipple axis (polyenergetic model).
        lower_mm: lower bound of h_dt (polyenergetic model; the upper is the local thickness).
        envelope_mm: square of the periphery's fatty envelope, mm (polyenergetic model).
        mu_fat, mu_dt: attenuation coefficients (mm^-1) for Eq. (4) (select ``model="eq4"``).
        energy_kev: effective energy for Eq. (4) replacing the one derived from KVP (0018,0060).
        p_fat: a fatty reference replacing the automatic one.
        thickness_mm: compressed thickness replacing BodyPartThickness (0018,11A0); ``"image"``: the
            thickness the image's air-to-fat contrast implies (polyenergetic model; the scatter
            estimate and the fatty reference are made again at that thickness until the two agree,
            :func:`~monai_bac.ops.density.density_map_polyenergetic`, starting from the thickness
            BreastRegion's map already took from the image when it did), for an image without the tag
            or whose unit reads it wrong.
        thickness_tolerance: the polyenergetic model compares BodyPartThickness (or ``thickness_mm``)
            with the thickness the image implies (:mod:`monai_bac.ops.thickness_check`) and warns
            (:class:`~monai_bac.ops.thickness_check.ThicknessMismatchWarning`) when they differ by more
            than this fraction; None: no warning (the comparison is still in the meta). With
            BreastImplantPresent (0028,1300) YES an image that reads thicker gives none
            (:data:`THICKER_BESIDE_IMPLANT`).
        spacing_mm: (row, col) mm replacing ``meta["spacing_mm"]``.
        erode_mm, block_mm, fat_percentile: the fatty reference's parameters.
        offset: detector offset (raw value at zero exposure) subtracted first; ``"auto"``
            (default) estimates it from an unexposed (collimated) border
            (:func:`monai_bac.ops.primary.estimate_offset`) and uses 0 when the image has none.
        compute_vbd: compute the volumetric breast density (needs the compressed thickness).
        smooth_mm: Gaussian sigma (mm) applied to the raw values before Eq. (4) against quantum
            noise (one 0.1 mm detector pixel by default; 0 for none).
        dtype: output dtype.

    ``__call__(img, breast_map=None)``: ``img`` (1, H, W) raw values (numpy, tensor or
    MetaTensor); ``breast_map`` the docs/ARCHITECTURE.md map, computed by BreastRegion when None. Returns
    the same type; a MetaTensor keeps its metadata and gains ``meta["density"]`` = {model,
    p_fat, mu_fat, mu_dt, mu_calc, energy_kev, vbd_percent, dense_volume_cm3, breast_volume_cm3,
    empty, fat_reference_fallback, offset, offset_source, spr, heel_slope_per_100mm, thickness_mm,
    thickness_source, thickness_from_image_mm, thickness_check, implant_shadow_cm2,
    implant_bound_thickness_mm} (the mu's are the effective ones behind the compressed thickness in
    the polyenergetic model; ``thickness_from_image_mm`` nan with ``thickness_check`` saying why when
    the image gives no estimate). An image without
    compressed region gives an all-zero map (``empty`` True, VBD nan).

    Breast implants (polyenergetic model): the shadow of a silicone implant attenuates beyond any
    breast tissue (:mod:`monai_bac.ops.implant`); it is kept out of the fatty reference and the VBD,
    its area is ``implant_shadow_cm2``, and a :class:`~monai_bac.ops.implant.BreastImplantWarning`
    says so. The bound is the compressed thickness's, and a readout too thick loosens it: when
    BreastImplantPresent (0028,1300) is YES and nothing passes it, the shadow is looked for again at
    the bound of the thinnest breast the readout allows (``implant_bound_thickness_mm``, the thickness
    whose bound the shadow passed first; :func:`~monai_bac.ops.implant.thinnest_readout`); a shadow
    that only just passes the first bound (the implant's middle) is drawn out by the second's. A saline implant
    reads as dense tissue, or at that bound in part: when the header says YES and no shadow is
    found, the warning says that the VBD counts it.
    """

    backend = [TransformBackends.NUMPY]  # the op runs in numpy (torch input is converted, the output converted back)

    def __init__(
        self,
        mu_fat: float | None = None,
        mu_dt: float | None = None,
        energy_kev: float | None = None,
        p_fat: float | None = None,
        thickness_mm: float | None = None,
        spacing_mm: Sequence[float] | None = None,
        erode_mm: float = 5.0,
        block_mm: float = 1.0,
        fat_percentile: float = 99.0,
        offset: float | str = "auto",
        compute_vbd: bool = True,
        smooth_mm: float = 0.1,
        dtype: Any = np.float32,
        model: str | None = None,
        scatter: str = "published",
        spr: float | None = None,
        spr_scale: float = 1.0,
        heel: bool = True,
        lower_mm: float = -1.0,
        envelope_mm: float = 8.0,
        thickness_tolerance: float | None = THICKNESS_TOLERANCE,
    ) -> None:
        self.mu_fat, self.mu_dt, self.energy_kev = mu_fat, mu_dt, energy_kev
        explicit = mu_fat is not None or mu_dt is not None or energy_kev is not None
        model = ("eq4" if explicit else "polyenergetic") if model is None else str(model).lower()
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {model!r}")
        scatter = str(scatter).lower()
        if scatter not in SCATTER_MODELS:
            raise ValueError(f"scatter must be one of {SCATTER_MODELS}, got {scatter!r}")
        if isinstance(offset, str) and offset != "auto":
            raise ValueError(f"offset must be a number (raw value at zero exposure) or 'auto', got {offset!r}")
        self.model, self.scatter, self.spr, self.spr_scale = model, scatter, spr, float(spr_scale)
        self.heel, self.lower_mm, self.envelope_mm = bool(heel), float(lower_mm), float(envelope_mm)
        self.smooth_mm = float(smooth_mm)
        if isinstance(thickness_mm, str) and thickness_mm != "image":
            raise ValueError(f"thickness_mm must be a number (mm), 'image' or None, got {thickness_mm!r}")
        if thickness_mm == "image" and model != "polyenergetic":
            raise ValueError("thickness_mm='image' needs model='polyenergetic' (the thickness comes from its spectrum)")
        if thickness_tolerance is not None and not float(thickness_tolerance) > 0:
            raise ValueError(f"thickness_tolerance must be a positive fraction or None, got {thickness_tolerance!r}")
        self.thickness_from_image = thickness_mm == "image"
        self.thickness_tolerance = None if thickness_tolerance is None else float(thickness_tolerance)
        self.p_fat, self.spacing_mm = p_fat, spacing_mm
        self.thickness_mm = None if self.thickness_from_image else thickness_mm
        self.erode_mm, self.block_mm, self.fat_percentile = float(erode_mm), float(block_mm), float(fat_percentile)
        # a number stays readable as ``self.offset`` (0 until an unexposed border says otherwise)
        self.estimate_offset = offset == "auto"
        self.offset = 0.0 if self.estimate_offset else float(offset)
        self.compute_vbd = compute_vbd
        self.dtype = dtype

    def attenuation(self, meta: Mapping) -> tuple[float, float, float | None]:
        """(mu_fat, mu_dt, energy_kev) of Eq. (4) (``model="eq4"``) for an image with metadata ``meta``."""
        if self.mu_fat is not None and self.mu_dt is not None:
            return float(self.mu_fat), float(self.mu_dt), self.energy_kev
        energy = _energy(meta, self.energy_kev, type(self).__name__, "mu_fat=... and mu_dt=...")
        table = attenuation_at(energy)
        mu_fat = float(self.mu_fat) if self.mu_fat is not None else table.mu_fat
        mu_dt = float(self.mu_dt) if self.mu_dt is not None else table.mu_dt
        if not 0 < mu_fat < mu_dt:
            raise ValueError(f"expected 0 < mu_fat < mu_dt (mm^-1), got {mu_fat}, {mu_dt}")
        return mu_fat, mu_dt, energy

    def beam(self, meta: Mapping):
        """The detector-weighted spectrum (:func:`monai_bac.physics.transmitted_beam`) of the image."""
        who = type(self).__name__
        if meta.get("kvp") is None:
            raise MissingPhysicsError(
                f"{source_name(meta)}: KVP (0018,0060) is missing from the image metadata ('kvp'), so {who} cannot "
                f"model the x-ray spectrum; pass energy_kev=... (keV, e.g. 18.0, the paper's value) or mu_fat=... and "
                f"mu_dt=... (mm^-1) to use Eq. (4) with one coefficient pair")
        try:
            return beam_from_meta(meta)
        except ValueError as err:
            raise ValueError(f"{source_name(meta)}: AnodeTargetMaterial (0018,1191) / FilterMaterial (0018,7050) / "
                             f"KVP (0018,0060): {err}; pass model='eq4' with energy_kev=...") from err

    def _thickness_source(self) -> str:
        if self.thickness_from_image:
            return "image"
        return "argument" if self.thickness_mm is not None else "BodyPartThickness (0018,11A0)"

    @staticmethod
    def _first_guess(meta: Mapping, breast_map) -> float:
        """Where ``thickness_mm="image"`` starts: the thickness BreastRegion's scatter step already
        took from the image (its map's ``scatter_thickness_mm``; the iteration then usually stops after
        one pass), else BodyPartThickness, else :data:`PROVISIONAL_THICKNESS_MM`."""
        region = breast_map.meta if isinstance(breast_map, MetaTensor) else {}
        if region.get("scatter_thickness_source") == "image":
            return float(region["scatter_thickness_mm"])
        return float(meta.get("thickness_mm") or PROVISIONAL_THICKNESS_MM)

    def _check_thickness(self, meta: Mapping, thickness: float, found: float) -> str:
        """Warn when the thickness in use and the one the image implies differ by more than the tolerance,
        unless the image reads thicker beside an implant the header reports; the ``thickness_check`` to
        record ("" or :data:`THICKER_BESIDE_IMPLANT`)."""
        if self.thickness_tolerance is None or abs(found / thickness - 1.0) <= self.thickness_tolerance:
            return ""
        if found > thickness and meta.get("breast_implant_present") == "YES":
            return THICKER_BESIDE_IMPLANT
        warnings.warn(
            f"{source_name(meta)}: {self._thickness_source()} says {thickness:.1f} mm, but the contrast between the "
            f"direct exposure and the breast's fattiest tissue says {found:.1f} mm ({found / thickness - 1.0:+.0%}); "
            f"a unit's thickness readout can be off by 10-26 %, and the density map and VBD depend on it: if it is, "
            f"pass thickness_mm=... (mm) or thickness_mm='image' to DensityMap and BreastRegion",
            ThicknessMismatchWarning, stacklevel=3)
        return ""

    def _tell_implant(self, meta: Mapping, out_meta: Mapping, seen: bool) -> None:
        """Warn when an implant's shadow was found (the VBD is then the tissue's beside it), or when
        BreastImplantPresent (0028,1300) says YES and none was (a saline implant reads as tissue).
        A shadow found under a thickness the image says is too thin may be dense tissue: unless the
        header reports an implant (whose ``thickness_check`` then records the thicker reading,
        :data:`THICKER_BESIDE_IMPLANT`), the warning says so (docs/design-log/breast_region.md,
        "Extremely dense breasts, and a header too thin")."""
        if seen:
            used, found = out_meta["thickness_mm"], out_meta["thickness_from_image_mm"]
            tolerance = THICKNESS_TOLERANCE if self.thickness_tolerance is None else self.thickness_tolerance
            reported = meta.get("breast_implant_present") == "YES"
            thin = "" if self.thickness_from_image or reported or not found > used * (1.0 + tolerance) else (
                f"; but the image implies a breast of {found:.1f} mm, thicker than the {used:.1f} mm in use, and dense "
                f"tissue read against too thin a breast passes the same bound: unless there is an implant"
                f"{' (BreastImplantPresent (0028,1300) says NO)' if meta.get('breast_implant_present') == 'NO' else ''}, "
                f"pass thickness_mm='image' (or the thickness) to BreastRegion and DensityMap")
            bound_h = out_meta["implant_bound_thickness_mm"]
            through = ("through the compressed thickness can (a silicone implant?)" if not bound_h < used else
                       f"through {bound_h:.1f} mm can, the thinnest breast a readout of {used:.1f} mm allows "
                       f"(BreastImplantPresent (0028,1300) reports an implant and nothing passes the bound at "
                       f"{used:.1f} mm: the readout may run high, or the implant be saline, which passes in part)")
            warnings.warn(
                f"{source_name(meta)}: {out_meta['implant_shadow_cm2']:.0f} cm^2 of the breast attenuate more than "
                f"glandular tissue {through}; they are left out of the VBD ({out_meta['vbd_percent']:.1f} %), which "
                f"is that of the tissue beside them{thin}",
                BreastImplantWarning, stacklevel=3)
        elif meta.get("breast_implant_present") == "YES":
            warnings.warn(
                f"{source_name(meta)}: BreastImplantPresent (0028,1300) is YES, but nothing in the image attenuates "
                f"beyond breast tissue: a saline implant reads as dense tissue, so the VBD "
                f"({out_meta['vbd_percent']:.1f} %) counts it as such",
                BreastImplantWarning, stacklevel=3)

    def _offset(self, image: np.ndarray, bmap: np.ndarray, spacing) -> tuple[float, str]:
        if not self.estimate_offset:
            return float(self.offset), "argument"
        found = estimate_offset(image, bmap > 0, spacing)
        return (0.0, "none (no unexposed border)") if found is None else (found, "unexposed border")

    def __call__(self, img: NdarrayOrTensor, breast_map: NdarrayOrTensor | None = None) -> NdarrayOrTensor:
        meta = meta_of(img)
        who = type(self).__name__
        poly = self.model == "polyenergetic"
        model = self.model
        if (poly and not self.compute_vbd and not self.thickness_from_image and self.thickness_mm is None
                and meta.get("thickness_mm") is None):
            # without the compressed thickness there is no polyenergetic curve: Eq. (4), said in the meta
            poly, model = False, "eq4 (no BodyPartThickness)"
        if poly:
            beam = self.beam(meta)
            if self.thickness_from_image:
                thickness = self._first_guess(meta, breast_map)
            else:
                thickness = _thickness(meta, self.thickness_mm, who, "the polyenergetic model and the volumetric "
                                      "breast density; or compute_vbd=False (Eq. 4 is then used), model='eq4' or "
                                      "thickness_mm='image'")
        else:
            mu_fat, mu_dt, energy = self.attenuation(meta)
            thickness = _thickness(meta, self.thickness_mm, who) if self.compute_vbd else None
        spacing = resolve_spacing_mm(meta, self.spacing_mm, who)
        image = to_hw(img)
        bmap = breast_map_hw(breast_map, image, meta, spacing)
        # a file stored with the breast along the columns: the fatty reference is fitted along the
        # chest-wall-to-nipple axis, so analyse it transposed and transpose the map back
        transposed, _ = head_up(meta.get("patient_orientation"))
        if transposed:
            image, bmap, spacing = np.ascontiguousarray(image.T), np.ascontiguousarray(bmap.T), spacing[::-1]
        stored = (lambda a: np.ascontiguousarray(a.T)) if transposed else (lambda a: a)
        offset, offset_source = self._offset(image, bmap, spacing)
        nan = float("nan")
        out_meta = dict(model=model, p_fat=nan, mu_fat=nan, mu_dt=nan, mu_calc=nan, energy_kev=nan,
                        vbd_percent=nan, dense_volume_cm3=nan, breast_volume_cm3=nan, empty=True,
                        fat_reference_fallback="", offset=offset, offset_source=offset_source, spr=0.0,
                        heel_slope_per_100mm=0.0, thickness_mm=nan if thickness is None else thickness,
                        thickness_source=self._thickness_source(), thickness_from_image_mm=nan,
                        thickness_check="not estimated (model eq4)", implant_shadow_cm2=0.0,
                        implant_bound_thickness_mm=nan)
        if poly:
            side = chest_wall_side(bmap > 0, meta.get("laterality"))
            options = dict(offset=offset, scatter=self.scatter == "published", spr=self.spr, spr_scale=self.spr_scale,
                           heel=self.heel, side=side, erode_mm=self.erode_mm, block_mm=self.block_mm,
                           percentile=self.fat_percentile, smooth_mm=self.smooth_mm, envelope_mm=self.envelope_mm,
                           lower_mm=self.lower_mm, p_fat=self.p_fat)
            h_dt, info = density_map_polyenergetic(image, bmap, beam, thickness, spacing,
                                                   fit_thickness=self.thickness_from_image,
                                                   implant_expected=meta.get("breast_implant_present") == "YES",
                                                   grid=behind_grid(meta), **options)
            found, check = info["thickness_from_image"]
            if self.thickness_from_image and found is None:
                raise ValueError(f"{source_name(meta)}: thickness_mm='image', but the image gives no thickness "
                                 f"({check['reason']}); pass thickness_mm=... (the compressed thickness, mm)")
            thickness = float(info["thickness_mm"])
            compared = not self.thickness_from_image and found is not None
            out_meta.update(thickness_mm=thickness, thickness_from_image_mm=nan if found is None else float(found),
                            thickness_check=self._check_thickness(meta, thickness, found) if compared
                            else str(check["reason"]))
            att = info["attenuation"]
            out_meta.update(p_fat=float(info["p_fat"]), mu_fat=att.mu_fat, mu_dt=att.mu_dt, mu_calc=att.mu_calc,
                            energy_kev=float(att.energy_kev), empty=bool(info["empty"]),
                            fat_reference_fallback=str(info.get("fallback") or ""), spr=float(info["spr"]),
                            heel_slope_per_100mm=float(info["heel_slope_per_100mm"]))
            if self.compute_vbd and not info["empty"]:
                out_meta.update(vbd_percent=float(info["vbd_percent"]), dense_volume_cm3=float(info["dense_volume_cm3"]),
                                breast_volume_cm3=float(info["breast_volume_cm3"]))
            shadow = info["implant_shadow"]
            out_meta["implant_shadow_cm2"] = 0.0 if shadow is None else float(shadow.sum() * spacing[0] * spacing[1] / 100)
            out_meta["implant_bound_thickness_mm"] = float(info["implant_bound_thickness_mm"])
            self._tell_implant(meta, out_meta, shadow is not None)
            return like(stored(h_dt), img, self.dtype, {"density": out_meta})
        att = Attenuation(mu_fat, mu_dt, max(10.0 * mu_dt, 1.0), energy)  # mu_calc unused by Eq. (4)
        h_dt, info = density_map(image, bmap, att, spacing, p_fat=self.p_fat, erode_mm=self.erode_mm,
                                 block_mm=self.block_mm, percentile=self.fat_percentile, offset=offset,
                                 smooth_mm=self.smooth_mm)
        out_meta.update(p_fat=float(info["p_fat"]), mu_fat=mu_fat, mu_dt=mu_dt,
                        energy_kev=nan if energy is None else float(energy), empty=bool(info["empty"]),
                        fat_reference_fallback=str(info.get("fallback") or ""))
        if thickness is not None and not info["empty"]:
            vbd = volumetric_breast_density(h_dt, image, bmap, thickness, att, info["p_fat"], spacing, offset)
            out_meta.update(vbd_percent=float(vbd["vbd_percent"]), dense_volume_cm3=float(vbd["dense_volume_cm3"]),
                            breast_volume_cm3=float(vbd["breast_volume_cm3"]))
        return like(stored(h_dt), img, self.dtype, {"density": out_meta})


class DensityMapd(MapTransform):
    """Dictionary-based wrapper of :class:`DensityMap` (Eq. 4).

    Reads the raw image(s) at ``keys`` (default ``"image"``) and writes the maps to
    ``output_keys`` (default ``"density"``; None overwrites the input keys).

    Args:
        keys: raw images.
        output_keys: where to write h_dt (one per key).
        breast_map_key: key of the breast map; computed by BreastRegion and stored when absent.
        store_breast_map: keep a computed breast map in the data.
        allow_missing_keys: don't raise for missing keys.
        other arguments: see :class:`DensityMap`.
    """

    backend = DensityMap.backend

    def __init__(
        self,
        keys: KeysCollection = "image",
        output_keys: KeysCollection | None = "density",
        breast_map_key: str | None = "breast_map",
        store_breast_map: bool = True,
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_keys = self.keys if output_keys is None else ensure_tuple_rep(output_keys, len(self.keys))
        self.breast_map_key = breast_map_key
        self.store_breast_map = store_breast_map
        self.transform = DensityMap(**kwargs)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key, out_key in self.key_iterator(d, self.output_keys):
            bmap = dict_breast_map(d, self.breast_map_key, d[key], self.store_breast_map)
            d[out_key] = self.transform(d[key], bmap)
        return d


class CalcificationThickness(Transform):
    """Calcification thickness h_calc (mm) from a dense-tissue thickness map, Eq. (5) of the paper.

    ``h_calc = (mu_dt - mu_fat) (h_dt - h_bkg) / mu_calc``, where the background tissue
    ``h_bkg`` is a grey morphological opening of ``h_dt`` with a flat square footprint of
    ``opening_mm`` (wider than a calcified vessel, ~2 mm; the paper's Fig. 5), computed as
    separable running min/max filters after a light Gaussian smoothing (``smooth_mm``) that keeps
    the opening from following the noise (:func:`monai_bac.ops.density.background_opening`).
    Noise passes through as zero-mean noise; ``clip_negative`` sets negative values to 0.

    Args:
        opening_mm: side of the opening's square, mm.
        smooth_mm: Gaussian sigma (mm) applied before the opening.
        mu_fat, mu_dt, mu_calc: attenuation coefficients (mm^-1). By default the ones the
            density map used (``meta["density"]``): with the polyenergetic model the effective
            coefficients of the spectrum transmitted by the compressed breast (beam hardening:
            hydroxyapatite's too), and h_dt is already scatter-corrected; with ``model="eq4"``
            mu_calc is hydroxyapatite's at the same effective energy.
        energy_kev: effective energy replacing the one from the metadata.
        spacing_mm: (row, col) mm replacing ``meta["spacing_mm"]``.
        clip_negative: clip the result at 0.
        dtype: output dtype.

    ``__call__(density, breast_map=None)``: ``density`` the (1, H, W) h_dt map of
    :class:`DensityMap`; ``breast_map`` restricts the opening to the breast (when None, the
    non-zero pixels of the density map are taken as the breast). Returns the same type; a
    MetaTensor gains ``meta["calc_thickness"]`` = {model (the density map's), opening_mm,
    smooth_mm, mu_fat, mu_dt, mu_calc, energy_kev}. An all-zero density map (no breast) gives an all-zero map.
    """

    backend = [TransformBackends.NUMPY]  # the op runs in numpy (torch input is converted, the output converted back)

    def __init__(
        self,
        opening_mm: float = 3.0,
        smooth_mm: float = 0.2,
        mu_fat: float | None = None,
        mu_dt: float | None = None,
        mu_calc: float | None = None,
        energy_kev: float | None = None,
        spacing_mm: Sequence[float] | None = None,
        clip_negative: bool = False,
        dtype: Any = np.float32,
    ) -> None:
        if not opening_mm > 0:
            raise ValueError(f"opening_mm must be > 0, got {opening_mm}")
        self.opening_mm, self.smooth_mm = float(opening_mm), float(smooth_mm)
        self.mu_fat, self.mu_dt, self.mu_calc, self.energy_kev = mu_fat, mu_dt, mu_calc, energy_kev
        self.spacing_mm = spacing_mm
        self.clip_negative = clip_negative
        self.dtype = dtype

    def attenuation(self, meta: Mapping) -> Attenuation:
        """The coefficients for a density map with metadata ``meta`` (see the class docstring)."""
        dens = meta.get("density") if isinstance(meta.get("density"), Mapping) else {}

        def from_density(name: str) -> float | None:
            value = dens.get(name)
            return float(value) if value is not None and np.isfinite(float(value)) else None

        mu_fat = self.mu_fat if self.mu_fat is not None else from_density("mu_fat")
        mu_dt = self.mu_dt if self.mu_dt is not None else from_density("mu_dt")
        # the polyenergetic density map gives hydroxyapatite's effective mu in the transmitted spectrum
        mu_calc = self.mu_calc if self.mu_calc is not None else from_density("mu_calc")
        energy = self.energy_kev if self.energy_kev is not None else from_density("energy_kev")
        if mu_fat is not None and mu_dt is not None and mu_calc is not None:
            return Attenuation(float(mu_fat), float(mu_dt), float(mu_calc), energy)
        missing = " and ".join(n for n, v in (("mu_fat", mu_fat), ("mu_dt", mu_dt), ("mu_calc", mu_calc))
                               if v is None)
        energy = _energy(meta, energy, type(self).__name__, f"{missing}=...")
        table = attenuation_at(energy)
        return Attenuation(float(mu_fat) if mu_fat is not None else table.mu_fat,
                           float(mu_dt) if mu_dt is not None else table.mu_dt,
                           float(mu_calc) if mu_calc is not None else table.mu_calc, energy)

    def __call__(self, density: NdarrayOrTensor, breast_map: NdarrayOrTensor | None = None) -> NdarrayOrTensor:
        meta = meta_of(density)
        who = type(self).__name__
        att = self.attenuation(meta)
        spacing = resolve_spacing_mm(meta, self.spacing_mm, who)
        h_dt = to_hw(density, "density").astype(np.float32, copy=False)
        if breast_map is None:
            mask = h_dt != 0
        else:
            mask = breast_map_hw(breast_map, h_dt, meta) > 0
        h_calc = calcification_thickness(h_dt, att, spacing, self.opening_mm, self.smooth_mm, mask,
                                         self.clip_negative)
        dens = meta.get("density") if isinstance(meta.get("density"), Mapping) else {}
        info = dict(model=str(dens.get("model", "")), opening_mm=self.opening_mm, smooth_mm=self.smooth_mm,
                    mu_fat=att.mu_fat, mu_dt=att.mu_dt,
                    mu_calc=att.mu_calc, energy_kev=float("nan") if att.energy_kev is None else float(att.energy_kev))
        return like(h_calc, density, self.dtype, {"calc_thickness": info})


class CalcificationThicknessd(MapTransform):
    """Dictionary-based wrapper of :class:`CalcificationThickness` (Eq. 5).

    Reads the density map(s) at ``keys`` (default ``"density"``) and writes h_calc to
    ``output_keys`` (default ``"calc_thickness"``). When a density key is missing from the data
    but ``image_key`` is there, the density map is computed first with :class:`DensityMap`
    (physics arguments shared, ``density_kwargs`` for the others) and stored.

    Args:
        keys: density maps.
        output_keys: where to write h_calc (one per key).
        breast_map_key: key of the breast map (restricts the opening to the breast); when absent
            the non-zero pixels of the density map are used, or, when the density must be
            computed, BreastRegion's map (stored).
        image_key: raw image used when the density map is missing (None: never compute it).
        density_kwargs: extra arguments of :class:`DensityMap` for that case.
        store_breast_map: keep a computed breast map in the data.
        allow_missing_keys: don't raise for missing keys.
        other arguments: see :class:`CalcificationThickness`.
    """

    backend = CalcificationThickness.backend

    def __init__(
        self,
        keys: KeysCollection = "density",
        output_keys: KeysCollection = "calc_thickness",
        breast_map_key: str | None = "breast_map",
        image_key: str | None = "image",
        density_kwargs: Mapping[str, Any] | None = None,
        store_breast_map: bool = True,
        allow_missing_keys: bool = False,
        opening_mm: float = 3.0,
        smooth_mm: float = 0.2,
        mu_fat: float | None = None,
        mu_dt: float | None = None,
        mu_calc: float | None = None,
        energy_kev: float | None = None,
        spacing_mm: Sequence[float] | None = None,
        clip_negative: bool = False,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_keys = ensure_tuple_rep(output_keys, len(self.keys))
        self.breast_map_key = breast_map_key
        self.image_key = image_key
        self.store_breast_map = store_breast_map
        self.transform = CalcificationThickness(opening_mm, smooth_mm, mu_fat, mu_dt, mu_calc, energy_kev, spacing_mm,
                                                clip_negative, dtype)
        kw = dict(compute_vbd=False, mu_fat=mu_fat, mu_dt=mu_dt, energy_kev=energy_kev, spacing_mm=spacing_mm)
        kw.update(density_kwargs or {})
        self._density = DensityMap(**kw)

    def _ensure_density(self, d: dict, key: Hashable) -> bool:
        if key in d:
            return True
        if self.image_key is None or self.image_key not in d:
            return False
        bmap = dict_breast_map(d, self.breast_map_key, d[self.image_key], self.store_breast_map)
        d[key] = self._density(d[self.image_key], bmap)
        return True

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key, out_key in zip(self.keys, self.output_keys):
            if not self._ensure_density(d, key):
                if self.allow_missing_keys:
                    continue
                raise KeyError(f"key '{key}' is not in the data and there is no '{self.image_key}' to compute it from "
                               f"(available keys: {sorted(map(str, d))})")
            bmap = d.get(self.breast_map_key) if self.breast_map_key is not None else None
            d[out_key] = self.transform(d[key], bmap)
        return d


DensityMapD = DensityMapDict = DensityMapd
CalcificationThicknessD = CalcificationThicknessDict = CalcificationThicknessd

"""A physics-based digital phantom of raw mammograms with BAC, with full ground truth.

``make_phantom`` draws one breast (CC or MLO, left or right), fills it with dense tissue,
arteries carrying calcified runs (BAC), micro-calcification clusters and dense-tissue strands
and edges, forms the raw detector image by Beer-Lambert physics, and simulates a noisy
third-party annotation. ``make_cohort`` writes a cohort of them as DICOM MG + NIfTI + a MONAI
datalist. See ``monai-bac phantom --help``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from monai_bac.phantom import anatomy, xray
from monai_bac.phantom.annotation import SOURCE_CODES, TPAConfig, simulate_annotation
from monai_bac.phantom.detector import VENDORS, choose_exposure, form_image
from monai_bac.phantom.effects import EFFECT_NAMES, LOOKALIKES_NEAR_BAC, MERGE_RATE, Effects
from monai_bac.phantom.geometry import (BACKGROUND, COMPRESSED, PECTORAL, PERIPHERY, SKIN_MM, breast_geometry,
                                        skin_path_mm)
from monai_bac.physics import HYDROXYAPATITE_DENSITY_MG_PER_MM3
from monai_bac.phantom.grid import Grid
from monai_bac.phantom.implant import IMPLANT_MATERIALS, implant_path

__all__ = ["Phantom", "TPAConfig", "Effects", "EFFECT_NAMES", "make_phantom", "make_cohort", "SOURCE_CODES",
           "FULL_FOV_MM", "PHYSICS", "VENDORS", "BACKGROUND", "PERIPHERY", "COMPRESSED", "PECTORAL"]

#: GE Pristina detector: 2850 x 2394 pixels at 0.1 mm (the paper's Sec. 2.1).
FULL_FOV_MM = (285.0, 239.4)
#: Image formation models: "ideal" (monochromatic Beer-Lambert, no scatter: Eq. 4 is exact) and
#: "realistic" (SpekPy spectra, xraydb attenuation, scatter, heel effect, skin, detector gain/offset).
PHYSICS = ("ideal", "realistic")


@dataclass
class Phantom:
    """One phantom mammogram and its ground truth. Arrays are (H, W), as stored in the DICOM."""

    raw: np.ndarray  # uint16 stored values (MONOCHROME1 for the GE profile)
    meta: dict  # acquisition: the DICOM tags, docs/ARCHITECTURE.md names
    breast_map: np.ndarray  # uint8, docs/ARCHITECTURE.md codes
    thickness: np.ndarray  # float32 mm, breast thickness along the beam
    h_dt: np.ndarray  # float32 mm, dense tissue (incl. arteries and strands, excl. muscle)
    h_muscle: np.ndarray  # float32 mm, pectoral muscle
    h_calc: np.ndarray  # float32 mm, all calcium (BAC + micro-calcifications)
    bac_mask: np.ndarray  # uint8, ground-truth BAC: calcified vessel wall
    tpa_mask: np.ndarray  # uint8, simulated third-party annotation
    tpa_source: np.ndarray  # uint8, what each TPA pixel was brushed for (SOURCE_CODES)
    record: dict  # truth figures: VBD, BAC length, calcium mass, TPA errors, exposure
    objects: dict = field(default_factory=dict, repr=False)  # arteries, clusters, ... (canonical frame)
    h_skin: np.ndarray | None = None  # float32 mm, skin along the beam (realistic physics only)
    h_implant: np.ndarray | None = None  # float32 mm, breast implant along the beam (``implant=`` only)

    @property
    def linear(self) -> np.ndarray:
        """Raw values linear in exposure (MONOCHROME1 inverted), float32."""
        raw = self.raw.astype(np.float32)
        if self.meta["photometric"] == "MONOCHROME1":
            raw = (2 ** self.meta["bits_stored"] - 1) - raw
        return raw

    @property
    def spacing(self) -> float:
        return self.meta["spacing_mm"][0]

    def write_dicom(self, path, **tags) -> None:
        """Write ``raw`` as a "FOR PROCESSING" DICOM MG with this phantom's acquisition tags
        (:func:`monai_bac.data.dicom_write.write_mammogram_dicom`; ``tags`` such as ``patient_id``
        are passed on)."""
        from monai_bac.data.dicom_write import write_mammogram_dicom

        m = self.meta
        if m.get("breast_implant_present"):  # BreastImplantPresent (0028,1300), Type 3
            tags["extra"] = {"BreastImplantPresent": m["breast_implant_present"], **(tags.get("extra") or {})}
        if m.get("anti_scatter_grid") == "NO":  # Grid (0018,1166), X-Ray Grid module (Type 3)
            tags["extra"] = {"Grid": "NONE", **(tags.get("extra") or {})}
        write_mammogram_dicom(path, self.raw, spacing_mm=m["spacing_mm"], kvp=m["kvp"], thickness_mm=m["thickness_mm"],
                              anode=m["anode"], filter=m["filter"], view=m["view"], laterality=m["laterality"],
                              manufacturer=m["manufacturer"], presentation=m["presentation"],
                              photometric=m["photometric"], bits_stored=m["bits_stored"],
                              exposure_mas=m["exposure_mas"], compression_force_n=m["compression_force_n"], **tags)


def make_phantom(
    seed: int = 0,
    *,
    view: str = "CC",
    laterality: str = "L",
    spacing_mm: float | None = 0.1,
    fov_mm: tuple[float, float] = FULL_FOV_MM,
    thickness_mm: float | None = None,
    vendor: str = "HOLOGIC",
    kvp: float | None = None,
    has_bac: bool = True,
    tpa: TPAConfig | None = None,
    n_clusters: int | None = None,
    n_strands: int | None = None,
    n_edges: int | None = None,
    physics: str = "ideal",
    effects: Effects | str | None = None,
    lookalikes_near_bac: float | None = None,
    paddle_tilt_deg: float = 0.0,
    implant: str | None = None,
    extremely_dense: bool = False,
    anti_scatter_grid: bool = True,
) -> Phantom:
    """Draw one raw phantom mammogram with ground truth; deterministic for a given ``seed``.

    Args:
        view: "CC" or "MLO" (MLO adds the pectoral muscle).
        laterality: "L" (chest wall on the left of the image) or "R" (mirrored).
        spacing_mm: isotropic pixel spacing; 0.1 mm with the default field of view gives the
            full-size 2850 x 2394 image of the paper's GE Pristina; None takes the vendor's own
            pitch (Hologic 0.07 mm, GE 0.1 mm, Siemens 0.085 mm).
        thickness_mm: compressed breast thickness, random in 35-75 mm when None.
        vendor: "HOLOGIC" (14-bit, MONOCHROME2), "GE" (16-bit, MONOCHROME1) or "SIEMENS" (14-bit).
        has_bac: whether the arteries carry calcified runs.
        tpa: error rates of the simulated third-party annotation.
        n_clusters, n_strands, n_edges: number of each distractor (random when None).
        physics: "ideal" (monochromatic Beer-Lambert, the default: Eq. 4 holds exactly) or
            "realistic" (:mod:`monai_bac.phantom.xray`: polyenergetic spectra, scatter, heel effect,
            skin, detector gain/offset/flat-field). The anatomy, truth and annotation of a seed are
            the same in both (unless the ``merged`` effect moves look-alikes next to BAC, or the
            ``edge`` effect varies the periphery's width and fall-off round the outline).
        effects: realistic physics only: which effects are on (:class:`Effects`, or a name such as
            ``"scatter"``, ``"spectrum+heel"``, ``"edge"``, ``"none"``); None = all. ``merged`` sets
            ``lookalikes_near_bac`` (when None) and the annotation's ``merge_rate`` (when 0) to
            :data:`~monai_bac.phantom.effects.LOOKALIKES_NEAR_BAC` / ``MERGE_RATE``; with no
            physical effect on, the image is the ideal one.
        lookalikes_near_bac: fraction of the micro-calcification clusters placed 1.5-4 mm beside a
            calcified run and of the dense strands placed across one (0: all apart, >= 4-6 mm away;
            None: 0, or the ``merged`` effect's fraction); those are the look-alikes an annotator
            can merge with BAC in one stroke.
        paddle_tilt_deg: the compression paddle tilted in the medial-lateral plane (along the image
            rows), as real paddles are by 0.04-0.69 deg (:func:`~monai_bac.phantom.geometry.breast_geometry`);
            the header's thickness stays the separation at the breast's centre row. 0 (default):
            parallel paddles, the phantom of every validation set. Not one of the ``effects``:
            it changes the anatomy's thickness, not the image formation.
        implant: realistic physics only: ``"silicone"`` or ``"saline"`` puts a breast implant behind
            the glandular tissue (:func:`~monai_bac.phantom.implant.implant_path`; drawn from its own
            random stream, so the rest of the phantom is the seed's), displacing fat and, where
            too little room is left, dense tissue; BreastImplantPresent (0028,1300) is YES in the
            header. The truth's VBD is then the tissue's (the implant is not breast volume), and
            ``record["vbd_percent_outside_implant"]`` the VBD of the breast beside the implant's shadow.
        extremely_dense: draw an extremely dense breast (BI-RADS d: glandular tissue over 60-90 % of
            the area, up to 85-100 % of the thickness; :func:`~monai_bac.phantom.anatomy.dense_tissue`)
            from the same random numbers, so the rest of the phantom is the seed's; the dense tissue
            is held to the thickness its skin and calcifications leave. Every validation set draws
            the default (VBD up to ~25 %).
        anti_scatter_grid: realistic physics only: False takes the image without an anti-scatter
            grid, as most tomosynthesis units take their projections: the breast's scatter reaches
            the detector unreduced (:func:`monai_bac.physics.scatter_to_primary_ratio`) and the
            primary is not attenuated by the grid; ``meta["anti_scatter_grid"]`` is "NO" and the
            DICOM file's Grid (0018,1166) NONE. Every validation set draws the default (a grid).
    """
    view, laterality, vendor = view.upper(), laterality.upper(), vendor.upper()
    if view not in ("CC", "MLO"):
        raise ValueError(f"view must be 'CC' or 'MLO', got {view!r}")
    if laterality not in ("L", "R"):
        raise ValueError(f"laterality must be 'L' or 'R', got {laterality!r}")
    if vendor not in VENDORS:
        raise ValueError(f"vendor must be one of {sorted(VENDORS)}, got {vendor!r}")
    mode = str(physics).lower()
    if mode not in PHYSICS:
        raise ValueError(f"physics must be one of {PHYSICS}, got {physics!r}")
    if mode == "ideal" and effects is not None and Effects.parse(effects) != Effects.only():
        raise ValueError(f"effects={effects!r} need physics='realistic' (the ideal mode has none)")
    fx = Effects.parse(effects) if mode == "realistic" else Effects.only()
    if lookalikes_near_bac is None:
        lookalikes_near_bac = LOOKALIKES_NEAR_BAC if fx.merged else 0.0
    if spacing_mm is None:
        spacing_mm = VENDORS[vendor].pixel_mm
    if not 0.0 <= lookalikes_near_bac <= 1.0:
        raise ValueError(f"lookalikes_near_bac must be in [0, 1], got {lookalikes_near_bac}")
    if not 0.02 <= spacing_mm <= 2.0:
        raise ValueError(f"spacing_mm must be within 0.02-2 mm, got {spacing_mm}")
    if implant is not None and (mode != "realistic" or implant not in IMPLANT_MATERIALS):
        raise ValueError(f"implant must be one of {sorted(IMPLANT_MATERIALS)} with physics='realistic', "
                         f"got implant={implant!r}, physics={physics!r}")
    if not anti_scatter_grid and mode != "realistic":
        raise ValueError("anti_scatter_grid=False needs physics='realistic' (the ideal mode has no scatter)")
    if not abs(float(paddle_tilt_deg)) <= 3.0:
        raise ValueError(f"paddle_tilt_deg must be within -3 to 3 deg, got {paddle_tilt_deg}")
    rng = np.random.default_rng(seed)
    tpa = tpa or TPAConfig()
    if fx.merged and tpa.merge_rate == 0.0:
        tpa = replace(tpa, merge_rate=MERGE_RATE)
    grid = Grid.from_fov(fov_mm, spacing_mm)
    h0 = float(thickness_mm) if thickness_mm is not None else float(rng.uniform(35.0, 75.0))
    edge_rng = np.random.default_rng([int(seed), 0xED6E]) if fx.edge else None  # no draw from rng: same anatomy
    geo = breast_geometry(rng, grid, view, h0, edge_rng=edge_rng, paddle_tilt_deg=float(paddle_tilt_deg))

    h_dt, dense_params = anatomy.dense_tissue(rng, grid, geo, extreme=bool(extremely_dense))
    edges = anatomy.dense_plateaus(rng, grid, geo, h_dt, int(rng.integers(0, 3)) if n_edges is None else n_edges)
    arteries = anatomy.grow_arteries(rng, grid, geo)
    if has_bac and arteries:
        anatomy.calcify(rng, arteries)
    vessel_pts = np.concatenate([a.points for a in arteries]) if arteries else None
    n_cl = int(rng.integers(0, 5)) if n_clusters is None else n_clusters
    near_cl = int(round(lookalikes_near_bac * n_cl)) if arteries else 0
    clusters = anatomy.place_clusters(rng, grid, geo, n_cl - near_cl, vessel_pts)
    n_st = int(rng.integers(2, 9)) if n_strands is None else n_strands
    near_st = int(round(lookalikes_near_bac * n_st)) if arteries else 0
    strands = anatomy.grow_strands(rng, grid, geo, n_st - near_st, vessel_pts)
    if near_cl or near_st:  # the look-alikes beside BAC come after those apart from it
        sites = anatomy.calcified_sites(arteries)
        clusters += anatomy.place_clusters_near(rng, grid, geo, near_cl, sites)
        strands += anatomy.grow_strands_across(rng, grid, geo, near_st, sites)

    h_calc_bac = np.zeros(grid.shape, np.float32)
    anatomy.render_arteries(grid, arteries, h_dt, h_calc_bac)
    anatomy.render_strands(grid, strands, h_dt)
    h_calc_mc = np.zeros(grid.shape, np.float32)
    anatomy.render_clusters(grid, clusters, h_calc_mc)
    h_muscle = np.where(geo.pectoral, geo.thickness_mm * rng.uniform(0.5, 0.85), 0.0).astype(np.float32)
    h_dt[geo.pectoral] = 0.0
    h_calc = h_calc_bac + h_calc_mc
    if extremely_dense:  # glandular tissue up to the whole thickness: leave room for the skin
        np.minimum(h_dt, np.clip(geo.thickness_mm - skin_path_mm(geo, SKIN_MM) - h_calc, 0.0, None), out=h_dt)
    h_implant, implant_record = None, None
    if implant is not None:  # its own random stream: the anatomy and the annotation stay the seed's
        h_implant, implant_record = implant_path(np.random.default_rng([int(seed), 0x1A97]), grid, geo, h_muscle)
        # the implant displaces fat first; dense tissue only where no fat is left in front of it
        room = geo.thickness_mm - h_implant - h_muscle - skin_path_mm(geo, SKIN_MM) - h_calc
        np.minimum(h_dt, np.clip(room, 0.0, None), out=h_dt)
        implant_record["material"] = implant

    profile = VENDORS[vendor]
    exposure = choose_exposure(rng, profile, h0, spacing_mm, kvp)
    h_skin, physics_record = None, {"physics": "ideal"}
    if not fx.physical:
        raw = form_image(rng, exposure, profile, spacing_mm, geo.thickness_mm, h_dt, h_calc, h_muscle)
        if mode == "realistic":
            physics_record = {"physics": "realistic"}
    else:
        noise = rng.standard_normal(grid.shape, dtype=np.float32)  # the draw form_image makes: same annotation
        phys_rng = np.random.default_rng([int(seed), 0x5EC7])
        exposure = xray.choose_exposure(phys_rng, profile, h0, spacing_mm, exposure.kvp, spectrum=fx.spectrum,
                                        grid=bool(anti_scatter_grid))
        h_skin = skin_path_mm(geo, SKIN_MM) if fx.vendor else None
        raw, physics_record = xray.form_image(noise, phys_rng, exposure, profile, grid, geo, h_dt, h_calc, h_muscle,
                                              h_skin, SKIN_MM, effects=fx, h_implant=h_implant,
                                              implant_material=implant or "silicone")
    if mode == "realistic":
        physics_record["effects"] = fx.to_dict()
    tpa_mask, tpa_source, tpa_record = simulate_annotation(rng, grid, tpa, arteries, clusters, strands, edges)
    bac_mask = (h_calc_bac > 0).astype(np.uint8)

    tissue = geo.inside & ~geo.pectoral
    pixel_area = spacing_mm**2
    volume = geo.thickness_mm if h_implant is None else geo.thickness_mm - h_implant  # tissue, not implant
    beside = tissue if h_implant is None else tissue & (h_implant == 0)
    pieces = [p for a in arteries for r in a.runs for p in r.pieces()]
    record = dict(
        seed=int(seed),
        view=view,
        laterality=laterality,
        compressed_thickness_mm=h0,
        periphery_width_mm=geo.periphery_width_mm,
        vbd_percent=float(100.0 * h_dt[tissue].sum() / max(volume[tissue].sum(), 1e-9)),
        vbd_percent_outside_implant=float(100.0 * h_dt[beside].sum() / max(geo.thickness_mm[beside].sum(), 1e-9)),
        has_bac=bool(bac_mask.any()),
        bac_centreline_length_mm=float(sum(b - a for a, b in pieces)),
        bac_runs=sum(len(a.runs) for a in arteries),
        bac_calcium_mg=float(h_calc_bac.sum() * pixel_area * HYDROXYAPATITE_DENSITY_MG_PER_MM3),
        bac_calcium_volume_mm3=float(h_calc_bac.sum() * pixel_area),
        n_arteries=len(arteries),
        n_clusters=len(clusters),
        n_strands=len(strands),
        n_edges=len(edges),
        energy_kev=exposure.energy_kev,
        mu_fat=exposure.attenuation.mu_fat,
        mu_dt=exposure.attenuation.mu_dt,
        mu_calc=exposure.attenuation.mu_calc,
        air_signal=exposure.air_signal if fx.physical else exposure.gain * exposure.air_quanta,
        quanta_fat=exposure.quanta_fat,
        gain=exposure.gain,
        **physics_record,
        geometry=geo.params,
        dense=dense_params,
        tpa=tpa_record,
        implant=implant_record,
    )
    meta = dict(
        spacing_mm=(float(spacing_mm), float(spacing_mm)),
        kvp=exposure.kvp,
        thickness_mm=round(h0, 1),
        anode=getattr(exposure, "anode", profile.anode),
        filter=getattr(exposure, "filter", profile.filter),
        view=view,
        laterality=laterality,
        manufacturer=profile.manufacturer,
        presentation="FOR PROCESSING",
        photometric=profile.photometric,
        bits_stored=profile.bits_stored,
        exposure_mas=exposure.mas,
        compression_force_n=round(float(rng.uniform(60, 150)), 1),
    )
    if implant is not None:
        meta["breast_implant_present"] = "YES"
    if not anti_scatter_grid:
        meta["anti_scatter_grid"] = "NO"
    arrays = dict(raw=raw, breast_map=geo.breast_map, thickness=geo.thickness_mm, h_dt=h_dt, h_muscle=h_muscle,
                  h_calc=h_calc, bac_mask=bac_mask, tpa_mask=tpa_mask, tpa_source=tpa_source)
    if h_skin is not None:
        arrays["h_skin"] = h_skin
    if h_implant is not None:
        arrays["h_implant"] = h_implant
    if laterality == "R":  # mirror: chest wall on the right of the image
        arrays = {k: np.ascontiguousarray(v[:, ::-1]) for k, v in arrays.items()}
    objects = dict(arteries=arteries, clusters=clusters, strands=strands, edges=edges, mirrored=laterality == "R")
    return Phantom(meta=meta, record=record, objects=objects, **arrays)


from monai_bac.phantom.cohort import make_cohort  # noqa: E402  (cohort needs Phantom)

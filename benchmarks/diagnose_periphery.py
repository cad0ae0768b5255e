"""Where BreastRegion's periphery width goes wrong on realistic phantoms (issue 13, compressed Dice).

Two measurements, both of :func:`monai_bac.ops.breast_region.analyse_breast_region` alone:

``windows``: on the phantoms of a ``validate_realistic.py generate`` folder, each sector window's
  fitted width against the true one - the median distance to the skin line of the true compressed
  region's edge within the window's angle (angles as the op measures them: round the chest-wall
  midpoint, at each pixel's nearest skin point; 0.5 mm grid). Prints the median ratio
  estimated / true per window for CC and MLO views, and compressed Dice by the phantom's base rim
  width over the compressed thickness (``record.periphery_width_mm / H0``).

``twin``: each seed made twice, with every realistic effect and with every effect but scatter
  (same anatomy, same beam), and analysed with the scatter step on and off respectively, at width
  margin 0 and at the default. The scatter-free twin separates what the scatter step leaves behind
  from what the width fit itself gets wrong.

``contour``: what compressed Dice 0.90 asks of an image, from its truth and its beam alone (no
  method involved). The contour ``{thickness >= H0 - tol}`` outside the muscle is a superset of the
  true compressed region (``thickness == H0``); :func:`contour_tolerance` is the ``tol`` at which
  its Dice with the truth falls to 0.90. Over the last ``tol`` mm of thickness the periphery is
  counted compressed by a map that is still at 0.90, so a method must place the boundary as if it
  read the local thickness to within ``tol``: in ln P of fat that is ``tol`` x the transmitted
  beam's slope at H0 (``TransmittedBeam.effective``, from the header's KVP, anode, filter and
  detector). Given the ``evaluate`` CSVs of the same folders, it also prints each image's
  compressed Dice, the tolerance that Dice equals (a like-for-like reading only where the map errs
  by calling the periphery's thickest part compressed, i.e. a periphery too narrow), and its VBD
  error.

``tilt``: fresh seeds made with parallel and with tilted paddles (``make_phantom(paddle_tilt_deg=)``),
  written as DICOM and read through the whole chain: compressed Dice, breast Dice and VBD error at
  each tilt (docs/design-log/breast_region.md, "A tilted paddle", "The fresh rate on thick breasts").

``readout``: fresh seeds whose DICOM carries a BodyPartThickness off by each relative error, read
  through the whole chain: compressed Dice, VBD error, h_dt in bounds, and DensityMap's check of
  the readout against the thickness the image implies (docs/design-log/density_map.md, "A
  BodyPartThickness that the unit reads wrong", "The thickness the image implies").

``untagged``: fresh seeds written as DICOM without BodyPartThickness and read as such a user runs
  the chain (``BreastRegion()``, ``DensityMap(thickness_mm="image")``): compressed, breast and
  pectoral Dice, VBD error, and the thickness BreastRegion's scatter step used
  (docs/design-log/breast_region.md, "An image without BodyPartThickness").

``collimated``: fresh seeds read as made and with a collimator's unexposed bands along the top,
  bottom and nipple-side edges (2-15 mm, each present with probability 0.7; the phantom's own
  detector offset under them), through ``BreastRegion()`` and ``DensityMap()``: Dice over the exposed
  pixels, VBD error, and the offset DensityMap reads (docs/design-log/breast_region.md, "A
  collimator's unexposed border").

Usage (the twentieth and twenty-first sessions' figures in docs/design-log/breast_region.md):

    python benchmarks/diagnose_periphery.py windows --data /tmp/bac-quorum
    python benchmarks/diagnose_periphery.py twin --view CC --n 18 --seed 45000   # and 90000
    python benchmarks/diagnose_periphery.py twin --view MLO --n 18 --seed 45100  # and 90100
    python benchmarks/diagnose_periphery.py twin --view CC --n 18 --seed 45200 --thickness 30 60  # and 90200

    python benchmarks/diagnose_periphery.py contour --data /tmp/bac-docket /tmp/bac-slate /tmp/bac-quorum \
        --csv docket.csv slate.csv quorum.csv

    python benchmarks/diagnose_periphery.py tilt --n 192 --seed 48200 --thickness 60 80 --tilts 0.35 --workers 2
    python benchmarks/diagnose_periphery.py readout --n 48 --seed 48500 --errors -0.15 -0.1 0.1 0.15 0.2 --workers 2
    python benchmarks/diagnose_periphery.py untagged --n 96 --seed 48700 --workers 2
    python benchmarks/diagnose_periphery.py collimated --n 48 --seed 48800 --workers 2

Seeds 45000-45217, 49000-49199 (twenty-fifth session, `/tmp` twin scripts), 90000-90217 and
48000-48895 (twenty-ninth to thirty-first sessions) were used so; held-out sets (validate_realistic.py)
stay off them.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate_realistic import dice  # noqa: E402

from monai_bac.data import load_mammogram  # noqa: E402
from monai_bac.ops.breast_region import (COMPRESSED, PECTORAL, PERIPHERY, analyse_breast_region,  # noqa: E402
                                         skin_point_angle, window_centres)
from monai_bac.ops.resample import block_factors  # noqa: E402

VENDORS = ("HOLOGIC", "GE", "SIEMENS")
WIDTH_BINS = (0.0, 0.45, 0.55, 0.65, np.inf)  # base rim width / H0
THICKNESS_BANDS = ((30.0, 47.0), (47.0, 64.0), (64.0, 80.1))  # mm, a third of the sets' range each


def true_window_widths(result, truth_map: np.ndarray, spacing_mm, n_sectors: int = 8) -> np.ndarray:
    """Per sector window of ``result``: the median skin distance (mm) of the true compressed
    region's edge within the window's angle (one sector, ``pi / n_sectors``, as the op's windows
    with its default ``n_sectors``); NaN where the edge is not seen (beside the muscle)."""
    fr, fc = block_factors(spacing_mm, 0.5)
    tm = truth_map[::fr, ::fc]
    if result.chest_wall == "right":
        tm = tm[:, ::-1]
    step = (spacing_mm[0] * fr, spacing_mm[1] * fc)
    mask = tm > 0
    dist, skin = ndimage.distance_transform_edt(mask, sampling=step, return_indices=True)
    phi = skin_point_angle(mask, skin, step)
    comp = tm == COMPRESSED
    edge = comp & ~ndimage.binary_erosion(comp, border_value=1) & ~ndimage.binary_dilation(tm == PECTORAL, iterations=2)
    out = np.full(result.sector_widths_mm.size, np.nan)
    for k, c in enumerate(window_centres(out.size)):
        sel = edge & (np.abs(phi - c) < 0.5 * np.pi / n_sectors)
        if sel.sum() > 3:
            out[k] = float(np.median(dist[sel]))
    return out


def _rim_thickness_desc(thickness: np.ndarray, truth_map: np.ndarray) -> tuple[float, int, np.ndarray]:
    """(H0, true compressed pixels, the periphery's thicknesses in descending order); the muscle
    and the background are neither."""
    comp = truth_map == COMPRESSED
    h0 = float(thickness[comp].max())
    return h0, int(comp.sum()), -np.sort(-thickness[truth_map == PERIPHERY].astype(np.float64))


def contour_dice(thickness: np.ndarray, truth_map: np.ndarray, tol_mm: float) -> float:
    """Dice of the true compressed region with ``{thickness >= H0 - tol_mm}`` outside the muscle."""
    h0, n_comp, rim = _rim_thickness_desc(thickness, truth_map)
    extra = int(np.count_nonzero(rim >= h0 - tol_mm))
    return 2.0 * n_comp / (2.0 * n_comp + extra)


def contour_tolerance(thickness: np.ndarray, truth_map: np.ndarray, target: float = 0.9) -> float:
    """The thickness tolerance (mm) at which :func:`contour_dice` is ``target``: the largest the
    contour's periphery share can be, ``2 n (1 / target - 1)`` pixels, taken from the thickest
    periphery down (inf when the whole periphery fits)."""
    return _tolerance(*_rim_thickness_desc(thickness, truth_map), target)


def _tolerance(h0: float, n_comp: int, rim: np.ndarray, target: float) -> float:
    n = int(np.floor(2.0 * n_comp * (1.0 / float(target) - 1.0) + 1e-9))
    if n >= rim.size:
        return float("inf")
    return h0 - float(rim[n - 1]) if n > 0 else 0.0


def fat_slope_at(meta: dict, h0_mm: float) -> float:
    """-d ln P / d t of fat behind ``h0_mm`` of it (mm^-1), for the image's own beam and detector
    (the spectrum DensityMap models from the same header)."""
    from monai_bac.transforms import DensityMap

    return DensityMap().beam(meta).effective(h0_mm).mu_fat


def _read_csvs(paths) -> dict:
    rows = {}
    for p in paths or ():
        with open(p) as f:
            rows.update({r["case"]: r for r in csv.DictReader(line for line in f if not line.startswith("#"))})
    return rows


def contour(args) -> int:
    chain = _read_csvs(args.csv)
    rows = []
    for data in map(Path, args.data):
        for js in sorted(data.glob("*.json")):
            info = json.loads(js.read_text())
            truth = np.load(data / f"{info['case']}.npz")
            rim = _rim_thickness_desc(truth["thickness"], truth["breast_map"])  # sorted once, read twice
            h0 = rim[0]
            slope = fat_slope_at(load_mammogram(data / f"{info['case']}.dcm").meta, h0)
            tol = _tolerance(*rim, args.target)
            r = chain.get(info["case"])
            d = float(r["dice_compressed"]) if r else np.nan
            eq = _tolerance(*rim, d) if r else np.nan
            vbd = abs(float(r["vbd_error_pp"])) if r else np.nan
            rows.append((info["case"], h0, slope, tol, d, eq, vbd))
    print(f"{len(rows)} images; contour tolerance for compressed Dice {args.target}: mm of thickness, and that "
          f"many mm of fat in ln P (x the beam's slope at H0)")
    print("H0 (mm) | images | tolerance mm: median (min-max) | ln units: median (min-max) | "
          f"under {args.ln_floor} ln units | chain under {args.target}")
    arr = np.array([r[1:] for r in rows], dtype=float)
    for lo, hi in THICKNESS_BANDS:
        sel = (arr[:, 0] >= lo) & (arr[:, 0] < hi)
        if not sel.any():
            continue
        tol, ln = arr[sel, 2], arr[sel, 2] * arr[sel, 1]
        misses = int(np.sum(arr[sel, 3] < args.target))
        print(f"{lo:.0f}-{hi:.0f} | {sel.sum()} | {np.median(tol):.2f} ({tol.min():.2f}-{tol.max():.2f}) | "
              f"{np.median(ln):.3f} ({ln.min():.3f}-{ln.max():.3f}) | {int(np.sum(ln < args.ln_floor))} | "
              f"{misses if chain else '-'}")
    if chain:
        print(f"images under {args.target} (chain): case | H0 | tolerance for {args.target}: mm, ln | "
              "the chain's Dice | the tolerance it equals: mm, ln | VBD error pp")
        for case, h0, slope, tol, d, eq, vbd in rows:
            if d < args.target:
                print(f"{case} | {h0:.0f} | {tol:.2f}, {tol * slope:.3f} | {d:.3f} | {eq:.2f}, {eq * slope:.3f} | "
                      f"{vbd:.2f}")
        seen = arr[np.isfinite(arr[:, 3])]
        miss = seen[:, 3] < args.target
        for label, sel in ((f"under {args.target}", miss), (f"at or over {args.target}", ~miss)):
            if sel.any():
                print(f"VBD error on the images {label}: mean {seen[sel, 5].mean():.2f}, "
                      f"worst {seen[sel, 5].max():.2f} pp ({sel.sum()} images)")
    return 0


def _load(path: Path):
    img = load_mammogram(path)
    return np.asarray(img)[0], tuple(float(s) for s in img.meta["spacing_mm"])


def windows(args) -> int:
    data = Path(args.data)
    ratios = {"CC": [], "MLO": []}
    rows = []
    for js in sorted(data.glob("*.json")):
        info = json.loads(js.read_text())
        truth = np.load(data / f"{info['case']}.npz")["breast_map"]
        image, spacing = _load(data / f"{info['case']}.dcm")
        r = analyse_breast_region(image, spacing, info["view"], thickness_mm=info["thickness_mm"])
        ratios[info["view"]].append(r.sector_widths_mm / true_window_widths(r, truth, spacing))
        rows.append((info["record"]["periphery_width_mm"] / info["thickness_mm"],
                     dice(r.breast_map == COMPRESSED, truth == COMPRESSED)))
    np.set_printoptions(linewidth=160, precision=3)
    for view, rs in ratios.items():
        if rs:
            rs = np.array(rs)
            print(f"{view} ({len(rs)} images): median estimated / true width per window, top of the chest wall "
                  f"to the bottom\n  {np.nanmedian(rs, axis=0)}\n  all windows: {np.nanmedian(rs):.3f}")
    w, d = np.array(rows).T
    print("base rim width / H0 | images | compressed Dice mean | under 0.90")
    for lo, hi in zip(WIDTH_BINS[:-1], WIDTH_BINS[1:]):
        sel = (w >= lo) & (w < hi)
        if sel.any():
            print(f"{lo:.2f}-{hi:.2f} | {sel.sum()} | {d[sel].mean():.4f} | {(d[sel] < 0.9).sum()}")
    return 0


def twin(args) -> int:
    from monai_bac.phantom import make_phantom

    rng = np.random.default_rng(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="bac-twin-"))
    runs = {}  # (image, width margin) -> [(dice, median width ratio)]
    for i in range(args.n):
        vendor, thickness = VENDORS[i % 3], round(float(rng.uniform(*args.thickness)), 1)
        for effects, label in (("all", "scatter, scatter step"), ("spectrum+heel+vendor+edge", "no scatter, no step")):
            ph = make_phantom(args.seed + i, view=args.view, laterality="LR"[i % 2], vendor=vendor,
                              thickness_mm=thickness, spacing_mm=None, physics="realistic", effects=effects)
            ph.write_dicom(tmp / "twin.dcm", patient_id="twin")
            image, spacing = _load(tmp / "twin.dcm")
            for margin in (0.0, None):
                kw = {} if margin is None else {"width_margin": margin}
                r = analyse_breast_region(image, spacing, args.view, thickness_mm=thickness, scatter=effects == "all",
                                          **kw)
                ratio = np.nanmedian(r.sector_widths_mm / true_window_widths(r, ph.breast_map, spacing))
                key = (label, "0" if margin is not None else "default")
                runs.setdefault(key, []).append((dice(r.breast_map == COMPRESSED, ph.breast_map == COMPRESSED), ratio))
        print(f"{i + 1}/{args.n} seed {args.seed + i} {vendor} {thickness} mm", flush=True)
    print(f"{args.view}, {args.n} seeds from {args.seed}, {args.thickness[0]}-{args.thickness[1]} mm")
    print("image, BreastRegion | width margin | compressed Dice mean / worst / under 0.90 | median window width est / true")
    for (label, margin), v in runs.items():
        v = np.array(v)
        print(f"{label} | {margin} | {v[:, 0].mean():.4f} / {v[:, 0].min():.3f} / {(v[:, 0] < 0.9).sum()} | "
              f"{np.median(v[:, 1]):.3f}")
    return 0


def _fresh_cases(args) -> list[tuple]:
    """(seed, view, laterality, vendor, thickness) of ``args.n`` seeds from ``args.seed``: CC/MLO x
    L/R and the three vendors in turn, the thickness uniform in ``args.thickness``."""
    rng = np.random.default_rng(args.seed)
    views = (("CC", "L"), ("MLO", "R"), ("CC", "R"), ("MLO", "L"))
    return [(args.seed + i, *views[i % 4], VENDORS[i % 3], round(float(rng.uniform(*args.thickness)), 1))
            for i in range(args.n)]


def _run(fn, jobs: list, args) -> list:
    """``fn`` over ``jobs`` in ``args.workers`` processes; says what was made."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(fn, jobs))
    print(f"{args.n} seeds from {args.seed}, CC/MLO x L/R x three vendors at their pitch, "
          f"{args.thickness[0]}-{args.thickness[1]} mm, every realistic effect")
    return results


def _tilt_case(job: tuple) -> list[tuple]:
    """One seed made at each tilt (every realistic effect, the vendor's pitch), written as DICOM and
    read through the chain a user runs: [(tilt, compressed Dice, breast Dice, VBD error pp)]."""
    from validate_realistic import chain_maps

    from monai_bac.phantom import make_phantom

    seed, view, laterality, vendor, thickness, tilts = job
    out = []
    with tempfile.TemporaryDirectory(prefix="bac-tilt-") as tmp:
        for tilt in tilts:
            ph = make_phantom(seed, view=view, laterality=laterality, vendor=vendor, thickness_mm=thickness,
                              spacing_mm=None, physics="realistic", paddle_tilt_deg=tilt)
            ph.write_dicom(Path(tmp) / "tilt.dcm", patient_id="tilt")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, bmap, dens, _ = chain_maps(tmp, "tilt")
            est = np.asarray(bmap)[0]
            out.append((tilt, dice(est == COMPRESSED, ph.breast_map == COMPRESSED), dice(est > 0, ph.breast_map > 0),
                        float(dens.meta["density"]["vbd_percent"]) - ph.record["vbd_percent"]))
    return out


def tilt(args) -> int:
    """Each seed made with parallel paddles and with the paddle tilted by +-each of ``--tilts``
    (the sign alternates with the seed), read through the whole chain."""
    jobs = [(*case, [0.0] + [(1.0 if i % 2 == 0 else -1.0) * t for t in args.tilts])
            for i, case in enumerate(_fresh_cases(args))]
    results = _run(_tilt_case, jobs, args)
    print("|paddle tilt| (deg) | compressed Dice mean / worst / under 0.90 | breast Dice worst | "
          "VBD error mean / worst abs (pp) | images whose compressed Dice fell by > 0.02")
    base = np.array([r[0][1] for r in results])
    for k, t in enumerate([0.0] + list(args.tilts)):
        rows = np.array([r[k][1:] for r in results])
        fell = int((rows[:, 0] < base - 0.02).sum())
        print(f"{t:.2f} | {rows[:, 0].mean():.4f} / {rows[:, 0].min():.3f} / {(rows[:, 0] < 0.9).sum()} | "
              f"{rows[:, 1].min():.4f} | {rows[:, 2].mean():+.2f} / {np.abs(rows[:, 2]).max():.2f} | {fell}")
    print("images under compressed Dice 0.90 at any tilt: seed view vendor H0 | (tilt, Dice) ...")
    for job, res in zip(jobs, results):
        if min(r[1] for r in res) < 0.9:
            dices = ", ".join(f"({r[0]:+.2f}, {r[1]:.3f})" for r in res)
            print(f"{job[0]} {job[2]}{job[1]} {job[3]} {job[4]} | {dices}")
    return 0


def _readout_case(job: tuple) -> list[tuple]:
    """One seed made once, written as DICOM with its BodyPartThickness off by each relative error
    and read through the chain a user runs: [(error, compressed Dice, VBD error pp, h_dt in bounds %, the
    thickness the image implies / the true one and / the header's (nan: none), DensityMap's check reason)]."""
    from validate_realistic import chain_maps

    from monai_bac.phantom import make_phantom

    seed, view, laterality, vendor, thickness, errors = job
    ph = make_phantom(seed, view=view, laterality=laterality, vendor=vendor, thickness_mm=thickness, spacing_mm=None,
                      physics="realistic")
    breast = (ph.breast_map == PERIPHERY) | (ph.breast_map == COMPRESSED)
    out = []
    with tempfile.TemporaryDirectory(prefix="bac-readout-") as tmp:
        for err in errors:
            ph.meta["thickness_mm"] = round(thickness * (1.0 + err), 1)
            ph.write_dicom(Path(tmp) / "readout.dcm", patient_id="readout")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, bmap, dens, _ = chain_maps(tmp, "readout")
            est, h_dt = np.asarray(bmap)[0], np.asarray(dens)[0]
            inside = (h_dt[breast] >= -1.0) & (h_dt[breast] <= ph.thickness[breast] + 1e-3)
            m = dens.meta["density"]
            out.append((err, dice(est == COMPRESSED, ph.breast_map == COMPRESSED),
                        float(m["vbd_percent"]) - ph.record["vbd_percent"], 100.0 * inside.mean(),
                        float(m["thickness_from_image_mm"]) / thickness,
                        float(m["thickness_from_image_mm"]) / float(m["thickness_mm"]), str(m["thickness_check"])))
    return out


def readout(args) -> int:
    """Each seed's DICOM written with its BodyPartThickness off by each of ``--errors`` (relative),
    read through the whole chain."""
    errors = [0.0] + list(args.errors)
    results = _run(_readout_case, [(*case, errors) for case in _fresh_cases(args)], args)
    print("BodyPartThickness error | compressed Dice mean / worst / under 0.90 | VBD error mean / worst abs (pp) | "
          "images with VBD error > 3 pp / > 5 pp | h_dt in [-1 mm, thickness]: worst image %")
    for k, e in enumerate(errors):
        rows = np.array([r[k][1:4] for r in results])
        print(f"{e:+.0%} | {rows[:, 0].mean():.4f} / {rows[:, 0].min():.3f} / {(rows[:, 0] < 0.9).sum()} | "
              f"{rows[:, 1].mean():+.2f} / {np.abs(rows[:, 1]).max():.2f} | {(np.abs(rows[:, 1]) > 3).sum()} / "
              f"{(np.abs(rows[:, 1]) > 5).sum()} | {rows[:, 2].min():.2f}")
    _thickness_check_table(errors, results)
    return 0


def _untagged_case(job: tuple) -> tuple:
    """One seed written as DICOM without BodyPartThickness and read as such a user runs the chain
    (``BreastRegion()`` then ``DensityMap(thickness_mm="image")``): (compressed, breast and pectoral
    Dice (nan: no muscle in either), VBD error pp, BreastRegion's scatter thickness / true (nan: none))."""
    from monai_bac.phantom import make_phantom
    from monai_bac.transforms import BreastRegion, DensityMap

    seed, view, laterality, vendor, thickness = job
    ph = make_phantom(seed, view=view, laterality=laterality, vendor=vendor, thickness_mm=thickness, spacing_mm=None,
                      physics="realistic")
    ph.meta["thickness_mm"] = None
    with tempfile.TemporaryDirectory(prefix="bac-untagged-") as tmp:
        ph.write_dicom(Path(tmp) / "untagged.dcm", patient_id="untagged")
        img = load_mammogram(Path(tmp) / "untagged.dcm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bmap = BreastRegion()(img)
        dens = DensityMap(thickness_mm="image")(img, bmap)
    est, truth = np.asarray(bmap)[0], ph.breast_map
    pect = dice(est == PECTORAL, truth == PECTORAL) if (truth == PECTORAL).any() or (est == PECTORAL).any() else np.nan
    return (dice(est == COMPRESSED, truth == COMPRESSED), dice(est > 0, truth > 0), pect,
            float(dens.meta["density"]["vbd_percent"]) - ph.record["vbd_percent"],
            float(bmap.meta.get("scatter_thickness_mm", np.nan)) / thickness)


def untagged(args) -> int:
    """Each seed's DICOM written without BodyPartThickness, read through the whole chain."""
    cases = _fresh_cases(args)
    rows = np.array(_run(_untagged_case, cases, args), dtype=np.float64)
    thick = np.array([c[4] for c in cases]) >= 60.0
    print("images | compressed Dice mean / worst / under 0.90 | breast Dice mean / worst | pectoral Dice mean / worst | "
          "VBD error mean / worst abs (pp) | scatter thickness / true: median (range), images with none")
    for name, sel in (("all", np.ones(len(cases), bool)), ("30-60 mm", ~thick), ("60-80 mm", thick)):
        if not sel.any():
            continue
        r = rows[sel]
        p, t = r[:, 2][np.isfinite(r[:, 2])], r[:, 4][np.isfinite(r[:, 4])]
        spread = f"{np.median(t):.3f} ({t.min():.3f}-{t.max():.3f})" if t.size else "-"
        pect = f"{p.mean():.4f} / {p.min():.3f}" if p.size else "-"
        print(f"{name} ({sel.sum()}) | {r[:, 0].mean():.4f} / {r[:, 0].min():.3f} / {(r[:, 0] < 0.9).sum()} | "
              f"{r[:, 1].mean():.4f} / {r[:, 1].min():.4f} | {pect} | "
              f"{r[:, 3].mean():+.2f} / {np.abs(r[:, 3]).max():.2f} | {spread}, {int(sel.sum() - t.size)}")
    print("images under compressed Dice 0.90: seed view vendor H0 Dice")
    for case, r in zip(cases, rows):
        if r[0] < 0.9:
            print(f"{case[0]} {case[2]}{case[1]} {case[3]} {case[4]} {r[0]:.3f}")
    return 0


def _collimated_case(job: tuple) -> list[tuple]:
    """One seed read as made and with a collimator's unexposed bands added (random widths on the
    top, bottom and nipple-side edges, :func:`monai_bac.phantom.collimator.collimate`), through
    ``BreastRegion()`` and ``DensityMap()``: per reading (bands mm, breast, compressed and pectoral
    Dice over the exposed pixels (pectoral nan: no muscle in either), VBD error pp, DensityMap's
    offset / the phantom's)."""
    from monai.data import MetaTensor
    import torch

    from monai_bac.ops.primary import chest_wall_side
    from monai_bac.phantom import make_phantom
    from monai_bac.phantom.collimator import collimate
    from monai_bac.transforms import BreastRegion, DensityMap

    seed, view, laterality, vendor, thickness = job
    ph = make_phantom(seed, view=view, laterality=laterality, vendor=vendor, thickness_mm=thickness, spacing_mm=None,
                      physics="realistic")
    rng = np.random.default_rng(seed)
    widths = [float(rng.uniform(2.0, 15.0)) if rng.random() < 0.7 else 0.0 for _ in range(3)]
    chest_left = chest_wall_side(ph.breast_map > 0, laterality) == 1
    bands = (widths[0], widths[1], 0.0, widths[2]) if chest_left else (widths[0], widths[1], widths[2], 0.0)
    offset = float(ph.record["detector_offset"])
    bladed, exposed = collimate(ph.linear, ph.meta["spacing_mm"], offset, bands, rng)
    truth = ph.breast_map
    out = []
    for name, image in (("as made", ph.linear.astype(np.float32)), ("collimated", bladed)):
        img = MetaTensor(torch.from_numpy(np.ascontiguousarray(image)[None]), meta=dict(ph.meta, filename_or_obj=f"{seed}.dcm"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bmap = BreastRegion()(img)
            dens = DensityMap()(img, bmap).meta["density"]
        est = np.asarray(bmap)[0]
        e, t = est[exposed], truth[exposed]
        pect = dice(e == PECTORAL, t == PECTORAL) if (t == PECTORAL).any() or (e == PECTORAL).any() else np.nan
        out.append((name, bands, dice(e > 0, t > 0), dice(e == COMPRESSED, t == COMPRESSED), pect,
                    float(dens["vbd_percent"]) - ph.record["vbd_percent"], float(dens["offset"]) / offset))
    return out


def collimated(args) -> int:
    """Each seed as made and with a collimator's unexposed bands, read through the chain."""
    cases = _fresh_cases(args)
    results = _run(_collimated_case, cases, args)
    print("image | breast Dice mean / worst | compressed Dice mean / worst / under 0.90 | pectoral Dice mean / worst "
          "(MLO) | VBD error mean / worst abs (pp) | images over 3 pp | offset read / true: median (images read)")
    for k in range(2):
        rows = np.array([r[k][2:] for r in results], dtype=np.float64)
        p = rows[:, 2][np.isfinite(rows[:, 2])]
        read = rows[:, 4][rows[:, 4] > 0]
        print(f"{results[0][k][0]} | {rows[:, 0].mean():.4f} / {rows[:, 0].min():.4f} | {rows[:, 1].mean():.4f} / "
              f"{rows[:, 1].min():.3f} / {(rows[:, 1] < 0.9).sum()} | {p.mean():.4f} / {p.min():.3f} | "
              f"{rows[:, 3].mean():+.2f} / {np.abs(rows[:, 3]).max():.2f} | {(np.abs(rows[:, 3]) > 3).sum()} | "
              f"{np.median(read) if read.size else float('nan'):.3f} ({read.size})")
    print("images whose collimated reading differs: seed view vendor H0 bands (top, bottom, left, right mm) | "
          "compressed Dice, pectoral Dice, VBD error as made -> collimated")
    for case, r in zip(cases, results):
        a, b = r
        if abs(a[3] - b[3]) > 0.02 or abs(np.nan_to_num(a[4]) - np.nan_to_num(b[4])) > 0.05 or abs(a[5] - b[5]) > 1.0:
            print(f"{case[0]} {case[2]}{case[1]} {case[3]} {case[4]} ({', '.join(f'{x:.1f}' for x in b[1])}) | "
                  f"{a[3]:.3f} -> {b[3]:.3f}, {a[4]:.3f} -> {b[4]:.3f}, {a[5]:+.2f} -> {b[5]:+.2f}")
    return 0


def _thickness_check_table(errors: list, results: list) -> None:
    """DensityMap's check of the header's thickness (docs/TRANSFORMS.md, DensityMap): the image's
    thickness / the true one, and how many images it warns on at each readout error."""
    from monai_bac.transforms.physics import THICKNESS_TOLERANCE

    print(f"BodyPartThickness error | image's thickness / true: median (range) | images with no estimate | "
          f"images warned (|image / header - 1| > {THICKNESS_TOLERANCE:.0%})")
    for k, e in enumerate(errors):
        ratio = np.array([r[k][4] for r in results])
        ok = np.isfinite(ratio)
        warned = int((np.abs(np.array([r[k][5] for r in results])[ok] - 1.0) > THICKNESS_TOLERANCE).sum())
        reasons = sorted({r[k][6] for r in results if not np.isfinite(r[k][4])})
        spread = f"{np.median(ratio[ok]):.3f} ({ratio[ok].min():.3f}-{ratio[ok].max():.3f})" if ok.any() else "-"
        print(f"{e:+.0%} | {spread} | {int((~ok).sum())}{' (' + '; '.join(reasons) + ')' if reasons else ''} | "
              f"{warned} of {int(ok.sum())}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("windows", help="fitted / true window widths on a generated set")
    w.add_argument("--data", required=True, help="a validate_realistic.py generate folder")
    t = sub.add_parser("twin", help="each seed with and without scatter")
    t.add_argument("--view", choices=("CC", "MLO"), required=True)
    t.add_argument("--n", type=int, default=18)
    t.add_argument("--seed", type=int, required=True, help="first seed (keep clear of the held-out sets' seeds)")
    t.add_argument("--thickness", type=float, nargs=2, default=(64.0, 80.0), metavar=("LO", "HI"))
    p = sub.add_parser("tilt", help="each seed with parallel and with tilted paddles, whole chain")
    p.add_argument("--n", type=int, default=24)
    p.add_argument("--seed", type=int, required=True, help="first seed (keep clear of the held-out sets' seeds)")
    p.add_argument("--thickness", type=float, nargs=2, default=(60.0, 80.0), metavar=("LO", "HI"))
    p.add_argument("--tilts", type=float, nargs="+", default=(0.35, 0.7), help="|tilt| in degrees")
    p.add_argument("--workers", type=int, default=1)
    r = sub.add_parser("readout", help="each seed with its BodyPartThickness off by a relative error, whole chain")
    r.add_argument("--n", type=int, default=24)
    r.add_argument("--seed", type=int, required=True, help="first seed (keep clear of the held-out sets' seeds)")
    r.add_argument("--thickness", type=float, nargs=2, default=(30.0, 80.0), metavar=("LO", "HI"))
    r.add_argument("--errors", type=float, nargs="+", default=(-0.05, 0.1, 0.2), help="relative readout errors")
    r.add_argument("--workers", type=int, default=1)
    u = sub.add_parser("untagged", help="each seed written without BodyPartThickness, whole chain")
    u.add_argument("--n", type=int, default=24)
    u.add_argument("--seed", type=int, required=True, help="first seed (keep clear of the held-out sets' seeds)")
    u.add_argument("--thickness", type=float, nargs=2, default=(30.0, 80.0), metavar=("LO", "HI"))
    u.add_argument("--workers", type=int, default=1)
    k = sub.add_parser("collimated", help="each seed as made and with a collimator's unexposed bands, whole chain")
    k.add_argument("--n", type=int, default=24)
    k.add_argument("--seed", type=int, required=True, help="first seed (keep clear of the held-out sets' seeds)")
    k.add_argument("--thickness", type=float, nargs=2, default=(30.0, 80.0), metavar=("LO", "HI"))
    k.add_argument("--workers", type=int, default=1)
    c = sub.add_parser("contour", help="the thickness tolerance that compressed Dice 0.90 asks of each image")
    c.add_argument("--data", nargs="+", required=True, help="validate_realistic.py generate folders")
    c.add_argument("--csv", nargs="*", help="their evaluate CSVs, for each image's chain Dice and VBD error")
    c.add_argument("--target", type=float, default=0.9)
    c.add_argument("--ln-floor", type=float, default=0.03,
                   help="ln units: the smallest scatter-step residual the twins measured "
                        "(docs/design-log/breast_region.md)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    return {"windows": windows, "twin": twin, "contour": contour, "tilt": tilt, "readout": readout,
            "untagged": untagged, "collimated": collimated}[args.cmd](args)


if __name__ == "__main__":
    raise SystemExit(main())

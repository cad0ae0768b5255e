"""Time each transform of issue 3 on one full-size mammogram (2850 x 2394, 0.1 mm) on ONE core.

Self-contained: draws a phantom (HOLOGIC MLO, left, by default), writes it as DICOM to a temporary
folder to time the reader for reference, then times, on one core (OMP/MKL/OpenBLAS threads = 1,
torch threads = 1), each transform and the whole chain

    load -> BreastRegion -> LogGammaNormalize -> AutoGammaNormalize -> DensityMap
         -> CalcificationThickness -> CorrectBACLabel (on the phantom's simulated annotation)

reporting the best and the median of ``--repeat`` runs, and a breakdown of the chain's steps.
Target (issue 3): the whole chain (breast map, gamma, density, calcification thickness,
correction) <= 2 s.

Usage::

    python benchmarks/bench_transforms.py [--repeat 5] [--view MLO] [--vendor HOLOGIC] [--seed 3]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from monai.data import MetaTensor  # noqa: E402

torch.set_num_threads(1)
try:
    from threadpoolctl import threadpool_limits  # noqa: E402

    threadpool_limits(1)
except ImportError:  # pragma: no cover
    pass


def timeit(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--view", default="MLO")
    ap.add_argument("--laterality", default="L")
    ap.add_argument("--vendor", default="HOLOGIC")
    args = ap.parse_args(argv)

    from monai_bac.data.dicom_io import write_mammogram_dicom
    from monai_bac.data.loader import load_mammogram
    from monai_bac.ops.breast_region import breast_region_map
    from monai_bac.ops.density import background_opening
    from monai_bac.phantom import make_phantom
    from monai_bac.transforms import (
        AutoGammaNormalize,
        CalcificationThickness,
        CorrectBACLabel,
        DensityMap,
        LogGammaNormalize,
    )

    p = make_phantom(args.seed, view=args.view, laterality=args.laterality, spacing_mm=0.1, vendor=args.vendor)
    m = p.meta
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mammo.dcm"
        write_mammogram_dicom(path, p.raw, spacing_mm=m["spacing_mm"], kvp=m["kvp"], thickness_mm=m["thickness_mm"],
                              anode=m["anode"], filter=m["filter"], view=m["view"], laterality=m["laterality"],
                              manufacturer=m["manufacturer"], presentation=m["presentation"],
                              photometric=m["photometric"], bits_stored=m["bits_stored"])
        best, med, img = timeit(lambda: load_mammogram(path), args.repeat)
        rows.append(("load_mammogram (DICOM read, reference)", best, med))
    sp = img.meta["spacing_mm"]
    hw = img.numpy()[0]
    label = MetaTensor(torch.from_numpy(p.tpa_mask[None].copy()), meta={"spacing_mm": sp})

    best, med, bmap = timeit(lambda: breast_region_map(hw, sp, view=img.meta["view"]), args.repeat)
    rows.append(("BreastRegion (breast_region_map)", best, med))
    bm = bmap[None]
    steps = [
        ("LogGammaNormalize", lambda: LogGammaNormalize()(img, bm)),
        ("AutoGammaNormalize (target 0.5)", lambda: AutoGammaNormalize()(img, bm)),
        ("DensityMap (incl. VBD)", lambda: DensityMap()(img, bm)),
    ]
    results = {}
    for name, fn in steps:
        best, med, out = timeit(fn, args.repeat)
        rows.append((name, best, med))
        results[name] = out
    dens = results["DensityMap (incl. VBD)"]
    best, med, calc = timeit(lambda: CalcificationThickness()(dens, bm), args.repeat)
    rows.append(("CalcificationThickness", best, med))
    best, med, _ = timeit(lambda: background_opening(dens.numpy()[0], sp, 3.0, 0.2, bmap > 0), args.repeat)
    rows.append(("  of which: smoothing + 3 mm opening (background_opening)", best, med))
    best, med, corrected = timeit(lambda: CorrectBACLabel()(label, calc, bm), args.repeat)
    rows.append(("CorrectBACLabel", best, med))

    def chain():
        b = breast_region_map(img.numpy()[0], sp, view=img.meta["view"])[None]
        g = LogGammaNormalize()(img, b)
        d = DensityMap()(img, b)
        c = CalcificationThickness()(d, b)
        return g, CorrectBACLabel()(label, c, b)

    best, med, _ = timeit(chain, args.repeat)
    rows.append(("whole chain: BreastRegion + LogGamma + DensityMap + CalcThickness + CorrectBACLabel", best, med))

    def chain_auto():
        b = breast_region_map(img.numpy()[0], sp, view=img.meta["view"])[None]
        g = AutoGammaNormalize()(img, b)
        d = DensityMap()(img, b)
        c = CalcificationThickness()(d, b)
        return g, CorrectBACLabel()(label, c, b)

    best2, med2, _ = timeit(chain_auto, args.repeat)
    rows.append(("whole chain with AutoGamma instead of LogGamma", best2, med2))

    info = corrected.meta["label_correction"]
    print(f"machine: {platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs, run on 1 thread); "
          f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}")
    print(f"image: phantom seed {args.seed} {args.vendor} {args.laterality}{args.view}, {hw.shape[0]} x {hw.shape[1]} "
          f"at {sp[0]} mm; annotation: {info['n_components']} components ({info['n_removed']} removed)")
    print(f"repeats: {args.repeat} (best / median, seconds)\n")
    width = max(len(r[0]) for r in rows)
    print(f"| {'step':{width}s} | best (s) | median (s) |")
    print(f"|{'-' * (width + 2)}|----------|------------|")
    for name, b, mdn in rows:
        print(f"| {name:{width}s} | {b:8.3f} | {mdn:10.3f} |")
    target = 2.0
    print(f"\nwhole chain: {best:.2f} s best ({'meets' if best <= target else 'MISSES'} the {target:.0f} s target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

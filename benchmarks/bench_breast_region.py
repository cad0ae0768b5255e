"""BreastRegion on one full-size (2850 x 2394, 0.1 mm) phantom on one core.

    python benchmarks/bench_breast_region.py [--repeat 7]

Times the op (:func:`monai_bac.ops.breast_region.analyse_breast_region` on the float32 linear
image) and the MONAI transform (``BreastRegion`` on a (1, H, W) MetaTensor, incl. the
conversions), for a CC and an MLO view, and prints the share of the main stages once (with
cProfile, which adds a little overhead). Target: well under 0.5 s, since the whole chain (breast
map, gamma, density, calcification thickness, label correction) must take <= 2 s.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import limit_threads, machine, timeit  # noqa: E402

limit_threads(1)

import torch  # noqa: E402
from monai.data import MetaTensor  # noqa: E402

from monai_bac.ops.breast_region import analyse_breast_region  # noqa: E402
from monai_bac.phantom import make_phantom  # noqa: E402
from monai_bac.transforms.breast_region import BreastRegion  # noqa: E402


def cpu_time(fn, repeat: int) -> float:
    """Median CPU time of ``fn()`` (process time: less disturbed than wall time by other jobs
    on a shared machine; equal to wall time for this single-threaded code on an idle one)."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return statistics.median(times)


def stage_profile(img, spacing, view) -> str:
    prof = cProfile.Profile()
    prof.enable()
    analyse_breast_region(img, spacing, view)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(8)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip() and ("{" in ln or ".py:" in ln)]
    return "\n".join("    " + ln.strip() for ln in lines[:8])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    print(f"machine: {machine()}; threads: 1 (torch {torch.get_num_threads()})")
    for view, lat, vendor in (("CC", "L", "HOLOGIC"), ("MLO", "R", "GE")):
        ph = make_phantom(7, view=view, laterality=lat, vendor=vendor, spacing_mm=0.1)
        img = ph.linear
        spacing = ph.meta["spacing_mm"]
        op = lambda: analyse_breast_region(img, spacing, view)  # noqa: E731
        med, best = timeit(op, repeat=args.repeat)
        cpu = cpu_time(op, args.repeat)
        print(f"{view} {lat} {img.shape[0]}x{img.shape[1]}: analyse_breast_region wall median {med:.3f} s, "
              f"best {best:.3f} s; CPU median {cpu:.3f} s")
        mt = MetaTensor(torch.from_numpy(img[None].copy()), meta=dict(ph.meta))
        transform = BreastRegion()
        med, best = timeit(lambda: transform(mt), repeat=args.repeat)
        cpu = cpu_time(lambda: transform(mt), args.repeat)
        print(f"{view} {lat}: BreastRegion (MetaTensor in/out) wall median {med:.3f} s, best {best:.3f} s; "
              f"CPU median {cpu:.3f} s")
        print("  main costs (cProfile, tottime):")
        print(stage_profile(img, spacing, view))


if __name__ == "__main__":
    main()

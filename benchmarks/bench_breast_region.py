"""BreastRegion on one full-size (2850 x 2394, 0.1 mm) phantom on one core.

    python benchmarks/bench_breast_region.py [--repeat 7] [--before 44d85b9]

Times the op (:func:`monai_bac.ops.breast_region.analyse_breast_region` on the float32 linear
image) and the MONAI transform (``BreastRegion`` on a (1, H, W) MetaTensor, incl. the
conversions), for a CC and an MLO view, and prints the share of the main stages once (with
cProfile, which adds a little overhead). Target: well under 0.5 s, since the whole chain (breast
map, gamma, density, calcification thickness, label correction) must take <= 2 s.

``--before REV`` also times the op of git revision REV on the same images, alternating old and
new call by call (so both see the same load on a shared machine), and prints the ratio; the
images are then the ideal CC / MLO at 0.1 mm and two realistic ones at the vendor's own pitch
(Hologic 0.07 mm: 4071 x 3420; Siemens MLO with paddle rim and abdominal fold).
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


def alternate(old, new, repeat: int) -> tuple[float, float]:
    """Median CPU times of ``old()`` and ``new()``, called alternately."""
    old(), new()
    t_old, t_new = [], []
    for _ in range(repeat):
        for fn, acc in ((old, t_old), (new, t_new)):
            t = time.process_time()
            fn()
            acc.append(time.process_time() - t)
    return statistics.median(t_old), statistics.median(t_new)


def compare(rev: str, repeat: int) -> None:
    import tempfile

    from check_library_twins import old_module

    cases = [dict(seed=7, view="CC", laterality="L", vendor="HOLOGIC", spacing_mm=0.1),
             dict(seed=7, view="MLO", laterality="R", vendor="GE", spacing_mm=0.1),
             dict(seed=0, view="CC", laterality="L", vendor="HOLOGIC", spacing_mm=None, physics="realistic",
                  thickness_mm=59.0),
             dict(seed=9, view="MLO", laterality="L", vendor="SIEMENS", spacing_mm=None, physics="realistic",
                  thickness_mm=46.0)]
    with tempfile.TemporaryDirectory() as tmp:
        before = old_module(rev, "monai_bac/ops/breast_region.py", "breast_region_before", Path(tmp))
        ratios = []
        for kw in cases:
            ph = make_phantom(**kw)
            img, spacing, view = ph.linear, ph.meta["spacing_mm"], ph.meta["view"]
            t_old, t_new = alternate(lambda: before.analyse_breast_region(img, spacing, view),
                                     lambda: analyse_breast_region(img, spacing, view), repeat)
            ratios.append(t_new / t_old)
            print(f"{kw.get('physics', 'ideal')} {view} {kw['vendor']} {img.shape[0]}x{img.shape[1]}: "
                  f"analyse_breast_region CPU median {rev} {t_old:.3f} s, now {t_new:.3f} s, ratio {t_new / t_old:.2f}")
        print(f"largest ratio now / {rev}: {max(ratios):.2f} (target <= 1.5)")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--before", default=None, metavar="REV", help="compare with the op of this git revision")
    args = ap.parse_args(argv)
    print(f"machine: {machine()}; threads: 1 (torch {torch.get_num_threads()})")
    if args.before:
        compare(args.before, args.repeat)
        return
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

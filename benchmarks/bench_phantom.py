"""Phantom generation and DICOM loading of one full-size (2850 x 2394, 0.1 mm) image on one core.

Ideal and realistic physics (every effect on) are timed alternately (round by round), so both see
the same machine load; each round draws another seed (7, 8, ...), so the realistic mode also pays
for the tube spectra of the kVps it has not met yet in the process (SpekPy; cached per set-up),
as a cohort does. The CPU time is what a quiet machine takes.

    python benchmarks/bench_phantom.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import limit_threads, machine, timeit  # noqa: E402

limit_threads(1)

from monai_bac.data import load_mammogram  # noqa: E402
from monai_bac.phantom import make_phantom  # noqa: E402


def main() -> None:
    print(f"machine: {machine()}; threads: 1")
    make_phantom(7, spacing_mm=1.0, physics="realistic")  # SpekPy start-up and the spectrum cache
    for view in ("CC", "MLO"):
        times: dict[str, list[float]] = {"ideal": [], "realistic": []}
        cpu: dict[str, list[float]] = {"ideal": [], "realistic": []}
        for k in range(5):
            for mode in times:  # alternate: ideal, realistic, ideal, ...
                t, c = time.perf_counter(), time.process_time()
                make_phantom(7 + k, view=view, spacing_mm=0.1, physics=mode)
                times[mode].append(time.perf_counter() - t)
                cpu[mode].append(time.process_time() - c)
        for mode, ts in times.items():  # CPU time: what a loaded, shared machine does not inflate
            print(f"make_phantom full size {view} {mode}: median {statistics.median(ts):.2f} s, "
                  f"best {min(ts):.2f} s "
                  f"(CPU median {statistics.median(cpu[mode]):.2f} s)")
    for vendor in ("HOLOGIC", "SIEMENS"):
        ts, cs = [], []
        for k in range(3):
            t, c = time.perf_counter(), time.process_time()
            ph = make_phantom(20 + k, view="MLO", spacing_mm=None, vendor=vendor, physics="realistic")
            ts.append(time.perf_counter() - t)
            cs.append(time.process_time() - c)
        print(f"make_phantom {vendor} native {ph.spacing} mm ({ph.raw.shape[0]} x {ph.raw.shape[1]}) MLO realistic: "
              f"median {statistics.median(ts):.2f} s (CPU median {statistics.median(cs):.2f} s)")
    ph = make_phantom(7, spacing_mm=0.1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.dcm"
        med, best = timeit(lambda: ph.write_dicom(path), repeat=5)
        print(f"write_mammogram_dicom full size: median {med:.3f} s, best {best:.3f} s "
              f"({path.stat().st_size / 2**20:.1f} MiB)")
        med, best = timeit(lambda: load_mammogram(path), repeat=10)
        print(f"load_mammogram full size: median {med:.3f} s, best {best:.3f} s")


if __name__ == "__main__":
    main()

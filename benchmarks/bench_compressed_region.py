"""Compressed-region Dice of BreastRegion on realistic full-size phantoms (own seeds >= 7000).

Runs the validation's chain (``load_mammogram`` -> ``BreastRegion()``, default parameters; see
validate_realistic.py) with WHICHEVER ``monai_bac`` is importable, so that two trees are compared
on the same files (``PYTHONPATH=<old tree>``). Never use the held-out seeds 5000-5023 / 6000-6007.

    python benchmarks/bench_compressed_region.py generate --data /tmp/bench-cr
    PYTHONPATH=/tmp/old python benchmarks/bench_compressed_region.py evaluate --data /tmp/bench-cr --out old.csv
    python benchmarks/bench_compressed_region.py evaluate --data /tmp/bench-cr --out new.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import validate_realistic as vr  # noqa: E402

#: (seed, view, vendor, laterality, compressed thickness mm): mixed vendors and views, 30-80 mm
CASES = [(7000, "MLO", "SIEMENS", "L", 80), (7001, "MLO", "SIEMENS", "R", 76), (7002, "CC", "SIEMENS", "L", 70),
         (7003, "CC", "GE", "L", 78), (7004, "MLO", "GE", "R", 72), (7005, "MLO", "HOLOGIC", "L", 80),
         (7006, "CC", "HOLOGIC", "R", 66), (7007, "CC", "GE", "R", 35), (7008, "MLO", "HOLOGIC", "R", 32),
         (7009, "MLO", "SIEMENS", "L", 40), (7010, "CC", "SIEMENS", "R", 55), (7011, "MLO", "GE", "L", 60),
         (7012, "CC", "HOLOGIC", "L", 75), (7013, "MLO", "SIEMENS", "R", 68),
         # more thick ones (the failure mode lives at 65-80 mm)
         (7014, "MLO", "SIEMENS", "L", 80), (7015, "CC", "SIEMENS", "L", 78), (7016, "MLO", "GE", "L", 80),
         (7017, "CC", "GE", "R", 80), (7018, "MLO", "HOLOGIC", "R", 78), (7019, "CC", "HOLOGIC", "L", 80),
         (7020, "MLO", "SIEMENS", "R", 79), (7021, "CC", "SIEMENS", "R", 74), (7022, "MLO", "GE", "R", 77),
         (7023, "MLO", "SIEMENS", "L", 80), (7024, "CC", "GE", "L", 70), (7025, "MLO", "HOLOGIC", "L", 74)]


def _name(seed, view, vendor, lat, t):
    return f"h_{seed}_{vendor}_{lat}{view}_{t}"


def _cases(seed_offset: int = 0, n: int | None = None):
    """CASES with the seeds shifted by ``seed_offset`` (a second, independent set: e.g. 200 -> 7200-7225),
    the first ``n`` of them."""
    return [(s + seed_offset, *rest) for s, *rest in CASES][:n]


def generate(data: str, seed_offset: int = 0, n: int | None = None) -> None:
    Path(data).mkdir(parents=True, exist_ok=True)
    for seed, view, vendor, lat, t in _cases(seed_offset, n):
        if (Path(data) / f"{_name(seed, view, vendor, lat, t)}.npz").exists():
            continue
        case = dict(case=_name(seed, view, vendor, lat, t), seed=seed, view=view, laterality=lat, vendor=vendor,
                    thickness_mm=float(t), effects="all", native_pitch=True)
        vr.write_case((case, data))
        print(case["case"], flush=True)


def evaluate(data: str, out: str | None, seed_offset: int = 0, n: int | None = None) -> None:
    from monai_bac.data import load_mammogram
    from monai_bac.transforms import BreastRegion

    rows = []
    for seed, view, vendor, lat, t in _cases(seed_offset, n):
        name = _name(seed, view, vendor, lat, t)
        truth = np.load(Path(data) / f"{name}.npz")["breast_map"]
        img = load_mammogram(Path(data) / f"{name}.dcm")
        t0 = time.perf_counter()
        est = np.asarray(BreastRegion()(img))[0]
        sec = time.perf_counter() - t0
        row = dict(case=name, thickness_mm=t, breast=vr.dice(est > 0, truth > 0),
                   compressed=vr.dice(est == 2, truth == 2),
                   pectoral=vr.dice(est == 3, truth == 3) if view == "MLO" else float("nan"), seconds=round(sec, 2))
        rows.append(row)
        print(f"{name}: breast {row['breast']:.3f} compressed {row['compressed']:.3f} "
              f"pectoral {row['pectoral']:.3f} {sec:.2f} s", flush=True)
    if out:
        with open(out, "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=list(rows[0]))
            wr.writeheader()
            wr.writerows(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("step", choices=("generate", "evaluate"))
    p.add_argument("--data", required=True)
    p.add_argument("--out")
    p.add_argument("--seed-offset", type=int, default=0, help="shift every seed (200: the second set 7200-7225)")
    p.add_argument("-n", type=int, default=None, help="only the first n cases")
    a = p.parse_args(argv)
    if a.step == "generate":
        generate(a.data, a.seed_offset, a.n)
    else:
        evaluate(a.data, a.out, a.seed_offset, a.n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

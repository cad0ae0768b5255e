"""What each realistic effect does to the paper's Eq. (4) (docs/PHANTOM.md, "What it does to Eq. (4)").

Three 55 mm CC phantoms at 0.5 mm (seeds 11-13) with the effects ``all``, ``spectrum+heel``
and ``spectrum``: Eq. (4) (:func:`monai_bac.ops.density.density_map`, unsmoothed) with the
record's effective mu (behind the fat of the set thickness), the detector offset removed and the
median of the truly fat-only compressed pixels as P_fat. It prints, per image, the median over
the compressed pixels with more than 5 mm of dense tissue of estimated / true h_dt. 1.0 is Eq. (4) exact; the ideal phantom gives 1.0 to three decimals.

Usage::

    python benchmarks/eq4_on_realistic.py
"""

from __future__ import annotations

import numpy as np

from monai_bac.breast_map import COMPRESSED
from monai_bac.ops.density import density_map
from monai_bac.phantom import make_phantom
from monai_bac.physics import Attenuation

SEEDS = (11, 12, 13)


def eq4_ratio(seed: int, physics: str, effects: str | None) -> float:
    p = make_phantom(seed, view="CC", spacing_mm=0.5, thickness_mm=55.0, physics=physics, effects=effects)
    r = p.record
    offset = float(r.get("detector_offset") or 0.0)
    compressed = p.breast_map == COMPRESSED
    p_fat = float(np.median(p.linear[compressed & (p.h_dt < 1e-3)])) - offset
    h, _ = density_map(p.linear, p.breast_map, Attenuation(r["mu_fat"], r["mu_dt"], r["mu_calc"]), 0.5,
                       p_fat=p_fat, offset=offset, smooth_mm=0.0)
    dense = compressed & (p.h_dt > 5.0)
    return float(np.median(h[dense] / p.h_dt[dense]))


def main() -> int:
    print("effects        Eq. (4) h_dt / true h_dt where dense > 5 mm, seeds", SEEDS)
    print(f"{'ideal':14s}", " ".join(f"{eq4_ratio(s, 'ideal', None):.3f}" for s in SEEDS))
    for effects in ("spectrum", "spectrum+heel", "all"):
        print(f"{effects:14s}", " ".join(f"{eq4_ratio(s, 'realistic', effects):.3f}" for s in SEEDS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

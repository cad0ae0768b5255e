"""Identity check of the library calls that replaced hand-written code (issue "One inference path").

    python benchmarks/check_library_twins.py [--rev 27d058e]

Loads the old modules from git revision ``--rev`` (the last one with the hand-written code) and
compares them with today's on phantoms:

* ``quantify_mask`` (``ndi.label`` + ``find_objects`` for the segment boxes; the Guo-Hall
  thinning and the windowed inscribed radius stay hand-written fast paths, see their
  docstrings): segment count, boxes, areas and lengths equal;
* ``breast_region_map`` (``skimage.filters.threshold_otsu``, MONAI's
  ``get_largest_connected_component_mask``): the maps, equal;
* ``thin_mask`` against ``skimage.morphology.thin`` itself: the skeletons, equal;
* ``auto_gamma`` (``scipy.optimize.brentq`` after the bracketing): the images, largest
  difference (both solvers stop within the same tolerance on the breast mean).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from monai_bac.ops import breast_region as new_breast, normalize as new_norm
from skimage.morphology import thin as skimage_thin

from monai_bac.ops.skeleton import thin_mask
from monai_bac import quantify as new_quant
from monai_bac.phantom import make_phantom


def old_module(rev: str, path: str, name: str, folder: Path):
    source = subprocess.run(["git", "show", f"{rev}:{path}"], check=True, capture_output=True, text=True).stdout
    file = folder / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="27d058e")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        old_quant = old_module(args.rev, "monai_bac/quantify.py", "quantify_old", folder)
        old_breast = old_module(args.rev, "monai_bac/ops/breast_region.py", "breast_region_old", folder)
        old_norm = old_module(args.rev, "monai_bac/ops/normalize.py", "normalize_old", folder)
        same = n = 0
        t_old = t_new = 0.0
        worst_mm = 0.0
        for seed in range(6):
            ph = make_phantom(seed=seed, spacing_mm=0.1 if seed < 2 else 0.2)
            for mask in (ph.bac_mask, ph.tpa_mask):
                t = time.perf_counter()
                a = old_quant.quantify_mask(mask, ph.meta["spacing_mm"]).as_dict()
                t_old += time.perf_counter() - t
                t = time.perf_counter()
                b = new_quant.quantify_mask(mask, ph.meta["spacing_mm"]).as_dict()
                t_new += time.perf_counter() - t
                lengths = [(x["length_mm"], y["length_mm"]) for x, y in zip(a["segments"], b["segments"])]
                worst_mm = max([worst_mm, abs(a["length_mm"] - b["length_mm"])] + [abs(x - y) for x, y in lengths])
                strip = [(s["label"], s["bbox"], s["area_mm2"]) for s in a["segments"]]
                n, same = n + 1, same + (strip == [(s["label"], s["bbox"], s["area_mm2"]) for s in b["segments"]])
        print(f"quantify_mask: segments, boxes and areas identical on {same}/{n} phantom masks; largest length "
              f"difference {worst_mm:.1e} mm (old {t_old:.2f} s, new {t_new:.2f} s)")
        maps = thins = 0
        worst = 0.0
        for seed in range(8):
            ph = make_phantom(seed=seed, spacing_mm=0.2, view="MLO" if seed % 2 else "CC")
            img, sp, view = ph.linear.astype(np.float32), ph.meta["spacing_mm"], ph.meta["view"]
            a, b = old_breast.breast_region_map(img, sp, view=view), new_breast.breast_region_map(img, sp, view=view)
            maps += np.array_equal(a, b)
            ga, gb = old_norm.auto_gamma(img, b), new_norm.auto_gamma(img, b)
            ya = np.asarray(ga[0] if isinstance(ga, tuple) else ga)
            yb = np.asarray(gb[0] if isinstance(gb, tuple) else gb)
            worst = max(worst, float(np.abs(ya - yb).max()))
            thins += np.array_equal(skimage_thin(ph.tpa_mask), thin_mask(ph.tpa_mask))
        print(f"breast_region_map: identical on {maps}/8; thin_mask: identical on {thins}/8; "
              f"auto_gamma: largest difference {worst:.2e} over 8 phantoms")


if __name__ == "__main__":
    main()

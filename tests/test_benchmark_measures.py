"""The measures of benchmarks/validate_realistic.py that the validation pages quote."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from monai_bac.phantom import make_phantom

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "validate_realistic.py"


@pytest.fixture(scope="module")
def measures():
    spec = importlib.util.spec_from_file_location("validate_realistic", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_flat_rim_of_the_periphery_counts_neither_way(measures):
    """Calling the periphery's near-flat rim (thickness within 1 % of H0) compressed costs the plain
    Dice but not the rim Dice; calling the steep periphery compressed, or missing compressed
    pixels, costs both."""
    ph = make_phantom(3, view="CC", spacing_mm=0.5, thickness_mm=70.0, physics="realistic", effects="edge")
    truth, thick, h0 = ph.breast_map, ph.thickness, 70.0
    comp, per = truth == 2, truth == 1
    flat = per & (thick >= 0.99 * h0)
    assert flat.sum() > 0.05 * comp.sum()  # the rim is wide enough to matter on a thick breast
    wide = comp | flat
    assert measures.dice(wide, comp) < 0.98
    assert measures.dice_flat_rim(wide, truth, thick, h0) == 1.0
    steep = comp | (per & (thick >= 0.9 * h0))  # 10 % less tissue than H0 is visible: still an error
    assert measures.dice_flat_rim(steep, truth, thick, h0) < measures.dice_flat_rim(wide, truth, thick, h0)
    cols = np.flatnonzero(comp.any(0))
    shrunk = comp.copy()
    shrunk[:, cols[0]:cols[0] + cols.size // 4] = False  # a quarter of the compressed region missed
    assert measures.dice_flat_rim(shrunk, truth, thick, h0) == pytest.approx(measures.dice(shrunk, comp))
    assert measures.dice_flat_rim(shrunk, truth, thick, h0) < 0.95

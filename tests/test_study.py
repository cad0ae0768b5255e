"""The annotation study's machinery (``monai-bac reproduce --size tiny``): every arm, one epoch, tiny images."""

import csv
import json

import numpy as np
import pytest

from monai_bac.cli import main
from monai_bac.study import paired_gain, units_needed

from conftest import BUNDLE


def test_study_runs_every_arm_and_reports_paired_gains(tmp_path):
    out = tmp_path / "study"
    assert main(["reproduce", "--size", "tiny", "--out", str(out), "--bundle", str(BUNDLE), "--workers", "1"]) == 0
    images = list(csv.DictReader(open(out / "study_images.csv")))
    arms = {r["arm"] for r in images}
    assert arms == {"rt4", "ra1", "ra1r", "rt0", "rt1", "rt2"}
    assert all(len([r for r in images if r["arm"] == a]) == 3 for a in arms)  # the 3 held-out images each
    for r in images:
        for ref in ("truth", "expert", "tpa"):
            for metric in ("dice", "precision_1mm", "recall_1mm", "lookalike_share", "dice_l", "cldice"):
                v = float(r[f"{ref}_{metric}"])
                assert np.isnan(v) or 0.0 <= v <= 1.0
    gains = list(csv.DictReader(open(out / "study_gains.csv")))
    assert {(g["arm"], g["reference"]) for g in gains} == {(a, r) for a in ("ra1", "ra1r")
                                                          for r in ("truth", "expert", "tpa")}
    for g in gains:  # the paired difference is the arm's mean minus rt4's, inside its interval
        if g["diff"] != "nan":
            assert float(g["lo"]) <= float(g["diff"]) <= float(g["hi"])
            assert float(g["arm_mean"]) - float(g["rt4"]) == pytest.approx(float(g["diff"]))
    md = (out / "study.md").read_text()
    assert "Gain over rt4" in md and "Normalisation" in md and "| rt1 |" in md and "The labels themselves" in md
    assert (out / "study_gain.png").stat().st_size > 1000
    # the refined labels are the corrected ones narrowed to their calcified core; ExpertGT per held-out image
    here = out / "cohort0" / "s0.5"
    refined = json.loads((here / "refined" / "datalist.json").read_text())
    assert 0.0 < refined["refinement"]["kept_fraction"] <= 1.0
    assert json.loads((here / "runs" / "ra1r-seed0" / "overrides.json").read_text())["datalist_file"].endswith(
        "refined/datalist.json")
    assert len(json.loads((here / "held_out_expert" / "report.json").read_text())["images"]) == 3
    # a second call reuses every finished run
    model = here / "runs" / "ra1-seed0" / "models" / "model.pt"
    before = model.stat().st_mtime
    assert main(["reproduce", "--size", "tiny", "--out", str(out), "--bundle", str(BUNDLE), "--workers", "1"]) == 0
    assert model.stat().st_mtime == before and json.loads((out / "study.json").read_text())["complete"]
    # and the analysis alone, from the per-image table
    (out / "study.md").unlink()
    assert main(["reproduce", "--size", "tiny", "--out", str(out), "--analyse-only"]) == 0
    assert "Gain over rt4" in (out / "study.md").read_text()


def test_paired_bootstrap_finds_a_real_gain_and_not_a_null_one():
    rng = np.random.default_rng(0)
    bases = [rng.uniform(0.3, 0.5, 40) for _ in range(4)]
    gain = paired_gain([0.05 + rng.normal(0, 0.02, 40) for _ in bases], bases, 1000)
    assert gain["lo"] > 0 and gain["rel_lo"] > 0 and gain["n_units"] == 4 and gain["n_images"] == 160
    null = paired_gain([rng.normal(0, 0.02, 40) for _ in bases], bases, 1000)
    assert null["lo"] < 0 < null["hi"]
    # a unit sd of 0.04 on a base of 0.4: ((1.96 + 0.84) * 0.04 / 0.04)^2 = 7.85 -> 8 units
    assert units_needed(0.04, 0.4) == 8

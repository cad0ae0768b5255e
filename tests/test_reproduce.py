"""``monai-bac reproduce`` end to end on a tiny cohort (one epoch), so the command cannot rot."""

import csv
import json

from monai_bac.cli import main

from conftest import BUNDLE


def test_reproduce_end_to_end_on_a_tiny_cohort(tmp_path):
    out = tmp_path / "repro"
    code = main(["reproduce", "--out", str(out), "--bundle", str(BUNDLE), "--runs", "rt4", "ra1", "--seeds", "0", "1", "--cohort-size", "12",
                 "--phantom-spacing", "1.0", "--epochs", "1", "--image-size", "96", "--workers", "1",
                 "--held-out-size", "4"])
    assert code == 0
    rows = list(csv.DictReader(open(out / "table3.csv")))
    assert [r["run_id"] for r in rows] == ["ra1", "rt4"]
    for r in rows:
        assert r["seeds"] == "2" and len(r["dice_gt_per_seed"].split()) == 2
        for key in ("dice_tpa", "dice_gt", "length_dice_gt", "held_out_dice_gt", "held_out_length_dice_gt",
                    "held_out_recall_1mm", "held_out_lookalike_share"):
            assert 0.0 <= float(r[key]) <= 1.0
    assert (out / "fig8.png").stat().st_size > 1000 and "| ra1 |" in (out / "table3.md").read_text()
    # every run keeps its config and overrides beside its result; ra trains on the corrected labels
    ra = json.loads((out / "runs" / "ra1-seed0" / "overrides.json").read_text())
    rt = json.loads((out / "runs" / "rt4-seed0" / "overrides.json").read_text())
    assert ra["datalist_file"].endswith("corrected/datalist.json") and rt["datalist_file"].endswith("cohort/datalist.json")
    assert (out / "runs" / "ra1-seed1" / "configs" / "train.json").is_file()
    result = json.loads((out / "runs" / "ra1-seed1" / "result.json").read_text())
    assert result["seed"] == 1 and result["held_out_n_images"] == 4 and result["n_images"] >= 1
    assert "held-out cohort (4 images)" in (out / "table3.md").read_text()
    assert "where the errors are" in (out / "table3.md").read_text()
    # the labels themselves against the truth: the correction removes the look-alikes the TPA brushed
    labels = json.loads((out / "label_quality.json").read_text())
    assert labels["tpa"]["n_images"] == 12 and labels["corrected"]["n_images"] == 12
    assert labels["corrected"]["lookalike_share"] < labels["tpa"]["lookalike_share"]
    assert "the training labels themselves" in (out / "table3.md").read_text()
    # a second call reuses the finished runs instead of training again
    before = (out / "runs" / "rt4-seed0" / "models" / "model.pt").stat().st_mtime
    assert main(["reproduce", "--out", str(out), "--bundle", str(BUNDLE), "--runs", "rt4", "--seeds", "0", "--cohort-size", "12",
                 "--phantom-spacing", "1.0", "--epochs", "1", "--image-size", "96", "--workers", "1",
                 "--held-out-size", "4"]) == 0
    assert (out / "runs" / "rt4-seed0" / "models" / "model.pt").stat().st_mtime == before

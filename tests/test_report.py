"""Picture report of an evaluation run: Dice and Dice^L per image, Dice against threshold."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import BUNDLE, run_workflow
from monai_bac.cli import main
from monai_bac.report import make_report, read_metric_csv, read_threshold_curve


def _write_eval(folder, values: dict[str, list[float]]):
    folder.mkdir(parents=True, exist_ok=True)
    for name, vals in values.items():
        lines = ["filename,class0,mean"] + [f"/data/case{i}.dcm,{v:.4f},{v:.4f}" for i, v in enumerate(vals)]
        (folder / f"{name}_raw.csv").write_text("\n".join(lines) + "\n")


def test_report_draws_both_panels_from_synthetic_files(tmp_path):
    ev = tmp_path / "eval"
    _write_eval(ev, {"dice_gt": [0.2, 0.4, 0.6], "length_dice_gt": [0.5, 0.7, float("nan")]})
    thr = tmp_path / "threshold.json"
    thr.write_text(json.dumps({"threshold": 0.3, "curve": {"0.1": 0.2, "0.3": 0.45, "0.5": 0.4, "0.9": None}}))
    info = make_report(ev, tmp_path / "r.png", thr)
    assert info["n_images"] == 3 and info["threshold"] == 0.3
    assert info["mean"]["dice_gt"] == pytest.approx(0.4) and info["mean"]["length_dice_gt"] == pytest.approx(0.6)
    assert info["per_image"]["dice_gt"]["case1"] == pytest.approx(0.4)
    img = np.asarray(Image.open(tmp_path / "r.png").convert("RGB"))
    assert img.shape[1] > img.shape[0] > 300  # two panels side by side
    right = img[:, img.shape[1] // 2:]
    blue = (right[..., 2] > 150) & (right[..., 0] < 100)  # the threshold curve
    red = (right[..., 0] > 180) & (right[..., 1] < 80)  # the chosen threshold
    assert blue.sum() > 50 and red.sum() > 20
    with pytest.raises(FileExistsError):
        make_report(ev, tmp_path / "r.png", thr)
    t, d, chosen = read_threshold_curve(thr)
    assert list(t) == [0.1, 0.3, 0.5, 0.9] and np.isnan(d[-1]) and chosen == 0.3


def test_report_without_curve_and_bad_input(tmp_path):
    ev = tmp_path / "eval"
    _write_eval(ev, {"dice_gt": [0.1, 0.9]})
    info = make_report(ev, tmp_path / "one.png")
    assert "threshold" not in info and Image.open(tmp_path / "one.png").size[0] < 1000
    assert main(["report", "--eval", str(tmp_path / "empty"), "--out", str(tmp_path / "x.png")]) == 1
    (tmp_path / "bad_raw.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="filename"):
        read_metric_csv(tmp_path / "bad_raw.csv")


def test_report_of_a_real_bundle_evaluation(tiny_bundle, phantom_cohort, tmp_path):
    out = tmp_path / "evaluation"
    configs = BUNDLE / "configs"
    run_workflow([configs / "inference.json", configs / "evaluate.json"], workflow_type="infer",
                 bundle_root=str(tiny_bundle), input_path=str(phantom_cohort / "datalist.json"), output_dir=str(out))
    png = tmp_path / "report.png"
    assert main(["report", "--eval", str(out), "--threshold-json", str(tiny_bundle / "models" / "threshold.json"),
                 "--out", str(png)]) == 0
    n_test = len(json.loads((phantom_cohort / "datalist.json").read_text())["test"])
    info = make_report(out, tmp_path / "again.png", tiny_bundle / "models" / "threshold.json")
    assert info["n_images"] == n_test and len(info["curve"]) == 19
    assert all(0.0 <= v <= 1.0 for v in info["mean"].values() if np.isfinite(v))
    assert Image.open(png).size == Image.open(tmp_path / "again.png").size

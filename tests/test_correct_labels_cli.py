"""``monai-bac correct-labels`` on a small phantom cohort."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from monai_bac.cli import main
from monai_bac.phantom import make_cohort


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort")
    make_cohort(root / "data", n=4, seed=3, spacing_mm=0.5)
    return root / "data"


def test_corrects_every_label_into_a_new_folder(cohort, tmp_path, capsys):
    before = _digest(cohort)
    out = tmp_path / "corrected"
    rc = main(["correct-labels", "--datalist", str(cohort / "datalist.json"), "--out", str(out), "--overlays"])
    assert rc == 0
    assert _digest(cohort) == before  # inputs untouched
    datalist = json.loads((cohort / "datalist.json").read_text())
    items = [(s, i, it) for s in ("training", "validation", "test") for i, it in enumerate(datalist[s])]
    rows = list(csv.DictReader((out / "correction_report.csv").open()))
    assert len(rows) == len(items) == 4
    assert all(r["status"] == "ok" for r in rows)
    for r in rows:
        n = int(r["n_components"])
        assert n == int(r["n_kept"]) + int(r["n_removed"])
        assert int(r["n_removed"]) == int(r["n_removed_short"]) + int(r["n_removed_low_calc"]) + int(r["n_removed_both"])
        assert float(r["length_after_mm"]) <= float(r["length_before_mm"])
    assert sum(int(r["n_removed"]) for r in rows) >= 1
    removed = list(csv.DictReader((out / "removed_components.csv").open()))
    assert len(removed) == sum(int(r["n_removed"]) for r in rows)
    assert {r["reason"] for r in removed} <= {"short", "low_calc", "short+low_calc"}
    new = json.loads((out / "datalist.json").read_text())
    from monai_bac.data.loader import load_label

    for split, i, item in items:
        new_item = new[split][i]
        assert new_item["label_corrected"] is True
        corrected = (out / new_item["label"]).resolve()
        assert corrected.is_file() and out.resolve() in corrected.parents
        assert (out / new_item["image"]).resolve() == (cohort / item["image"]).resolve()
        assert (out / new_item["label_original"]).resolve() == (cohort / item["label"]).resolve()
        assert (out / new_item["label_gt"]).resolve() == (cohort / item["label_gt"]).resolve()
        orig = np.asarray(load_label(cohort / item["label"]))
        corr = np.asarray(load_label(corrected))
        assert corr.shape == orig.shape and np.all(corr <= orig)  # only removes
    assert len(list((out / "overlays").rglob("*.png"))) == 4
    assert "corrected 4/4 labels" in capsys.readouterr().out


def test_refuses_an_output_folder_holding_inputs(cohort, capsys):
    before = _digest(cohort)
    for bad in (cohort, cohort / "labels"):
        rc = main(["correct-labels", "--datalist", str(cohort / "datalist.json"), "--out", str(bad)])
        assert rc == 2
        assert "holds input files" in capsys.readouterr().err
    assert _digest(cohort) == before


def test_bad_image_is_reported_and_skipped(cohort, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(cohort, data)
    datalist = json.loads((data / "datalist.json").read_text())
    bad = datalist["training"][0]
    (data / bad["image"]).write_bytes(b"not a dicom file")
    out = tmp_path / "out"
    rc = main(["correct-labels", "--datalist", str(data / "datalist.json"), "--out", str(out), "--workers", "2"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and Path(bad["image"]).name in err
    rows = list(csv.DictReader((out / "correction_report.csv").open()))
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["image"] == bad["image"] and failed[0]["error"]
    assert sum(r["status"] == "ok" for r in rows) == 3
    new = json.loads((out / "datalist.json").read_text())
    assert new["training"][0]["label_corrected"] is False
    assert (out / new["training"][0]["label"]).resolve() == (data / bad["label"]).resolve()
    # a second run into the same folder is refused unless --overwrite
    rc = main(["correct-labels", "--datalist", str(data / "datalist.json"), "--out", str(out)])
    assert rc == 2 and "--overwrite" in capsys.readouterr().err


def test_label_free_items_are_left_alone(cohort, tmp_path):
    datalist = json.loads((cohort / "datalist.json").read_text())
    for item in datalist["test"]:
        item.pop("label")
    for split in ("training", "validation", "test"):
        for item in datalist[split]:
            for k in ("image", "label", "label_gt", "truth"):
                if k in item:
                    item[k] = str((cohort / item[k]).resolve())
    dl = tmp_path / "dl.json"
    dl.write_text(json.dumps(datalist))
    out = tmp_path / "out"
    rc = main(["correct-labels", "--datalist", str(dl), "--out", str(out), "--min-length-mm", "5"])
    assert rc == 0
    rows = list(csv.DictReader((out / "correction_report.csv").open()))
    assert len(rows) == 4 - len(datalist["test"])
    new = json.loads((out / "datalist.json").read_text())
    assert all("label" not in it for it in new["test"])
    assert new["label_correction"]["min_length_mm"] == 5.0


def test_breast_maps_from_the_datalist(cohort, tmp_path):
    """A breast map named in the datalist replaces BreastRegion; --measure mean is accepted."""
    datalist = json.loads((cohort / "datalist.json").read_text())
    items = [it for s in ("training", "validation", "test") for it in datalist[s]]
    for k, item in enumerate(items):
        truth = np.load(cohort / item["truth"])
        bmap = tmp_path / f"map{k}.npy"
        np.save(bmap, truth["breast_map"])
        item["breast_map"] = str(bmap)
        for key in ("image", "label", "label_gt", "truth"):
            item[key] = str((cohort / item[key]).resolve())
    items[0]["breast_map"] = str(tmp_path / "missing.npy")  # not there: that item fails, the others go on
    dl = tmp_path / "dl.json"
    dl.write_text(json.dumps(datalist))
    out = tmp_path / "out"
    rc = main(["correct-labels", "--datalist", str(dl), "--out", str(out), "--measure", "mean"])
    rows = list(csv.DictReader((out / "correction_report.csv").open()))
    assert rc == 1 and [r["status"] for r in rows].count("failed") == 1
    assert "missing.npy" in next(r["error"] for r in rows if r["status"] == "failed")
    assert json.loads((out / "datalist.json").read_text())["label_correction"]["measure"] == "mean"

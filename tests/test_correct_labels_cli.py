"""``monai-bac correct-labels`` on a small phantom cohort."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
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
    # every removed piece says how calcified it is along its length (the thin_calc rule's measure)
    assert all(r["typical_calc_mm"] != "" for r in removed)
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


# ----------------------------------------------------------------------------------- nothing lost, nobody let in
TEMP_NAME = re.compile(r"\..+\.tmp-[0-9a-f]{12}(\.[^.]+)*")


def _temp_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if TEMP_NAME.fullmatch(p.name))


def test_refuses_outputs_that_a_symbolic_link_leads_into_the_inputs(cohort, tmp_path, capsys):
    """out/labels -> the input labels folder: even --overwrite writes nothing (it used to replace the inputs)."""
    before = _digest(cohort)
    out = tmp_path / "out"
    out.mkdir()
    (out / "labels").symlink_to(cohort / "labels", target_is_directory=True)
    for extra in ([], ["--overwrite"]):
        rc = main(["correct-labels", "--datalist", str(cohort / "datalist.json"), "--out", str(out), *extra])
        err = capsys.readouterr().err
        assert rc == 2
        assert "symbolic link" in err and str((cohort / "labels").resolve()) in err
    assert _digest(cohort) == before
    assert sorted(p.name for p in out.iterdir()) == ["labels"]  # nothing written, not even a lock file
    # a link that leads out of --out (not into the inputs) is refused as well
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out2 = tmp_path / "out2"
    out2.mkdir()
    (out2 / "overlays").symlink_to(elsewhere, target_is_directory=True)
    rc = main(["correct-labels", "--datalist", str(cohort / "datalist.json"), "--out", str(out2), "--overlays"])
    assert rc == 2 and "outside --out" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == [] and sorted(p.name for p in out2.iterdir()) == ["overlays"]


def test_rerun_of_a_stopped_run_skips_finished_items_and_removes_its_temp_files(cohort, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["correct-labels", "--datalist", str(cohort / "datalist.json"), "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    new = json.loads((out / "datalist.json").read_text())
    labels = [out / new[s][i]["label"] for s in ("training", "validation", "test") for i in range(len(new[s]))]
    reference = {p: p.read_bytes() for p in labels}
    # what a run killed after three items leaves: three labels, temporary files, no datalist/CSVs
    for name in ("datalist.json", "correction_report.csv", "removed_components.csv"):
        (out / name).unlink()
    labels[1].unlink()
    stem = labels[1].name[: -len(".nii.gz")]
    stale = [labels[1].parent / f".{stem}.tmp-0123456789ab.nii.gz", out / ".datalist.tmp-abcdef012345.json"]
    for p in stale:
        p.write_bytes(b"partial")
    kept = [labels[1].parent / ".notes.tmp-0123456789ab.txt", labels[1].parent / f"{stem}.tmp-0123456789ab.nii.gz"]
    for p in kept:  # not temporary files of this command's outputs: left alone
        p.write_bytes(b"user file")

    rc = main(args)
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.err.count("exists, skipped (use --overwrite to redo)") == 3 and "FAILED" not in captured.err
    assert "corrected 1/4 labels" in captured.out and "3 existed, skipped" in captured.out
    assert not any(p.exists() for p in stale) and all(p.read_bytes() == b"user file" for p in kept)
    assert {p: p.read_bytes() for p in labels} == reference  # the redone item is the same; the others untouched
    rows = list(csv.DictReader((out / "correction_report.csv").open()))
    assert [r["status"] for r in rows] == ["skipped", "ok", "skipped", "skipped"]
    new = json.loads((out / "datalist.json").read_text())
    assert new["label_correction"]["skipped"] == 3 and new["label_correction"]["failed"] == 0
    assert all(it["label_corrected"] for s in ("training", "validation", "test") for it in new[s])
    # --overwrite redoes every item
    assert main([*args, "--overwrite"]) == 0
    assert [r["status"] for r in csv.DictReader((out / "correction_report.csv").open())] == ["ok"] * 4


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (an exited process not yet reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_end_when_the_command_is_killed(cohort, tmp_path, capsys):
    # 16 items (the cohort's 4, four times: each gets its own output name) so that the run lasts a few seconds
    datalist = json.loads((cohort / "datalist.json").read_text())
    items = [{k: str((cohort / v).resolve()) for k, v in it.items() if k in ("image", "label")}
             for s in ("training", "validation", "test") for it in datalist[s]]
    dl = tmp_path / "dl.json"
    dl.write_text(json.dumps({"training": items * 4}))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "monai_bac.cli", "correct-labels", "--datalist", str(dl), "--out", str(out),
           "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            workers = _children(proc.pid)
        assert len(workers) >= 2, "the command did not start two workers"
        time.sleep(0.5)  # the workers are correcting labels
        assert proc.poll() is None, "the command ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_running(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [w for w in workers if _running(w)], "worker processes outlived the killed command"
    finally:
        for w in workers:  # never leave a process behind, whatever happened
            with contextlib.suppress(ProcessLookupError):
                os.kill(w, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert not (out / "datalist.json").exists()  # it was killed mid-run
    # the next start removes what the killed run left half-written and completes the run
    rc = main(["correct-labels", "--datalist", str(dl), "--out", str(out), "--workers", "2"])
    assert rc == 0, capsys.readouterr().err
    assert _temp_files(out) == []
    rows = list(csv.DictReader((out / "correction_report.csv").open()))
    assert len(rows) == 16 and {r["status"] for r in rows} <= {"ok", "skipped"}
    assert len(list((out / "labels").glob("*.nii.gz"))) == 16

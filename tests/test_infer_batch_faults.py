"""``monai-bac infer`` on a batch with the files and faults that used to stop it.

Each bad file is that image's failure (reported with its reason, no partial outputs left), the
good files are processed, the run tables are written and the exit status is the documented
"some failed" (3); a rerun after the causes are fixed processes exactly the images that failed.
An output folder that cannot be written (read-only, full) ends with the documented status 4
and a clear message, and a rerun after space is freed finishes the rest.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest

from monai_bac.cli import main

EXIT_FAILED, EXIT_UNWRITABLE = 3, 4


def _rows(path: Path) -> dict[str, dict]:
    with open(path) as f:
        return {r["case"]: r for r in csv.DictReader(f)}


def _batch_stoppers(folder: Path, good: Path) -> list[str]:
    """Write the files that stopped the whole batch before; returns their case names."""
    ds = pydicom.dcmread(good)
    no_class = pydicom.dcmread(good)
    del no_class.SOPClassUID
    no_class.save_as(folder / "no_sop_class.dcm")
    raw = good.read_bytes()
    (folder / "no_preamble.dcm").write_bytes(raw[128:])  # "DICM" and the rest, without the 128-byte preamble
    bad_date = pydicom.dcmread(good)
    bad_date.add_new(0x00080020, "DA", "2O24-13-99 garbage")  # StudyDate with an invalid DA value
    bad_date.save_as(folder / "bad_study_date.dcm")
    for name, tag, value in (("bits_stored_40", "BitsStored", 40), ("rescale_slope_0", "RescaleSlope", 0),
                             ("spacing_tiny", "ImagerPixelSpacing", [1e-30, 1e-30]),
                             ("spacing_huge", "ImagerPixelSpacing", [1e6, 1e6])):
        bad = pydicom.dcmread(good)
        setattr(bad, tag, value)
        bad.save_as(folder / f"{name}.dcm")
    del ds
    return ["no_sop_class", "no_preamble", "bad_study_date", "bits_stored_40", "rescale_slope_0", "spacing_tiny",
            "spacing_huge"]


def test_batch_stoppers_are_per_image_failures_and_a_rerun_retries_exactly_them(tiny_bundle, phantom_cohort,
                                                                                 tmp_path):
    images = sorted((phantom_cohort / "images").glob("*.dcm"))
    src = tmp_path / "in"
    src.mkdir()
    for g in images[:3]:
        shutil.copy(g, src / g.name)
    bad = _batch_stoppers(src, images[0])
    out = tmp_path / "out"
    args = ["infer", str(src), "--model", str(tiny_bundle), "--out", str(out), "--quiet", "--threshold", "0.5"]
    rc = main(args)
    rows = _rows(out / "results.csv")
    assert (out / "run.json").is_file() and (out / "patients.csv").is_file()
    assert len(rows) == 3 + len(bad)
    failed = {c for c, r in rows.items() if r["status"] == "failed"}
    assert rc == (EXIT_FAILED if failed else 0)
    for g in images[:3]:
        assert rows[g.stem]["status"] == "ok"
    # the faults the loader must refuse are refused, each with a reason naming the file
    for case in ("bits_stored_40", "rescale_slope_0", "spacing_tiny", "spacing_huge"):
        assert case in failed and f"{case}.dcm" in rows[case]["reason"], rows[case]
    for case, r in rows.items():
        if r["status"] == "failed":  # nothing a rerun could take for a finished image
            assert r["reason"] and not r["nifti"] and not (out / f"{case}_bac.nii.gz").exists()
            assert not (out / f"{case}_bac_seg.dcm").exists() and not (out / f"{case}_bac_overlay.png").exists()
        else:
            assert all(Path(r[k]).is_file() for k in ("nifti", "overlay", "json")), r
    assert not (out / ".monai-bac-staging").exists()
    # fix the causes (here: the good file in their place) and run again: exactly the failed ones are redone
    for case in failed:
        shutil.copy(images[0], src / f"{case}.dcm")
    assert main(args) == 0
    again = _rows(out / "results.1.csv")
    assert {c for c, r in again.items() if r["status"] == "ok"} == failed
    assert {c for c, r in again.items() if r["status"] == "skipped"} == set(rows) - failed


@pytest.fixture()
def small_disk(tmp_path):
    """A 96 KiB tmpfs (root only; skipped where mounting is not allowed), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_stops_with_the_documented_status_and_a_rerun_finishes(tiny_bundle, phantom_cohort, small_disk,
                                                                            capsys):
    src = phantom_cohort / "images"
    n = len(list(src.glob("*.dcm")))
    out = small_disk / "out"
    args = ["infer", str(src), "--model", str(tiny_bundle), "--out", str(out), "--quiet", "--no-seg"]
    assert main(args) == EXIT_UNWRITABLE
    assert "cannot write" in capsys.readouterr().err
    done = {p.name[: -len("_bac.json")] for p in out.glob("*_bac.json")}
    assert len(done) < n
    # every image the run counts as done has all of its files; nothing else is left behind
    for case in done:
        assert (out / f"{case}_bac.nii.gz").is_file() and (out / f"{case}_bac_overlay.png").is_file()
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)  # space freed
    assert main(args) == 0
    rows = _rows(next(p for p in sorted(out.glob("results*.csv"))))
    assert {c for c, r in rows.items() if r["status"] == "skipped"} == done
    assert sum(r["status"] == "ok" for r in rows.values()) == n - len(done)


def test_a_read_only_output_folder_is_refused_before_any_work(tiny_bundle, phantom_cohort, small_disk, capsys):
    (small_disk / "out").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    rc = main(["infer", str(phantom_cohort / "images"), "--model", str(tiny_bundle), "--out",
               str(small_disk / "out"), "--quiet"])
    assert rc == EXIT_UNWRITABLE
    err = capsys.readouterr().err
    assert "cannot write there" in err and str(small_disk / "out") in err

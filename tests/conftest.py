"""Shared fixtures: a tiny phantom cohort and a tiny trained bundle, made once per test session."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundle"

#: overrides that make the bundle's training run in seconds on a CPU (tiny cohort and images)
TINY_TRAIN = dict(cohort_size=12, phantom_spacing_mm=1.0, image_size=128, num_epochs=1, batch_size=2, num_workers=0)

warnings.filterwarnings("ignore", message=".*swigvarlink.*")


def assert_dciodvfy_passes(path, *, required: bool = False) -> str:
    """No "Error" line in dicom3tools' validator's report on ``path`` (CI installs Debian's dicom3tools);
    returns the report. Without the validator: the test is skipped when ``required`` (a test of
    conformance itself), else nothing is checked and the report is ""."""
    import subprocess

    dciodvfy = shutil.which("dciodvfy")
    if dciodvfy is None:
        if required:
            pytest.skip("dciodvfy (Debian package dicom3tools) is not installed")
        return ""
    report = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True)
    text = report.stdout + report.stderr
    errors = [line for line in text.splitlines() if line.startswith("Error")]
    assert not errors, (str(path), errors)
    return text


def copy_bundle(dest: Path) -> Path:
    """A private copy of the bundle (configs, docs, LICENSE) so a test never writes into the repo."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(BUNDLE / "configs", dest / "configs", dirs_exist_ok=True)
    return dest


def run_workflow(config_files, workflow_type: str = "train", **override):
    """Initialise, run and finalise a bundle workflow with MONAI's ``ConfigWorkflow``."""
    from monai.bundle import ConfigWorkflow

    wf = ConfigWorkflow(config_file=[str(c) for c in config_files], workflow_type=workflow_type,
                        logging_file=str(BUNDLE / "configs" / "logging.conf"), **override)
    wf.initialize()
    wf.run()
    wf.finalize()
    return wf


@pytest.fixture(scope="session", autouse=True)
def _private_disk_cache(tmp_path_factory):
    """The disk cache of SpekPy's spectra (monai_bac.disk_cache) in this session's temporary folder,
    never the user's ~/.cache; subprocesses (CLI, torchrun, servers) inherit it."""
    from monai_bac.disk_cache import CACHE_ENV

    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("disk-cache"))
    yield
    if old is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = old


@pytest.fixture(scope="session")
def phantom_cohort(tmp_path_factory) -> Path:
    """12 phantom images (3 patients x 4 views) at 1 mm: datalist.json + DICOM + NIfTI labels."""
    from monai_bac.phantom.cohort import make_cohort

    out = tmp_path_factory.mktemp("cohort")
    make_cohort(out, n=TINY_TRAIN["cohort_size"], seed=0, spacing_mm=TINY_TRAIN["phantom_spacing_mm"])
    return out


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, phantom_cohort) -> Path:
    """A bundle copy trained for one epoch on the tiny cohort: models/model.pt, threshold.json,
    model_settings.json, logs/. Treat it as read-only (copy it to change it)."""
    root = copy_bundle(tmp_path_factory.mktemp("bundle"))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        run_workflow([root / "configs" / "train.json"], bundle_root=str(root), dataset_dir=str(phantom_cohort),
                     **TINY_TRAIN)
    finally:
        os.chdir(cwd)
    return root

"""After the MONAI Label server gets SIGTERM, none of the processes it started is left running."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import requests

pytest.importorskip("monailabel",
                    reason="monailabel is not installed: the MONAI Label tests run in the label world (pip install -e \".[label,test]\")")

from monailabel_utils import start_server, stop_server  # noqa: E402

pytestmark = pytest.mark.label


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_ends_the_server_and_its_training_process(tmp_path, tiny_bundle, phantom_cohort):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    studies = tmp_path / "studies"
    (studies / "labels" / "final").mkdir(parents=True)
    for dcm in sorted((phantom_cohort / "images").glob("*.dcm"))[:4]:
        shutil.copy2(dcm, studies / dcm.name)
        shutil.copy2(phantom_cohort / "labels" / "tpa" / f"{dcm.stem}.nii.gz", studies / "labels" / "final")
    app = Path(__file__).resolve().parents[1] / "monailabel_app"
    server = start_server(app, studies, {"models": "bac", "bundle_path": str(bundle)}, tmp_path / "server.log")
    try:
        r = requests.post(f"{server.url}/train/bac", params={"run_sync": "false"}, json={"max_epochs": 200},
                          timeout=60)
        assert r.status_code == 200, r.text
        deadline, tasks = time.monotonic() + 60, set()
        while time.monotonic() < deadline and not tasks:  # the training runs in a process of its own
            tasks = {p for p in _children(server.process.pid) if _alive(p)}
            time.sleep(0.5)
        assert tasks, "no training process started"
        os.kill(server.process.pid, signal.SIGTERM)  # the server alone, as a service manager would
        server.process.wait(timeout=60)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(p) for p in tasks):
            time.sleep(0.5)
        left = [p for p in tasks if _alive(p)]
        assert not left, [Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")[:300] for p in left]
    finally:
        stop_server(server)

"""The studies folder's index (datastore_v2.json) as the server and its background tasks share it.

MONAI Label runs scoring and training in other processes, each with the index in memory. Seen in CI:
``GET /datastore`` right after a background scoring reported DONE lacked the score of an image it had
written. These tests run the datastore as two processes would (two datastore objects, and real
processes), with the file watcher off as in the PACS datastore, so nothing depends on when its
event comes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import nibabel as nib
import numpy as np
import pytest

from conftest import REPO

pytest.importorskip("monailabel", reason="the MONAI Label app's datastore runs in the label world "
                                        '(pip install -e ".[label,test]")')
pytestmark = pytest.mark.label

APP = REPO / "monailabel_app"
IMAGES = [f"img{i}" for i in range(6)]


@pytest.fixture
def studies(tmp_path):
    folder = tmp_path / "studies"
    folder.mkdir()
    for name in IMAGES:
        nib.save(nib.Nifti1Image(np.zeros((8, 6), np.float32), np.diag([-0.1, -0.1, 1, 1])), folder / f"{name}.nii.gz")
    return folder


def _store(studies):
    sys.path.insert(0, str(APP))
    try:
        from lib.datastore import BACDatastore
    finally:
        sys.path.remove(str(APP))
    return BACDatastore(str(studies))


def _index(studies) -> dict:
    return json.loads((studies / "datastore_v2.json").read_text())["objects"]


def _in_another_process(studies, body: str) -> subprocess.Popen:
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(APP)!r})
        from lib.datastore import BACDatastore
        store = BACDatastore({str(studies)!r})
    """) + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _finish(process: subprocess.Popen, timeout: float = 180) -> None:
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out


def test_a_score_written_by_another_process_is_read_at_once(studies):
    server = _store(studies)
    assert server.get_image_info("img3").get("bac_label_correction") is None
    _finish(_in_another_process(studies, """
        store.update_image_info("img3", {"bac_label_correction": {"score": 0.25}})
        store.update_image_info("img4", {"bac_label_correction": {"score": None, "reason": "no third-party label"}})
    """))
    assert server.get_image_info("img3")["bac_label_correction"] == {"score": 0.25}
    objects = server.json()["objects"]
    assert objects["img4"]["image"]["info"]["bac_label_correction"]["score"] is None


def test_changes_made_in_turn_by_two_holders_of_the_index_add_up(studies, tmp_path):
    """Each holder changes the index after the other wrote it, without an event telling it: nothing is lost."""
    server, task = _store(studies), _store(studies)
    task.update_image_info("img1", {"bac_tta_uncertainty": {"score": 3.0}})
    server.update_image_info("img2", {"strategy": {"tta_uncertainty": {"ts": 1}}})  # an image handed out
    task.update_image_info("img5", {"bac_tta_uncertainty": {"score": 1.0}})
    objects = _index(studies)
    assert objects["img1"]["image"]["info"]["bac_tta_uncertainty"] == {"score": 3.0}
    assert objects["img2"]["image"]["info"]["strategy"] == {"tta_uncertainty": {"ts": 1}}
    assert objects["img5"]["image"]["info"]["bac_tta_uncertainty"] == {"score": 1.0}
    # a label saved by the server keeps the task's scores, and the task's next score keeps the label
    label = tmp_path / "upload.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((8, 6), np.uint8), np.diag([-0.1, -0.1, 1, 1])), label)
    task.update_image_info("img0", {"bac_tta_uncertainty": {"score": 2.0}})
    server.save_label("img0", str(label), "final", {})
    task.update_image_info("img3", {"bac_tta_uncertainty": {"score": 0.5}})
    objects = _index(studies)
    assert objects["img0"]["labels"]["final"]["ext"] == ".nii.gz"
    assert objects["img0"]["image"]["info"]["bac_tta_uncertainty"] == {"score": 2.0}
    assert objects["img3"]["image"]["info"]["bac_tta_uncertainty"] == {"score": 0.5}
    assert server.get_labeled_images() == ["img0"]


def _at_the_same_moment(studies, tmp_path, bodies: dict[str, str], setup: str = "") -> None:
    """Run each body in a process of its own (a datastore ``store`` on ``studies``), all released at once
    (after ``setup``)."""
    _store(studies)  # the index exists before they start, as when the server starts its task
    go = tmp_path / "go"
    processes = [_in_another_process(studies, textwrap.dedent(setup) + textwrap.dedent(f"""
        import os, time
        open({str(tmp_path / name)!r}, "w").close()
        while not os.path.exists({str(go)!r}):
            time.sleep(0.01)
    """) + textwrap.dedent(body)) for name, body in bodies.items()]
    deadline = time.monotonic() + 120
    while not all((tmp_path / name).exists() for name in bodies) and time.monotonic() < deadline:
        assert all(p.poll() is None for p in processes), [p.communicate()[0] for p in processes if p.poll() is not None]
        time.sleep(0.05)
    go.touch()
    for process in processes:
        _finish(process)


def test_two_processes_updating_at_the_same_time_lose_nothing(studies, tmp_path):
    """A background scoring writes scores while the server marks images handed out, both at once."""
    loops = 40
    _at_the_same_moment(studies, tmp_path, {name: f"""
        for k in range({loops}):
            store.update_image_info("img%d" % ({first} + k % 3), {{"{name}_%d" % k: k}})
            time.sleep(0.005)
    """ for name, first in (("score", 0), ("served", 3))})
    objects = _index(studies)
    for k in range(loops):
        assert objects[f"img{k % 3}"]["image"]["info"].get(f"score_{k}") == k, (k, objects)
        assert objects[f"img{3 + k % 3}"]["image"]["info"].get(f"served_{k}") == k, (k, objects)


def test_images_added_and_labels_saved_while_another_process_scores_lose_nothing(studies, tmp_path):
    """Uploads (an image, a third party's label) while a background scoring writes its scores."""
    loops = 60
    label = tmp_path / "upload.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((8, 6), np.uint8), np.diag([-0.1, -0.1, 1, 1])), label)
    image = tmp_path / "upload_image.nii.gz"  # the smallest image the app takes as a mammogram
    nib.save(nib.Nifti1Image(np.random.default_rng(0).uniform(1e3, 4e3, (128, 128)).astype(np.float32),
                             np.diag([-0.1, -0.1, 1, 1])), image)
    _at_the_same_moment(studies, tmp_path, {
        "uploads": f"""
            from lib.shared_index import SharedIndexDatastore
            for k in range({loops}):  # as the PACS datastore caches an image, and a label other than 'final'
                SharedIndexDatastore.add_image(store, "new%d" % k, {str(image)!r}, {{"k": k}})
                SharedIndexDatastore.save_label(store, "img%d" % (k % 6), {str(label)!r}, "tpa%d" % k, {{}})
        """,
        "scores": f"""
            for k in range({2 * loops}):
                store.update_image_info("img%d" % (k % 6), {{"score_%d" % k: k}})
        """})
    objects = _index(studies)
    for k in range(loops):
        assert objects[f"new{k}"]["image"]["info"]["k"] == k, k
        assert f"tpa{k}" in objects[f"img{k % 6}"]["labels"], k
    for k in range(2 * loops):
        assert objects[f"img{k % 6}"]["image"]["info"].get(f"score_{k}") == k, k


def test_per_client_and_per_strategy_notes_made_at_the_same_moment_are_all_kept(studies, tmp_path):
    """Two annotators ask for the same image at once: each request adds its entry to the image's map of
    notes (the prediction served per client; MONAI Label's ``strategy`` mark per strategy, which its endpoint
    reads, changes and writes back whole). Both entries must stay (the second client's label would
    otherwise read MANUAL)."""
    loops = 60
    _at_the_same_moment(studies, tmp_path, setup="from main import BACApp", bodies={name: f"""
        for k in range({loops}):
            # the app's note, as /infer makes it
            BACApp._record_prediction_served(store, "img0", {{"model": {{"id": "m"}}}}, "{name}-%d" % k)
            # MONAI Label's own mark, as monailabel.endpoints.activelearning.sample makes it
            marks = store.get_image_info("img0").get("strategy", {{}})
            marks["{name}-%d" % k] = {{"ts": k, "client_id": "{name}"}}
            store.update_image_info("img0", {{"strategy": marks}})
    """ for name in "ab"})
    info = _index(studies)["img0"]["image"]["info"]
    expected = {f"{name}-{k}" for name in "ab" for k in range(loops)}
    assert set(info["bac_prediction_served"]) == expected, sorted(expected - set(info["bac_prediction_served"]))
    assert set(info["strategy"]) == expected, sorted(expected - set(info["strategy"]))
    assert info["bac_prediction_served"]["b-7"]["model"] == "m"


def test_two_requests_interleaved_each_keep_their_note_and_other_info_is_replaced(studies):
    """Request a reads an image's map of notes, request b adds its entry, then a writes its map: both entries
    stay. Only those maps are merged; any other value is replaced whole, as MONAI Label does."""
    store = _store(studies)
    for key in ("strategy", "bac_prediction_served"):
        notes_a = dict(store.get_image_info("img1").get(key) or {})
        notes_b = dict(store.get_image_info("img1").get(key) or {})
        store.update_image_info("img1", {key: {**notes_b, "b": {"ts": 2}}})
        store.update_image_info("img1", {key: {**notes_a, "a": {"ts": 1}}})
        assert store.get_image_info("img1")[key] == {"a": {"ts": 1}, "b": {"ts": 2}}, key
    store.update_image_info("img1", {"bac_tta_uncertainty": {"score": 1.0, "error": "x"}})
    store.update_image_info("img1", {"bac_tta_uncertainty": {"score": 2.0}})
    assert store.get_image_info("img1")["bac_tta_uncertainty"] == {"score": 2.0}

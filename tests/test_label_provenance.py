"""How an annotator's label was made, as the studies folder records it (and a DICOM SEG of it would say).

An annotator in 3D Slicer either corrects the model's prediction the app served (SEMIAUTOMATIC, made
with that model) or draws without it (MANUAL). The PACS datastore writes the same verdict into its
SEG (tests/test_dicomweb_orthanc.py); over HTTP with the studies folder, tests/test_monailabel_app.py.
"""

from __future__ import annotations

import sys

import nibabel as nib
import numpy as np
import pytest

from conftest import REPO

pytest.importorskip("monailabel", reason="the MONAI Label app's datastore runs in the label world "
                                        '(pip install -e ".[label,test]")')
pytestmark = pytest.mark.label

APP = REPO / "monailabel_app"
AFFINE = np.diag([-0.1, -0.1, 1, 1])


def _studies(tmp_path, images):
    """A studies folder of small images, the app's datastore on it, and a label file for them."""
    sys.path.insert(0, str(APP))
    try:
        from lib.datastore import BACDatastore
    finally:
        sys.path.remove(str(APP))
    studies = tmp_path / "studies"
    studies.mkdir()
    for name in images:
        nib.save(nib.Nifti1Image(np.zeros((8, 6), np.float32), AFFINE), studies / f"{name}.nii.gz")
    label = tmp_path / "label.nii.gz"
    nib.save(nib.Nifti1Image(np.eye(8, 6, dtype=np.uint8), AFFINE), label)
    return BACDatastore(str(studies)), label


def test_a_final_label_says_whether_it_corrects_a_prediction_served_to_its_client(tmp_path):
    sys.path.insert(0, str(APP))
    try:
        from lib.datastore import PREDICTION_SERVED_KEY
    finally:
        sys.path.remove(str(APP))
    store, label = _studies(tmp_path, ("drawn", "corrected"))
    store.update_image_info("corrected", {PREDICTION_SERVED_KEY: {
        "annotator-a": {"model": "1733-52881", "version": "0.9.0", "ts": 10}}})
    semiautomatic = {"algorithm_type": "SEMIAUTOMATIC", "algorithm_version": "0.9.0",
                     "algorithm_parameters": {"model": "1733-52881"}}
    for image_id, client, made in (("drawn", "annotator-a", {"algorithm_type": "MANUAL"}),
                                   ("corrected", "annotator-b", {"algorithm_type": "MANUAL"}),  # not served to b
                                   ("corrected", "annotator-a", semiautomatic),
                                   ("corrected", None, semiautomatic)):  # no client id: served to any client
        store.save_label(image_id, str(label), "final", {"client_id": client} if client else {})
        assert store.get_label_info(image_id, "final")["segment_algorithm"] == made, (image_id, client)
    store.save_label("drawn", str(label), "tpa", {})
    assert "segment_algorithm" not in store.get_label_info("drawn", "tpa")  # a third party's: not known


def test_with_authentication_the_verified_user_not_the_client_id_tells_a_correction(tmp_path):
    """With MONAI Label's authentication on, two annotators who keep Slicer's default client id
    (``user-xyz``) are still told apart: the prediction served and the label saved are matched by the
    user the server verified (lib.annotator), who is also named in the label's info."""
    import contextvars

    sys.path.insert(0, str(APP))
    try:
        from lib.annotator import note_verified
        from main import BACApp
    finally:
        sys.path.remove(str(APP))
    store, label = _studies(tmp_path, ("img",))

    def as_user(username, step):  # one HTTP request whose token verified as this user
        def request():
            note_verified({"preferred_username": username}, "preferred_username", "name")
            step()
        contextvars.copy_context().run(request)

    as_user("jdoe", lambda: BACApp._record_prediction_served(store, "img", {"model": {"id": "17-3"}}, "user-xyz"))
    assert set(store.get_image_info("img")["bac_prediction_served"]) == {"user:jdoe"}
    made = {}
    for username, tag in (("rroe", "final"), ("jdoe", "final")):
        as_user(username, lambda: store.save_label("img", str(label), tag, {"client_id": "user-xyz"}))
        made[username] = store.get_label_info("img", "final")
    assert made["rroe"]["segment_algorithm"] == {"algorithm_type": "MANUAL"}
    assert made["rroe"]["annotator"]["username"] == "rroe"
    assert made["jdoe"]["segment_algorithm"]["algorithm_type"] == "SEMIAUTOMATIC"
    assert made["jdoe"]["segment_algorithm"]["algorithm_parameters"] == {"model": "17-3"}
    assert made["jdoe"]["annotator"] == {"username": "jdoe", "name": "", "person_name": "jdoe"}

"""The app's ``random`` strategy on MONAI Label's own local datastore: never an error, never a labelled image."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("monailabel", reason="the MONAI Label app needs the [label] extra (monailabel)")
nib = pytest.importorskip("nibabel")

from monailabel.datastore.local import LocalDatastore  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "monailabel_app"))
from lib.activelearning.strategies import RandomUnlabeled  # noqa: E402


pytestmark = pytest.mark.label


def _studies(folder: Path, n: int) -> LocalDatastore:
    for i in range(n):
        nib.save(nib.Nifti1Image(np.zeros((8, 8), np.uint16), np.eye(4)), str(folder / f"img{i}.nii.gz"))
    return LocalDatastore(str(folder), extensions=("*.nii.gz",), auto_reload=False)


def test_random_survives_every_image_handed_out_this_second(tmp_path):
    store = _studies(tmp_path, 3)
    strategy = RandomUnlabeled()
    now = int(time.time())
    for image in store.list_images():  # what the server records when it hands an image out
        store.update_image_info(image, {"strategy": {"random": {"ts": now}}})
    # monailabel 0.8.5's Random raises here (all weights 0); ours draws evenly
    chosen = {strategy({"strategy": "random"}, store)["id"] for _ in range(30)}
    assert chosen == set(store.list_images())


def test_random_prefers_images_not_handed_out_recently_and_skips_labelled(tmp_path):
    store = _studies(tmp_path, 3)
    label = tmp_path / "lab.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((8, 8), np.uint8), np.eye(4)), str(label))
    store.save_label("img0", str(label), "final", {})
    store.update_image_info("img1", {"strategy": {"random": {"ts": int(time.time())}}})
    picks = [strategy["id"] for strategy in (RandomUnlabeled()({"strategy": "random"}, store) for _ in range(50))]
    assert "img0" not in picks
    assert picks.count("img2") > 45  # img2 waited ~56 years, img1 about a second


def test_random_answers_none_when_nothing_is_left(tmp_path):
    store = _studies(tmp_path, 0)
    assert RandomUnlabeled()({"strategy": "random"}, store) is None

"""The MONAI Label app against a REAL server: ``monailabel start_server`` as a subprocess on a free
loopback port, studies = the tiny phantom cohort (raw DICOM MG, one NIfTI made from a DICOM, one
DICOM with ImagePositionPatient/ImageOrientationPatient, a corrupt .dcm and a text file), the
bundle = a copy of the tiny trained bundle. Tests talk HTTP only; they run in file order and
share the server (started once for the module, always stopped in teardown).

CPU threads are pinned to one per process (OMP_NUM_THREADS=1): on a small shared machine torch's
default thread pool oversubscribes the cores and a 128 px forward pass takes seconds instead of
~0.1 s. MONAI Label's automatic re-scoring is off so each test controls when scoring runs; one
test runs a scoring method the default way (a background process) and waits for it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

requests = pytest.importorskip("requests")
pytest.importorskip("monailabel",
                    reason="monailabel is not installed: the MONAI Label tests run in the label world (pip install -e \".[label,test]\")")

from conftest import REPO  # noqa: E402
from monailabel_utils import start_server, stop_server  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.label]

APP = REPO / "monailabel_app"
DICOM_ID = "PH000-0000_LCC"
NIFTI_ID = "PH000-0002_RMLO_nifti"
POSITIONED_ID = "PH000-0001_LMLO_positioned"
TIMEOUT = 120  # seconds, per HTTP request


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _make_studies(cohort: Path, studies: Path) -> None:
    import pydicom

    from monai_bac.data import load_mammogram, save_image_nifti

    (studies / "labels" / "tpa").mkdir(parents=True)
    for dcm in sorted((cohort / "images").glob("*.dcm")):
        shutil.copy2(dcm, studies / dcm.name)
        tpa = cohort / "labels" / "tpa" / f"{dcm.stem}.nii.gz"
        if tpa.is_file():
            shutil.copy2(tpa, studies / "labels" / "tpa" / tpa.name)
    image = load_mammogram(cohort / "images" / "PH000-0002_RMLO.dcm")  # a NIfTI made from a DICOM
    save_image_nifti(studies / f"{NIFTI_ID}.nii.gz", image[0], image.meta["spacing_mm"])
    ds = pydicom.dcmread(cohort / "images" / "PH000-0001_LMLO.dcm")  # a DICOM placed in patient space
    ds.ImagePositionPatient = [12.5, -30.0, 4.0]
    ds.ImageOrientationPatient = [-1, 0, 0, 0, -1, 0]
    ds.save_as(studies / f"{POSITIONED_ID}.dcm")
    (studies / "broken.dcm").write_text("this is not a DICOM file\n")
    (studies / "notes.txt").write_text("a note that is not an image\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_bundle, phantom_cohort):
    root = tmp_path_factory.mktemp("monailabel")
    bundle = root / "bundle"
    shutil.copytree(tiny_bundle / "configs", bundle / "configs")
    shutil.copytree(tiny_bundle / "models", bundle / "models",
                    ignore=shutil.ignore_patterns("checkpoint_epoch=*.pt"))
    app = root / "app"  # start_server creates model/, logs/, bin/ in the app folder: use a copy
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__", "model", "logs", "bin"))
    studies = root / "studies"
    _make_studies(phantom_cohort, studies)
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MONAI_LABEL_AUTO_UPDATE_SCORING": "false",
           "MONAI_LABEL_SESSION_PATH": str(root / "sessions")}
    srv = start_server(app, studies, {"models": "bac", "bundle_path": str(bundle)}, root / "server.log", env)
    try:
        yield srv
    finally:
        stop_server(srv)
        assert "Exception in ASGI application" not in srv.log.read_text(errors="replace"), srv.log_tail(120)


def _get(server, path, **kw):
    return requests.get(server.url + path, timeout=TIMEOUT, **kw)


def _post(server, path, **kw):
    return requests.post(server.url + path, timeout=TIMEOUT, **kw)


def _put_label(server, image_id, path: Path, tag="final", name=None):
    with open(path, "rb") as f:
        return requests.put(f"{server.url}/datastore/label", params={"image": image_id, "tag": tag},
                            files={"label": (name or path.name, f)}, timeout=TIMEOUT)


def _infer(server, image_id):
    """(label file bytes, result params, seconds) of POST /infer/bac (multipart answer)."""
    from requests_toolbelt.multipart.decoder import MultipartDecoder

    start = time.perf_counter()
    r = _post(server, "/infer/bac", params={"image": image_id})
    seconds = time.perf_counter() - start
    assert r.status_code == 200, r.text
    parts = MultipartDecoder(r.content, r.headers["content-type"]).parts
    params, label = None, None
    for part in parts:
        disposition = part.headers.get(b"Content-Disposition", b"").decode()
        if 'name="params"' in disposition:
            params = json.loads(part.content)
        elif 'name="image"' in disposition:
            label = part.content
    assert params is not None and label is not None, [p.headers for p in parts]
    return label, params, seconds


def _save(tmp_path, content: bytes, name="label.nii.gz") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _assert_json_error(r, status, *words):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert isinstance(body.get("detail"), str) and "Traceback" not in body["detail"], body
    for word in words:
        assert word.lower() in body["detail"].lower(), (word, body["detail"])


def _datastore(server) -> dict:
    r = _get(server, "/datastore/", params={"output": "all"})
    assert r.status_code == 200, r.text
    return r.json()["objects"]


# --------------------------------------------------------------------------------------------
def test_info_lists_model_labels_strategies_scoring(server):
    info = _get(server, "/info/").json()
    model = info["models"]["bac"]
    assert model["labels"] == {"bac": 1} and info["labels"] == ["bac"]
    assert model["label_colors"]["bac"] == info["label_colors"]["bac"] and len(info["label_colors"]["bac"]) == 3
    assert model["dimension"] == 2 and model["type"] == "segmentation"
    assert model["weights"]["trained"] is True and model["weights"]["settings"]["image_size"] == 128
    assert "bac" in info["trainers"]
    assert set(info["strategies"]) == {"random", "tta_uncertainty", "label_correction"}
    assert set(info["scoring"]) == {"tta_uncertainty", "label_correction"}
    objects = _datastore(server)
    assert {DICOM_ID, NIFTI_ID, POSITIONED_ID, "broken"} <= set(objects)
    assert "notes" not in objects  # not an image extension: not listed
    assert objects[DICOM_ID]["labels"].get("tpa"), "third-party labels are the datastore tag 'tpa'"


def test_train_without_labels_is_refused(server):
    r = _post(server, "/train/bac", params={"run_sync": "true"}, json={"max_epochs": 1})
    _assert_json_error(r, 409, "no corrected labels")


def test_infer_dicom_label_on_image_grid(server, tmp_path):
    import itk
    import nibabel as nib
    import pydicom

    from monai_bac.data import load_label

    masks = {}
    for image_id in ("PH000-0001_LMLO", POSITIONED_ID, DICOM_ID):
        content, params, _ = _infer(server, image_id)
        label_path = _save(tmp_path, content, f"{image_id}.nii.gz")
        ds = pydicom.dcmread(server.studies / f"{image_id}.dcm", stop_before_pixels=True)
        spacing = tuple(float(s) for s in ds.ImagerPixelSpacing)
        label = load_label(label_path)
        assert tuple(label.shape[-2:]) == (ds.Rows, ds.Columns)
        assert np.allclose(label.meta["spacing_mm"], spacing)
        assert params["shape"] == [ds.Rows, ds.Columns] and np.allclose(params["spacing_mm"], spacing)
        assert params["label_names"] == {"bac": 1} and 0 <= params["threshold"] <= 1
        assert set(np.unique(np.asarray(label))) <= {0, 1}
        assert np.asarray(nib.load(str(label_path)).dataobj).shape[:2] == (ds.Columns, ds.Rows)
        # 3D Slicer reads both files with ITK: the label must sit on the image's voxels
        image_itk, label_itk = itk.imread(str(server.studies / f"{image_id}.dcm")), itk.imread(str(label_path))
        assert list(itk.size(label_itk))[:2] == list(itk.size(image_itk))[:2]
        assert np.allclose(list(itk.spacing(label_itk))[:2], list(itk.spacing(image_itk))[:2])
        assert np.allclose(list(itk.origin(label_itk))[:2], list(itk.origin(image_itk))[:2])
        assert np.allclose(np.asarray(label_itk.GetDirection())[:2, :2], np.asarray(image_itk.GetDirection())[:2, :2])
        masks[image_id] = np.asarray(itk.GetArrayFromImage(label_itk)).reshape(ds.Rows, ds.Columns)
        if image_id != POSITIONED_ID:  # without ImageOrientationPatient: monai_bac's own convention
            assert np.array_equal(masks[image_id], np.asarray(label[0]))
    # the positioned copy has the same pixels, so the same mask in pixel (ITK index) order
    assert np.array_equal(masks[POSITIONED_ID], masks["PH000-0001_LMLO"]) and masks[POSITIONED_ID].any()
    origin = list(itk.origin(itk.imread(str(server.studies / f"{POSITIONED_ID}.dcm"))))[:2]
    assert np.allclose(origin, [12.5, -30.0])  # the positioned DICOM really sits elsewhere in Slicer


def test_infer_nifti_label_keeps_image_geometry(server, tmp_path):
    import nibabel as nib

    from monai_bac.data import load_nifti_2d

    content, params, _ = _infer(server, NIFTI_ID)
    label_path = _save(tmp_path, content)
    image_file = server.studies / f"{NIFTI_ID}.nii.gz"
    image_hw, image_spacing = load_nifti_2d(image_file)
    label_hw, label_spacing = load_nifti_2d(label_path)
    assert label_hw.shape == image_hw.shape and np.allclose(label_spacing, image_spacing)
    assert np.allclose(nib.load(str(label_path)).affine, nib.load(str(image_file)).affine)
    # the same mammogram as DICOM gives the same mask
    dicom_content, _, _ = _infer(server, "PH000-0002_RMLO")
    assert np.array_equal(load_nifti_2d(_save(tmp_path, dicom_content, "d.nii.gz"))[0], label_hw)


def test_concurrent_infer_requests(server, tmp_path):
    from monai_bac.data import load_label

    ids = [DICOM_ID, "PH000-0000_RCC", "PH000-0001_LCC", "PH000-0001_RCC", NIFTI_ID, "PH000-0002_LCC",
           "PH000-0002_RCC", POSITIONED_ID]
    results: dict[int, tuple] = {}
    errors: list = []

    def run(i, image_id):
        try:
            results[i] = _infer(server, image_id)
        except Exception as e:  # reported below
            errors.append((image_id, repr(e)))

    threads = [threading.Thread(target=run, args=(i, image_id)) for i, image_id in enumerate(ids)]
    wall = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=2 * TIMEOUT)
    wall = time.perf_counter() - wall
    assert not errors and len(results) == len(ids), errors
    lines = ["request  image                         client_s  server_s"]
    for i, image_id in enumerate(ids):
        content, params, seconds = results[i]
        label = load_label(_save(tmp_path, content, f"{i}.nii.gz"))
        assert list(label.shape[-2:]) == params["shape"], image_id
        assert params["image"] == image_id
        lines.append(f"{i:7d}  {image_id:28s}  {seconds:8.2f}  {params['latencies']['total']:8.2f}")
    lat = sorted(r[2] for r in results.values())
    lines.append(f"8 concurrent requests: wall {wall:.2f} s; client latency min {lat[0]:.2f} / median "
                 f"{np.median(lat):.2f} / max {lat[-1]:.2f} s")
    print("\n" + "\n".join(lines))
    (server.log.parent / "latency.txt").write_text("\n".join(lines) + "\n")


def test_put_label_saves_correction_and_keeps_history(server, phantom_cohort, tmp_path):
    gt = phantom_cohort / "labels" / "gt"
    for image_id in (DICOM_ID, "PH000-0001_RCC"):
        r = _put_label(server, image_id, gt / f"{image_id}.nii.gz")
        assert r.status_code == 200, r.text
        assert r.json()["label"] == image_id
    stored = server.studies / "labels" / "final" / f"{DICOM_ID}.nii.gz"
    assert _sha(stored) == _sha(gt / f"{DICOM_ID}.nii.gz")
    r = _get(server, "/datastore/label", params={"label": DICOM_ID, "tag": "final"})
    assert r.status_code == 200 and r.content == stored.read_bytes()
    # saving again replaces the label and keeps the previous one
    tpa = server.studies / "labels" / "tpa" / f"{DICOM_ID}.nii.gz"
    assert _put_label(server, DICOM_ID, tpa).status_code == 200
    assert _sha(stored) == _sha(tpa)
    history = list((server.studies / ".monai_bac" / "label_history" / "final").glob(f"{DICOM_ID}.*.nii.gz"))
    assert len(history) == 1 and _sha(history[0]) == _sha(gt / f"{DICOM_ID}.nii.gz")
    assert _put_label(server, DICOM_ID, gt / f"{DICOM_ID}.nii.gz").status_code == 200  # back to the correction
    # a label drawn in Slicer over the positioned DICOM (its geometry, like the infer result) is accepted
    content, _, _ = _infer(server, POSITIONED_ID)
    assert _put_label(server, POSITIONED_ID, _save(tmp_path, content)).status_code == 200
    # Slicer's module set to ".seg.nrrd" (for overlapping segments) uploads its segmentation as Slicer saves
    # it (slicerio, the reader and writer Slicer's guide names): the BAC segment among overlapping ones, only
    # the segments' extent; stored as every label is, a NIfTI on the image
    import slicerio

    from monai_bac.data import load_label

    mask = np.asarray(load_label(gt / f"{DICOM_ID}.nii.gz")[0])
    rows, cols = np.nonzero(mask)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    spacing = load_label(gt / f"{DICOM_ID}.nii.gz").meta["spacing_mm"]
    ijk = np.diag([spacing[1], spacing[0], 1.0, 1.0])
    ijk[:2, 3] = (c0 * spacing[1], r0 * spacing[0])
    seg = slicerio.create_segmentation((c1 - c0, r1 - r0, 1), ijk)
    slicerio.add_segment(seg, np.ones((c1 - c0, r1 - r0, 1), bool), {"name": "Breast"})
    slicerio.add_segment(seg, mask[r0:r1, c0:c1].T[..., None].astype(bool), {"name": "BAC"})
    slicerio.write_segmentation(str(tmp_path / "Segmentation.seg.nrrd"), seg)
    r = _put_label(server, DICOM_ID, tmp_path / "Segmentation.seg.nrrd")
    assert r.status_code == 200, r.text
    assert np.array_equal(np.asarray(load_label(stored)[0]), mask)
    _assert_json_error(_put_label(server, POSITIONED_ID, tmp_path / "Segmentation.seg.nrrd"), 415,
                       "ImagePositionPatient", "upload the label as NIfTI")
    assert _put_label(server, DICOM_ID, gt / f"{DICOM_ID}.nii.gz").status_code == 200  # back to the correction
    objects = _datastore(server)
    assert set(objects[DICOM_ID]["labels"]) >= {"final", "tpa"}
    assert objects[DICOM_ID]["labels"]["final"]["info"]["shape"] == [285, 239]
    # the app served this image's prediction before (test_infer_dicom_label_on_image_grid): the label is the
    # annotator's correction of it (SEMIAUTOMATIC in a DICOM SEG), made with that model
    served = objects[DICOM_ID]["image"]["info"]["bac_prediction_served"][""]  # requests without a client id
    assert objects[DICOM_ID]["labels"]["final"]["info"]["segment_algorithm"] == {
        "algorithm_type": "SEMIAUTOMATIC", "algorithm_version": served["version"],
        "algorithm_parameters": {"model": served["model"]}}


def test_bad_input_gets_4xx_and_nothing_is_lost(server, tmp_path):
    from monai_bac.data import save_mask_nifti

    final = server.studies / "labels" / "final"
    before = {p.name: _sha(p) for p in final.glob("*.nii.gz")}
    assert DICOM_ID + ".nii.gz" in before

    _assert_json_error(_post(server, "/infer/bac", params={"image": "no_such_image"}), 404, "not in the studies")
    _assert_json_error(_post(server, "/infer/bac", params={"image": "../../etc/passwd"}), 400, "invalid image id")
    _assert_json_error(_post(server, "/infer/bac", params={"image": "/etc/passwd"}), 400, "invalid image id")
    _assert_json_error(_post(server, "/infer/bac", params={"image": "notes"}), 404, "not in the studies")
    _assert_json_error(_post(server, "/infer/bac", params={"image": "broken"}), 422, "broken", "DICOM")
    _assert_json_error(_post(server, "/infer/nosuchmodel", params={"image": DICOM_ID}), 404, "no model")
    _assert_json_error(_post(server, "/activelearning/nosuchstrategy"), 404, "strategy")
    _assert_json_error(_post(server, "/scoring/nosuchmethod", params={"run_sync": "true"}), 404, "scoring")

    wrong = save_mask_nifti(tmp_path / "wrong.nii.gz", np.ones((100, 80), np.uint8), (1.0, 1.0))
    _assert_json_error(_put_label(server, DICOM_ID, wrong), 422, "100 x 80", "285 x 239")
    _assert_json_error(_put_label(server, "../../etc/passwd", wrong), 400, "invalid image id")
    _assert_json_error(_put_label(server, "no_such_image", wrong), 404, "not in the studies")
    _assert_json_error(_put_label(server, DICOM_ID, wrong, tag="../../x"), 400, "invalid label tag")
    text = tmp_path / "notes.txt"
    text.write_text("not a label")
    _assert_json_error(_put_label(server, DICOM_ID, text), 415, "NIfTI", ".seg.nrrd")
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"not a nifti at all")
    _assert_json_error(_put_label(server, DICOM_ID, junk), 422, "not a binary 2D NIfTI")
    assert "Traceback" not in _put_label(server, DICOM_ID, junk).text

    # the server still serves, and every stored label is intact
    assert _get(server, "/info/").status_code == 200
    _infer(server, DICOM_ID)
    assert {p.name: _sha(p) for p in final.glob("*.nii.gz")} == before
    assert not list(final.glob(".*"))  # no temporary files left behind
    assert not (server.studies.parent / "x").exists() and not (server.studies.parent.parent / "x").exists()
    objects = _datastore(server)
    assert all(objects[name.replace(".nii.gz", "")]["labels"].get("final") for name in before)


def test_without_weights_info_says_so_and_infer_is_503(server):
    model = server.bundle / "models" / "model.pt"
    parked = model.with_name("model.pt.parked")
    model.rename(parked)
    try:
        info = _get(server, "/info/").json()["models"]["bac"]
        assert info["weights"]["trained"] is False and "NOT TRAINED" in info["description"]
        _assert_json_error(_post(server, "/infer/bac", params={"image": DICOM_ID}), 503, "no trained weights",
                           "/train/bac")
        assert "no trained weights" in _post(server, "/scoring/tta_uncertainty", params={"run_sync": "true"},
                                             json={}).json()["error"]
    finally:
        parked.rename(model)
    _infer(server, DICOM_ID)  # back without a restart


def test_active_learning_strategies(server):
    from monai_bac.active_learning import correction_change_from_files

    r = _post(server, "/scoring/tta_uncertainty", params={"run_sync": "true"}, json={})
    assert r.status_code == 200, r.text
    tta = r.json()
    assert tta["scored"] >= 10 and set(tta["failed"]) == {"broken"}, tta
    # the default way: a background process (MONAI Label's task runner); wait for it, bounded
    r = _post(server, "/scoring/label_correction", json={})
    assert r.status_code == 200, r.text
    status = {}
    for _ in range(150):
        status = _get(server, "/scoring/").json()
        if status.get("status") in ("DONE", "ERROR"):
            break
        time.sleep(2)
    assert status.get("status") == "DONE", status

    objects = _datastore(server)
    labelled = {k for k, v in objects.items() if v["labels"].get("final")}
    unlabelled = set(objects) - labelled
    assert labelled and unlabelled
    for strategy, key in (("tta_uncertainty", "bac_tta_uncertainty"), ("label_correction", "bac_label_correction")):
        scores = {k: (objects[k]["image"]["info"].get(key) or {}).get("score") for k in unlabelled}
        scored = {k: v for k, v in scores.items() if v is not None}
        assert len(scored) >= 9, (strategy, scores)
        r = _post(server, f"/activelearning/{strategy}", json={})
        assert r.status_code == 200, r.text
        chosen = r.json()["id"]
        assert chosen in unlabelled
        assert scored[chosen] == max(scored.values()), (strategy, chosen, scored)
        # served images are held back: the next request gives another unlabeled image
        second = _post(server, f"/activelearning/{strategy}", json={}).json()["id"]
        assert second in unlabelled and second != chosen
    r = _post(server, "/activelearning/random", json={})
    assert r.status_code == 200 and r.json()["id"] in unlabelled
    # the stored correction score is the library's
    entry = objects[DICOM_ID.replace("LCC", "RCC")]["image"]["info"]["bac_label_correction"]
    expected = correction_change_from_files(server.studies / "PH000-0000_RCC.dcm",
                                            server.studies / "labels" / "tpa" / "PH000-0000_RCC.nii.gz")
    assert entry["score"] == pytest.approx(expected["length_removed_fraction"])
    assert objects[NIFTI_ID]["image"]["info"]["bac_label_correction"]["score"] is None  # no third-party label


def test_train_fine_tunes_and_next_infer_uses_new_weights(server, tmp_path):
    from monai_bac.data import load_label

    model = server.bundle / "models" / "model.pt"
    before = _sha(model)
    _, params_before, _ = _infer(server, "PH000-0002_LCC")
    r = _post(server, "/train/bac", params={"run_sync": "true"}, json={"max_epochs": 1}, )
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["labels"] >= 2 and result["max_epochs"] == 1 and result["trained"] is True
    assert _sha(model) != before, "one epoch of fine-tuning must change the weights"
    settings = json.loads((server.bundle / "models" / "model_settings.json").read_text())
    assert settings["image_size"] == 128 and settings["correct_labels"] is False  # the model's own settings kept
    _, params_after, _ = _infer(server, "PH000-0002_LCC")
    assert params_after["model"]["id"] != params_before["model"]["id"]  # picked up without a restart
    info = _get(server, "/info/").json()
    assert info["train_stats"]["bac"]["trained"] is True
    # the positioned DICOM's label reached the bundle in pixel order (what load_label / LoadMammogramd expect)
    copy = server.studies / ".monai_bac" / "train_labels" / f"{POSITIONED_ID}.nii.gz"
    stored = server.studies / "labels" / "final" / f"{POSITIONED_ID}.nii.gz"
    import itk

    expected = np.asarray(itk.GetArrayFromImage(itk.imread(str(stored)))).reshape(285, 239)
    assert np.array_equal(np.asarray(load_label(copy)[0]), expected)


def test_studies_tool_makes_studies_folders(tmp_path, phantom_cohort):
    """``monailabel_app/lib/studies.py``: phantom cohort -> studies, DICOM folder -> studies (no server)."""
    import subprocess
    import sys

    tool = str(APP / "lib" / "studies.py")
    out = tmp_path / "studies"
    run = subprocess.run([sys.executable, tool, "--phantom", str(phantom_cohort), "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    images = sorted(p.name for p in out.glob("*.dcm"))
    assert len(images) == len(list((phantom_cohort / "images").glob("*.dcm"))) >= 4
    assert sorted(p.name for p in (out / "labels" / "tpa").glob("*.nii.gz")) == [
        n.replace(".dcm", ".nii.gz") for n in images]
    assert not (out / "labels" / "gt").exists()  # ground truth stays out unless --with-gt
    # a second run keeps what exists
    first = _sha(out / images[0])
    rerun = subprocess.run([sys.executable, tool, "--phantom", str(phantom_cohort), "--out", str(out)],
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0 and "0 images" in rerun.stdout and _sha(out / images[0]) == first

    raw = tmp_path / "raw" / "patient 1"
    raw.mkdir(parents=True)
    shutil.copy2(phantom_cohort / "images" / images[0], raw / "IM0001")  # DICOM without extension
    (raw / "report.txt").write_text("not DICOM")
    out2 = tmp_path / "studies2"
    run = subprocess.run([sys.executable, tool, "--dicom", str(tmp_path / "raw"), "--out", str(out2)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert [p.name for p in out2.iterdir() if p.is_file()] == ["patient_1_IM0001.dcm"]
    assert "report.txt: not DICOM" in run.stderr


# --- the library behind the scoring methods (no server) -------------------------------------
def test_pick_highest_order_cooldown_and_unscored():
    from monai_bac.active_learning import pick_highest

    scores = {"a": 0.2, "b": 0.9, "c": None, "d": float("nan"), "e": 0.9}
    assert pick_highest(scores, now=1e6) == "b"  # highest; tie with 'e' broken by id
    assert pick_highest(scores, {"b": 1e6 - 10}, now=1e6, cooldown_s=3600) == "e"
    assert pick_highest({"c": None, "a": 0.0}, now=1e6) == "a"  # scored before unscored
    served = {k: 1e6 - i for i, k in enumerate(scores)}  # all served within the hour
    assert pick_highest(scores, served, now=1e6, cooldown_s=3600) == "e"  # the one served longest ago
    assert pick_highest({}, now=1e6) is None


def test_tta_probabilities_flip_back_and_uncertainty_units():
    import torch
    from monai.data import MetaTensor

    from monai_bac.active_learning import tta_probabilities, tta_uncertainty

    class Identity(torch.nn.Module):  # logits = input: every flipped prediction, flipped back, is the same map
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def forward(self, x):
            return x * self.w

    x = torch.randn(1, 16, 12)
    probs = tta_probabilities(Identity(), x, intensity_scales=(1.0,))
    assert probs.shape == (4, 1, 16, 12) and torch.allclose(probs, torch.sigmoid(x)[None].expand(4, -1, -1, -1))
    assert tta_uncertainty(probs, spacing_mm=(0.5, 0.5))["variance_mm2"] == pytest.approx(0.0, abs=1e-9)
    two = torch.stack([torch.zeros(1, 4, 5), torch.ones(1, 4, 5)])  # every pixel: variance 0.25
    u = tta_uncertainty(two, spacing_mm=(0.5, 2.0))
    assert u["variance_mm2"] == pytest.approx(0.25 * 20 * 1.0) and u["disagreement_mm2"] == pytest.approx(20.0)
    assert tta_uncertainty(two, image=MetaTensor(x, meta={"spacing_mm": (1.0, 1.0)}))["mean_variance"] == 0.25
    with pytest.raises(ValueError, match="spacing_mm"):
        tta_uncertainty(two)
    scaled = tta_probabilities(Identity(), x, flips=((),), intensity_scales=(1.0, 2.0))
    assert torch.allclose(scaled[1], torch.sigmoid(2 * x))

"""The MONAI Label app with a REAL PACS as its studies: Orthanc + its DICOMweb plugin (Debian's packages) on
loopback, holding the tiny phantom cohort, and ``monailabel start_server --studies http://127.0.0.1:<port>/dicom-web``.

The server runs with every proxy variable pointing at a closed port (loopback excepted): anything it
tried to download at start-up or later (MONAI Label fetches dcmqi from GitHub for DICOMweb studies)
would fail. Tests talk HTTP only (the app's endpoints as Slicer's client calls them, Orthanc's
DICOMweb and REST APIs), run in file order and share both servers (stopped in teardown).

One label is saved through the app (``PUT /datastore/label``, as Slicer / OHIF do), one is stored in
the PACS directly by "another workstation" (a SEG written by ``monai_bac.dicom_seg``, STOW-RS to
Orthanc): the app must see both as labelled, serve both, and train on both.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

requests = pytest.importorskip("requests")
pytest.importorskip("monailabel")
pytest.importorskip("highdicom")

from conftest import REPO, assert_dciodvfy_passes  # noqa: E402
from monailabel_utils import start_server, stop_server  # noqa: E402
from orthanc_utils import missing_reason, start_orthanc, stop_orthanc  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.label, pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))]

APP = REPO / "monailabel_app"
TIMEOUT = 120  # seconds, per HTTP request
SAVED = "PH000-0000_LCC"  # labelled through the app
ELSEWHERE = "PH000-0001_RCC"  # labelled by another workstation, straight into the PACS
INFERRED = "PH000-0002_LMLO"
DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, every proxied request fails


@pytest.fixture(scope="module")
def pacs(tmp_path_factory, phantom_cohort):
    """Orthanc with the cohort's mammograms; yields (server, {phantom name: (study, series, SOP instance UID)})."""
    import pydicom

    orthanc = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    try:
        uids = {}
        for dcm in sorted((phantom_cohort / "images").glob("*.dcm")):
            orthanc.upload(dcm)
            ds = pydicom.dcmread(dcm, stop_before_pixels=True)
            uids[dcm.stem] = (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
        yield orthanc, uids
    finally:
        stop_orthanc(orthanc)


@pytest.fixture(scope="module")
def unserved(pacs, phantom_cohort, tmp_path_factory) -> dict[str, str]:
    """The processed (FOR PRESENTATION) rendition of one raw mammogram, stored beside it in the PACS as
    sites that archive raw images hold both, a tomosynthesis object and a magnification view of the
    same view; returns the SOPInstanceUIDs of the rendition and of the magnification view."""
    import pydicom
    from pydicom.uid import generate_uid

    from monai_bac.presentation import write_presentation

    orthanc, _ = pacs
    folder = tmp_path_factory.mktemp("rendition")
    path = write_presentation(phantom_cohort / "images" / f"{INFERRED}.dcm", folder / "processed.dcm")
    orthanc.upload(path)
    # and a tomosynthesis object of the same view (Modality MG too; here its header on a 2D image)
    ds = pydicom.dcmread(phantom_cohort / "images" / f"{INFERRED}.dcm")
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.13.1.3"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(folder / "tomosynthesis.dcm")
    orthanc.upload(folder / "tomosynthesis.dcm")
    # and a magnification view (raw, on a stand: 1.8 x)
    ds = pydicom.dcmread(phantom_cohort / "images" / f"{INFERRED}.dcm")
    ds.EstimatedRadiographicMagnificationFactor = "1.8"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(folder / "magnified.dcm")
    orthanc.upload(folder / "magnified.dcm")
    # and the projections of a tomosynthesis acquisition of that view (a real Breast Projection X-Ray Image)
    from monai_bac.data import read_dicom_mammogram
    from monai_bac.data.dicom_write_projection import write_breast_projection_dicom

    raw = pydicom.dcmread(phantom_cohort / "images" / f"{INFERRED}.dcm")
    _, m = read_dicom_mammogram(phantom_cohort / "images" / f"{INFERRED}.dcm")
    projections = write_breast_projection_dicom(
        folder / "projections.dcm", np.stack([raw.pixel_array] * 3), angles_deg=[-10, 0, 10],
        spacing_mm=m["spacing_mm"], kvp=m["kvp"], thickness_mm=m["thickness_mm"], anode=m["anode"],
        filter=m["filter"], view=m["view"], laterality=m["laterality"], manufacturer=m["manufacturer"],
        photometric=m["photometric"], bits_stored=m["bits_stored"], study_uid=raw.StudyInstanceUID)
    orthanc.upload(projections)
    return {"rendition": str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID),
            "magnified": str(ds.SOPInstanceUID),
            "projections": str(pydicom.dcmread(projections, stop_before_pixels=True).SOPInstanceUID)}


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_bundle, phantom_cohort, pacs):
    orthanc, _ = pacs
    root = tmp_path_factory.mktemp("monailabel_pacs")
    bundle = root / "bundle"
    shutil.copytree(tiny_bundle / "configs", bundle / "configs")
    shutil.copytree(tiny_bundle / "models", bundle / "models", ignore=shutil.ignore_patterns("checkpoint_epoch=*.pt"))
    # the recipe's own datalist is never trained on here (the app hands it the PACS labels), but the config
    # evaluates it: name an existing one so that it does not generate its default phantom cohort (a minute)
    train = json.loads((bundle / "configs" / "train.json").read_text())
    train["datalist_file"] = str(phantom_cohort / "datalist.json")
    (bundle / "configs" / "train.json").write_text(json.dumps(train, indent=2))
    app = root / "app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__", "model", "logs", "bin"))
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MONAI_LABEL_AUTO_UPDATE_SCORING": "false",
           "MONAI_LABEL_SESSION_PATH": str(root / "sessions"), "MONAI_LABEL_DICOMWEB_CACHE_PATH": str(root / "cache"),
           **{k: DEAD_PROXY for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY")},
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    srv = start_server(app, orthanc.dicomweb, {"models": "bac", "bundle_path": str(bundle)}, root / "server.log", env)
    srv.cache = root / "cache"  # the app's copies of PACS images and decoded labels
    try:
        yield srv
    finally:
        stop_server(srv)
        log = srv.log.read_text(errors="replace")
        assert "Exception in ASGI application" not in log, srv.log_tail(120)


def _get(server, path, **kw):
    return requests.get(server.url + path, timeout=TIMEOUT, **kw)


def _post(server, path, **kw):
    return requests.post(server.url + path, timeout=TIMEOUT, **kw)


def _put_label(server, image_id: str, path: Path, tag: str = "final"):
    with open(path, "rb") as f:
        return requests.put(f"{server.url}/datastore/label", params={"image": image_id, "tag": tag},
                            files={"label": (path.name, f)}, timeout=TIMEOUT)


def _mask(path: Path) -> np.ndarray:
    from monai_bac.data import load_label

    return np.asarray(load_label(path)[0]).astype(np.uint8)


def _pacs_segs(orthanc) -> list:
    """Every SEG instance in Orthanc, read back as files (Orthanc's REST API, not the app)."""
    import io

    import pydicom

    found = requests.get(f"{orthanc.dicomweb}/instances", params={"Modality": "SEG"}, timeout=30).json()
    segs = []
    for item in found:
        uid = item["00080018"]["Value"][0]
        ids = requests.post(f"{orthanc.url}/tools/lookup", data=uid, timeout=30).json()
        content = requests.get(f"{orthanc.url}/instances/{ids[0]['ID']}/file", timeout=30).content
        segs.append(pydicom.dcmread(io.BytesIO(content)))
    return segs


def _referenced(seg) -> tuple[str, str]:
    series = seg.ReferencedSeriesSequence[0]
    return str(series.SeriesInstanceUID), str(series.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID)


# --------------------------------------------------------------------------------------------
def test_started_without_downloading_and_lists_the_pacs_mammograms(server, pacs, unserved):
    """Every raw screening mammogram is listed and served; a processed rendition, a tomosynthesis object,
    a tomosynthesis projection set and a magnification view are not."""
    orthanc, uids = pacs
    assert not (server.app / "bin").is_dir() or not any((server.app / "bin").iterdir()), "nothing downloaded"
    r = _get(server, "/datastore/", params={"output": "all"})
    assert r.status_code == 200, r.text
    objects = r.json()["objects"]
    assert set(objects) == {sop for _, _, sop in uids.values()}
    study, series, sop = uids[SAVED]
    info = objects[sop]["image"]["info"]
    assert info["StudyInstanceUID"] == study and info["SeriesInstanceUID"] == series and "path" not in info
    assert _get(server, "/datastore/").json()["total"] == len(uids)
    import io

    import pydicom

    served = [_get(server, "/datastore/image", params={"image": uid}) for uid in (sop, series)]  # by series too
    assert all(r.status_code == 200 for r in served) and served[0].content == served[1].content
    assert pydicom.dcmread(io.BytesIO(served[0].content)).SOPInstanceUID == sop
    r = _get(server, "/datastore/image", params={"image": "1.2.3.4.5"})
    assert r.status_code == 404 and "not a mammogram" in r.json()["detail"]
    for kind, words in (("rendition", "is a processed (FOR PRESENTATION) mammogram"),
                        ("magnified", "is a diagnostic view (magnified 1.8 x)"),
                        ("projections", "is a tomosynthesis projection set (Breast Projection X-Ray Image)")):
        r = _get(server, "/datastore/image", params={"image": unserved[kind]})
        assert r.status_code == 404 and words in r.json()["detail"], r.text
        assert requests.get(f"{orthanc.dicomweb}/instances", params={"SOPInstanceUID": unserved[kind]},
                            timeout=30).json()  # it is in the PACS


def _infer_params(server, sop: str) -> dict:
    """The result's params of ``POST /infer/bac`` on a PACS image."""
    from requests_toolbelt.multipart.decoder import MultipartDecoder

    r = _post(server, "/infer/bac", params={"image": sop})
    assert r.status_code == 200, r.text
    parts = {p.headers[b"Content-Disposition"].decode().split('name="')[1].split('"')[0]: p.content
             for p in MultipartDecoder(r.content, r.headers["content-type"]).parts}
    return json.loads(parts["params"])


def test_infer_on_a_pacs_image(server, pacs):
    import pydicom

    _, uids = pacs
    sop = uids[INFERRED][2]
    params = _infer_params(server, sop)
    cached = pydicom.dcmread(next(server.cache.rglob(f"{sop}.dcm")), stop_before_pixels=True)
    assert params["shape"] == [cached.Rows, cached.Columns] and cached.SOPInstanceUID == sop
    assert np.allclose(params["spacing_mm"], [float(s) for s in cached.ImagerPixelSpacing])


def test_save_label_stores_a_seg_referencing_the_image_in_the_pacs(server, pacs, phantom_cohort, tmp_path):
    from monai_bac.data import save_mask_nifti
    from monai_bac.dicom_seg import read_dicom_seg

    orthanc, uids = pacs
    study, series, sop = uids[SAVED]
    gt = phantom_cohort / "labels" / "gt" / f"{SAVED}.nii.gz"
    expected = _mask(gt)
    assert expected.any()
    # a label of the wrong size is refused and nothing reaches the PACS
    small = save_mask_nifti(tmp_path / "small.nii.gz", np.ones((10, 12), np.uint8), (1.0, 1.0))
    r = _put_label(server, sop, small)
    assert r.status_code == 422 and "10 x 12" in r.json()["detail"], r.text
    assert _pacs_segs(orthanc) == []
    r = _put_label(server, sop, gt)
    assert r.status_code == 200, r.text
    assert r.json()["label"] == sop
    segs = _pacs_segs(orthanc)
    assert len(segs) == 1
    seg = segs[0]
    assert seg.Modality == "SEG" and seg.StudyInstanceUID == study and _referenced(seg) == (series, sop)
    assert seg.SeriesDescription == "BAC label (MONAI Label, final)"
    path = tmp_path / "seg.dcm"
    seg.save_as(path)
    assert np.array_equal(read_dicom_seg(path), expected)  # pixel for pixel
    # drawn without the model's prediction (the app served none of this image): MANUAL, no algorithm named
    segment = seg.SegmentSequence[0]
    assert segment.SegmentAlgorithmType == "MANUAL" and not segment.get("SegmentationAlgorithmIdentificationSequence")
    assert seg.ContentCreatorName == ""  # authentication off: no verified person (tested below with one)
    assert_dciodvfy_passes(path)  # as the PACS returns it
    # corrected from the model's prediction, as in Slicer (Next Sample, Run, edit, Submit): SEMIAUTOMATIC, with
    # the model that made the prediction; the PACS keeps both SEGs and the newest is the image's label
    model = _infer_params(server, sop)["model"]["id"]
    assert _put_label(server, sop, gt).status_code == 200
    corrected = [s for s in _pacs_segs(orthanc) if s.SOPInstanceUID != seg.SOPInstanceUID]
    assert len(corrected) == 1
    segment = corrected[0].SegmentSequence[0]
    assert segment.SegmentAlgorithmType == "SEMIAUTOMATIC"
    ident = segment.SegmentationAlgorithmIdentificationSequence[0]
    assert (ident.AlgorithmName, ident.AlgorithmParameters) == ("monai-bac", f"model={model}")
    corrected[0].save_as(tmp_path / "semiautomatic.dcm")
    assert_dciodvfy_passes(tmp_path / "semiautomatic.dcm")
    objects = _get(server, "/datastore/", params={"output": "all"}).json()["objects"]
    label = objects[sop]["labels"]["final"]["info"]
    assert (label["SOPInstanceUID"], label["SegmentAlgorithmType"]) == (corrected[0].SOPInstanceUID, "SEMIAUTOMATIC")


def test_get_label_back(server, pacs, phantom_cohort, tmp_path):
    _, uids = pacs
    sop = uids[SAVED][2]
    r = _get(server, "/datastore/label", params={"label": sop, "tag": "final"})
    assert r.status_code == 200, r.text
    got = tmp_path / "label.nii.gz"
    got.write_bytes(r.content)
    assert np.array_equal(_mask(got), _mask(phantom_cohort / "labels" / "gt" / f"{SAVED}.nii.gz"))
    r = _get(server, "/datastore/label", params={"label": uids[INFERRED][2], "tag": "final"})
    assert r.status_code == 404 and "no BAC label" in r.json()["detail"]
    r = requests.delete(f"{server.url}/datastore/label", params={"id": sop, "tag": "final"}, timeout=TIMEOUT)
    assert r.status_code == 403 and "PACS" in r.json()["detail"]  # the PACS is the archive


def test_a_seg_stored_by_another_workstation_is_read_from_the_pacs(server, pacs, phantom_cohort, tmp_path):
    import pydicom
    from pydicom.uid import generate_uid

    from monai_bac.dicom_seg import write_dicom_seg

    orthanc, uids = pacs
    sop = uids[ELSEWHERE][2]
    expected = _mask(phantom_cohort / "labels" / "tpa" / f"{ELSEWHERE}.nii.gz")
    seg = write_dicom_seg(tmp_path / "other.dcm", expected, phantom_cohort / "images" / f"{ELSEWHERE}.dcm",
                          algorithm_type="MANUAL")
    # as a viewer writes it (OHIF, Slicer): the annotator's label "BAC" under a generic property type
    ds = pydicom.dcmread(seg)
    code = ds.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0]
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "85756007", "SCT", "Tissue"
    ds.save_as(seg)
    orthanc.upload(seg)
    r = _get(server, "/datastore/label", params={"label": sop, "tag": "final"})
    assert r.status_code == 200, r.text
    got = tmp_path / "label.nii.gz"
    got.write_bytes(r.content)
    assert np.array_equal(_mask(got), expected)
    # a SEG of something else (here: the breast) made by another tool does not make an image labelled
    breast = write_dicom_seg(tmp_path / "breast.dcm", np.ones_like(expected),
                             phantom_cohort / "images" / f"{INFERRED}.dcm")
    ds = pydicom.dcmread(breast)
    code = ds.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0]
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "76752008", "SCT", "Breast"
    ds.SegmentSequence[0].SegmentLabel = "Breast"
    ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(breast)
    orthanc.upload(breast)
    status = _get(server, "/datastore/").json()
    assert status["completed"] == 2 and status["label_tags"]["final"] == 2
    listed = _get(server, "/datastore/", params={"output": "all"}).json()["objects"][sop]["labels"]["final"]["info"]
    assert listed["SegmentAlgorithmType"] == "MANUAL"
    r = _get(server, "/datastore/label", params={"label": uids[INFERRED][2], "tag": "final"})
    assert r.status_code == 404, r.text


def test_active_learning_never_hands_out_a_labelled_image(server, pacs):
    _, uids = pacs
    labelled = {uids[SAVED][2], uids[ELSEWHERE][2]}
    unlabelled = {sop for _, _, sop in uids.values()} - labelled
    handed = []
    for _ in unlabelled:  # MONAI Label's random strategy holds back what it handed out this second
        r = _post(server, "/activelearning/random", json={})
        assert r.status_code == 200, r.text
        answer = r.json()
        assert str(server.cache) not in json.dumps(answer)  # no server folder in the answer
        handed.append(answer["id"])
    assert set(handed) == unlabelled, "each unlabelled image once, never a labelled one"


def test_a_spot_view_taken_in_contact_leaves_the_list_once_its_header_is_read(server, pacs, phantom_cohort,
                                                                             tmp_path):
    """A raw spot compression view without a magnification factor says what it is only in
    ViewModifierCodeSequence (0054,0222), which Orthanc's QIDO-RS does not return: it is listed until first
    retrieved. Active learning, drawing it, reads its header, draws again and hands out a screening view;
    from then on the view is not listed and answers 404 saying why."""
    import pydicom
    from pydicom.uid import generate_uid

    from monai_bac.data.dicom_tags import code_item

    orthanc, _ = pacs
    ds = pydicom.dcmread(phantom_cohort / "images" / f"{INFERRED}.dcm")
    ds.ViewCodeSequence[0].ViewModifierCodeSequence = [code_item("399055006", "SCT", "Spot Compression")]
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(tmp_path / "spot.dcm")
    orthanc.upload(tmp_path / "spot.dcm")
    spot = str(ds.SOPInstanceUID)
    assert _get(server, "/datastore/image", params={"image": "1.2.3.4.5"}).status_code == 404  # lists the PACS again
    assert spot in _get(server, "/datastore/", params={"output": "all"}).json()["objects"]
    drawn = f"image '{spot}' is a diagnostic view (a spot compression view)"
    for _ in range(20):  # never handed out, the spot view weighs most in the random draw
        r = _post(server, "/activelearning/random", json={})
        assert r.status_code == 200 and r.json()["id"] != spot, r.text
        if drawn in server.log.read_text(errors="replace"):
            break
    assert f"{drawn}: the app segments and labels raw (FOR PROCESSING) screening views; GET /datastore/?output=all " \
           "lists them; drawing again" in server.log.read_text(errors="replace")
    assert spot not in _get(server, "/datastore/", params={"output": "all"}).json()["objects"]
    r = _get(server, "/datastore/image", params={"image": spot})
    assert r.status_code == 404 and drawn in r.json()["detail"], r.text
    # a datastore started again on the same cache folder (a restarted server) does not list it either
    import sys

    sys.path.insert(0, str(APP))
    try:
        from lib.dicomweb import BACDicomWebDatastore, dicomweb_client
    finally:
        sys.path.remove(str(APP))
    again = BACDicomWebDatastore(dicomweb_client(orthanc.dicomweb), cache_path=str(server.cache))
    listed = set(again.list_images())
    assert spot not in listed
    assert listed == set(_get(server, "/datastore/", params={"output": "all"}).json()["objects"])
    # the cache's index shared with another process (the server's background scoring holds one): an image
    # the server hands out now is kept when the other process writes a score, and the score is served at once
    handed_out = _post(server, "/activelearning/random", json={}).json()["id"]
    scored = sorted(listed - {handed_out})[0]
    again.update_image_info(scored, {"bac_tta_uncertainty": {"score": 12.5}})
    objects = _get(server, "/datastore/", params={"output": "all"}).json()["objects"]
    assert objects[scored]["image"]["info"]["bac_tta_uncertainty"] == {"score": 12.5}
    mark = objects[handed_out]["image"]["info"]["strategy"]["random"]
    assert mark["ts"] >= int(time.time()) - 60, mark


def test_training_on_the_labels_from_the_pacs(server, pacs, phantom_cohort):
    """A training run as Slicer starts it (a background task process of its own), on the labels read from the
    PACS: the app's cache of decoded labels is emptied first, so they must come from the SEGs."""
    import hashlib

    model = server.bundle / "models" / "model.pt"
    before = hashlib.sha256(model.read_bytes()).hexdigest()
    for cached in server.cache.rglob("labels/final/*.nii.gz"):
        cached.unlink()
    r = _post(server, "/train/bac", json={"max_epochs": 1})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 300
    task = r.json()
    while task.get("status") not in ("DONE", "ERROR") and time.monotonic() < deadline:
        time.sleep(2)
        task = _get(server, "/train/").json()
    details = "\n".join(task.get("details") or [])
    assert task.get("status") == "DONE", details[-3000:]
    result = json.loads(next(line for line in reversed(task["details"]) if "Result: " in line).split("Result: ", 1)[1])
    assert result["labels"] == 2 and result["trained"] is True
    assert hashlib.sha256(model.read_bytes()).hexdigest() != before, "one epoch must change the weights"
    _, uids = pacs
    for name, source in ((SAVED, "gt"), (ELSEWHERE, "tpa")):
        decoded = next(server.cache.rglob(f"labels/final/{uids[name][2]}.nii.gz"))
        assert np.array_equal(_mask(decoded), _mask(phantom_cohort / "labels" / source / f"{name}.nii.gz"))


def test_a_label_saved_by_a_verified_annotator_names_them_in_its_seg(server, pacs, phantom_cohort, tmp_path):
    """With MONAI Label's authentication on, the app's token check notes who the request's token names
    (lib.annotator, over HTTP: tests/test_monailabel_security.py); the SEG stored in the PACS then says so in
    ContentCreatorName (0070,0084). Run here as the save would run inside such a request."""
    import contextvars
    import sys

    sys.path.insert(0, str(APP))
    try:
        from lib.annotator import note_verified
        from lib.dicomweb import BACDicomWebDatastore, dicomweb_client
    finally:
        sys.path.remove(str(APP))
    orthanc, uids = pacs
    sop = uids[SAVED][2]
    before = {s.SOPInstanceUID for s in _pacs_segs(orthanc)}
    store = BACDicomWebDatastore(dicomweb_client(orthanc.dicomweb), cache_path=str(server.cache))
    claims = {"preferred_username": "jdoe", "name": "Jane Doe", "given_name": "Jane", "family_name": "Doe"}

    def save_in_a_verified_request():
        note_verified(claims, "preferred_username", "name")
        store.save_label(sop, str(phantom_cohort / "labels" / "gt" / f"{SAVED}.nii.gz"), "final", {})

    contextvars.copy_context().run(save_in_a_verified_request)
    new = [s for s in _pacs_segs(orthanc) if s.SOPInstanceUID not in before]
    assert len(new) == 1 and new[0].ContentCreatorName == "Doe^Jane"
    new[0].save_as(tmp_path / "by_jane.dcm")
    assert_dciodvfy_passes(tmp_path / "by_jane.dcm")
    assert store.get_label_info(sop, "final")["annotator"] == {"username": "jdoe", "name": "Jane Doe",
                                                               "person_name": "Doe^Jane"}

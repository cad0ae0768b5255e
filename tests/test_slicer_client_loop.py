"""3D Slicer's MONAI Label loop against a REAL server, checked in Slicer's geometry.

The requests are the ones the Slicer module (Project-MONAI/MONAILabel ``plugins/slicer/MONAILabel``)
makes through MONAI Label's own Python client: next sample (active learning), the image from
``/datastore/image?image=``, inference with ``result_extension=.nrrd`` and ``result_dtype=uint8``,
the edited segmentation saved as a labelmap ``.nii.gz`` on the image's grid (the module's default
file extension) with its ``label_info``, training with the trainer's config from ``/info``, and the
next sample. The studies are raw DICOM MG phantoms at 0.4 mm: one without ImagePositionPatient /
ImageOrientationPatient, and copies of its pixels placed in patient space with the rows and
columns reversed (flipped) or swapped (turned); the bundle is the session's tiny one.

Slicer reads every file with ITK: voxel index -> LPS mm by origin, spacing and direction, and
shows it in RAS = diag(-1, -1, 1) LPS. A label overlays its image when each of its voxels lands,
through the label's index -> RAS and the image's RAS -> index, on an image pixel, with the same
values as the app's prediction in the mammogram's pixel order (``monai_bac.data.load_label``) and
with the phantom's known BAC pixels labelled. Flipped and transposed copies fail the same check.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

requests = pytest.importorskip("requests")
itk = pytest.importorskip("itk")
nrrd = pytest.importorskip("nrrd")
pytest.importorskip("monailabel")

from conftest import REPO  # noqa: E402
from monailabel_utils import start_server, stop_server  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.label]

APP = REPO / "monailabel_app"
SPACING_MM = 0.4
PLAIN_ID = "SL000-0000_LCC"  # no ImagePositionPatient / ImageOrientationPatient (the usual raw MG)
FLIPPED_ID = "SL000-0001_LMLO_flipped"  # placed in patient space, rows and columns reversed
TURNED_ID = "SL000-0002_RCC_turned"  # rows along x, columns along y: the image transposed in patient space
#: the same pixels placed in patient space: (ImagePositionPatient, ImageOrientationPatient)
PLACEMENTS = {FLIPPED_ID: ([12.5, -30.0, 4.0], [-1, 0, 0, 0, -1, 0]),
              TURNED_ID: ([-20.0, 5.0, -2.0], [0, 1, 0, 1, 0, 0])}
LABELLED_IDS = (PLAIN_ID, *PLACEMENTS)
UNLABELLED_IDS = ("SL001-0000_RCC", "SL001-0001_RMLO")
#: what MONAILabelLogic.infer adds to every request of the Slicer module
SLICER_INFER_PARAMS = {"result_extension": ".nrrd", "result_dtype": "uint8"}
#: the ``space`` ITK / Slicer write into a NRRD
LPS_SPACE = "left-posterior-superior"
RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


# --- the studies: raw phantoms with known BAC ---------------------------------------------------
def _write_phantom(path: Path, seed: int, view: str, laterality: str) -> np.ndarray:
    """A raw DICOM MG phantom at ``path``; returns its truth BAC mask (H, W)."""
    from monai_bac.data.dicom_io import write_mammogram_dicom
    from monai_bac.phantom import make_phantom

    ph = make_phantom(seed, view=view, laterality=laterality, spacing_mm=SPACING_MM, has_bac=True)
    m = ph.meta
    write_mammogram_dicom(path, ph.raw, spacing_mm=m["spacing_mm"], kvp=m["kvp"], thickness_mm=m["thickness_mm"],
                          anode=m["anode"], filter=m["filter"], view=m["view"], laterality=m["laterality"],
                          manufacturer=m["manufacturer"], presentation=m["presentation"],
                          photometric=m["photometric"], bits_stored=m["bits_stored"], patient_id=path.stem[:5])
    return np.asarray(ph.bac_mask) > 0


@pytest.fixture(scope="module")
def loop(tmp_path_factory, tiny_bundle, phantom_cohort):
    """(server, truth BAC mask (H, W) of the two labelled images) for a studies folder of 0.4 mm phantoms."""
    import pydicom

    root = tmp_path_factory.mktemp("slicer")
    studies = root / "studies"
    studies.mkdir()
    truth = _write_phantom(studies / f"{PLAIN_ID}.dcm", 11, "CC", "L")
    # the same pixels placed in patient space: the same prediction in pixel order, shown turned in Slicer
    for image_id, (position, orientation) in PLACEMENTS.items():
        ds = pydicom.dcmread(studies / f"{PLAIN_ID}.dcm")
        ds.ImagePositionPatient = position
        ds.ImageOrientationPatient = orientation
        ds.save_as(studies / f"{image_id}.dcm")
    for seed, image_id in enumerate(UNLABELLED_IDS, start=13):
        _write_phantom(studies / f"{image_id}.dcm", seed, image_id.rsplit("_", 1)[1][1:], "R")
    bundle = root / "bundle"
    shutil.copytree(tiny_bundle / "configs", bundle / "configs")
    shutil.copytree(tiny_bundle / "models", bundle / "models", ignore=shutil.ignore_patterns("checkpoint_epoch=*.pt"))
    # the recipe's own dataset: without one, fine-tuning first generates the CPU profile's phantom cohort (minutes)
    recipe = json.loads((bundle / "configs" / "train.json").read_text())
    recipe["dataset_dir"] = str(phantom_cohort)
    (bundle / "configs" / "train.json").write_text(json.dumps(recipe, indent=4))
    app = root / "app"  # start_server creates model/, logs/, bin/ in the app folder: use a copy
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__", "model", "logs", "bin"))
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MONAI_LABEL_AUTO_UPDATE_SCORING": "false",
           "MONAI_LABEL_SESSION_PATH": str(root / "sessions")}
    server = start_server(app, studies, {"models": "bac", "bundle_path": str(bundle)}, root / "server.log", env)
    try:
        yield server, truth
    finally:
        stop_server(server)
        assert "Exception in ASGI application" not in server.log.read_text(errors="replace"), server.log_tail(120)


@pytest.fixture(scope="module")
def client(loop, tmp_path_factory):
    from monailabel.client import MONAILabelClient

    # the module's client id: its "Client/User-ID" setting, "user-xyz" unless the annotator changes it
    return MONAILabelClient(loop[0].url, tmpdir=str(tmp_path_factory.mktemp("slicer_client")), client_id="user-xyz")


# --- Slicer's reading of a file ------------------------------------------------------------------
class SlicerVolume:
    """A file as 3D Slicer loads it (ITK): voxels ``[k, j, i]`` and the voxel (i, j, k) -> RAS matrix."""

    def __init__(self, path: str | Path):
        reader = itk.ImageFileReader[itk.Image[itk.F, 3]].New(FileName=str(path))  # Slicer's volumes are 3D
        reader.Update()
        image = reader.GetOutput()
        self.voxels = np.asarray(itk.array_from_image(image))
        self.origin = np.asarray(image.GetOrigin(), dtype=float)
        self.spacing = np.asarray(image.GetSpacing(), dtype=float)
        self.direction = np.asarray(itk.array_from_matrix(image.GetDirection()), dtype=float)
        ijk_to_lps = np.eye(4)
        ijk_to_lps[:3, :3] = self.direction * self.spacing
        ijk_to_lps[:3, 3] = self.origin
        self.ijk_to_ras = RAS_FROM_LPS @ ijk_to_lps

    @property
    def size(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.voxels.shape[::-1])  # (i, j, k)

    def same_grid(self, other: "SlicerVolume") -> bool:
        return (self.size == other.size and np.allclose(self.origin, other.origin, atol=1e-4)
                and np.allclose(self.spacing, other.spacing, rtol=1e-6)
                and np.allclose(self.direction, other.direction, atol=1e-6))


def image_index_of(label: SlicerVolume, image: SlicerVolume, ijk: np.ndarray) -> np.ndarray:
    """Image voxel indices (N, 3) of label voxel indices ``ijk`` (N, 3): label index -> RAS -> image index."""
    homogeneous = np.c_[np.asarray(ijk, dtype=float), np.ones(len(ijk))]
    ras = homogeneous @ label.ijk_to_ras.T
    return (ras @ np.linalg.inv(image.ijk_to_ras).T)[:, :3]


def on_image_pixels(label: SlicerVolume, image: SlicerVolume) -> np.ndarray | None:
    """The label as Slicer overlays it on the image, in the mammogram's pixel order [row, col];
    None when a labelled voxel does not land on an image pixel (off the grid or outside the image)."""
    k, j, i = np.nonzero(label.voxels)
    where = image_index_of(label, image, np.c_[i, j, k])
    index = np.rint(where).astype(int)
    off_grid = not np.allclose(where, index, atol=1e-3)
    if off_grid or (index < 0).any() or (index >= np.asarray(image.size)).any():
        return None
    cols, rows, _ = image.size
    out = np.zeros((rows, cols), dtype=np.uint8)
    out[index[:, 1], index[:, 0]] = label.voxels[k, j, i]
    return out


def overlays(label: SlicerVolume, image: SlicerVolume, expected_hw: np.ndarray) -> bool:
    placed = on_image_pixels(label, image)
    return placed is not None and np.array_equal(placed > 0, np.asarray(expected_hw) > 0)


def known_bac_pixel(truth_hw: np.ndarray) -> tuple[int, int]:
    """(row, col) of the truth BAC pixel deepest inside a calcified run (not on an edge)."""
    from scipy.ndimage import distance_transform_edt

    depth = distance_transform_edt(truth_hw)
    row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
    assert truth_hw[row, col], "the phantom has no BAC"
    return int(row), int(col)


def bac_pixel_lands(label: SlicerVolume, image: SlicerVolume, row: int, col: int) -> bool:
    """The label voxel (i, j) = (col, row) lands on image pixel (row, col) and is labelled there."""
    ijk = np.array([[col, row, 0]])
    where = image_index_of(label, image, ijk)[0]
    landed = np.allclose(where, [col, row, 0], atol=1e-3)
    inside = all(0 <= v < n for v, n in zip((col, row, 0), label.size))
    return bool(landed and inside and label.voxels[0, row, col] == 1)


def wrongly_placed(label_path: Path, out_dir: Path) -> dict[str, Path]:
    """Copies of a label whose voxels are flipped left-right, up-down, or transposed, geometry kept."""
    reader = itk.ImageFileReader[itk.Image[itk.UC, 3]].New(FileName=str(label_path))
    reader.Update()
    source = reader.GetOutput()
    voxels = np.asarray(itk.array_from_image(source))
    copies = {}
    for name, moved in (("flipped_lr", voxels[:, :, ::-1]), ("flipped_ud", voxels[:, ::-1, :]),
                        ("transposed", voxels.transpose(0, 2, 1))):
        image = itk.image_from_array(np.ascontiguousarray(moved))
        image.SetOrigin(source.GetOrigin())
        image.SetSpacing(source.GetSpacing())
        image.SetDirection(source.GetDirection())
        copies[name] = out_dir / f"{name}{''.join(label_path.suffixes)}"
        itk.imwrite(image, str(copies[name]))
    return copies


def slicer_labelmap(image: SlicerVolume, mask_hw: np.ndarray, path: Path) -> Path:
    """What the module uploads: the segmentation exported as a labelmap on the image (its reference
    volume) and saved with the module's default extension, .nii.gz, by ITK."""
    labelmap = itk.image_from_array(np.ascontiguousarray(mask_hw.astype(np.uint8)[None]))
    labelmap.SetOrigin(image.origin.tolist())
    labelmap.SetSpacing(image.spacing.tolist())
    labelmap.SetDirection(itk.matrix_from_array(np.ascontiguousarray(image.direction)))
    itk.imwrite(labelmap, str(path), compression=True)
    return path


def slicer_params(info: dict, section: str, name: str) -> dict:
    """MONAILabelWidget.getParamsFromConfig: a task's config from /info, first choice of each list."""
    config = info.get(section, {}).get(name, {}).get("config", {})
    return {k: v[0] if isinstance(v, list) else v for k, v in config.items()}


def fetch_image(server, image_id: str, out: Path) -> Path:
    """The module's download when the image is not shared locally: GET /datastore/image?image=<id>."""
    r = requests.get(f"{server.url}/datastore/image", params={"image": image_id}, timeout=60)
    assert r.status_code == 200, r.text
    out.write_bytes(r.content)
    return out


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --- the loop ------------------------------------------------------------------------------------
def test_next_sample_and_image_download(loop, client, tmp_path):
    server, _ = loop
    info = client.info()
    sample = client.next_sample("random", slicer_params(info, "strategies", "random"))
    assert sample.get("id") in {*LABELLED_IDS, *UNLABELLED_IDS}, sample
    downloaded = fetch_image(server, sample["id"], tmp_path / f"{sample['id']}.dcm")
    assert _sha(downloaded) == _sha(server.studies / f"{sample['id']}.dcm")


@pytest.mark.parametrize("image_id", LABELLED_IDS)
def test_infer_nrrd_overlays_the_image_in_slicer(loop, client, tmp_path, image_id):
    """The .nrrd Slicer asks for sits on the image's grid and equals the prediction in pixel order."""
    from monai_bac.data import load_label

    server, truth = loop
    info = client.info()
    image = SlicerVolume(fetch_image(server, image_id, tmp_path / f"{image_id}.dcm"))
    params = {**slicer_params(info, "models", "bac"), **SLICER_INFER_PARAMS}
    label_file, result = client.infer("bac", image_id, params)
    assert label_file.endswith(".nrrd"), label_file
    voxels, header = nrrd.read(label_file)
    assert header["space"] == LPS_SPACE and header["type"] in ("uint8", "unsigned char"), header
    assert voxels.shape == image.size, (voxels.shape, image.size)  # pynrrd: (i, j, k)
    assert np.allclose(header["space origin"], image.origin)
    assert np.allclose(header["space directions"], (image.direction * image.spacing).T)
    label = SlicerVolume(label_file)
    assert label.same_grid(image), (label.origin, label.spacing, label.direction, image.origin, image.direction)
    assert set(np.unique(label.voxels)) <= {0, 1} and result["bac_pixels"] == int(label.voxels.sum())

    # the reference: the NIfTI answer (the app's default) for the image without orientation, read in
    # the mammogram's pixel order by monai_bac's loader; the placed copies have the same pixels
    plain_nifti, _ = client.infer("bac", PLAIN_ID, {**params, "result_extension": ".nii.gz"})
    assert plain_nifti.endswith(".nii.gz")
    prediction = np.asarray(load_label(plain_nifti)[0])
    assert 0 < prediction.sum() < prediction.size, "a prediction that cannot tell a flip from the original"
    assert overlays(label, image, prediction)
    # ".nii.gz" stays, and overlays the image in Slicer too
    nifti_file, _ = client.infer("bac", image_id, {**params, "result_extension": ".nii.gz"})
    assert nifti_file.endswith(".nii.gz") and overlays(SlicerVolume(nifti_file), image, prediction)
    row, col = known_bac_pixel(truth)
    assert np.allclose(image_index_of(label, image, np.array([[col, row, 0]]))[0], [col, row, 0])
    assert label.voxels[0, row, col] == prediction[row, col]
    # negative check: the same test fails for a label flipped or transposed on its grid
    for name, wrong in wrongly_placed(Path(label_file), tmp_path).items():
        assert not overlays(SlicerVolume(wrong), image, prediction), f"a {name} label passed the overlay check"


def test_unsupported_result_extension_is_refused(loop, client):
    from monailabel.client.client import MONAILabelClientException

    for params, words in (({"result_extension": ".png"}, ("result_extension", ".nrrd", ".nii.gz")),
                          ({"result_extension": ".nrrd", "result_dtype": "float32"}, ("result_dtype", "uint8"))):
        with pytest.raises(MONAILabelClientException) as failure:
            client.infer("bac", PLAIN_ID, params)
        assert "Status: 400" in failure.value.msg, failure.value.msg
        for word in words:
            assert word in failure.value.msg, (word, failure.value.msg)


@pytest.mark.parametrize("image_id", LABELLED_IDS)
def test_saved_label_lands_on_the_known_bac(loop, client, tmp_path, image_id):
    """The annotator paints the phantom's BAC in Slicer and submits; the label the server hands back
    (and keeps for training) has the known BAC pixel on the same image pixel."""
    from monai_bac.data import load_label

    server, truth = loop
    image = SlicerVolume(fetch_image(server, image_id, tmp_path / f"{image_id}.dcm"))
    upload = slicer_labelmap(image, truth, tmp_path / "labelmap.nii.gz")
    answer = client.save_label(image_id, str(upload), params={"label_info": [{"name": "bac", "idx": 1}],
                                                              "model": "bac"})
    assert answer.get("image") == image_id, answer
    stored_info = client.datastore()["objects"][image_id]["labels"]["final"]["info"]
    assert stored_info["bac_pixels"] == int(truth.sum()) and stored_info["shape"] == list(truth.shape)

    returned = Path(client.download_label(image_id, "final"))
    label = SlicerVolume(returned)
    assert label.same_grid(image)
    row, col = known_bac_pixel(truth)
    assert bac_pixel_lands(label, image, row, col)
    assert overlays(label, image, truth)
    for name, wrong in wrongly_placed(returned, tmp_path).items():
        moved = SlicerVolume(wrong)
        assert not overlays(moved, image, truth), f"a {name} label passed the overlay check"
        assert not bac_pixel_lands(moved, image, row, col), f"the known BAC pixel is labelled in a {name} label"

    # what the app itself reads from the stored label (for training): the truth in the mammogram's pixel order
    sys.path.insert(0, str(APP))
    try:
        from lib.geometry import read_label_like
    finally:
        sys.path.remove(str(APP))
    stored = server.studies / "labels" / "final" / f"{image_id}.nii.gz"
    mask, spacing = read_label_like(str(stored), str(server.studies / f"{image_id}.dcm"))
    assert np.array_equal(mask > 0, truth) and np.allclose(spacing, (SPACING_MM, SPACING_MM))
    if image_id == PLAIN_ID:  # no orientation: monai_bac's own loader reads it the same
        assert np.array_equal(np.asarray(load_label(stored)[0]) > 0, truth)

    # this client ran the model on the image before (test_infer_nrrd_overlays_the_image_in_slicer): the label
    # is its correction of that prediction; another annotator, who never ran it here, drew theirs
    served = client.datastore()["objects"][image_id]["image"]["info"]["bac_prediction_served"]["user-xyz"]
    assert stored_info["segment_algorithm"] == {"algorithm_type": "SEMIAUTOMATIC", "algorithm_version": served["version"],
                                                "algorithm_parameters": {"model": served["model"]}}
    if image_id == PLAIN_ID:
        from monailabel.client import MONAILabelClient

        other = MONAILabelClient(server.url, tmpdir=str(tmp_path), client_id="another-annotator")
        other.save_label(image_id, str(upload), params={"label_info": [{"name": "bac", "idx": 1}]})
        info = client.datastore()["objects"][image_id]["labels"]["final"]["info"]
        assert info["segment_algorithm"] == {"algorithm_type": "MANUAL"}
        client.save_label(image_id, str(upload), params={"label_info": [{"name": "bac", "idx": 1}]})
        info = client.datastore()["objects"][image_id]["labels"]["final"]["info"]
        assert info["segment_algorithm"]["algorithm_type"] == "SEMIAUTOMATIC"


def test_train_then_next_sample_is_unlabelled(loop, client):
    server, _ = loop
    info = client.info()
    params = {**slicer_params(info, "trainers", "bac"), "max_epochs": 1}
    weights = server.bundle / "models" / "model.pt"
    before = _sha(weights)
    client.train_start("bac", params)
    deadline = time.monotonic() + 240
    status = client.train_status()
    while status.get("status") in ("SUBMITTED", "RUNNING"):  # the module polls the same endpoint
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(1.0)
        status = client.train_status()
    assert status.get("status") == "DONE", (status, server.log_tail())
    assert _sha(weights) != before, "training did not replace the weights"
    labelled = {k for k, v in client.datastore()["objects"].items() if v["labels"].get("final")}
    assert labelled == set(LABELLED_IDS)
    sample = client.next_sample("random", slicer_params(client.info(), "strategies", "random"))
    assert sample.get("id") in UNLABELLED_IDS, sample


def test_a_client_with_the_default_temporary_folder_keeps_its_result(loop):
    """MONAI Label's client saves a result as ``<its temporary folder>/<the server's file name>``,
    and the server deletes its own result file once it has answered. With the server's file in
    the temporary folder's root, a client on the same machine with the default folder saved its
    result *onto* the server's file, and the clean-up then deleted it (seen in CI: the returned
    path did not exist). The server answers from a folder of its own, so the client's copy stays."""
    from monailabel.client import MONAILabelClient

    server, _ = loop
    started = time.time()
    label_file, params = MONAILabelClient(server.url).infer("bac", PLAIN_ID, {})
    path = Path(label_file)
    try:
        assert path.parent == Path(tempfile.gettempdir())  # where the client saves by default
        assert params["bac_pixels"] >= 0
        time.sleep(1.0)  # the server's clean-up runs after its answer
        assert path.is_file() and path.stat().st_size > 0, f"{path}: the client's result was deleted"
        # the server's file lived (and was deleted) in its own results folder
        folders = [p for p in Path(tempfile.gettempdir()).glob("monai_bac_results_*")
                   if p.is_dir() and p.stat().st_mtime >= started - 1.0]
        assert folders, "the server wrote its result into the temporary folder's root"
    finally:
        path.unlink(missing_ok=True)

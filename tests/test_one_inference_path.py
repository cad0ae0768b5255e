"""One definition of inference: the same raw DICOM through every tool gives the same mask and numbers.

The bundle's ``configs/inference.json`` is run (1) by MONAI's own bundle runner, (2) by
``monai-bac infer`` on PyTorch, (3) by ``monai-bac infer`` on ONNX Runtime and (4) by the MONAI
Label app over HTTP, asked with MONAI Label's own Python client (the one the 3D Slicer module
uses). The image is a contact view whose header gives its magnification (1.07), so each tool
must also measure in the breast. The model is the session's tiny trained bundle with its last layer sharpened (logits x
1000, shifted so about 2 % of the image is BAC), so its masks are crisp rather than a tie of
near-equal probabilities at the threshold.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_workflow
from monai_bac.cli import main
from monai_bac.data import load_label

# path (4), the MONAI Label app, exists only in the label world (pip install -e ".[label,test]")
HAS_MONAILABEL = importlib.util.find_spec("monailabel") is not None


#: EstimatedRadiographicMagnificationFactor (0018,1114) of the test image: a contact view's
CONTACT_MAGNIFICATION = 1.07


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return 1.0 if not (a.any() or b.any()) else 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


@pytest.fixture(scope="module")
def sharp_bundle(tiny_bundle, phantom_cohort, tmp_path_factory) -> tuple[Path, Path]:
    """(a copy of the tiny bundle whose masks are crisp, a test DICOM of the phantom cohort, magnified 1.07 x)."""
    import pydicom

    from monai_bac.bundle_inference import BundleInference
    from monai_bac.data.dicom_write import save_dataset

    root = tmp_path_factory.mktemp("sharp") / "bundle"
    shutil.copytree(tiny_bundle, root)
    image = phantom_cohort / json.loads((phantom_cohort / "datalist.json").read_text())["test"][0]["image"]
    ds = pydicom.dcmread(image)
    ds.EstimatedRadiographicMagnificationFactor = str(CONTACT_MAGNIFICATION)
    image = tmp_path_factory.mktemp("contact") / image.name
    save_dataset(ds, image)
    model = root / "models" / "model.pt"
    state = torch.load(model, map_location="cpu", weights_only=True)
    weight = next(k for k in state if k.startswith("segmentation_head") and k.endswith("weight"))
    bias = weight[: -len("weight")] + "bias"
    pipeline = BundleInference(root, engine="torch", threads=1)
    with torch.no_grad():
        logits = pipeline.network(torch.from_numpy(pipeline.network_input(image))).numpy()
    cut = float(np.quantile(logits, 0.98))
    state[weight] = state[weight] * 1000.0
    state[bias] = (state[bias] - cut) * 1000.0
    torch.save(state, model)
    (root / "models" / "threshold.json").write_text(json.dumps({"threshold": 0.5}))
    return root, image


@pytest.fixture(scope="module")
def four_paths(sharp_bundle, tmp_path_factory) -> dict[str, tuple[np.ndarray, dict]]:
    """mask and quantification of the test image from each of the four paths (three without monailabel)."""
    bundle, image = sharp_bundle
    out = tmp_path_factory.mktemp("paths")
    results: dict[str, tuple[np.ndarray, dict]] = {}
    # (1) MONAI's bundle runner on the bundle's own inference.json
    run_workflow([bundle / "configs" / "inference.json"], workflow_type="infer", bundle_root=str(bundle),
                 input_path=str(image), output_dir=str(out / "bundle"))
    stem = image.name[: -len(".dcm")]
    results["bundle"] = (np.asarray(load_label(out / "bundle" / f"{stem}_bac.nii.gz"))[0],
                         json.loads((out / "bundle" / f"{stem}_bac.json").read_text())["quantification"])
    # (2), (3) the command line on PyTorch and on ONNX Runtime
    for engine in ("torch", "onnx"):
        assert main(["infer", str(image), "--model", str(bundle), "--out", str(out / engine), "--engine", engine,
                     "--precision", "fp32", "--quiet"]) == 0
        report = json.loads((out / engine / f"{stem}_bac.json").read_text())
        assert report["model"]["engine"] == engine
        results[engine] = (np.asarray(load_label(out / engine / f"{stem}_bac.nii.gz"))[0], report["quantification"])
    if not HAS_MONAILABEL:
        return results
    from monailabel.client import MONAILabelClient

    from monailabel_utils import start_server, stop_server

    # (4) the MONAI Label app over HTTP, through MONAI Label's own client
    studies = out / "studies"
    studies.mkdir()
    shutil.copy(image, studies / image.name)
    app = Path(__file__).resolve().parents[1] / "monailabel_app"
    server = start_server(app, studies, {"models": "bac", "bundle_path": str(bundle)}, out / "server.log")
    try:
        label_file, params = MONAILabelClient(server.url).infer("bac", stem, {})
        results["monailabel"] = (np.asarray(load_label(label_file))[0],
                                 {"length_mm": params["bac_length_mm"], "n_segments": params["bac_segments"],
                                  "area_mm2": params["bac_area_mm2"], "measured_at": params["bac_measured_at"]})
    finally:
        stop_server(server)
    return results


def test_every_path_gives_the_same_mask(four_paths):
    reference = four_paths["bundle"][0]
    assert 0.002 < reference.mean() < 0.05, reference.mean()  # a plausible BAC mask, not empty, not a blob
    assert np.array_equal(four_paths["torch"][0], reference)
    assert _dice(four_paths["onnx"][0], reference) >= 0.999


NEEDS_MONAILABEL = pytest.mark.skipif(not HAS_MONAILABEL, reason="monailabel is not installed: the MONAI Label tests "
                                      'run in the label world (pip install -e ".[label,test]")')


@pytest.mark.label
@NEEDS_MONAILABEL
def test_the_monailabel_app_gives_the_same_mask(four_paths):
    assert np.array_equal(four_paths["monailabel"][0], four_paths["bundle"][0])


def _assert_same_quantification(q: dict, ref: dict, name: str) -> None:
    assert q["measured_at"] == "breast plane (EstimatedRadiographicMagnificationFactor)", name
    assert q["n_segments"] == ref["n_segments"], name
    assert q["length_mm"] == pytest.approx(ref["length_mm"], abs=0.1), name
    assert q["area_mm2"] == pytest.approx(ref["area_mm2"], rel=1e-3), name


def test_every_path_gives_the_same_quantification(four_paths):
    ref = four_paths["bundle"][1]
    assert ref["length_mm"] is not None and ref["length_mm"] > 0 and ref["n_segments"] >= 1
    assert ref["plane_magnification"] == pytest.approx(CONTACT_MAGNIFICATION)
    for name in ("bundle", "torch", "onnx"):
        _assert_same_quantification(four_paths[name][1], ref, name)


@pytest.mark.label
@NEEDS_MONAILABEL
def test_the_monailabel_app_gives_the_same_quantification(four_paths):
    _assert_same_quantification(four_paths["monailabel"][1], four_paths["bundle"][1], "monailabel")

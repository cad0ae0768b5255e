"""Export of a trained bundle model to ONNX and TorchScript, checked against PyTorch."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from monai_bac.cli import main
from monai_bac.export import ExportError, export_model, load_torch_network, resolve_model


@pytest.fixture()
def bundle_copy(tiny_bundle, tmp_path):
    root = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, root)
    return root


def test_export_matches_pytorch_and_records_the_check(bundle_copy):
    info = export_model(bundle_copy)  # a bundle root: models/ found inside
    models = bundle_copy / "models"
    assert (models / "model.onnx").is_file() and (models / "model.ts").is_file()
    saved = json.loads((models / "export.json").read_text())
    assert saved["image_size"] == 128 and saved["check_input"] == [1, 1, 128, 128]
    for fmt in ("onnx", "torchscript"):
        assert 0.0 <= info["exports"][fmt]["max_abs_diff"] <= 1e-3
        assert saved["exports"][fmt]["max_abs_diff"] == info["exports"][fmt]["max_abs_diff"]
    # the exports agree with PyTorch on another input size too (dynamic height and width)
    import onnxruntime as ort

    net = load_torch_network(resolve_model(models))
    x = torch.randn(1, 1, 96, 160)
    with torch.no_grad():
        ref = net(x).numpy()
    sess = ort.InferenceSession(str(models / "model.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(sess.run(None, {"image": x.numpy()})[0] - ref).max() < 1e-3
    ts = torch.jit.load(str(models / "model.ts"))
    with torch.no_grad():
        assert np.abs(ts(x).numpy() - ref).max() < 1e-3


def test_exports_are_not_overwritten_and_staleness_is_noticed(bundle_copy):
    from monai_bac.cpu_inference import CPUInferenceEngine

    models = bundle_copy / "models"
    assert main(["export", "--model", str(models), "--formats", "onnx"]) == 0
    before = (models / "model.onnx").read_bytes()
    assert main(["export", "--model", str(models), "--formats", "onnx"]) == 1  # exists: refused
    with pytest.raises(FileExistsError):
        export_model(models, formats=("onnx",))
    assert (models / "model.onnx").read_bytes() == before
    files = resolve_model(models / "model.pt")
    assert files.onnx_is_current
    engine = CPUInferenceEngine(models, engine="onnx", threads=1)
    assert engine.runner.source.endswith("model.onnx")
    # retrain (here: perturb) model.pt: the saved ONNX no longer matches and is not used
    state = torch.load(models / "model.pt", map_location="cpu", weights_only=True)
    key = next(k for k, v in state.items() if v.dtype.is_floating_point)
    state[key] = state[key] + 0.01
    torch.save(state, models / "model.pt")
    assert not resolve_model(models).onnx_is_current
    engine = CPUInferenceEngine(models, engine="onnx", threads=1)
    assert "in memory" in engine.runner.source
    assert main(["export", "--model", str(models), "--formats", "onnx", "--overwrite"]) == 0
    assert resolve_model(models).onnx_is_current


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        resolve_model(tmp_path / "nowhere")
    with pytest.raises(ExportError, match="no model.pt or model.onnx"):
        resolve_model(tmp_path)
    with pytest.raises(ExportError, match="unknown export format"):
        (tmp_path / "model.pt").write_bytes(b"")
        export_model(tmp_path, formats=("tflite",))

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


def test_int8_export_is_checked_against_float32_and_served_only_while_current(bundle_copy, phantom_cohort):
    from monai_bac.cpu_inference import CPUInferenceEngine

    models = bundle_copy / "models"
    datalist = str(phantom_cohort / "datalist.json")
    with pytest.raises(ExportError, match="calibration"):
        export_model(models, formats=("onnx", "onnx-int8"))
    # calibrate on 4 images of every list, compare with float32 on 3 others
    assert main(["export", "--model", str(models), "--formats", "onnx", "onnx-int8", "--calibration", datalist,
                 "--calibration-split", "all", "--n-calibration", "4", "--n-check", "3", "--min-mask-dice", "0"]) == 0
    saved = json.loads((models / "export.json").read_text())
    int8 = saved["exports"]["onnx-int8"]
    assert (models / "model.int8.onnx").is_file() and "onnx" in saved["exports"]
    assert int8["n_images"] == 3 and int8["calibration_images"] == 4 and not int8["check_on_calibration_images"]
    assert 0.0 <= int8["mask_dice_min"] <= int8["mask_dice_mean"] <= 1.0 and 0.0 <= int8["pixel_disagreement"] <= 1.0
    assert int8["max_abs_diff"] > 0.0  # int8 is not float32: the logits do differ
    # a later float export of the same checkpoint keeps the int8 report
    export_model(models, formats=("torchscript",))
    assert "onnx-int8" in json.loads((models / "export.json").read_text())["exports"]

    image = str(phantom_cohort / json.loads((phantom_cohort / "datalist.json").read_text())["test"][0]["image"])
    auto = CPUInferenceEngine(models, engine="onnx", threads=1)
    assert auto.describe()["precision"] == "int8" and auto.runner.source.endswith("model.int8.onnx")
    result = auto.predict(image)
    assert result.mask.shape == tuple(result.image.shape[-2:])
    assert CPUInferenceEngine(models, engine="onnx", threads=1, precision="fp32").describe()["precision"] == "fp32"
    with pytest.raises(ValueError, match="precision"):
        CPUInferenceEngine(models, engine="torch", threads=1, precision="int8")

    # a retrained model.pt makes the int8 model stale: not served, and asking for it is an error
    state = torch.load(models / "model.pt", map_location="cpu", weights_only=True)
    key = next(k for k, v in state.items() if v.dtype.is_floating_point)
    state[key] = state[key] + 0.01
    torch.save(state, models / "model.pt")
    assert CPUInferenceEngine(models, engine="onnx", threads=1).describe()["precision"] == "fp32"
    with pytest.raises(ExportError, match="older than model.pt"):
        CPUInferenceEngine(models, engine="onnx", threads=1, precision="int8")
    # an int8 model whose masks disagree with float32 more than allowed is refused, nothing written
    (models / "model.int8.onnx").unlink()
    with pytest.raises(ExportError, match="changes the masks too much"):
        export_model(models, formats=("onnx", "onnx-int8"), overwrite=True, calibration=datalist,
                     calibration_split="all", n_calibration=2, n_check=1, min_mask_dice=1.01)
    assert not (models / "model.int8.onnx").exists()

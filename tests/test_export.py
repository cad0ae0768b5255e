"""Export of a trained bundle model to ONNX and TorchScript, checked against PyTorch."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from monai_bac.cli import main
from monai_bac.export import ExportError, export_model
from monai_bac.model_files import resolve_model
from monai_bac.runtime import load_network, load_torch_network


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
    models = bundle_copy / "models"
    assert main(["export", "--model", str(models), "--formats", "onnx"]) == 0
    before = (models / "model.onnx").read_bytes()
    assert main(["export", "--model", str(models), "--formats", "onnx"]) == 1  # exists: refused
    with pytest.raises(FileExistsError):
        export_model(models, formats=("onnx",))
    assert (models / "model.onnx").read_bytes() == before
    files = resolve_model(models / "model.pt")
    assert files.onnx_is_current
    assert load_network(files, engine="onnx", threads=1).source.endswith("model.onnx")
    # retrain (here: perturb) model.pt: the saved ONNX no longer matches and is not used
    state = torch.load(models / "model.pt", map_location="cpu", weights_only=True)
    key = next(k for k, v in state.items() if v.dtype.is_floating_point)
    state[key] = state[key] + 0.01
    torch.save(state, models / "model.pt")
    assert not resolve_model(models).onnx_is_current
    assert "in memory" in load_network(resolve_model(models), engine="onnx", threads=1).source
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
    from monai_bac.bundle_inference import BundleInference

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
    auto = BundleInference(bundle_copy, engine="onnx", threads=1, overrides={"save_transforms": [], "report_transforms": []})
    assert auto.describe()["precision"] == "int8" and auto.network.source.endswith("model.int8.onnx")
    data, _ = auto(image)
    assert data["pred"].shape[-2:] == data["raw"].shape[-2:]
    assert load_network(resolve_model(models), "onnx", "fp32", threads=1).precision == "fp32"
    with pytest.raises(ValueError, match="precision"):
        load_network(resolve_model(models), "torch", "int8", threads=1)

    # a retrained model.pt makes the int8 model stale: not served, and asking for it is an error
    state = torch.load(models / "model.pt", map_location="cpu", weights_only=True)
    key = next(k for k, v in state.items() if v.dtype.is_floating_point)
    state[key] = state[key] + 0.01
    torch.save(state, models / "model.pt")
    assert load_network(resolve_model(models), "onnx", threads=1).precision == "fp32"
    with pytest.raises(ExportError, match="older than model.pt"):
        load_network(resolve_model(models), "onnx", "int8", threads=1)
    # an int8 model whose masks disagree with float32 more than allowed is refused, nothing written
    (models / "model.int8.onnx").unlink()
    with pytest.raises(ExportError, match="changes the masks too much"):
        export_model(models, formats=("onnx", "onnx-int8"), overwrite=True, calibration=datalist,
                     calibration_split="all", n_calibration=2, n_check=1, min_mask_dice=1.01)
    assert not (models / "model.int8.onnx").exists()


@pytest.mark.parametrize("scope", ["decoder", "all"])
def test_int8_scope_chooses_which_convolutions_get_int8_weights(tmp_path, scope):
    import onnx

    from monai_bac.export import onnx_model_bytes
    from monai_bac.networks import build_network
    from monai_bac.quantization import quantize_int8

    torch.manual_seed(0)
    (tmp_path / "fp32.onnx").write_bytes(onnx_model_bytes(build_network("deeplabv3p_mnv3").eval(),
                                                          torch.zeros(1, 1, 64, 64)))
    inputs = [np.random.default_rng(i).standard_normal((1, 1, 64, 64)).astype(np.float32) for i in range(2)]
    report = quantize_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", inputs, min_mask_dice=0.0, scope=scope)
    graph = onnx.load(str(tmp_path / "int8.onnx")).graph
    producer = {out: node.op_type for node in graph.node for out in node.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    int8_weights = {n.name for n in convs if producer.get(n.input[1]) == "DequantizeLinear"}
    decoder = {n.name for n in convs if n.name.startswith("/decoder/")}
    assert decoder and decoder <= int8_weights and report["scope"] == scope
    if scope == "decoder":
        assert int8_weights == decoder  # encoder and head stay float32
    else:
        assert len(int8_weights) == len(convs) - 1  # all but the first convolution
    with pytest.raises(ValueError, match="scope"):
        quantize_int8(tmp_path / "fp32.onnx", tmp_path / "x.onnx", inputs, scope="encoder")


def test_export_check_scales_with_the_logits(tmp_path):
    """A trained network's logits reach tens: the accepted difference is atol + rtol x max|logit|."""
    from monai_bac.export import export_onnx, export_torchscript
    from monai_bac.networks import build_network

    torch.manual_seed(0)
    net = build_network("deeplabv3p_mnv3").eval()
    with torch.no_grad():
        net.segmentation_head[0].weight *= 1000.0
    x = torch.randn(1, 1, 96, 96)
    for export, name in ((export_onnx, "m.onnx"), (export_torchscript, "m.ts")):
        r = export(net, tmp_path / name, x)
        assert r["max_abs_logit"] > 10 and r["max_abs_diff"] <= 1e-3 + 1e-4 * r["max_abs_logit"]
    with pytest.raises(ExportError, match="max \\|logit\\|"):
        export_onnx(net, tmp_path / "strict.onnx", x, atol=0.0, rtol=0.0)
    assert not (tmp_path / "strict.onnx").exists()

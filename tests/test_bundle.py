"""The MONAI bundle: training, inference, evaluation, multi-GPU (gloo), resume, checks, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from conftest import BUNDLE, TINY_TRAIN, copy_bundle, run_workflow
from monai_bac.bundle_support import DatalistError
from monai_bac.data import load_label, load_mammogram, save_mask_nifti
from monai_bac.networks import build_network, count_parameters

#: MONAI's public bundle metadata schema (Apache-2.0), shipped so the check runs offline
SCHEMA = Path(__file__).resolve().parent / "data" / "meta_schema_20240725.json"
CONFIGS = BUNDLE / "configs"


def test_training_writes_model_threshold_and_logs(tiny_bundle):
    models = tiny_bundle / "models"
    state = torch.load(models / "model.pt", map_location="cpu", weights_only=True)
    net = build_network("deeplabv3p_mnv3")
    net.load_state_dict(state)  # the best-val-loss checkpoint is a plain state dict of the network
    threshold = json.loads((models / "threshold.json").read_text())
    assert 0.05 <= threshold["threshold"] <= 0.95 and len(threshold["curve"]) == 19
    settings = json.loads((models / "model_settings.json").read_text())
    assert settings["image_size"] == TINY_TRAIN["image_size"] and settings["normalisation"] == "log_gamma"
    assert list((tiny_bundle / "logs").glob("events.out.tfevents.*"))
    assert list(models.glob("checkpoint_epoch=1.pt"))


def test_check_properties_of_train_and_inference():
    from monai.bundle import ConfigWorkflow

    for config, kind in (("train.json", "train"), ("inference.json", "infer")):
        wf = ConfigWorkflow(config_file=str(CONFIGS / config), workflow_type=kind)
        wf.initialize()
        assert wf.check_properties() == [], config


def test_metadata_verifies_against_schema(tmp_path):
    from monai.bundle import verify_metadata

    schema = tmp_path / SCHEMA.name
    shutil.copy(SCHEMA, schema)  # verify_metadata skips the download when the file is there
    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(schema))
    meta = json.loads((CONFIGS / "metadata.json").read_text())
    # the declared input is the default CPU model's (train.json's cpu profile), and the metrics are numbers
    size = json.loads((CONFIGS / "train.json").read_text())["profiles"]["cpu"]["image_size"]
    fmt = meta["network_data_format"]
    assert fmt["inputs"]["image"]["spatial_shape"] == fmt["outputs"]["pred"]["spatial_shape"] == [size, size]
    assert meta["eval_metrics"] and all(isinstance(v, (int, float)) for v in meta["eval_metrics"].values())


def test_metadata_schema_check_fails_on_a_broken_metadata(tmp_path):
    from monai.bundle import verify_metadata

    schema = tmp_path / SCHEMA.name
    shutil.copy(SCHEMA, schema)
    meta = json.loads((CONFIGS / "metadata.json").read_text())
    del meta["authors"]
    bad = tmp_path / "metadata.json"
    bad.write_text(json.dumps(meta))
    with pytest.raises(Exception, match="'authors' is a required property"):
        verify_metadata(meta_file=str(bad), filepath=str(schema))


def test_network_in_out_and_torchscript_export(tiny_bundle, tmp_path):
    from monai.bundle import ckpt_export, verify_net_in_out

    verify_net_in_out(net_id="network_def", meta_file=str(CONFIGS / "metadata.json"),
                      config_file=str(CONFIGS / "inference.json"), n=4, any=16,
                      **{"_meta_#network_data_format#inputs#image#spatial_shape": [64, 64],
                         "_meta_#network_data_format#outputs#pred#spatial_shape": [64, 64]})
    out = tmp_path / "model.ts"
    ckpt_export(net_id="network_def", filepath=str(out), ckpt_file=str(tiny_bundle / "models" / "model.pt"),
                meta_file=str(CONFIGS / "metadata.json"), config_file=str(CONFIGS / "inference.json"),
                use_trace=True, input_shape=[1, 1, 64, 64], bundle_root=str(tiny_bundle))
    scripted = torch.jit.load(str(out))
    net = build_network("deeplabv3p_mnv3")
    net.load_state_dict(torch.load(tiny_bundle / "models" / "model.pt", map_location="cpu", weights_only=True))
    net.eval()
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.allclose(scripted(x), net(x), atol=1e-4)


@pytest.mark.parametrize("name,millions", [("unet_r34", 24.43), ("deeplabv3p_r34", 22.43), ("deeplabv3p_mnv3", 4.70)])
def test_parameter_counts_match_table_2(name, millions):
    assert abs(count_parameters(build_network(name)) / 1e6 - millions) < 0.01


def test_inference_writes_masks_at_the_original_size(tiny_bundle, phantom_cohort, tmp_path):
    out = tmp_path / "pred"
    run_workflow([CONFIGS / "inference.json"], workflow_type="infer", bundle_root=str(tiny_bundle),
                 input_path=str(phantom_cohort / "datalist.json"), output_dir=str(out))
    test_items = json.loads((phantom_cohort / "datalist.json").read_text())["test"]
    assert len(list(out.glob("*_bac.nii.gz"))) == len(test_items)
    for item in test_items:
        image = load_mammogram(phantom_cohort / item["image"])
        case = Path(item["image"]).name[: -len(".dcm")]
        mask = load_label(out / f"{case}_bac.nii.gz")
        assert mask.shape == image.shape
        assert mask.meta["spacing_mm"] == pytest.approx(image.meta["spacing_mm"])
        assert (out / f"{case}_bac_overlay.png").is_file()
    # a second run refuses to overwrite the predictions
    with pytest.raises(Exception) as info:
        run_workflow([CONFIGS / "inference.json"], workflow_type="infer", bundle_root=str(tiny_bundle),
                     input_path=str(phantom_cohort / "datalist.json"), output_dir=str(out))
    assert any("refusing to overwrite" in m for m in _error_chain(info.value))


def test_evaluation_writes_per_image_csv_and_summary(tiny_bundle, phantom_cohort, tmp_path):
    out = tmp_path / "eval"
    run_workflow([CONFIGS / "inference.json", CONFIGS / "evaluate.json"], workflow_type="infer",
                 bundle_root=str(tiny_bundle), input_path=str(phantom_cohort / "datalist.json"), output_dir=str(out))
    summary = dict(line.split(",") for line in (out / "metrics.csv").read_text().split())
    assert set(summary) >= {"dice_label", "dice_gt", "length_dice_gt", "cldice_gt"}
    for name in ("dice_label", "dice_gt", "length_dice_gt"):
        rows = (out / f"{name}_raw.csv").read_text().strip().splitlines()
        n_test = len(json.loads((phantom_cohort / "datalist.json").read_text())["test"])
        assert len(rows) == 1 + n_test and 0.0 <= float(summary[name]) <= 1.0


def test_resume_continues_from_the_last_epoch(tiny_bundle, phantom_cohort, tmp_path):
    root = tmp_path / "resume"
    shutil.copytree(tiny_bundle, root)
    wf = run_workflow([root / "configs" / "train.json"], bundle_root=str(root), dataset_dir=str(phantom_cohort),
                      **{**TINY_TRAIN, "num_epochs": 2}, resume=True)
    trainer = wf.parser.get_parsed_content("train#trainer")
    assert trainer.state.epoch == 2 and trainer.state.iteration == 2 * trainer.state.epoch_length
    assert (root / "models" / "checkpoint_epoch=2.pt").is_file()


def _torchrun(args: list[str], cwd: Path, timeout_s: float = 300) -> str:
    """``torchrun --standalone --nproc_per_node=2 -m monai.bundle run ARGS`` on gloo: its output (asserts rc 0)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "monai.bundle", "run", *args]
    tmp = cwd / "torchrun-tmp"  # torchrun's log folders (torchelastic_*) stay in the test's folder, not /tmp
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp)}
    # own process group: on a timeout the workers torchrun started are killed with it
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"torchrun did not finish in {timeout_s:g} s:\n{err[-3000:]}")
    assert proc.returncode == 0, f"stdout:\n{out[-2000:]}\nstderr:\n{err[-4000:]}"
    return out + err


def test_multi_gpu_config_trains_with_torchrun_on_gloo(phantom_cohort, tmp_path):
    root = copy_bundle(tmp_path / "ddp")
    args = [f"--{k}={v}" for k, v in TINY_TRAIN.items()]
    log = _torchrun(["training", "--config_file", f"['{root}/configs/train.json','{root}/configs/multi_gpu_train.json']",
                     f"--bundle_root={root}", f"--dataset_dir={phantom_cohort}", *args], root)
    assert (root / "models" / "model.pt").is_file() and (root / "models" / "threshold.json").is_file()
    assert "epoch 1/1 | train_loss" in log  # one line per epoch (monai_bac.training_report), rank 0 only
    assert log.count("epoch 1/1 |") == 1 and "best epoch 1" in log


def test_multi_gpu_evaluation_shards_the_images_with_torchrun_on_gloo(tiny_bundle, phantom_cohort, tmp_path):
    """model-zoo's multi-GPU evaluation: each rank infers its share; metrics are gathered on rank 0."""
    out = tmp_path / "eval"
    configs = [f"{BUNDLE}/configs/{name}.json" for name in ("inference", "evaluate", "multi_gpu_evaluate")]
    _torchrun(["--config_file", str(configs), f"--bundle_root={tiny_bundle}",
               f"--input_path={phantom_cohort / 'datalist.json'}", "--input_split=all", f"--output_dir={out}",
               "--save_predictions=true"], tmp_path)
    n = len(list((phantom_cohort / "images").glob("*.dcm")))
    assert len(list(out.glob("*_bac.nii.gz"))) == n  # every image once, whichever rank had it
    rows = (out / "dice_gt_raw.csv").read_text().strip().splitlines()
    assert len(rows) - 1 == n  # rank 0's metrics saw every rank's images


def _error_chain(exc: BaseException) -> list[str]:
    """Messages of an exception and of everything it was raised from (configs wrap errors)."""
    chain = []
    while exc is not None:
        chain.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return chain


def _datalist(path: Path, training: list, validation: list | None = None) -> Path:
    path.write_text(json.dumps({"training": training, "validation": validation if validation is not None else training}))
    return path


def _train_expecting(error: str, phantom_cohort: Path, datalist: Path, tmp_path: Path):
    root = copy_bundle(tmp_path / "bad")
    with pytest.raises(Exception) as info:
        run_workflow([root / "configs" / "train.json"], bundle_root=str(root), datalist_file=str(datalist),
                     **TINY_TRAIN)
    chain = _error_chain(info.value)
    assert any(error in m for m in chain), chain[-1]
    return chain


def test_bad_datalists_stop_with_a_message_naming_the_entry(phantom_cohort, tmp_path):
    items = json.loads((phantom_cohort / "datalist.json").read_text())["training"]
    good = [{"image": str(phantom_cohort / i["image"]), "label": str(phantom_cohort / i["label"])} for i in items]

    missing = [dict(good[0]), *good[1:]]
    missing[0]["image"] = str(phantom_cohort / "images" / "nope.dcm")
    chain = _train_expecting("training[0]: image file", phantom_cohort, _datalist(tmp_path / "m.json", missing), tmp_path)
    assert any("nope.dcm" in m for m in chain)

    _train_expecting("'training' list is empty", phantom_cohort, _datalist(tmp_path / "e.json", [], good), tmp_path)

    wrong = tmp_path / "wrong_shape.nii.gz"
    save_mask_nifti(wrong, np.zeros((10, 12), np.uint8), (1.0, 1.0))
    shaped = [dict(good[0], label=str(wrong)), *good[1:]]
    chain = _train_expecting("training[0]: label", phantom_cohort, _datalist(tmp_path / "s.json", shaped), tmp_path)
    assert any("wrong_shape.nii.gz" in m and "10 x 12" in m for m in chain)

    label = load_label(good[1]["label"])
    values = np.asarray(label[0]).astype(np.float32) * 3.0
    nonbinary = tmp_path / "nonbinary.nii.gz"
    affine = nib.load(good[1]["label"]).affine
    nib.save(nib.Nifti1Image(values.T, affine), str(nonbinary))
    chain = _train_expecting("not binary", phantom_cohort,
                             _datalist(tmp_path / "n.json", [good[0], dict(good[1], label=str(nonbinary))]), tmp_path)
    assert any("nonbinary.nii.gz" in m for m in chain)


def test_datalist_error_type_is_public():
    assert issubclass(DatalistError, ValueError)

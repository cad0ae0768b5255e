"""A new user's first hour: phantom data that trains, typo-proof overrides, short errors, a readable
training log with the right best epoch, and --help without docstring markup.

The command-line tests run the real commands in subprocesses (``python -m monai.bundle run``,
``python -m monai_bac.cli``) on a private copy of the bundle, never on the repository's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import BUNDLE, TINY_TRAIN, copy_bundle, run_workflow
from monai_bac.bundle_checks import (OverrideError, check_command_line, check_overrides, parse_overrides,
                                     short_error)

CONFIGS = BUNDLE / "configs"
MARKUP = re.compile(r"``|:(?:mod|func|class|meth|attr|data|obj|exc|ref):`|::$", re.MULTILINE)


def _bundle_run(args: list[str], cwd: Path, timeout: float = 300, **env) -> tuple[int, str, float]:
    """``python -m monai.bundle run ...`` as a user types it; (exit status, stdout + stderr, seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "monai.bundle", "run", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1", **env})
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - t0


def _last_lines(output: str, n: int = 3) -> str:
    return "\n".join(output.strip().splitlines()[-n:])


# ------------------------------------------------------------------------ overrides and errors
@pytest.fixture(scope="module")
def bad_commands(tmp_path_factory) -> dict:
    """Four bad bundle command lines, run at the same time (each is mostly Python start-up):
    name -> (exit status, output, seconds, bundle copy)."""
    tmp = tmp_path_factory.mktemp("bad_commands")
    root = copy_bundle(tmp / "bundle")
    train = ["training", "--config_file", str(root / "configs" / "train.json"), "--bundle_root", str(root)]
    infer = ["--config_file", str(root / "configs" / "inference.json"), "--bundle_root", str(root)]
    missing = str(tmp / "no" / "dicoms")
    runs = {"typo": ([*train, "--num_epoch", "1"], {}),
            "network": ([*train, "--network_name", "unet"], {}),
            "missing": ([*infer, "--input_path", missing], {}),
            "debug": ([*infer, "--input_path", missing], {"MONAI_BAC_DEBUG": "1"})}
    t0 = time.perf_counter()
    procs = {name: subprocess.Popen([sys.executable, "-m", "monai.bundle", "run", *args], cwd=tmp,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    env={**os.environ, "OMP_NUM_THREADS": "1", **env})
             for name, (args, env) in runs.items()}
    results = {}
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=300)
        results[name] = (proc.returncode, out, time.perf_counter() - t0, root)
    results["missing_path"] = missing
    return results


def test_a_misspelled_override_is_refused_before_training(bad_commands):
    rc, out, seconds, root = bad_commands["typo"]
    assert rc != 0
    tail = _last_lines(out, 2)
    assert "--num_epoch" in tail and "did you mean --num_epochs?" in tail, out[-2000:]
    assert "Traceback" not in out
    # nothing ran: no phantom cohort generated, no model, no epoch line
    assert not (root / "data").exists() and not (root / "models").exists() and "epoch 1/" not in out
    assert seconds < 180  # four commands at once on a busy machine; alone it is Python start-up (~10 s)


def test_a_wrong_value_and_a_missing_input_end_with_one_clear_line(bad_commands):
    rc, out, _, _ = bad_commands["network"]
    last = _last_lines(out, 1)
    assert rc != 0 and "--network_name unet" in last and "unet_r34" in last, out[-2000:]
    assert len(out.strip().splitlines()) < 20 and "Traceback" not in out

    rc, out, _, _ = bad_commands["missing"]
    last, missing = _last_lines(out, 1), bad_commands["missing_path"]
    assert rc != 0 and "--input_path" in last and missing in last and "does not exist" in last, out[-2000:]
    assert len(out.strip().splitlines()) < 20

    rc, out, _, _ = bad_commands["debug"]  # with MONAI_BAC_DEBUG=1 the whole traceback is kept
    assert rc != 0 and "Traceback (most recent call last)" in out


def test_override_parsing_follows_fire():
    args = ["training", "--config_file", "['a.json','b.json']", "--num-epochs=3", "--resume", "--lr", "-1e-3",
            "--train::trainer::max_epochs", "2", "--", "--help"]
    assert parse_overrides(args) == {"config_file": "['a.json','b.json']", "num_epochs": "3", "resume": True,
                                     "lr": "-1e-3", "train#trainer#max_epochs": "2"}


def test_override_check_accepts_config_keys_and_refuses_the_rest():
    train, multi = str(CONFIGS / "train.json"), str(CONFIGS / "multi_gpu_train.json")
    # keys of the config, nested ids, a component's keyword argument, metadata, run()'s own arguments
    check_overrides({"config_file": train, "num_epochs": "1", "train#trainer#max_epochs": "2",
                     "network_def#decoder_channels": "64", "_meta_#version": "0", "logging_file": "x.conf",
                     "run_id": "training"})
    # the multi-GPU config's keys count when both files are given, as torchrun runs them
    check_overrides({"config_file": f"['{train}','{multi}']", "is_main": "True"})
    with pytest.raises(OverrideError, match=r"--num_epoch is not a key of train.json \(did you mean --num_epochs\?\)"):
        check_overrides({"config_file": train, "num_epoch": "1"})
    with pytest.raises(OverrideError, match="not one of deeplabv3p_mnv3, deeplabv3p_r34, unet_r34"):
        check_overrides({"config_file": train, "network_name": "unet"})
    with pytest.raises(OverrideError, match="is not a folder"):
        check_overrides({"config_file": train, "dataset_dir": "/no/such/folder"})
    with pytest.raises(OverrideError, match=r"did you mean --input_path\?"):
        check_overrides({"config_file": str(CONFIGS / "inference.json"), "input_pth": "x"})
    # inference + evaluation: the keys of both files
    both = f"['{CONFIGS / 'inference.json'}','{CONFIGS / 'evaluate.json'}']"
    check_overrides({"config_file": both, "tolerance_mm": "3", "input_split": "validation"})
    with pytest.raises(OverrideError, match=r"did you mean --tolerance_mm\?"):
        check_overrides({"config_file": both, "tolerence_mm": "3"})


def test_the_check_is_off_outside_the_bundle_command_line():
    hook = sys.excepthook
    assert check_command_line() is False  # sys.argv is pytest's
    assert check_command_line(["/x/monai/bundle/__main__.py", "verify_metadata", "--num_epoch", "1"]) is False
    assert sys.excepthook is hook


def test_short_error_names_the_root_cause_the_component_and_the_override():
    try:
        try:
            raise ValueError("unknown network 'unet'; choose one of ['unet_r34']")
        except ValueError as e:
            raise RuntimeError("Failed to instantiate component 'monai_bac.networks.build_network' with keywords: "
                               "name") from e
    except RuntimeError as e:
        line = short_error(e, {"network_name": "unet", "num_epochs": "1"})
    assert line == ("error: ValueError: unknown network 'unet'; choose one of ['unet_r34'] "
                    "(building monai_bac.networks.build_network); set by --network_name unet")


# ------------------------------------------------------------------------ training output
def test_training_log_is_short_and_names_the_lowest_val_loss_epoch(tmp_path, phantom_cohort):
    root = copy_bundle(tmp_path / "bundle")
    overrides = [f"--{k}={v}" for k, v in {**TINY_TRAIN, "num_epochs": 3}.items()]
    rc, out, _ = _bundle_run(["training", "--config_file", str(root / "configs" / "train.json"),
                              "--bundle_root", str(root), "--dataset_dir", str(phantom_cohort), *overrides],
                             cwd=tmp_path, timeout=600)
    assert rc == 0, out[-3000:]
    lines = out.strip().splitlines()
    assert len(lines) < 45, out  # 30 epochs by default: under 150 lines
    assert "\r" not in out and "Iter:" not in out  # no progress bar and no per-iteration lines in a log file
    epochs = {int(m.group(1)): float(m.group(2))
              for m in re.finditer(r"epoch (\d+)/3 \| train_loss [0-9.]+ .*\| val_loss ([0-9.]+)", out)}
    assert sorted(epochs) == [1, 2, 3], out
    lowest = min(epochs, key=lambda e: (epochs[e], e))
    best = re.search(r"best epoch (\d+): val_loss ([0-9.]+) \(lowest; lower is better\)", out)
    assert best and int(best.group(1)) == lowest, out
    for word in ("threshold.json", "model.pt", "tensorboard --logdir", "inference.json", "evaluate.json"):
        assert word in out, word
    # model.pt holds the weights of that epoch (its epoch checkpoint, when still kept, has the same network)
    ckpt = root / "models" / f"checkpoint_epoch={lowest}.pt"
    if ckpt.is_file():
        model = torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True)
        network = torch.load(ckpt, map_location="cpu", weights_only=True)["network"]
        assert all(torch.equal(model[k], network[k]) for k in model)


def test_the_evaluator_ranks_val_loss_lower_is_better():
    from monai.bundle import ConfigParser

    parser = ConfigParser(ConfigParser.load_config_file(str(CONFIGS / "train.json")))
    better = parser.get_parsed_content("validate#evaluator#metric_cmp_fn")
    assert better(0.31, 0.55) and not better(0.55, 0.31)


# ------------------------------------------------------------------------ phantom
@pytest.mark.parametrize("n", range(3, 26))
def test_every_split_of_a_small_cohort_gets_a_patient(n):
    from monai_bac.phantom.cohort import _case_plan, stratified_split

    plan = _case_plan(n, 0, 0.95, 0.95, ("HOLOGIC", "GE"))
    patients: dict[str, bool] = {}
    for case in plan:
        patients[case["patient_id"]] = patients.get(case["patient_id"], False) or case["has_bac"]
    assert len(plan) == n and len(patients) >= 3
    assert set(stratified_split(patients, seed=0).values()) == {"training", "validation", "test"}


def test_phantom_n8_makes_a_datalist_the_bundle_trains_on(tmp_path, capsys):
    from monai_bac.bundle_support import load_split
    from monai_bac.cli import main

    out = tmp_path / "studies"
    assert main(["phantom", "--out", str(out), "--n", "8", "--spacing", "1.0"]) == 0
    assert "training 4, validation 2, test 2" in capsys.readouterr().out
    datalist = out / "datalist.json"
    splits = {s: load_split(str(datalist), s) for s in ("training", "validation", "test")}
    assert all(splits.values())
    patients = [{item["patient_id"] for item in items} for items in splits.values()]
    assert not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])
    root = copy_bundle(tmp_path / "bundle")
    wf = run_workflow([root / "configs" / "train.json"], bundle_root=str(root), dataset_dir=str(out),
                      **{**TINY_TRAIN, "image_size": 64})
    assert wf.parser.get_parsed_content("train#trainer").state.epoch == 1
    assert (root / "models" / "model.pt").is_file()


def test_phantom_refuses_a_cohort_of_no_images(tmp_path, capsys):
    from monai_bac.cli import main

    assert main(["phantom", "--out", str(tmp_path / "none"), "--n", "0"]) == 2
    assert "--n 0" in capsys.readouterr().err and not (tmp_path / "none").exists()


# ------------------------------------------------------------------------ --help
def test_help_has_no_docstring_markup():
    from monai_bac.cli import COMMANDS

    commands = [[]] + [[name.replace("_", "-")] for name in COMMANDS]
    procs = [(cmd, subprocess.Popen([sys.executable, "-m", "monai_bac.cli", *cmd, "--help"], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)) for cmd in commands]
    failures = []
    for cmd, proc in procs:
        out, err = proc.communicate(timeout=120)
        name = " ".join(["monai-bac", *cmd])
        if proc.returncode != 0 or not out.startswith("usage: monai-bac"):
            failures.append(f"{name} --help failed ({proc.returncode}): {err[-500:]}")
        elif MARKUP.search(out):
            failures.append(f"{name} --help shows markup: {MARKUP.search(out).group(0)!r}")
    assert not failures, "\n".join(failures)


def test_training_report_bar_lines_and_best_epoch_on_a_plain_ignite_engine(caplog, capsys):
    from ignite.engine import Engine, Events

    from monai_bac.training_report import TrainingReport

    losses = iter([0.9, 0.8, 0.5, 0.6, 0.7, 0.4])  # three epochs of two iterations
    val = {1: 0.55, 2: 0.31, 3: 0.42}  # the lowest val_loss is epoch 2
    validator = Engine(lambda e, b: None)
    trainer = Engine(lambda e, b: {"loss": torch.tensor(next(losses))})

    @trainer.on(Events.EPOCH_COMPLETED)
    def validate(engine):  # what ValidationHandler does: run the validator for this epoch
        validator.state.epoch, validator.state.metrics = engine.state.epoch, {"val_loss": val[engine.state.epoch],
                                                                              "val_dice": 0.5}

    report = TrainingReport(validator=validator, progress=True)  # the terminal's progress bar too
    report.attach(trainer)
    with caplog.at_level("INFO", logger="monai_bac.train"):
        trainer.run([0, 1], max_epochs=3)
        report.log_summary()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch")]
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3 | train_loss 0.8500 | val_loss 0.5500 (best)")
    assert "(best)" in lines[1] and "(best)" not in lines[2]
    assert report.best()["epoch"] == 2
    assert "best epoch 2: val_loss 0.3100 (lowest; lower is better)" in caplog.text
    assert "epoch 1/3" in capsys.readouterr().err  # the bar went to stderr
    higher = TrainingReport(key_metric="val_dice", lower_is_better=False)
    higher.history = [{"epoch": 1, "val_dice": 0.2}, {"epoch": 2, "val_dice": 0.6}, {"epoch": 3, "val_dice": 0.6}]
    assert higher.best()["epoch"] == 2


def test_a_missing_model_says_to_train_first():
    from monai_bac.bundle_checks import short_error

    try:
        open("/nonexistent/bundle/models/model.pt")
    except FileNotFoundError as e:
        line = short_error(e)
    assert "model.pt" in line and "train first" in line and "run training" in line

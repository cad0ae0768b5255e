"""Training killed with SIGKILL and resumed with ``--resume true``: the best model and the checkpoints.

The bundle's training runs for real (``python -m monai.bundle run training``) on the tiny phantom
cohort, is killed once ``checkpoint_epoch=3.pt`` exists and resumed to the end. A recorder added by
the test (a second config file) stores every validated epoch's ``val_loss`` (full precision) and the
network's weights, so the test can tell which epoch of the whole (killed + resumed) run had the
lowest validation loss and check that ``models/model.pt`` holds exactly that epoch's weights.

Before resuming, the test sets the output bias of the network in the checkpoint to +10 (every
pixel predicted as BAC), so the resumed epochs are worse than the best one before the kill: the
case where a best-model saver that forgot its state replaced ``model.pt`` with a worse epoch. The
handlers' state round trip is also checked on plain ignite engines (fast, no training).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from ignite.engine import Engine, Events

from conftest import TINY_TRAIN, copy_bundle

NUM_EPOCHS = 6
KILL_AFTER = 3  # epochs: killed as soon as checkpoint_epoch=3.pt exists
KEEP = 2  # periodic checkpoints kept (train#checkpointer#n_saved)
OVERRIDES = {**TINY_TRAIN, "num_epochs": NUM_EPOCHS}


def _recorder_config(root: Path, record_dir: Path) -> Path:
    """A second config file: the bundle's ``training`` steps, preceded by attaching a recorder of
    (epoch, val_loss, network weights) to the validation evaluator."""
    training = json.loads((root / "configs" / "train.json").read_text())["training"]
    record = (
        "$@validate#evaluator.add_event_handler(ignite.engine.Events.EPOCH_COMPLETED, lambda e: torch.save("
        "{'epoch': e.state.epoch, 'val_loss': float(e.state.metrics['val_loss']), "
        "'model': {k: v.detach().cpu().clone() for k, v in @network.state_dict().items()}}, "
        f"os.path.join({str(record_dir)!r}, 'epoch_' + str(e.state.epoch) + '.pt')))"
    )
    path = root / "configs" / "record_epochs.json"
    path.write_text(json.dumps({"training": [record, *training]}, indent=1))
    return path


def _predict_bac_everywhere(checkpoint: Path) -> None:
    """Set the output layer's bias of the network in ``checkpoint`` to +10 (every pixel BAC): the
    resumed epochs then have a far higher validation loss than the best epoch before the kill."""
    state = torch.load(checkpoint, weights_only=True)
    (bias,) = [k for k, v in state["network"].items() if k.endswith("bias") and tuple(v.shape) == (1,)]
    state["network"][bias].fill_(10.0)
    torch.save(state, checkpoint)


def _command(root: Path, cohort: Path, record_config: Path, resume: bool) -> list[str]:
    configs = f"['{root / 'configs' / 'train.json'}','{record_config}']"
    args = [f"--{k}={v}" for k, v in OVERRIDES.items()]
    return [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", configs,
            f"--bundle_root={root}", f"--dataset_dir={cohort}", *args, f"--resume={str(resume).lower()}"]


def _run_until_checkpoint(cmd: list[str], checkpoint: Path, log: Path, timeout_s: float = 150) -> int:
    """Start ``cmd`` and SIGKILL its process group as soon as ``checkpoint`` exists; its return code."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout_s
            while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_resume_after_sigkill_keeps_the_best_model_and_prunes_checkpoints(phantom_cohort, tmp_path):
    root = copy_bundle(tmp_path / "bundle")
    models = root / "models"
    record_dir = tmp_path / "epochs"
    record_dir.mkdir()
    record_config = _recorder_config(root, record_dir)

    # 1. train, killed with SIGKILL once the epoch-3 checkpoint is written (mid-epoch 4)
    killed_log = tmp_path / "killed.log"
    rc = _run_until_checkpoint(_command(root, phantom_cohort, record_config, resume=False),
                               models / f"checkpoint_epoch={KILL_AFTER}.pt", killed_log)
    assert rc == -signal.SIGKILL, f"the first run was not killed mid-training:\n{killed_log.read_text()[-3000:]}"
    assert not (models / f"checkpoint_epoch={NUM_EPOCHS}.pt").exists()

    # 2. resume to the end
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    _predict_bac_everywhere(models / f"checkpoint_epoch={KILL_AFTER}.pt")
    done = subprocess.run(_command(root, phantom_cohort, record_config, resume=True), capture_output=True,
                          text=True, env=env, timeout=300)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    assert f"checkpoint_epoch={KILL_AFTER}.pt" in log.split("resuming from", 1)[1].splitlines()[0]

    # the whole run's history: epochs 1-3 of the killed run, 4-6 of the resumed one (which rewrote
    # any record of epoch 4 the killed run had made)
    records = {e: torch.load(record_dir / f"epoch_{e}.pt", weights_only=True) for e in range(1, NUM_EPOCHS + 1)}
    assert all(records[e]["epoch"] == e for e in records)
    val_loss = {e: r["val_loss"] for e, r in records.items()}
    best = min(val_loss, key=lambda e: (val_loss[e], e))  # the first of equal losses is kept (not replaced)

    assert best <= KILL_AFTER, f"premise: the resumed epochs should be worse (val_loss by epoch {val_loss})"
    saved = torch.load(models / "model.pt", weights_only=True)
    assert saved.keys() == records[best]["model"].keys()
    same = {e: all(torch.equal(saved[k], r["model"][k]) for k in saved) for e, r in records.items()}
    assert same[best], (f"model.pt is not the best epoch {best} (val_loss {val_loss}); "
                        f"it equals epoch(s) {[e for e, s in same.items() if s]}")

    # periodic checkpoints: only the last KEEP, nothing half-written left behind
    assert sorted(p.name for p in models.glob("checkpoint_epoch=*.pt")) == [
        f"checkpoint_epoch={e}.pt" for e in range(NUM_EPOCHS - KEEP + 1, NUM_EPOCHS + 1)]
    assert not [p.name for p in models.iterdir() if p.name.startswith(".")]

    # the last checkpoint carries the best-model saver's and the early stopper's state of the whole run
    last = torch.load(models / f"checkpoint_epoch={NUM_EPOCHS}.pt", weights_only=True)
    assert last["trainer"]["iteration"] == NUM_EPOCHS * last["trainer"]["epoch_length"]
    assert last["best_model_saver"]["best_epoch"] == best
    assert last["best_model_saver"]["best_metric"] == val_loss[best]
    assert last["early_stop"]["best_score"] == -val_loss[best]
    assert last["early_stop"]["counter"] == NUM_EPOCHS - best


# ----------------------------------------------------------------------------------- the handlers alone
def _validator(net: torch.nn.Linear, val_loss: dict[int, float], handlers) -> Engine:
    """An evaluator whose epoch N sets the network's weights to N and reports ``val_loss[N]``."""
    engine = Engine(lambda e, b: None)

    @engine.on(Events.EPOCH_COMPLETED)
    def _validate(e):
        with torch.no_grad():
            net.weight.fill_(e.state.epoch)
        e.state.metrics["val_loss"] = val_loss[e.state.epoch]

    for h in handlers:
        h.attach(engine)
    return engine


def _round_trip(state):
    """What ``torch.save`` / ``torch.load(weights_only=True)`` (the checkpoint files) give back."""
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_best_model_and_early_stop_state_survive_a_restart(tmp_path):
    from monai_bac.handlers import ResumableCheckpointSaver, ResumableEarlyStopHandler

    net = torch.nn.Linear(1, 1, bias=False)
    val_loss = {1: 0.5, 2: 0.3, 3: 0.4, 4: 0.35, 5: 0.2}
    trainer = Engine(lambda e, b: None)

    def handlers():
        saver = ResumableCheckpointSaver(save_dir=str(tmp_path), save_dict={"model": net}, save_key_metric=True,
                                         key_metric_name="val_loss", key_metric_negative_sign=True,
                                         key_metric_filename="model.pt")
        stop = ResumableEarlyStopHandler(patience=2, score_function=lambda e: -e.state.metrics["val_loss"])
        stop.set_trainer(trainer)
        return saver, stop

    def best_weight():
        return torch.load(tmp_path / "model.pt", weights_only=True)["weight"].item()

    saver, stop = handlers()
    _validator(net, val_loss, [saver, stop]).run([0], max_epochs=3)
    assert best_weight() == 2
    state = _round_trip({"saver": saver.state_dict(), "stop": stop.state_dict()})
    assert state["saver"]["best_epoch"] == 2 and state["saver"]["best_metric"] == 0.3
    assert state["stop"]["counter"] == 1 and state["stop"]["best_score"] == -0.3

    # a new process: fresh handlers with the loaded state; epoch 4 (0.35) is not better than epoch 2 (0.3)
    saver, stop = handlers()
    saver.load_state_dict(state["saver"])
    stop.load_state_dict(state["stop"])
    engine = _validator(net, val_loss, [saver, stop])
    engine.load_state_dict({"epoch": 3, "epoch_length": 1, "max_epochs": 4})
    engine.run([0])
    assert best_weight() == 2  # a saver without its state replaced model.pt here
    assert stop.state_dict()["counter"] == 2 and trainer.should_terminate  # patience 2 used up across the restart
    engine.run([0], max_epochs=5)
    assert best_weight() == 5 and saver.state_dict()["best_epoch"] == 5
    assert not [p.name for p in tmp_path.iterdir() if p.name != "model.pt"]


def test_periodic_checkpoints_of_the_resumed_run_are_pruned_and_temp_files_removed(tmp_path, caplog):
    from monai_bac.handlers import ResumableCheckpointSaver

    net = torch.nn.Linear(1, 1)
    trainer = Engine(lambda e, b: None)

    ResumableCheckpointSaver(save_dir=str(tmp_path), save_dict={"network": net, "trainer": trainer},
                             save_interval=1, n_saved=2).attach(trainer)
    trainer.run([0], max_epochs=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_epoch=2.pt", "checkpoint_epoch=3.pt"]
    # what a killed run leaves besides: an older checkpoint and a partial one being written
    (tmp_path / "checkpoint_epoch=1.pt").write_bytes((tmp_path / "checkpoint_epoch=2.pt").read_bytes())
    (tmp_path / ".checkpoint_epoch=4.tmp-0123456789ab.pt").write_bytes(b"partial")
    (tmp_path / ".notes.tmp-0123456789ab.pt").write_bytes(b"not the saver's")
    (tmp_path / "checkpoint_epoch=9.pt").write_bytes(b"an earlier, longer run's")  # reported, never removed

    resumed = Engine(lambda e, b: None)
    s = ResumableCheckpointSaver(save_dir=str(tmp_path), save_dict={"network": net, "trainer": resumed},
                                 save_interval=1, n_saved=2)
    s.attach(resumed)
    assert not (tmp_path / ".checkpoint_epoch=4.tmp-0123456789ab.pt").exists()
    resumed.load_state_dict(torch.load(tmp_path / "checkpoint_epoch=3.pt", weights_only=True)["trainer"])
    with caplog.at_level("WARNING"):
        resumed.run([0], max_epochs=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".notes.tmp-0123456789ab.pt", "checkpoint_epoch=4.pt", "checkpoint_epoch=5.pt", "checkpoint_epoch=9.pt"]
    assert "earlier run (checkpoint_epoch=9.pt)" in caplog.text

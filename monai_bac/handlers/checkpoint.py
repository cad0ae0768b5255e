"""Checkpoint and early-stop handlers whose state survives a restart (``--resume true`` after ``kill -9``).

MONAI's :class:`~monai.handlers.CheckpointSaver` and :class:`~monai.handlers.EarlyStopHandler` keep
their bookkeeping in memory only. After a restart the best-model saver has forgotten the best
validation loss (its first validation replaces ``model.pt`` whatever the loss), the early stopper
its patience counter, and the periodic saver the checkpoints written before the restart (they are
never pruned). The classes here add ignite's ``state_dict`` / ``load_state_dict`` so that these
objects go in the trainer checkpoint's ``save_dict`` / ``load_dict`` beside the network and the
optimizer (the bundle's ``train#resume_dict``), and:

* write every file atomically (temporary file + rename, :func:`monai_bac.utils.atomic_write_path`):
  a kill never leaves a truncated ``model.pt`` or checkpoint, and removes the saver's own
  temporary files left by a killed run when it is attached;
* keep only the last ``n_saved`` periodic checkpoints, including those an earlier (killed) process
  of the same training wrote.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from ignite.engine import Engine
from ignite.handlers import DiskSaver
from monai.handlers import CheckpointSaver, EarlyStopHandler

from monai_bac.utils import atomic_write_path

__all__ = ["ResumableCheckpointSaver", "ResumableEarlyStopHandler"]

logger = logging.getLogger(__name__)



class _AtomicDiskSaver(DiskSaver):
    """ignite ``DiskSaver`` (one rank only, optional fixed file name as in MONAI's saver) that writes
    through :func:`~monai_bac.utils.atomic_write_path` (plain ``open()`` permissions, unlike ignite's
    own atomic mode, and a temporary name this module can recognise and clean)."""

    def __init__(self, dirname: str, filename: str | None = None):
        super().__init__(dirname=dirname, atomic=False, require_empty=False)
        self.filename = filename

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        super().__call__(checkpoint, self.filename or filename, metadata)

    def _save_func(self, checkpoint: Mapping, path, func) -> None:
        with atomic_write_path(path, overwrite=True) as tmp:
            func(checkpoint, tmp, **self.kwargs)

    def remove(self, filename: str) -> None:
        if self.filename is not None:
            return  # a fixed name (model.pt) is replaced in one step by the save that follows; never left missing
        with contextlib.suppress(FileNotFoundError):  # already gone (e.g. removed by a run that was then killed)
            super().remove(filename)


class ResumableCheckpointSaver(CheckpointSaver):
    """:class:`monai.handlers.CheckpointSaver` with a state that can be checkpointed and restored.

    Same arguments as MONAI's saver. ``state_dict()`` holds the key-metric saver's list of saved
    ``(score, file)`` items and the best metric and its epoch; put the saver in the trainer
    checkpoint's ``save_dict`` (the bundle's ``train#resume_dict``) and, on resume, the saver
    compares the next validation with the best one from before the restart.

    Periodic checkpoints (``save_interval``, ``n_saved``): at its first periodic save the saver
    adopts the checkpoints of the same name pattern with an earlier epoch (iteration) that are on
    disk, i.e. those of the run it resumes, and removes all but the newest ``n_saved - 1``; from
    then on ignite's ``n_saved`` pruning keeps exactly ``n_saved``. A fresh run's first save is
    epoch 1, so it adopts nothing.
    """

    def __init__(self, save_dir: str, save_dict: dict, **kwargs: Any) -> None:
        super().__init__(save_dir=save_dir, save_dict=save_dict, **kwargs)
        self._sign = -1.0 if kwargs.get("key_metric_negative_sign", False) else 1.0
        self._metric_name = kwargs.get("key_metric_name")
        self._best: dict[str, Any] = {"best_metric": None, "best_epoch": None}
        self._adopted = False
        name = "checkpoint" if len(save_dict) > 1 else next(iter(save_dict))
        prefix = kwargs.get("file_prefix", "")
        self._basename = f"{prefix}_{name}" if prefix else name
        for ckpt in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if ckpt is not None:
                ckpt.save_handler = _AtomicDiskSaver(save_dir, getattr(ckpt.save_handler, "filename", None))

    # ------------------------------------------------------------------ state
    def state_dict(self) -> OrderedDict:
        """``key_metric`` (ignite ``Checkpoint.state_dict()``: the saved ``(score, file)`` items),
        ``best_metric`` and ``best_epoch`` (None until a key-metric model was saved)."""
        state: OrderedDict = OrderedDict(self._best)
        if self._key_metric_checkpoint is not None:
            km = self._key_metric_checkpoint.state_dict()
            state["key_metric"] = OrderedDict((k, [(float(p), str(f)) for p, f in v]) for k, v in km.items())
        return state

    def load_state_dict(self, state_dict: Mapping) -> None:
        if "key_metric" not in state_dict:  # MONAI's form: the key-metric Checkpoint's own state
            super().load_state_dict(state_dict)
            return
        if self._key_metric_checkpoint is not None:
            self._key_metric_checkpoint.load_state_dict(state_dict["key_metric"])
        self._best = {k: state_dict.get(k) for k in self._best}
        if self._best["best_epoch"] is not None:
            logger.info("best-model saver resumed: best %s = %s at epoch %s", self._metric_name or "key metric",
                        self._best["best_metric"], self._best["best_epoch"])

    # ------------------------------------------------------------------ events
    def attach(self, engine: Engine) -> None:
        self._remove_own_temp_files()
        super().attach(engine)

    def metrics_completed(self, engine: Engine) -> None:
        before = self._key_metric_checkpoint.state_dict()
        super().metrics_completed(engine)
        after = self._key_metric_checkpoint.state_dict()
        if after == before:
            return
        name = self._metric_name or getattr(engine.state, "key_metric_name", None)
        metric = float(engine.state.metrics[name])
        priorities = [p for items in after.values() for p, _ in items]
        if priorities and self._sign * metric >= max(priorities):
            self._best = {"best_metric": metric, "best_epoch": int(engine.state.epoch)}
            self.logger.info(f"{name} {metric:.6g} at epoch {engine.state.epoch} is the best so far: model saved")

    def interval_completed(self, engine: Engine) -> None:
        if not self._adopted:
            self._adopted = True
            self._adopt_earlier_checkpoints(engine)
        super().interval_completed(engine)

    # ------------------------------------------------------------------ files
    def _adopt_earlier_checkpoints(self, engine: Engine) -> None:
        ckpt = self._interval_checkpoint
        if ckpt is None or ckpt.n_saved is None:
            return
        unit = "epoch" if self.epoch_level else "iteration"
        now = engine.state.epoch if self.epoch_level else engine.state.iteration
        pattern = re.compile(re.escape(f"{self._basename}_{unit}=") + r"(\d+)\.pt")
        on_disk = sorted((int(m.group(1)), f) for f in os.listdir(self.save_dir) if (m := pattern.fullmatch(f)))
        later = [f for step, f in on_disk if step > now]
        if later:  # not this run's: an earlier, longer run's (a fresh run was started in the same folder)
            self.logger.warning(f"{self.save_dir} holds checkpoints of an earlier run ({', '.join(later)}); a later "
                                "--resume would pick the newest epoch: remove or move them")
        found = [(step, f) for step, f in on_disk if step < now]
        keep = found[-(ckpt.n_saved - 1):] if ckpt.n_saved > 1 else []
        for step, f in found[: len(found) - len(keep)]:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(self.save_dir, f))
            self.logger.info(f"Removed checkpoint {f} of the resumed run (keeping the last {ckpt.n_saved})")
        key = next(iter(ckpt.state_dict()))  # "_saved" (ignite >= 0.5) or "saved"
        ckpt.load_state_dict({key: [(step, f) for step, f in keep]})

    def _file_stems(self) -> list[str]:
        """Regular expressions of the names (without ``.pt``) this saver writes."""
        stems = [re.escape(self._basename) + r"_(?:epoch|iteration|final_iteration|key_metric)=[-+.0-9e]+"]
        for ckpt in (self._final_checkpoint, self._key_metric_checkpoint):
            fixed = getattr(ckpt.save_handler, "filename", None) if ckpt is not None else None
            if fixed and fixed.endswith(".pt"):
                stems.append(re.escape(fixed[: -len(".pt")]))
        return stems

    def _remove_own_temp_files(self) -> None:
        """Remove temporary files of this saver's names that a killed run left in ``save_dir``."""
        if not os.path.isdir(self.save_dir):
            return
        from monai_bac.utils import temp_file_target

        stems = re.compile("|".join(self._file_stems()))
        for f in os.listdir(self.save_dir):
            target = temp_file_target(f) or ""
            path = os.path.join(self.save_dir, f)
            if (target.endswith(".pt") and stems.fullmatch(target[: -len(".pt")]) and os.path.isfile(path)
                    and not os.path.islink(path)):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                logger.info("removed %s, a partial file of a run that was stopped", path)


class ResumableEarlyStopHandler(EarlyStopHandler):
    """:class:`monai.handlers.EarlyStopHandler` whose patience counter and best score are part of a
    checkpoint: ``state_dict()`` / ``load_state_dict()`` are those of ignite's ``EarlyStopping``
    (``counter``, ``best_score``). A state loaded before :meth:`set_trainer` is applied by it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._pending: Mapping | None = None
        super().__init__(*args, **kwargs)

    def set_trainer(self, trainer: Engine) -> None:
        super().set_trainer(trainer)
        if self._pending is not None:
            self._handler.load_state_dict(self._pending)
            self._pending = None

    def state_dict(self) -> OrderedDict:
        if self._handler is None:
            return OrderedDict(self._pending or {"counter": 0, "best_score": None})
        state = self._handler.state_dict()
        if state.get("best_score") is not None:
            state["best_score"] = float(state["best_score"])
        return state

    def load_state_dict(self, state_dict: Mapping) -> None:
        if self._handler is None:
            self._pending = dict(state_dict)
        else:
            self._handler.load_state_dict(state_dict)
        logger.info("early stopping resumed: %s epoch(s) without improvement (patience %s)",
                    state_dict.get("counter"), self.patience)

"""What a bundle training prints: a progress bar per epoch, one line per epoch, a summary at the end.

``bundle/configs/train.json`` attaches :class:`TrainingReport` to the trainer (after the
validation handler, so the epoch's validation metrics are known when its line is written) and
:class:`TrainingSummary` to the threshold sweep that runs after training::

    epoch  3/30 | train_loss 0.4721 train_dice 0.112 | val_loss 0.4410 (best) val_dice 0.301 ... | lr 0.001 | 11.8 s

The progress bar (tqdm, on stderr) is drawn only when stderr is a terminal: a log file or a pipe
gets the epoch lines alone, with no carriage-return updates.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
import weakref
from typing import Any, Callable

__all__ = ["TrainingReport", "TrainingSummary", "show_progress"]

logger = logging.getLogger("monai_bac.train")

#: the report attached to each trainer (what :class:`TrainingSummary` prints)
_REPORTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def show_progress() -> bool:
    """Whether progress bars are wanted: only when stderr is a terminal (a log file gets none)."""
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


def _short_path(path: str) -> str:
    """``path`` relative to the working folder when it lies inside it, else absolute."""
    rel = os.path.relpath(os.path.abspath(path))
    return rel if not rel.startswith("..") else os.path.abspath(path)


def _scalar(value: Any) -> float | None:
    try:
        value = float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError, RuntimeError):
        return None
    return value if math.isfinite(value) else None


def _fmt(name: str, value: float) -> str:
    return f"{name} {value:.4f}" if "loss" in name else f"{name} {value:.3f}"


class TrainingReport:
    """Ignite handler for a MONAI trainer: per-epoch progress bar, one log line per epoch, history.

    Args:
        validator: the evaluator run by the ``ValidationHandler`` (its ``state.metrics`` are read
            at the end of each epoch; attach this handler after the validation handler).
        key_metric: the validation metric that selects the best model (``val_loss``).
        lower_is_better: the direction of ``key_metric`` (True for a loss).
        ckpt_dir, log_dir, bundle_root, datalist: where the outputs are, for the summary.
        progress: draw a progress bar per epoch; None: only when stderr is a terminal.
        loss_transform: the loss of one iteration from ``engine.state.output``.
    """

    def __init__(self, validator=None, key_metric: str = "val_loss", lower_is_better: bool = True,
                 ckpt_dir: str | None = None, log_dir: str | None = None, bundle_root: str | None = None,
                 datalist: str | None = None, progress: bool | None = None,
                 loss_transform: Callable | None = None) -> None:
        self.validator = validator
        self.key_metric = key_metric
        self.lower_is_better = bool(lower_is_better)
        self.ckpt_dir, self.log_dir, self.bundle_root, self.datalist = ckpt_dir, log_dir, bundle_root, datalist
        self.progress = show_progress() if progress is None else bool(progress)
        self.loss_transform = loss_transform
        self.history: list[dict[str, float]] = []
        self.trainer = None
        self._bar = None
        self._losses: list[float] = []
        self._t_epoch = self._t_start = 0.0
        self._lr: float | None = None

    # ------------------------------------------------------------------ ignite wiring
    def attach(self, engine) -> None:
        from ignite.engine import Events

        self.trainer = engine
        _REPORTS[engine] = self
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration_completed)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)

    def _started(self, engine) -> None:
        self._t_start = time.perf_counter()
        direction = "lower" if self.lower_is_better else "higher"
        where = f" -> {_short_path(os.path.join(self.ckpt_dir, 'model.pt'))}" if self.ckpt_dir else ""
        resumed = f" (resuming after epoch {engine.state.epoch})" if engine.state.epoch else ""
        logger.info("training %d epochs of %d iterations%s; one line per epoch; the best model has the %s %s "
                    "(%s is better)%s", engine.state.max_epochs, engine.state.epoch_length or 0, resumed,
                    "lowest" if self.lower_is_better else "highest", self.key_metric, direction, where)

    def _epoch_started(self, engine) -> None:
        self._losses = []
        self._t_epoch = time.perf_counter()
        optimizer = getattr(engine, "optimizer", None)
        self._lr = _scalar(optimizer.param_groups[0]["lr"]) if optimizer is not None else None
        if self.progress:
            from tqdm import tqdm

            width = len(str(engine.state.max_epochs))
            self._bar = tqdm(total=engine.state.epoch_length, desc=f"epoch {engine.state.epoch:>{width}}/"
                             f"{engine.state.max_epochs}", unit="it", leave=False, dynamic_ncols=True,
                             file=sys.stderr)

    def _loss(self, output) -> float | None:
        if self.loss_transform is not None:
            return _scalar(self.loss_transform(output))
        if isinstance(output, (list, tuple)) and output and isinstance(output[0], dict):
            output = output[0]  # decollated batch: every item carries the batch loss
        return _scalar(output.get("loss")) if isinstance(output, dict) else None

    def _iteration_completed(self, engine) -> None:
        loss = self._loss(engine.state.output)
        if loss is not None:
            self._losses.append(loss)
        if self._bar is not None:
            self._bar.update(1)
            if loss is not None:
                self._bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)
            if engine.state.iteration % (engine.state.epoch_length or 1) == 0:
                self._bar.set_postfix_str("validating", refresh=True)

    def _epoch_completed(self, engine) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        record: dict[str, float] = {"epoch": engine.state.epoch}
        if self._losses:
            record["train_loss"] = sum(self._losses) / len(self._losses)
        for name, value in engine.state.metrics.items():
            if _scalar(value) is not None:
                record[name] = _scalar(value)
        n_train = len(record)
        v = self.validator
        if v is not None and getattr(v.state, "epoch", None) == engine.state.epoch:  # validated this epoch
            metrics = v.state.metrics
            names = [self.key_metric] * (self.key_metric in metrics) + [k for k in metrics if k != self.key_metric]
            for name in names:
                if _scalar(metrics[name]) is not None:
                    record[name] = _scalar(metrics[name])
        previous, current = self.best(), record.get(self.key_metric)
        is_best = current is not None and (previous is None or self._better(current, previous[self.key_metric]))
        self.history.append(record)
        width = len(str(engine.state.max_epochs))
        train = " ".join(_fmt(k, v) for k, v in list(record.items())[1:n_train])
        val = " ".join(_fmt(k, v) + (" (best)" if k == self.key_metric and is_best else "")
                       for k, v in list(record.items())[n_train:])
        parts = [f"epoch {engine.state.epoch:>{width}}/{engine.state.max_epochs}", train, val or "not validated",
                 f"lr {self._lr:.3g}" if self._lr is not None else "", f"{time.perf_counter() - self._t_epoch:.1f} s"]
        logger.info(" | ".join(p for p in parts if p))

    # ------------------------------------------------------------------ results
    def _better(self, a: float, b: float) -> bool:
        return a < b if self.lower_is_better else a > b

    def best(self) -> dict[str, float] | None:
        """The record of the best epoch so far (the first one when several tie), or None."""
        best = None
        for record in self.history:
            if self.key_metric in record and (best is None or self._better(record[self.key_metric],
                                                                            best[self.key_metric])):
                best = record
        return best

    def summary_lines(self, threshold_file: str | None = None) -> list[str]:
        """The closing block: epochs run, best epoch and its metrics, threshold, files, next commands."""
        if not self.history:
            return []
        state = self.trainer.state if self.trainer is not None else None
        last, minutes = self.history[-1]["epoch"], (time.perf_counter() - self._t_start) / 60.0
        max_epochs = state.max_epochs if state is not None else last
        stopped = "" if last >= max_epochs else " (stopped early: no improvement of " + self.key_metric + ")"
        lines = [f"training finished: {int(last)} of {max_epochs} epochs in {minutes:.1f} min{stopped}"]
        best = self.best()
        if best is None:
            lines.append(f"no epoch was validated: no {self.key_metric}, no best model")
        else:
            direction = "lowest" if self.lower_is_better else "highest"
            others = ", ".join(_fmt(k, v) for k, v in best.items() if k not in ("epoch", self.key_metric))
            first = int(self.history[0]["epoch"])
            of = f" of epochs {first}-{int(last)} (run resumed: an earlier epoch may have been better)" if first > 1 else ""
            lines.append(f"best epoch {int(best['epoch'])}{of}: {_fmt(self.key_metric, best[self.key_metric])} "
                         f"({direction}; {'lower' if self.lower_is_better else 'higher'} is better); {others}")
        if threshold_file and os.path.isfile(threshold_file):
            try:
                info = json.loads(open(threshold_file).read())
                dice = f", validation Dice {float(info['dice']):.3f}" if info.get("dice") is not None else ""
                lines.append(f"threshold {float(info['threshold']):.2f} (swept on the validation set{dice}): "
                             f"{_short_path(threshold_file)}")
            except (OSError, ValueError, KeyError, TypeError):
                lines.append(f"threshold: {_short_path(threshold_file)} is unreadable")
        if self.ckpt_dir:
            model = os.path.join(self.ckpt_dir, "model.pt")
            what = f"weights of epoch {int(best['epoch'])}" if best is not None else "not written"
            what = "the best validated weights" if best is not None and int(self.history[0]["epoch"]) > 1 else what
            lines.append(f"model: {_short_path(model)} ({what}); settings: "
                         f"{_short_path(os.path.join(self.ckpt_dir, 'model_settings.json'))}; "
                         f"resume checkpoints: {_short_path(self.ckpt_dir)}/checkpoint_epoch=N.pt")
        if self.log_dir:
            logs = _short_path(self.log_dir)
            lines.append(f"TensorBoard logs: {logs} (tensorboard --logdir {logs})")
        lines += self._next_commands()
        return lines

    def _next_commands(self) -> list[str]:
        if not self.bundle_root:
            return []
        configs = _short_path(os.path.join(self.bundle_root, "configs"))
        # the configs' default bundle_root: ./bundle from the repository root, else the working folder
        default = os.path.abspath("bundle" if os.path.isfile(os.path.join("bundle", "configs", "train.json")) else ".")
        root = "" if default == os.path.abspath(self.bundle_root) else f" --bundle_root {_short_path(self.bundle_root)}"
        data = f" --input_path {_short_path(self.datalist)}" if self.datalist else ""
        infer = f"{configs}/inference.json"
        return [f"next, masks for your images: python -m monai.bundle run --config_file {infer}{root} "
                "--input_path DICOM_FOLDER",
                f"next, evaluate on the test split: python -m monai.bundle run --config_file "
                f"\"['{infer}','{configs}/evaluate.json']\"{root}{data}"]

    def log_summary(self, threshold_file: str | None = None) -> None:
        try:
            lines = self.summary_lines(threshold_file)
        except Exception as e:  # a report must never fail a finished training
            logger.warning("could not write the training summary: %s: %s", type(e).__name__, e)
            return
        if lines:
            logger.info("\n    ".join(lines))


class TrainingSummary:
    """Ignite handler that logs the summary of the :class:`TrainingReport` attached to ``trainer``
    when its own engine completes (the threshold sweep, which runs after training and writes
    ``threshold.json``). Nothing is logged when no report is attached to ``trainer`` (the other
    ranks of a multi-GPU run)."""

    def __init__(self, trainer, threshold_file: str | None = None) -> None:
        self.trainer, self.threshold_file = trainer, threshold_file

    def attach(self, engine) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.COMPLETED, self._completed)

    def _completed(self, _engine) -> None:
        report = _REPORTS.get(self.trainer)
        if report is not None:
            report.log_summary(self.threshold_file)

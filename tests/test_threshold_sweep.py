"""Threshold sweep (Sec. 4.3): counts, the per-image mean Dice curve, the handler and its file."""

import json
import logging
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator
from monai.metrics import DiceMetric

from monai_bac.handlers import DEFAULT_THRESHOLDS, ThresholdSweep, read_threshold, threshold_counts, write_threshold
from monai_bac.handlers.threshold_sweep import sweep_dice


def test_default_thresholds_are_the_papers_grid():
    assert len(DEFAULT_THRESHOLDS) == 19
    assert DEFAULT_THRESHOLDS[0] == 0.05 and DEFAULT_THRESHOLDS[-1] == 0.95
    np.testing.assert_allclose(np.diff(DEFAULT_THRESHOLDS), 0.05)


def test_counts_give_monai_dice_at_every_threshold():
    g = torch.Generator().manual_seed(0)
    prob = torch.rand(5, 1, 40, 50, generator=g)
    label = torch.rand(5, 1, 40, 50, generator=g) < 0.2
    label[4] = False  # an empty label
    prob[0, 0, 0, :4] = torch.tensor([0.35, 0.05, 0.95, 1.0])  # values exactly on thresholds
    for ignore_empty in (True, False):
        dice = sweep_dice(threshold_counts(prob, label), ignore_empty)
        for k, t in enumerate(DEFAULT_THRESHOLDS):
            ref = DiceMetric(reduction="none", ignore_empty=ignore_empty)((prob >= t).float(), label.float())[:, 0]
            np.testing.assert_allclose(dice[:, k], ref.numpy(), rtol=1e-6, equal_nan=True)
    listed = threshold_counts(list(prob), list(label))
    torch.testing.assert_close(listed, threshold_counts(prob, label))
    with pytest.raises(ValueError, match="single-channel"):
        threshold_counts(torch.rand(2, 2, 8, 8), torch.zeros(2, 2, 8, 8))


@pytest.mark.parametrize("thresholds", [DEFAULT_THRESHOLDS, (0.1, 0.33, 0.5, 0.72)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dense", [True, False])
def test_counts_are_exact_at_and_next_to_the_cut_offs(thresholds, dtype, dense):
    rng = np.random.default_rng(1)
    p = rng.random((3, 1, 90, 90)).astype(dtype)
    if not dense:
        p *= dtype(0.02)  # mostly below the first cut-off: the compacting path
    edges = np.asarray(thresholds, dtype)
    tricky = np.concatenate([edges, np.nextafter(edges, dtype(0)), np.nextafter(edges, dtype(1)), [0, 1]]).astype(dtype)
    p.reshape(-1)[: tricky.size] = tricky
    y = rng.random((3, 1, 90, 90)) < 0.3
    got = threshold_counts(p, y, thresholds).numpy()
    flat_p, flat_y = p.reshape(3, -1), y.reshape(3, -1)
    for k, t in enumerate(edges):
        np.testing.assert_array_equal(got[:, k], (flat_p >= t).sum(1))
        np.testing.assert_array_equal(got[:, len(edges) + k], ((flat_p >= t) & flat_y).sum(1))
    np.testing.assert_array_equal(got[:, -1], flat_y.sum(1))


def _constructed():
    """Two 32 x 32 images whose unique best cut-off is 0.60 (label at 0.62, distractors at 0.58)."""
    prob = np.zeros((2, 1, 32, 32), np.float32)
    label = np.zeros((2, 1, 32, 32), np.uint8)
    label[0, 0, 4:12, 4:20] = 1
    prob[0, 0, 4:12, 4:20] = 0.62
    prob[0, 0, 20:26, 4:20] = 0.58  # false positives below 0.60 only
    label[1, 0, 10:20, 10:14] = 1
    prob[1, 0, 10:20, 10:14] = 0.9
    prob[1, 0, 25:30, 25:30] = 0.3
    return prob, label


class Identity(torch.nn.Module):
    """A tiny 'network' that returns its input: the images are the probability maps."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x * self.scale


def _evaluator(prob, label, handlers, key_metric=None):
    data = [{"image": torch.from_numpy(p), "label": torch.from_numpy(y)} for p, y in zip(prob, label)]
    return SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(data), batch_size=2),
        network=Identity(),
        key_val_metric=key_metric,
        val_handlers=handlers,
    )


def test_sweep_in_supervised_evaluator_picks_the_right_threshold_and_writes_the_file(tmp_path, caplog):
    prob, label = _constructed()
    out = tmp_path / "models" / "threshold.json"
    sweep = ThresholdSweep(output_path=out)
    evaluator = _evaluator(prob, label, [sweep])
    with caplog.at_level(logging.INFO):
        evaluator.run()
    assert evaluator.state.metrics["best_threshold"] == pytest.approx(0.6)
    assert evaluator.state.metrics["best_threshold_dice"] == pytest.approx(1.0)
    saved = json.loads(out.read_text())
    assert saved["threshold"] == pytest.approx(0.6) and saved["dice"] == pytest.approx(1.0)
    assert len(saved["curve"]) == 19 and saved["curve"]["0.65"] == 0.5 and saved["curve"]["0.95"] == 0.0
    assert saved["curve"]["0.55"] < 1.0 and saved["n_images"] == 2
    assert read_threshold(out) == pytest.approx(0.6)
    assert sorted(p.name for p in out.parent.iterdir()) == ["threshold.json"]  # no temp file left
    assert "best threshold 0.6" in caplog.text
    # a second epoch starts afresh and replaces the file
    evaluator.run()
    assert sweep.result["n_images"] == 2 and read_threshold(out) == pytest.approx(0.6)


def test_ignore_empty_decides_whether_false_positives_on_empty_images_count():
    prob, label = _constructed()
    prob = np.concatenate([prob, np.full((1, 1, 32, 32), 0.0, np.float32)])
    prob[2, 0, :3, :3] = 0.7  # an image without BAC, with a small false positive at 0.7
    label = np.concatenate([label, np.zeros((1, 1, 32, 32), np.uint8)])
    counts = threshold_counts(torch.from_numpy(prob), torch.from_numpy(label))
    ignored = np.nanmean(sweep_dice(counts, True), axis=0)
    scored = np.nanmean(sweep_dice(counts, False), axis=0)
    k60, k75 = DEFAULT_THRESHOLDS.index(0.6), DEFAULT_THRESHOLDS.index(0.75)
    assert ignored[k60] == pytest.approx(1.0)
    assert scored[k60] == pytest.approx(2 / 3)  # the empty image scores 0 at 0.6
    assert scored[k75] == pytest.approx((0.0 + 1.0 + 1.0) / 3)


def test_no_labels_keeps_default_and_writes_null_dice(tmp_path):
    sweep = ThresholdSweep(output_path=tmp_path / "t.json", default_threshold=0.5)
    sweep.update(torch.rand(2, 1, 8, 8), torch.zeros(2, 1, 8, 8))
    engine = SimpleNamespace(state=SimpleNamespace(epoch=1, metrics={}))
    sweep.epoch_completed(engine)
    assert engine.state.metrics["best_threshold"] == 0.5 and math.isnan(engine.state.metrics["best_threshold_dice"])
    saved = json.loads((tmp_path / "t.json").read_text())
    assert saved["dice"] is None and saved["threshold"] == 0.5


def test_only_on_improvement_follows_the_key_metric(tmp_path):
    prob, label = _constructed()
    out = tmp_path / "t.json"
    sweep = ThresholdSweep(output_path=out, only_on_improvement=True)
    sweep.update(torch.from_numpy(prob), torch.from_numpy(label))
    sweep.epoch_completed(SimpleNamespace(state=SimpleNamespace(epoch=3, best_metric_epoch=2, metrics={})))
    assert not out.exists()
    sweep.epoch_completed(SimpleNamespace(state=SimpleNamespace(epoch=3, best_metric_epoch=3, metrics={})))
    assert read_threshold(out) == pytest.approx(0.6)


def test_ties_go_to_the_threshold_nearest_half():
    prob = torch.zeros(1, 1, 8, 8)
    label = torch.zeros(1, 1, 8, 8)
    prob[0, 0, :4] = 0.97
    label[0, 0, :4] = 1  # every threshold gives Dice 1
    sweep = ThresholdSweep()
    sweep.update(prob, label)
    assert sweep.compute()["threshold"] == 0.5


def test_read_threshold_default_and_errors(tmp_path):
    assert read_threshold(tmp_path / "missing.json", default=0.35) == 0.35
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="threshold"):
        read_threshold(bad)
    write_threshold(tmp_path / "out.json", {"threshold": 1.5})
    with pytest.raises(ValueError, match="outside"):
        read_threshold(tmp_path / "out.json")

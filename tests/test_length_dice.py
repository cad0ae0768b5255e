"""Dice^L (Eq. 6), its bound, its empty cases and clDice, on hand-built masks with known answers."""

import math

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.metrics import DiceMetric

from monai_bac.metrics import CLDiceMetric, LengthDiceMetric, compute_cldice, compute_length_dice
from monai_bac.ops.length_dice import (
    band_radius_mm,
    cldice,
    cldice_terms,
    length_dice,
    length_dice_terms,
    points_within,
    skeleton_band,
)
from monai_bac.ops.skeleton import skeleton_length_mm, thin_mask

SP = (0.1, 0.1)  # mm, the paper's detector pitch


def tube(shape, path_rc, radius_px):
    """Mask of the pixels within ``radius_px`` of a polyline (rows, cols) of points."""
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    pts = np.asarray(path_rc, float)
    out = np.zeros(shape, bool)
    for (r0, c0), (r1, c1) in zip(pts[:-1], pts[1:]):
        d = np.array([r1 - r0, c1 - c0])
        t = np.clip(((rr - r0) * d[0] + (cc - c0) * d[1]) / max(d @ d, 1e-12), 0, 1)
        out |= (rr - r0 - t * d[0]) ** 2 + (cc - c0 - t * d[1]) ** 2 <= radius_px**2
    return out


def artery(shape=(200, 500), offset_r=0.0, n=60):
    """A gently curved artery centre line across the image (rows, cols)."""
    cols = np.linspace(40, shape[1] - 40, n)
    rows = shape[0] / 2 + 25 * np.sin(cols / 70.0) + offset_r
    return np.column_stack([rows, cols])


def area_dice(a, b):
    t = lambda x: torch.as_tensor(x[None, None], dtype=torch.float32)  # noqa: E731
    return float(DiceMetric()(t(a), t(b)))


# --------------------------------------------------------------------------- Fig. 7 situation
@pytest.mark.parametrize("r_label, r_pred", [(3, 7), (5, 1)])
def test_wider_or_narrower_trace_scores_high_length_dice_low_area_dice(r_label, r_pred):
    path = artery()
    label, pred = tube((200, 500), path, r_label), tube((200, 500), path, r_pred)
    assert area_dice(pred, label) <= 0.75
    assert length_dice(pred, label, SP) >= 0.95
    assert cldice(pred, label, SP) >= 0.95


def test_shift_below_half_band_keeps_length_dice_and_beyond_loses_it():
    path = artery()
    label = tube((200, 500), path, 1)
    near = tube((200, 500), path + [8, 0], 1)  # 0.8 mm < 1.05 mm
    far = tube((200, 500), np.column_stack([np.full(2, 100.0), [40, 460]]) + [13, 0], 1)
    straight = tube((200, 500), np.column_stack([np.full(2, 100.0), [40, 460]]), 1)
    assert length_dice(near, label, SP) == pytest.approx(1.0, abs=0.01)
    assert length_dice(far, straight, SP) == 0.0  # 1.3 mm away: outside the band


def test_far_false_segment_lowers_score_by_exactly_its_length_share():
    label = tube((300, 500), artery((200, 500)), 3)
    false_seg = tube((300, 500), [(280, 100), (280, 300)], 2)  # > 5 mm from the artery
    pred = label | false_seg
    la = skeleton_length_mm(thin_mask(label), SP)
    f = skeleton_length_mm(thin_mask(false_seg), SP)
    assert f > 15.0
    t = length_dice_terms(pred, label, SP)
    assert t.pred_length == pytest.approx(la + f, rel=1e-12)
    assert t.pred_in_band == pytest.approx(la, rel=1e-12)
    assert length_dice(label, label, SP) == pytest.approx(1.0, rel=1e-12)
    drop = 1.0 - length_dice(pred, label, SP)
    assert drop == pytest.approx(f / (la + f + la), rel=1e-9)
    # bounded and printed Eq. (6) agree while Eq. (6) <= 1
    assert length_dice(pred, label, SP, bounded=False) == pytest.approx(1.0 - drop, rel=1e-12)


def test_diagonal_line_length():
    line = np.eye(1000, dtype=bool)
    assert skeleton_length_mm(thin_mask(line), SP) == pytest.approx(999 * math.sqrt(2) * 0.1, rel=1e-9)
    assert skeleton_length_mm(thin_mask(line), (0.1, 0.2)) == pytest.approx(999 * math.hypot(0.1, 0.2), rel=1e-9)
    thick = tube((1000, 1000), [(0, 0), (999, 999)], 2.5)
    assert skeleton_length_mm(thin_mask(thick), SP) == pytest.approx(999 * math.sqrt(2) * 0.1, rel=0.01)
    t = length_dice_terms(thick, line, SP)
    assert t.label_length == pytest.approx(999 * math.sqrt(2) * 0.1, rel=1e-9)


def test_spacing_changes_the_band_in_pixels():
    skel = np.zeros((61, 61), bool)
    skel[30, 30] = True
    iso = skeleton_band(skel, (0.1, 0.1), 2.1)  # radius 10.5 px both ways
    aniso = skeleton_band(skel, (0.2, 0.1), 2.1)  # radius 5.25 px along rows, 10.5 along cols
    extent = lambda b: (np.ptp(np.nonzero(b)[0]) + 1, np.ptp(np.nonzero(b)[1]) + 1)  # noqa: E731
    assert extent(iso) == (21, 21)
    assert extent(aniso) == (11, 21)
    # the same pixels, 8 rows apart: inside the band at 0.1 mm, outside at 0.2 mm row spacing
    straight = tube((100, 300), [(50, 20), (50, 280)], 0)
    shifted = tube((100, 300), [(58, 20), (58, 280)], 0)
    assert length_dice(shifted, straight, (0.1, 0.1)) == pytest.approx(1.0)
    assert length_dice(shifted, straight, (0.2, 0.1)) == 0.0


def test_points_within_equals_edt_band_lookup():
    rng = np.random.default_rng(3)
    ref = rng.random((80, 90)) > 0.995
    pts = rng.random((80, 90)) > 0.9
    for spacing in [(0.1, 0.1), (0.13, 0.07)]:
        band = skeleton_band(ref, spacing, 2.1)
        r, c = np.nonzero(pts)
        got = points_within(r, c, *np.nonzero(ref), spacing, band_radius_mm(2.1))
        np.testing.assert_array_equal(got, band[r, c])


def test_eq6_above_one_is_bounded():
    """An annotation with gaps the band bridges (Fig. 7): Eq. (6) > 1, Dice^L = 1."""
    full = tube((100, 600), [(50, 30), (50, 570)], 2)
    label = full.copy()
    for c in (150, 300, 450):
        label[:, c : c + 10] = False  # 1.0 mm gaps < 2.1 mm band
    raw = length_dice(full, label, SP, bounded=False)
    assert raw > 1.03
    assert length_dice(full, label, SP) == 1.0
    assert compute_length_dice(full[None, None], label[None, None], SP).item() == 1.0


def test_empty_cases_follow_monai_ignore_empty():
    empty = np.zeros((50, 50), bool)
    line = tube((50, 50), [(25, 5), (25, 45)], 1)
    specks = np.zeros((50, 50), bool)
    specks[::10, ::10] = True  # isolated pixels: no length
    for fn in (length_dice, cldice):
        assert math.isnan(fn(empty, empty, SP))
        assert fn(empty, empty, SP, ignore_empty=False) == 1.0
        assert math.isnan(fn(line, empty, SP))
        assert fn(line, empty, SP, ignore_empty=False) == 0.0
        assert fn(empty, line, SP) == 0.0 and fn(empty, line, SP, ignore_empty=False) == 0.0
        assert fn(specks, empty, SP, ignore_empty=False) == 1.0  # no length either side
        assert fn(specks, line, SP) == 0.0


def test_cldice_length_terms():
    label = tube((300, 500), artery((200, 500)), 3)
    false_seg = tube((300, 500), [(280, 100), (280, 300)], 2)
    t = cldice_terms(label | false_seg, label, SP)
    la = skeleton_length_mm(thin_mask(label), SP)
    f = skeleton_length_mm(thin_mask(false_seg), SP)
    tprec, tsens = la / (la + f), 1.0
    assert t.pred_in_label == pytest.approx(la, rel=1e-12)
    assert cldice(label | false_seg, label, SP) == pytest.approx(2 * tprec * tsens / (tprec + tsens), rel=1e-12)


# --------------------------------------------------------------------------- MONAI face
def _batch():
    path = artery()
    label = np.stack([tube((200, 500), path, 3), tube((200, 500), path, 3), np.zeros((200, 500), bool)])
    prob = np.stack([tube((200, 500), path, 6) * 0.8, tube((200, 500), path + [0, 0], 2) * 0.3, np.zeros((200, 500))])
    return prob[:, None].astype(np.float32), label[:, None].astype(np.uint8)


def test_compute_length_dice_batched_numpy_torch_and_threshold():
    prob, label = _batch()
    out = compute_length_dice(prob, label, SP)
    assert out.shape == (3, 1) and out.dtype == torch.float32
    assert out[0, 0] >= 0.95
    assert out[1, 0] == 0.0  # 0.3 < threshold 0.5: empty prediction
    assert torch.isnan(out[2, 0])
    low = compute_length_dice(torch.from_numpy(prob), torch.from_numpy(label), SP, threshold=0.25, ignore_empty=False)
    assert low[1, 0] >= 0.95 and low[2, 0] == 1.0
    per_image = compute_length_dice(prob, label, [SP, (0.2, 0.1), SP])
    assert per_image[0, 0] == out[0, 0]
    with pytest.raises(ValueError, match="spacing"):
        compute_length_dice(prob, label, [SP, SP])


def test_spacing_from_metatensor_meta_and_clear_error():
    prob, label = _batch()
    collated_spacing = [torch.tensor([0.1] * 3), torch.tensor([0.1] * 3)]  # list_data_collate of (0.1, 0.1)
    collated = MetaTensor(torch.from_numpy(prob), meta={"spacing_mm": collated_spacing})
    collated.is_batch = True
    np.testing.assert_array_equal(compute_length_dice(collated, label), compute_length_dice(prob, label, SP))
    with pytest.raises(ValueError, match="spacing_mm"):
        compute_length_dice(prob, label)
    with pytest.raises(ValueError, match="spacing_mm"):
        compute_length_dice(MetaTensor(torch.from_numpy(prob)), label)


def test_length_dice_metric_accumulates_like_dice_metric():
    prob, label = _batch()
    metric = LengthDiceMetric(spacing_mm=SP, get_not_nans=True)
    metric(torch.from_numpy(prob[:2]), torch.from_numpy(label[:2]))
    items = [MetaTensor(torch.from_numpy(p), meta={"spacing_mm": (0.1, 0.1)}) for p in prob[2:]]
    metric(items, [torch.from_numpy(x) for x in label[2:]])
    value, not_nans = metric.aggregate()
    per_image = metric.get_buffer()
    assert per_image.shape == (3, 1)
    assert not_nans.item() == 2
    assert value.item() == pytest.approx(float(np.nanmean(per_image.numpy())))
    none = metric.aggregate(reduction="none")[0]
    assert none.shape == (3, 1)
    metric.reset()
    with pytest.raises(ValueError, match="spacing_mm"):
        LengthDiceMetric()(torch.from_numpy(prob), torch.from_numpy(label))


def test_cldice_metric_and_include_background():
    prob, label = _batch()
    onehot_p = np.concatenate([1 - prob, prob], axis=1)
    onehot_y = np.concatenate([1 - label, label], axis=1).astype(np.uint8)
    fg = compute_cldice(onehot_p, onehot_y, SP, include_background=False)
    assert fg.shape == (3, 1)
    np.testing.assert_array_equal(fg, compute_cldice(prob, label, SP))
    metric = CLDiceMetric(spacing_mm=SP)
    metric(torch.from_numpy(prob), torch.from_numpy(label))
    scores = metric.get_buffer()[:, 0]
    assert scores[0] >= 0.95 and scores[1] == 0.0 and torch.isnan(scores[2])
    assert metric.aggregate().item() == pytest.approx((scores[0].item() + 0.0) / 2)


# --------------------------------------------------------------------------- Ignite handlers
def test_handlers_in_supervised_evaluator_land_in_state_metrics(tmp_path):
    from monai.data import DataLoader, Dataset
    from monai.engines import SupervisedEvaluator
    from monai.handlers import MeanDice, from_engine
    from monai.transforms import Activationsd, AsDiscreted, Compose, CopyItemsd

    from monai_bac.handlers import CLDice, LengthDice, ThresholdSweep

    net = torch.nn.Conv2d(1, 1, 3, padding=1)  # a tiny network that widens the mask by one pixel
    with torch.no_grad():
        net.weight.fill_(10.0)
        net.bias.fill_(-5.0)
    data = []
    for k in range(3):
        label = tube((64, 96), [(20 + 8 * k, 8), (30, 88)], 1.5).astype(np.float32)[None]
        meta = {"spacing_mm": (0.1, 0.1)}
        data.append({"image": MetaTensor(torch.from_numpy(label), meta=dict(meta)),
                     "label": MetaTensor(torch.from_numpy(label), meta=dict(meta))})
    post = Compose([Activationsd(keys="pred", sigmoid=True), CopyItemsd(keys="pred", names="pred_mask"),
                    AsDiscreted(keys="pred_mask", threshold=0.5)])
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(data), batch_size=2),
        network=net,
        postprocessing=post,
        key_val_metric={"val_length_dice": LengthDice(output_transform=from_engine(["pred", "label"]))},
        additional_metrics={
            "val_cldice": CLDice(output_transform=from_engine(["pred", "label"])),
            "val_mean_dice": MeanDice(output_transform=from_engine(["pred_mask", "label"])),
        },
        val_handlers=[ThresholdSweep(output_path=tmp_path / "threshold.json")],
    )
    evaluator.run()
    m = evaluator.state.metrics
    assert m["val_length_dice"] >= 0.95 and m["val_cldice"] >= 0.95
    assert m["val_mean_dice"] < 0.9  # the one-pixel-wider prediction costs area Dice
    assert 0.05 <= m["best_threshold"] <= 0.95
    assert evaluator.state.metric_details["val_length_dice"].shape == (3, 1)
    assert (tmp_path / "threshold.json").is_file()


def test_spacing_prefers_a_resized_affine_over_stale_meta():
    prob, label = _batch()
    affine = torch.diag(torch.tensor([0.2, 0.1, 1.0], dtype=torch.float64))
    stale = MetaTensor(torch.from_numpy(prob), affine=affine, meta={"spacing_mm": (0.1, 0.1)})
    with pytest.warns(UserWarning, match="affine"):
        got = compute_length_dice(stale, label)
    np.testing.assert_array_equal(got, compute_length_dice(prob, label, (0.2, 0.1)))
    only_affine = MetaTensor(torch.from_numpy(prob), affine=affine)
    np.testing.assert_array_equal(compute_length_dice(only_affine, label), got)
    agree = MetaTensor(torch.from_numpy(prob), affine=affine, meta={"spacing_mm": (0.2, 0.1)})
    np.testing.assert_array_equal(compute_length_dice(agree, label), got)


def test_mask_dice_is_monai_dice_with_defined_empty_cases():
    from monai_bac.metrics import mask_dice

    a = np.zeros((8, 8), np.uint8)
    b = np.zeros((8, 8), bool)
    assert mask_dice(a, b) == 1.0  # both empty
    a[2:4, 2:6] = 1  # 8 pixels
    assert mask_dice(a, b) == 0.0 and mask_dice(b, a) == 0.0
    b[2:4, 4:8] = True  # 8 pixels, 4 shared
    assert mask_dice(a, b) == pytest.approx(2 * 4 / 16)

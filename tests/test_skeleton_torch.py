"""Skeleton paths agree: skimage reference, the fast numpy route and the batched torch route."""

import numpy as np
import pytest
import torch
from skimage.morphology import skeletonize, thin

from monai_bac.metrics import compute_cldice, compute_length_dice
from monai_bac.ops.length_dice import cldice_terms, length_dice_terms
from monai_bac.ops.skeleton import (
    component_skeleton_lengths,
    length_density,
    mask_skeleton_points,
    skeleton_length_mm,
    skeletonize_mask,
    thin_mask,
)
from monai_bac.ops.skeleton_torch import (
    cldice_terms_torch,
    length_dice_terms_torch,
    skeleton_length_torch,
    thin_torch,
)
from monai_bac.phantom import make_phantom

SPACINGS = np.array([[0.5, 0.5], [0.5, 0.4]])


@pytest.fixture(scope="module")
def phantom_masks():
    """(4, H, W) uint8: ground-truth BAC and simulated TPA masks of two 0.5 mm phantoms."""
    ph = [make_phantom(seed, spacing_mm=0.5) for seed in (1, 2)]
    pred = np.stack([p.tpa_mask for p in ph])
    label = np.stack([p.bac_mask for p in ph])
    return pred, label


def random_blobs(seed, shape=(90, 110)):
    rng = np.random.default_rng(seed)
    return rng.random(shape) > rng.uniform(0.3, 0.7)


def step_length(skel, spacing):
    """The original step-counting definition of the skeleton length (reference)."""
    s = skel.astype(bool)
    sr, sc = spacing
    right, down = s[:, :-1] & s[:, 1:], s[:-1, :] & s[1:, :]
    diag = s[:-1, :-1] & s[1:, 1:] & ~s[:-1, 1:] & ~s[1:, :-1]
    anti = s[:-1, 1:] & s[1:, :-1] & ~s[:-1, :-1] & ~s[1:, 1:]
    return right.sum() * sc + down.sum() * sr + (diag.sum() + anti.sum()) * np.hypot(sr, sc)


def test_numpy_routes_equal_skimage(phantom_masks):
    pred, label = phantom_masks
    masks = [*pred, *label, random_blobs(0), random_blobs(1)]
    for m in masks:
        m = m.astype(bool)
        np.testing.assert_array_equal(skeletonize_mask(m), skeletonize(m))
        np.testing.assert_array_equal(thin_mask(m), thin(m))
        ref = thin(m)
        for sp in SPACINGS:
            assert skeleton_length_mm(ref, sp) == pytest.approx(step_length(ref, sp), rel=1e-12)
            r, c, w = mask_skeleton_points(m, sp)
            assert w.sum() == pytest.approx(step_length(ref, sp), rel=1e-12)
            assert length_density(ref, sp)[r, c].sum() == pytest.approx(w.sum(), rel=1e-6)


def test_component_lengths_sum_to_total(phantom_masks):
    from skimage.measure import label as cc_label

    m = phantom_masks[0][0].astype(bool)
    lab = cc_label(m, connectivity=2)
    per = component_skeleton_lengths(lab, (0.5, 0.5))
    assert per[0] == 0.0 and per.sum() == pytest.approx(skeleton_length_mm(thin_mask(m), (0.5, 0.5)), rel=1e-9)


def _check_torch_against_numpy(pred_t, label_t, pred, label):
    skel = thin_torch(torch.cat([pred_t, label_t])).cpu().numpy()
    for i, m in enumerate([*pred, *label]):
        np.testing.assert_array_equal(skel[i], thin_mask(m))
    lengths = skeleton_length_torch(torch.as_tensor(skel, device=pred_t.device), np.concatenate([SPACINGS, SPACINGS]))
    terms_t = length_dice_terms_torch(pred_t, label_t, SPACINGS, 2.1).cpu().numpy()
    cl_t = cldice_terms_torch(pred_t, label_t, SPACINGS).cpu().numpy()
    for i in range(len(pred)):
        ref = np.array(tuple(length_dice_terms(pred[i], label[i], SPACINGS[i], 2.1)))
        np.testing.assert_allclose(terms_t[i], ref, rtol=0.01)
        np.testing.assert_allclose(terms_t[i], ref, rtol=1e-9)  # in fact identical up to rounding
        np.testing.assert_allclose(cl_t[i], tuple(cldice_terms(pred[i], label[i], SPACINGS[i])), rtol=1e-9)
        assert lengths[i].item() == pytest.approx(skeleton_length_mm(thin_mask(pred[i]), SPACINGS[i]), rel=1e-9)
    assert terms_t[:, 0].min() > 50.0  # the phantom masks hold real length (mm)


def test_torch_cpu_matches_numpy_on_phantom_masks(phantom_masks):
    pred, label = phantom_masks
    _check_torch_against_numpy(torch.from_numpy(pred), torch.from_numpy(label), pred, label)


def test_torch_thinning_on_random_blobs_equals_skimage():
    masks = np.stack([random_blobs(s, (70, 80)) for s in range(4)])
    np.testing.assert_array_equal(thin_torch(torch.from_numpy(masks)).numpy(), np.stack([thin(m) for m in masks]))
    assert not thin_torch(torch.zeros(2, 1, 8, 8)).any()


def test_metric_backends_agree(phantom_masks):
    pred, label = phantom_masks
    y_pred = torch.from_numpy(pred[:, None].astype(np.float32))
    y = torch.from_numpy(label[:, None])
    for fn in (compute_length_dice, compute_cldice):
        a = fn(y_pred, y, SPACINGS, backend="numpy")
        b = fn(y_pred, y, SPACINGS, backend="torch")
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
        assert ((a > 0.3) & (a <= 1.0)).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_torch_gpu_matches_numpy_on_phantom_masks(phantom_masks, record_property):
    pred, label = phantom_masks
    device = torch.device("cuda")
    record_property("device", torch.cuda.get_device_name(device))
    print(f"GPU check on {torch.cuda.get_device_name(device)}")
    _check_torch_against_numpy(torch.from_numpy(pred).to(device), torch.from_numpy(label).to(device), pred, label)
    y_pred = torch.from_numpy(pred[:, None].astype(np.float32)).to(device)
    out = compute_length_dice(y_pred, torch.from_numpy(label[:, None]).to(device), SPACINGS)  # auto -> torch
    assert out.device.type == "cuda"
    ref = compute_length_dice(pred[:, None], label[:, None], SPACINGS)
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-6, atol=1e-6)

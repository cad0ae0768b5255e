"""Eq. (1)-(3): LogGammaNormalize(d) and AutoGammaNormalize(d) on small phantoms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose

from monai_bac.ops.normalize import auto_gamma, log_gamma, solve_exponent
from monai_bac.units import SpacingError
from monai_bac.phantom import make_phantom
from monai_bac.transforms import (
    AutoGammaNormalize,
    AutoGammaNormalized,
    LogGammaNormalize,
    LogGammaNormalized,
)

SP = 0.5


@pytest.fixture(scope="module")
def phantoms():
    return {(v, lat): make_phantom(7, view=v, laterality=lat, spacing_mm=SP, vendor="GE" if lat == "R" else "HOLOGIC")
            for v in ("CC", "MLO") for lat in ("L", "R")}


def meta_tensor(p):
    return MetaTensor(torch.from_numpy(p.linear[None].copy()), meta=dict(p.meta, filename_or_obj="phantom.dcm"))


# ------------------------------------------------------------------------------------------- ops
def test_log_gamma_matches_eq_1_2():
    rng = np.random.default_rng(0)
    img = rng.uniform(100, 5000, (40, 30)).astype(np.float32)
    mask = np.zeros(img.shape, bool)
    mask[5:30, 3:25] = True
    out, info = log_gamma(img, mask, gamma=0.5, background=-1.0)
    ln = np.log(img.astype(np.float64) + 1.0)
    lo, hi = ln[mask].min(), ln[mask].max()
    expected = np.sqrt((ln - lo) / (hi - lo))
    np.testing.assert_allclose(out[mask], expected[mask], atol=1e-5)
    assert np.all(out[~mask] == -1.0)
    assert out[mask].min() == 0.0 and out[mask].max() == pytest.approx(1.0)
    assert info["log_min"] == pytest.approx(lo, rel=1e-6) and info["log_max"] == pytest.approx(hi, rel=1e-6)


def test_log_gamma_other_exponent_and_empty_mask():
    img = np.arange(1, 101, dtype=np.float32).reshape(10, 10)
    mask = img > 50
    out2, _ = log_gamma(img, mask, gamma=2.0)
    out1, _ = log_gamma(img, mask, gamma=1.0)
    np.testing.assert_allclose(out2[mask], out1[mask] ** 2, atol=1e-6)
    out, info = log_gamma(img, np.zeros_like(mask), background=0.25)
    assert info["empty"] and np.all(out == 0.25)


@pytest.mark.parametrize("target", [0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.98])
def test_auto_gamma_reaches_any_target(phantoms, target):
    p = phantoms[("MLO", "R")]
    out, res = auto_gamma(p.linear, p.breast_map > 0, target_mean=target)
    inside = out[p.breast_map > 0]
    assert res.converged
    assert abs(inside.mean() - target) <= 0.01
    assert abs(res.breast_mean - target) <= 1e-3  # the default tol
    assert res.iterations <= 50
    assert np.all(out[p.breast_map == 0] == 0.0)


def test_auto_gamma_exponent_decreases_with_target(phantoms):
    p = phantoms[("CC", "L")]
    gammas = [auto_gamma(p.linear, p.breast_map > 0, target_mean=t)[1].gamma for t in (0.2, 0.4, 0.6, 0.8)]
    assert all(a > b for a, b in zip(gammas, gammas[1:]))


def test_auto_gamma_target_one_iteration_when_already_there(phantoms):
    p = phantoms[("CC", "R")]
    _, res1 = auto_gamma(p.linear, p.breast_map > 0, target_mean=0.5)
    y, _ = log_gamma(p.linear, p.breast_map > 0, gamma=1.0)
    natural = float(y[p.breast_map > 0].mean())
    _, res = auto_gamma(p.linear, p.breast_map > 0, target_mean=natural)
    assert res.iterations == 1 and res.gamma == 1.0 and res.converged  # gamma_0 = 1, as in the paper
    assert res1.gamma != 1.0


def test_solver_converges_where_eq_3a_is_undefined():
    # Eq. (3a) as printed: gamma * ln(target - mean) is undefined once the mean overshoots;
    # the bracketed solver converges from either side, for very low and very high targets.
    y = np.linspace(0.0, 1.0, 1001) ** 3
    for target in (0.001, 0.05, 0.5, 0.95, 0.999):
        g, it, ok = solve_exponent(lambda g: float(np.mean(y ** g)), target, (1 / 1001, 1000 / 1001), 1e-4, 100)
        assert ok and abs(np.mean(y ** g) - target) <= 1e-4, (target, g, it)


def test_auto_gamma_unreachable_target_and_empty_breast():
    img = np.full((20, 20), 100.0, np.float32)
    img[5:10, 5:10] = 1000.0  # two grey levels only: every mean is 0.25 (fraction at the max)
    mask = np.zeros(img.shape, bool)
    mask[0:10, 0:10] = True
    out, res = auto_gamma(img, mask, target_mean=0.6)
    assert not res.converged and np.isfinite(out).all()
    out, res = auto_gamma(img, np.zeros_like(mask), target_mean=0.5)
    assert not res.converged and math.isnan(res.gamma) and np.all(out == 0)


# ------------------------------------------------------------------------------------ transforms
@pytest.mark.parametrize("cls", [LogGammaNormalize, AutoGammaNormalize])
def test_types_in_equal_types_out(phantoms, cls):
    p = phantoms[("CC", "L")]
    t = cls()
    out_np = t(p.linear[None], p.breast_map[None])
    assert isinstance(out_np, np.ndarray) and out_np.shape == (1,) + p.linear.shape and out_np.dtype == np.float32
    out_t = t(torch.from_numpy(p.linear[None]), torch.from_numpy(p.breast_map[None]))
    assert type(out_t) is torch.Tensor and out_t.dtype == torch.float32
    np.testing.assert_allclose(out_t.numpy(), out_np, atol=1e-6)
    img = meta_tensor(p)
    out_m = t(img, p.breast_map[None])
    assert isinstance(out_m, MetaTensor)
    assert out_m.meta["kvp"] == p.meta["kvp"] and out_m.meta["filename_or_obj"] == "phantom.dcm"
    key = "log_gamma" if cls is LogGammaNormalize else "auto_gamma"
    assert key in out_m.meta and key not in img.meta  # the input's meta is not modified
    # (H, W) in, (H, W) out
    assert t(p.linear, p.breast_map).shape == p.linear.shape


def test_auto_gamma_meta_has_gamma_and_iterations(phantoms):
    p = phantoms[("MLO", "L")]
    out = AutoGammaNormalize(target_mean=0.35)(meta_tensor(p), p.breast_map[None])
    info = out.meta["auto_gamma"]
    assert info["converged"] and info["iterations"] >= 1 and info["gamma"] > 0
    assert abs(float(out[0][torch.from_numpy(p.breast_map > 0)].mean()) - 0.35) <= 0.01


@pytest.mark.parametrize("cls", [LogGammaNormalize, AutoGammaNormalize])
def test_left_right_and_views(phantoms, cls):
    t = cls()
    for view in ("CC", "MLO"):
        p = phantoms[(view, "L")]
        out = t(p.linear, p.breast_map)
        assert np.all((out >= 0) & (out <= 1)) and out[p.breast_map > 0].std() > 0.01
        # a mirrored image gives the mirrored output (orientation is not assumed)
        mirrored = t(np.ascontiguousarray(p.linear[:, ::-1]), np.ascontiguousarray(p.breast_map[:, ::-1]))
        np.testing.assert_allclose(mirrored, out[:, ::-1], atol=1e-6)


@pytest.mark.parametrize("cls", [LogGammaNormalize, AutoGammaNormalize])
def test_no_breast_gives_background(cls):
    img = np.full((1, 60, 50), 3000.0, np.float32)
    out = cls(background=0.0)(img, np.zeros((1, 60, 50), np.uint8))
    assert isinstance(out, np.ndarray) and np.all(out == 0.0)


def test_dictionary_versions_use_the_breast_map_key(phantoms):
    p = phantoms[("MLO", "R")]
    data = {"image": meta_tensor(p), "breast_map": torch.from_numpy(p.breast_map[None])}
    out = Compose([LogGammaNormalized(keys="image")])(data)
    ref = LogGammaNormalize()(p.linear[None], p.breast_map[None])
    np.testing.assert_allclose(out["image"].numpy(), ref, atol=1e-6)
    out = AutoGammaNormalized(keys="image", target_mean=0.6)(dict(data))
    assert abs(float(out["image"][0][torch.from_numpy(p.breast_map > 0)].mean()) - 0.6) <= 0.01


def test_dictionary_version_computes_and_stores_the_breast_map(phantoms):
    p = phantoms[("CC", "R")]
    out = LogGammaNormalized(keys="image")({"image": meta_tensor(p)})
    assert "breast_map" in out
    bmap = np.asarray(out["breast_map"])[0]
    dice = 2 * ((bmap > 0) & (p.breast_map > 0)).sum() / ((bmap > 0).sum() + (p.breast_map > 0).sum())
    assert dice > 0.95
    assert out["image"].meta["log_gamma"]["breast_mean"] > 0


def test_missing_spacing_when_the_breast_map_must_be_computed():
    img = np.full((1, 40, 40), 1000.0, np.float32)
    with pytest.raises(SpacingError, match=r"spacing_mm.*\(0018,1164\)"):
        LogGammaNormalize()(img)
    with pytest.raises(SpacingError, match="spacing_mm="):
        AutoGammaNormalize()(img)


def test_bad_arguments():
    with pytest.raises(ValueError):
        AutoGammaNormalize(target_mean=1.0)
    with pytest.raises(ValueError):
        LogGammaNormalize(gamma=0.0)
    with pytest.raises(ValueError, match="breast_map"):
        LogGammaNormalize()(np.ones((1, 10, 10), np.float32), np.ones((1, 10, 12), np.uint8))

"""The ridge strength along an annotated path (monai_bac.ops.path_ridge), against its closed form."""

from __future__ import annotations

import numpy as np
import pytest

from monai_bac.ops.path_ridge import path_ridge_strength, path_tangents


def _ridge(spacing, height, width, angle_deg, size_mm=20.0):
    """A straight Gaussian ridge through the field's centre, ``width`` (sigma, mm) across, at
    ``angle_deg`` from the row axis; (image, centre pixel)."""
    n = int(round(size_mm / spacing))
    yy, xx = (np.mgrid[0:n, 0:n] - n // 2) * spacing
    a = np.deg2rad(angle_deg)
    across = -yy * np.sin(a) + xx * np.cos(a)  # distance from the line along (cos a, sin a) in (row, col)
    return (height * np.exp(-across**2 / (2 * width**2))).astype(np.float32), n // 2


@pytest.mark.parametrize("spacing", [0.07, 0.1, 0.2])
@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0])
def test_a_gaussian_ridge_along_the_path_reads_its_closed_form(spacing, angle):
    """Along the ridge: sigma^2 A w / (w^2 + sigma^2)^1.5 (the Gaussian-smoothed ridge's curvature
    across it, scale-normalised); across it (the path crosses the ridge): negative."""
    height, width, sigma = 0.1, 0.4, 0.6
    img, c = _ridge(spacing, height, width, angle)
    a = np.deg2rad(angle)
    r, cc = np.array([c]), np.array([c])
    along = path_ridge_strength(img, r, cc, np.array([np.cos(a)]), np.array([np.sin(a)]), (spacing, spacing), sigma)
    expected = sigma**2 * height * width / (width**2 + sigma**2) ** 1.5
    assert along[0] == pytest.approx(expected, rel=0.1)
    across = path_ridge_strength(img, r, cc, np.array([-np.sin(a)]), np.array([np.cos(a)]), (spacing, spacing), sigma)
    assert across[0] < 0


def test_a_round_blob_is_no_ridge():
    spacing, sigma = 0.1, 0.6
    n = 200
    yy, xx = (np.mgrid[0:n, 0:n] - n // 2) * spacing
    blob = (0.1 * np.exp(-(yy**2 + xx**2) / (2 * 0.4**2))).astype(np.float32)
    ridge, _ = _ridge(spacing, 0.1, 0.4, 0.0)
    at = (np.array([n // 2]), np.array([n // 2]))
    t = (np.array([1.0]), np.array([0.0]))
    on_blob = path_ridge_strength(blob, *at, *t, (spacing, spacing), sigma)[0]
    on_ridge = path_ridge_strength(ridge, *at, *t, (spacing, spacing), sigma)[0]
    assert abs(on_blob) < 0.05 * on_ridge


def test_tangents_follow_each_branch_and_stop_at_its_ends():
    # two branches in the skeleton's depth-first order: a diagonal and a vertical line
    rows = np.r_[np.arange(10), np.arange(20, 30)]
    cols = np.r_[np.arange(10), np.full(10, 40)]
    branch = np.r_[np.zeros(10, int), np.ones(10, int)]
    order = np.arange(20)
    ty, tx = path_tangents(rows, cols, order, branch, (0.1, 0.1), half_mm=0.3)
    assert np.allclose(ty[:10], np.sqrt(0.5)) and np.allclose(tx[:10], np.sqrt(0.5))
    assert np.allclose(ty[10:], 1.0) and np.allclose(tx[10:], 0.0)
    # pixels outside the order (junctions) get no tangent
    ty, tx = path_tangents(rows, cols, order[:10], branch, (0.1, 0.1), half_mm=0.3)
    assert np.all(ty[10:] == 0) and np.all(tx[10:] == 0)

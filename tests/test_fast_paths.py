"""The CPU-inference speed-ups give the results of the plain implementations they replace."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.transforms import Compose, CropForegroundd, Invertd, Resized
from scipy import ndimage as ndi

from monai_bac.ops.breast_region import _edge_band
from monai_bac.ops.normalize import as_breast_mask, log_image
from monai_bac.ops.periphery_fit import _envelope
from monai_bac.ops.resample import block_factors, block_mean, bounding_box, upsample_cells
from monai_bac.ops.skeleton import thin_box, thin_mask
from monai_bac.phantom import make_phantom
from monai_bac.quantify import (
    _segment_boxes,
    calc_thickness_near_mask,
    quantify_image,
    quantify_mask,
)
from monai_bac.transforms import ResizeWithInverseModed

RNG = np.random.default_rng(3)


def _blobs(shape=(300, 260), n=40, p=0.02):
    """A mask of scattered specks and short strokes (components of every shape and size)."""
    m = RNG.random(shape) < p
    return ndi.binary_dilation(m, np.ones((3, 2), bool), iterations=2) ^ (RNG.random(shape) < 0.3 * p)


# ------------------------------------------------------------------------------ resize / invert
def test_resize_with_inverse_mode_shrinks_like_resized_and_inverts_bilinearly():
    img = MetaTensor(torch.from_numpy(RNG.random((1, 95, 70)).astype(np.float32)))
    ours = ResizeWithInverseModed(keys="image", spatial_size=(32, 32), mode="area")
    plain = Resized(keys="image", spatial_size=(32, 32), mode="area")
    a, b = ours({"image": img.clone()}), plain({"image": img.clone()})
    np.testing.assert_array_equal(np.asarray(a["image"]), np.asarray(b["image"]))

    pred = MetaTensor(a["image"].clone())
    pred.applied_operations = a["image"].applied_operations
    back = ours.inverse({"image": pred})["image"]
    expected = F.interpolate(torch.as_tensor(np.asarray(a["image"]))[None], size=(95, 70), mode="bilinear",
                             align_corners=False)[0]
    assert tuple(back.shape) == (1, 95, 70)
    np.testing.assert_allclose(np.asarray(back), expected.numpy(), atol=1e-6)
    # MONAI's own inverse of an area resize differs (a 1-2 pixel box filter)
    pred2 = MetaTensor(b["image"].clone())
    pred2.applied_operations = b["image"].applied_operations
    assert not np.allclose(np.asarray(plain.inverse({"image": pred2})["image"]), expected.numpy(), atol=1e-3)


def test_invertd_through_a_crop_and_the_resize_returns_the_image_grid():
    img = np.zeros((1, 120, 90), np.float32)
    img[0, 20:100, 10:70] = RNG.random((80, 60))
    pre = Compose([CropForegroundd(keys="image", source_key="image", margin=2),
                   ResizeWithInverseModed(keys="image", spatial_size=(40, 40), mode="area")])
    d = pre({"image": MetaTensor(torch.from_numpy(img))})
    d["pred"] = MetaTensor(torch.ones_like(d["image"]), meta=dict(d["image"].meta))
    out = Invertd(keys="pred", transform=pre, orig_keys="image", nearest_interp=False)(d)["pred"]
    assert tuple(out.shape) == (1, 120, 90)
    inside = np.asarray(out)[0, 25:95, 15:65]
    np.testing.assert_allclose(inside, 1.0, atol=1e-6)  # bilinear of a constant is the constant
    assert np.asarray(out)[0, :10].max() == 0  # the crop's outside is padded back with zeros


# ------------------------------------------------------------------------------ array helpers
@pytest.mark.parametrize("shape,f", [((60, 47), (5, 5)), ((61, 50), (2, 2)), ((13, 17), (4, 3)), ((9, 9), (1, 3))])
def test_block_mean_is_the_mean_of_each_block_partial_ones_included(shape, f):
    img = RNG.random(shape).astype(np.float32) * 1000
    out = block_mean(img, *f)
    nh, nw = -(-shape[0] // f[0]), -(-shape[1] // f[1])
    assert out.shape == (nh, nw) and out.dtype == np.float32
    ref = np.array([[img[i * f[0]:(i + 1) * f[0], j * f[1]:(j + 1) * f[1]].mean() for j in range(nw)]
                    for i in range(nh)])
    np.testing.assert_allclose(out, ref, rtol=1e-5)
    np.testing.assert_allclose(block_mean(img.astype(np.uint16), *f), block_mean(img.astype(np.uint16).astype(np.float32), *f))


def test_cell_grid_factors_and_bilinear_upsampling():
    """Cells of about 4 mm at 0.07 x 0.1 mm are 57 x 40 pixels (never fewer than one); cell values
    placed at the cell centres come back bilinearly: a plane in the cells is that plane at the
    pixels between the first and last cell centres, and held flat beyond them."""
    assert block_factors((0.07, 0.1), 4.0) == (57, 40)
    assert block_factors((5.0, 5.0), 0.5) == (1, 1)
    fr, fc = 4, 5
    cy, cx = np.arange(6)[:, None] * fr + (fr - 1) / 2, np.arange(7)[None, :] * fc + (fc - 1) / 2
    cells = (2.0 * cy + 0.5 * cx).astype(np.float32)
    out = upsample_cells(cells, (24, 35), fr, fc)
    assert out.shape == (24, 35) and out.dtype == np.float32
    yy, xx = np.mgrid[0:24, 0:35].astype(np.float64)
    plane = 2.0 * np.clip(yy, cy.min(), cy.max()) + 0.5 * np.clip(xx, cx.min(), cx.max())
    np.testing.assert_allclose(out, plane, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("shape,f", [((61, 47), (4, 5)), ((80, 80), (1, 7)), ((33, 90), (9, 3))])
def test_upsample_cells_is_scipys_grid_mode_linear_zoom(shape, f):
    """The hand-written bilinear upsampling is scipy's order-1 grid-mode zoom (edges held),
    cropped to the image; partial cells at the far edges included."""
    m = (-(-shape[0] // f[0]), -(-shape[1] // f[1]))
    cells = np.random.default_rng(3).random(m).astype(np.float32)
    twin = ndi.zoom(cells, f, order=1, mode="nearest", grid_mode=True, prefilter=False)[: shape[0], : shape[1]]
    np.testing.assert_allclose(upsample_cells(cells, shape, *f), twin, rtol=0, atol=1e-6)


def test_bounding_box_of_a_mask_widened_and_clipped():
    """ops.resample.bounding_box (MONAI's generate_spatial_bounding_box): the rows / columns that
    hold the mask, ``pad`` wider each side, clipped to the image; None for an empty mask."""
    rng = np.random.default_rng(4)
    for _ in range(200):
        m = np.zeros((int(rng.integers(1, 30)), int(rng.integers(1, 30))), bool)
        for _ in range(int(rng.integers(0, 4))):
            m[rng.integers(0, m.shape[0]), rng.integers(0, m.shape[1])] = True
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        for pad in (0, 2):
            want = None if rows.size == 0 else (
                slice(max(rows[0] - pad, 0), min(rows[-1] + 1 + pad, m.shape[0])),
                slice(max(cols[0] - pad, 0), min(cols[-1] + 1 + pad, m.shape[1])))
            assert bounding_box(m, pad) == want


def test_edge_band_is_cross_dilation_minus_cross_erosion():
    m = _blobs((80, 70), p=0.05)
    m[0, :] = True  # foreground on the border: erosion treats the outside as background
    np.testing.assert_array_equal(_edge_band(m), ndi.binary_dilation(m) & ~ndi.binary_erosion(m))


def test_breast_mask_lookup_table_and_log_image():
    codes = RNG.integers(0, 6, (50, 40)).astype(np.uint8)
    np.testing.assert_array_equal(as_breast_mask(codes), np.isin(codes, (1, 2, 3)))
    np.testing.assert_array_equal(as_breast_mask(codes, (2,)), codes == 2)
    np.testing.assert_array_equal(as_breast_mask(codes.astype(np.int32)), np.isin(codes, (1, 2, 3)))
    raw = np.asarray([[-3.0, 0.0, 0.5, 7.0, 16383.0]], np.float32)
    np.testing.assert_allclose(log_image(raw), np.log1p(np.maximum(raw.astype(np.float64), 0)), rtol=1e-6, atol=1e-7)
    assert log_image(raw).dtype == np.float32 and raw[0, 0] == -3.0  # the input is left alone


def test_envelope_takes_the_quantile_of_each_distance_bin():
    d = RNG.random(20000) * 60.0
    v = np.sin(d / 7.0) + RNG.normal(0, 0.1, d.size)
    dm, env, width = _envelope(d, v, bin_mm=0.5, q=0.9, min_count=10)
    k = np.floor(d / 0.5).astype(int)
    far = k >= 60
    k[far] = 60 + (k[far] - 60) // 4
    ref = []
    for b in np.unique(k):
        vals = np.sort(v[k == b])
        if vals.size >= 10:
            ref.append(vals[int(np.floor(0.9 * (vals.size - 1)))])
    np.testing.assert_array_equal(env, ref)
    assert dm.size == env.size == width.size and set(np.unique(width)) == {0.5, 2.0}


# ------------------------------------------------------------------------------ quantification
def test_thin_box_equals_thin_mask():
    for _ in range(3):
        m = _blobs()
        np.testing.assert_array_equal(thin_box(m), thin_mask(m))


def test_segment_boxes_follow_scipy_label_order():
    m = _blobs((400, 330), p=0.01)
    labels, n = ndi.label(m, np.ones((3, 3), bool))
    boxes = _segment_boxes(m)
    assert len(boxes) == n > 20
    for k, ((r0, c0, r1, c1), own) in enumerate(boxes, start=1):
        sl = ndi.find_objects(labels)[k - 1]
        assert (r0, c0, r1, c1) == (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)
        np.testing.assert_array_equal(own, labels[sl] == k)


def test_quantify_image_threaded_equals_the_sequential_computation():
    p = make_phantom(2, view="MLO", spacing_mm=0.2)
    img = MetaTensor(torch.from_numpy(p.linear[None].copy()), meta={**p.meta, "is_raw": True})
    h = calc_thickness_near_mask(img, p.bac_mask, p.breast_map)
    sequential = quantify_mask(p.bac_mask, p.meta["spacing_mm"], h)
    threaded = quantify_image(img, p.bac_mask, p.breast_map)
    assert threaded.as_dict() == sequential.as_dict()
    assert threaded.calcium_mg > 0 and threaded.n_segments > 3


# ------------------------------------------------------------------------------ background opening
@pytest.mark.parametrize("size", [(31, 31), (43, 35), (21, 9), (1, 5), (6, 4), (1, 1)])
def test_opening_by_doubling_is_scipys_grey_opening(size):
    """CalcificationThickness's background opening takes its running minima and maxima by
    doubling (speed); it is scipy's minimum then maximum filter (edges "nearest") bit for bit, for
    even sides too, and so its grey opening for odd ones."""
    from monai_bac.ops.density import _opening_by_rectangle

    a = ndi.gaussian_filter(RNG.standard_normal((157, 203)), 2.0).astype(np.float32)
    a[40:44, :] += 3.0  # a bright line 4 rows high
    a[100:120, 7] = a[100:120, 7].max()  # ties
    expected = ndi.maximum_filter(ndi.minimum_filter(a, size=size, mode="nearest"), size=size, mode="nearest")
    got = _opening_by_rectangle(a, size)
    assert got.shape == a.shape and got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)
    if size[0] % 2 and size[1] % 2:  # (scipy's grey dilation mirrors an even window: not the same expression)
        np.testing.assert_array_equal(got, ndi.grey_opening(a, size=size, mode="nearest"))
    if size[0] > 4:  # a rectangle taller than the line removes it
        assert got[40:44].mean() < a[40:44].mean() - 2.0

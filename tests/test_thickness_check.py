"""The compressed thickness the image implies (monai_bac.ops.thickness_check) and DensityMap's check
of BodyPartThickness with it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_bac.ops.thickness_check import SKIN_MM, ThicknessMismatchWarning, thickness_curve, thickness_from_contrast
from monai_bac.phantom import make_phantom
from monai_bac.physics import transmitted_beam
from monai_bac.transforms import BreastRegion, DensityMap

SP = 0.2  # mm


def _scene(h_mm: float, beam, heel: float = 0.15, fold: bool = False, collimated: bool = False):
    """A 200 x 240 mm field: a breast of ``h_mm`` (adipose between two glandular-like skin layers, the
    beam model's own signals, no scatter) in the middle rows, direct exposure above and below, the
    heel effect falling ``heel`` over the field along the columns; optionally a fold of thinner
    tissue (half the direct exposure) below the breast and a collimated (dark) strip at the top,
    neither of them in the tissue mask; 1 % noise, as a real exposure has."""
    rows, cols = int(200 / SP), int(240 / SP)
    x = np.arange(cols) * SP
    ramp = 1.0 - heel * x / x[-1]
    air = 3000.0 * np.exp(beam.log_signal(0.0))
    fat = 3000.0 * np.exp(beam.log_signal(h_mm - 2 * SKIN_MM, 2 * SKIN_MM))
    img = np.full((rows, cols), air, np.float64)
    tissue = np.zeros((rows, cols), bool)
    tissue[int(60 / SP):int(140 / SP), :int(180 / SP)] = True
    img[tissue] = fat
    if fold:
        img[int(165 / SP):int(185 / SP), :int(120 / SP)] = 0.5 * air
    if collimated:
        img[:int(12 / SP)] = 0.02 * air
    img *= ramp[None, :]
    img *= 1.0 + 0.01 * np.random.default_rng(0).standard_normal(img.shape)  # quantum noise, 1 %
    columns = np.arange(int(180 / SP))
    return img.astype(np.float32), tissue, np.log(fat * ramp[columns]), columns


@pytest.fixture(scope="module")
def beam():
    return transmitted_beam(29.0, "W", "Rh")


@pytest.mark.parametrize("h_mm", [25.0, 50.0, 80.0])
def test_the_contrast_of_a_scene_made_from_the_beam_gives_its_thickness(beam, h_mm):
    img, tissue, log_fat, columns = _scene(h_mm, beam)
    found, info = thickness_from_contrast(img, tissue, log_fat, columns, (SP, SP), beam)
    assert found == pytest.approx(h_mm, abs=0.3), info
    assert info["reason"] == "" and info["n_air"] > 1000
    # the heel effect scales the air and the fat alike: without it the same thickness
    img0, tissue0, log_fat0, _ = _scene(h_mm, beam, heel=0.0)
    assert thickness_from_contrast(img0, tissue0, log_fat0, columns, (SP, SP), beam)[0] == pytest.approx(found, abs=0.1)


def test_a_fold_and_a_collimated_strip_beside_the_breast_are_not_read_as_air(beam):
    img, tissue, log_fat, columns = _scene(60.0, beam, fold=True, collimated=True)
    found, info = thickness_from_contrast(img, tissue, log_fat, columns, (SP, SP), beam)
    assert found == pytest.approx(60.0, abs=0.3), info
    # what the brightness rule prevents: the median of the whole background, fold and strip included
    far = ~tissue.copy()
    far[int(50 / SP):int(150 / SP)] = False
    assert np.median(img[far]) < 0.9 * np.percentile(img[far], 99)


def test_a_clipped_direct_exposure_or_none_far_from_the_breast_gives_no_estimate(beam):
    img, tissue, log_fat, columns = _scene(50.0, beam)
    clipped = np.minimum(img, np.float32(0.8 * img.max()))
    found, info = thickness_from_contrast(clipped, tissue, log_fat, columns, (SP, SP), beam)
    assert found is None and "clipped" in info["reason"]
    crowded = tissue.copy()
    crowded[int(5 / SP):int(195 / SP)] = True  # tissue up to 5 mm from the top and bottom edges
    found, info = thickness_from_contrast(img, crowded, log_fat, columns, (SP, SP), beam)
    assert found is None and "no direct exposure 10 mm from the breast" in info["reason"]


def test_the_thickness_curve_rises_with_the_thickness(beam):
    h, contrast = thickness_curve(beam)
    assert h[0] == pytest.approx(2 * SKIN_MM) and np.all(np.diff(contrast) > 0)


@pytest.fixture(scope="module")
def realistic():
    """Three realistic phantoms (spectrum, scatter, heel, offset, skin: the estimate's model is not
    how they were made pixel by pixel), their images and true thicknesses."""
    out = []
    for seed, view, lat, vendor, h in ((30, "CC", "L", "GE", 45.0), (31, "MLO", "R", "HOLOGIC", 62.0),
                                       (32, "CC", "R", "SIEMENS", 74.0)):
        p = make_phantom(seed, view=view, laterality=lat, vendor=vendor, thickness_mm=h, spacing_mm=SP,
                         physics="realistic")
        out.append((p, h))
    return out


def _image(p, thickness_mm):
    meta = dict(p.meta, thickness_mm=thickness_mm, filename_or_obj="phantom.dcm")
    if thickness_mm is None:
        meta.pop("thickness_mm")
    return MetaTensor(torch.from_numpy(p.linear[None].astype(np.float32)), meta=meta)


def test_density_map_reads_the_thickness_from_the_image_and_warns_on_a_wrong_readout(realistic):
    for p, h in realistic:
        bm = p.breast_map[None]
        with warnings.catch_warnings():
            warnings.simplefilter("error", ThicknessMismatchWarning)  # the right readout: no warning
            dens = DensityMap()(_image(p, h), bm).meta["density"]
        assert dens["thickness_source"] == "BodyPartThickness (0018,11A0)" and dens["thickness_check"] == ""
        assert dens["thickness_from_image_mm"] == pytest.approx(h, rel=0.05), (p.record["seed"], dens)
        for error in (-0.15, 0.2):  # readouts as wrong as real units' (Hauge et al. 2012)
            with pytest.warns(ThicknessMismatchWarning, match=r"phantom.dcm: BodyPartThickness \(0018,11A0\) says"):
                DensityMap()(_image(p, round(h * (1 + error), 1)), bm)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ThicknessMismatchWarning)
            DensityMap(thickness_tolerance=None)(_image(p, round(h * 1.2, 1)), bm)  # told not to warn
        # no BodyPartThickness at all: thickness_mm="image" gives the map and a VBD near the header's
        from_image = DensityMap(thickness_mm="image")(_image(p, None), bm).meta["density"]
        assert from_image["thickness_source"] == "image"
        assert from_image["thickness_mm"] == pytest.approx(h, rel=0.05)
        assert abs(from_image["vbd_percent"] - p.record["vbd_percent"]) <= 3.0


def test_thickness_arguments_are_checked(realistic):
    p, _ = realistic[0]
    with pytest.raises(ValueError, match="thickness_mm must be"):
        DensityMap(thickness_mm="paddle")
    with pytest.raises(ValueError, match="needs model='polyenergetic'"):
        DensityMap(thickness_mm="image", model="eq4")
    with pytest.raises(ValueError, match="thickness_tolerance"):
        DensityMap(thickness_tolerance=0.0)
    # an image whose direct exposure is clipped: thickness_mm="image" says why it cannot
    img = _image(p, None)
    img[img > 0.5 * float(img.max())] = 0.5 * float(img.max())
    with pytest.raises(ValueError, match=r"phantom.dcm: thickness_mm='image', but the image gives no thickness \(direct"):
        DensityMap(thickness_mm="image")(img, p.breast_map[None])


def _compressed_dice(region, truth) -> float:
    est, true = np.asarray(region)[0] == 2, truth == 2
    return 2.0 * float((est & true).sum()) / float(est.sum() + true.sum())


def test_breast_region_scatter_step_takes_the_image_thickness_when_the_header_has_none(realistic):
    """BreastRegion removes the scatter of the header's thickness; with no BodyPartThickness it
    takes the thickness the image implies, and only without the tube set-up does it skip the step -
    which costs a thick breast its compressed region (docs/design-log/breast_region.md, "An image
    without BodyPartThickness")."""
    for p, h in realistic:
        tagged = BreastRegion()(_image(p, h))
        assert tagged.meta["scatter_thickness_source"] == "BodyPartThickness (0018,11A0)"
        assert tagged.meta["scatter_thickness_mm"] == h
        untagged = BreastRegion()(_image(p, None))
        assert untagged.meta["scatter_thickness_source"] == "image"
        assert untagged.meta["scatter_thickness_mm"] == pytest.approx(h, rel=0.08)
        no_tube = _image(p, None)
        del no_tube.meta["kvp"]
        skipped = BreastRegion()(no_tube)
        assert np.isnan(skipped.meta["scatter_thickness_mm"])
        assert skipped.meta["scatter_thickness_source"] == ("none (no BodyPartThickness (0018,11A0), and the image "
                                                            "gives no thickness: no KVP (0018,0060) for the spectrum)")
        # DensityMap(thickness_mm="image") starts from the map's thickness: the image agrees, it stays there
        from_map = DensityMap(thickness_mm="image", compute_vbd=False)(_image(p, None), untagged).meta["density"]
        assert from_map["thickness_mm"] == pytest.approx(untagged.meta["scatter_thickness_mm"], abs=1e-9)
        dice_tagged, dice_untagged = _compressed_dice(tagged, p.breast_map), _compressed_dice(untagged, p.breast_map)
        assert dice_untagged >= dice_tagged - 0.005, (p.record["seed"], dice_tagged, dice_untagged)
        if h >= 70:  # a thick breast: the step matters
            assert _compressed_dice(skipped, p.breast_map) <= dice_untagged - 0.01
        # "image" asks for the image's thickness even with the tag; a number wins over both
        asked = BreastRegion(thickness_mm="image")(_image(p, round(h * 1.2, 1)))
        assert asked.meta["scatter_thickness_source"] == "image"
        assert asked.meta["scatter_thickness_mm"] == pytest.approx(h, rel=0.08)
        given = BreastRegion(thickness_mm=h)(_image(p, None))
        assert given.meta["scatter_thickness_source"] == "argument"
        assert np.array_equal(np.asarray(given), np.asarray(tagged))
    off = BreastRegion(scatter="none")(_image(p, h))  # no step: no thickness used
    assert np.isnan(off.meta["scatter_thickness_mm"]) and off.meta["scatter_thickness_source"] == "none (scatter='none')"
    with pytest.raises(ValueError, match="thickness_mm must be a number"):
        BreastRegion(thickness_mm="paddle")


def test_density_map_makes_the_breast_map_it_needs_as_breast_region_does(realistic):
    """DensityMap without a breast map makes BreastRegion()'s, scatter step included."""
    p, h = realistic[2]
    img = _image(p, h)
    alone = DensityMap(compute_vbd=False)(img)
    with_map = DensityMap(compute_vbd=False)(img, BreastRegion()(img))
    assert np.array_equal(np.asarray(alone), np.asarray(with_map))

"""A collimator's unexposed border: found, left out of BreastRegion's analysis, read by DensityMap
(docs/design-log/breast_region.md, "A collimator's unexposed border")."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_bac.ops.exposed_field import exposed_field
from monai_bac.phantom import make_phantom
from monai_bac.phantom.collimator import collimate
from monai_bac.transforms import BreastRegion, DensityMap

SP = 0.2  # mm
BANDS_MM = (6.0, 4.0, 0.0, 8.0)  # top, bottom, left, right: none on the chest wall (left in an LMLO)


@pytest.fixture(scope="module")
def mlo():
    """A thick realistic MLO (the muscle and the axilla run to the top edge), as made and with a
    collimator's bands on the top, bottom and nipple-side edges."""
    p = make_phantom(33, view="MLO", laterality="L", vendor="HOLOGIC", thickness_mm=70.0, spacing_mm=SP,
                     physics="realistic")
    assert p.breast_map[:, :3].any() and not p.breast_map[:, -3:].any()  # chest wall on the left
    bladed, exposed = collimate(p.linear, SP, float(p.record["detector_offset"]), BANDS_MM, np.random.default_rng(0))
    return p, bladed, exposed


def _image(p, pixels):
    return MetaTensor(torch.from_numpy(np.ascontiguousarray(pixels, np.float32)[None]),
                      meta=dict(p.meta, filename_or_obj="phantom.dcm"))


def _dice(a, b) -> float:
    return 2.0 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)


def test_the_bands_are_found_and_the_chest_wall_tissue_is_not_taken_for_one(mlo):
    p, bladed, _ = mlo
    box, band = exposed_field(p.linear, SP)
    assert band == (0, 0, 0, 0) and box == (slice(0, p.linear.shape[0]), slice(0, p.linear.shape[1]))
    box, band = exposed_field(bladed, SP)
    expected = (BANDS_MM[0] / SP, BANDS_MM[1] / SP, 0, BANDS_MM[3] / SP)
    assert band[2] == 0  # the chest-wall edge: tissue, however dark, is exposed
    for found, want in zip(band, expected):
        assert abs(found - want) <= 2, (band, expected)  # the penumbra is one pixel
    h, w = bladed.shape
    assert box[0].start > band[0] and h - box[0].stop > band[1] and w - box[1].stop > band[3] and box[1].start == 0


def test_breast_region_and_density_map_read_a_collimated_mlo_as_the_same_image_exposed_to_its_edges(mlo):
    p, bladed, exposed = mlo
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain_map = BreastRegion()(_image(p, p.linear))
        bladed_map = BreastRegion()(_image(p, bladed))
        plain = DensityMap()(_image(p, p.linear), plain_map).meta["density"]
        dens = DensityMap()(_image(p, bladed), bladed_map).meta["density"]
    est, truth = np.asarray(bladed_map)[0], p.breast_map
    assert bladed_map.meta["pectoral_found"]
    assert not est[~exposed & (np.abs(bladed - float(p.record["detector_offset"])) < 10)].any()  # under the blades: background
    e, t = est[exposed], truth[exposed]
    assert _dice(e == 3, t == 3) >= 0.9
    assert _dice(e > 0, t > 0) >= 0.998
    plain_est = np.asarray(plain_map)[0][exposed]
    assert _dice(e == 2, t == 2) >= _dice(plain_est == 2, t == 2) - 0.03
    # the band is where DensityMap reads the detector offset from
    assert dens["offset_source"] == "unexposed border"
    assert dens["offset"] == pytest.approx(float(p.record["detector_offset"]), abs=1.0)
    assert abs(dens["vbd_percent"] - p.record["vbd_percent"]) <= 3.0
    assert abs(dens["vbd_percent"] - plain["vbd_percent"]) <= 1.5

"""Images taken without an anti-scatter grid, as most tomosynthesis units take their projections:
the header says so (Grid (0018,1166) NONE), and the scatter steps remove the published no-grid
scatter-to-primary ratio instead of the one behind a grid."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from monai_bac.data import load_mammogram, read_dicom_mammogram, write_breast_projection_dicom, write_mammogram_dicom
from monai_bac.ops.primary import published_spr, spr_behind_grid
from monai_bac.ops.thickness_check import ThicknessMismatchWarning
from monai_bac.phantom import make_phantom
from monai_bac.physics import scatter_to_primary_ratio
from monai_bac.transforms import BreastRegion, DensityMap

pytestmark = pytest.mark.filterwarnings("ignore:builtin type [Ss]wig.*has no __module__:DeprecationWarning")


def test_the_no_grid_spr_lies_in_the_published_range():
    """The breast's SPR without a grid, at its centre: 0.3-0.4 at 4 cm and 0.6-0.8 at 7-8 cm (Boone &
    Cooper, Med Phys 27:1818, 2000; Sechopoulos et al., Med Phys 34:564, 2007); behind the grid as before."""
    assert 0.3 <= published_spr(40, grid=False) <= 0.4
    assert all(0.6 <= published_spr(h, grid=False) <= 0.8 for h in (70, 75))
    assert published_spr(50) == spr_behind_grid(50) and published_spr(50, grid=False) > 2 * spr_behind_grid(50)


@pytest.mark.parametrize("grid, said", [("NONE", "NO"), ("FOCUSED", "YES"), (["RECIPROCATING", "FOCUSED"], "YES"),
                                        (None, "")])
def test_the_reader_says_whether_the_image_was_taken_behind_a_grid(tmp_path, grid, said):
    pixels = np.random.default_rng(0).integers(100, 16000, (200, 160)).astype(np.uint16)
    common = dict(spacing_mm=(0.1, 0.1), kvp=29, thickness_mm=50, anode="TUNGSTEN", filter="RHODIUM", view="CC",
                  laterality="L", manufacturer="HOLOGIC")
    write_mammogram_dicom(tmp_path / "2d.dcm", pixels, extra={"Grid": grid}, **common)
    assert read_dicom_mammogram(tmp_path / "2d.dcm")[1]["anti_scatter_grid"] == said
    if grid is not None:  # a projection set says it in its X-Ray Grid functional group
        write_breast_projection_dicom(tmp_path / "set.dcm", np.stack([pixels] * 3), angles_deg=[-5, 0, 5],
                                      anti_scatter_grid=said == "YES", **common)
        assert read_dicom_mammogram(tmp_path / "set.dcm")[1]["anti_scatter_grid"] == said


@pytest.fixture(scope="module")
def gridless(tmp_path_factory):
    """A realistic phantom taken without a grid (HOLOGIC CC, 60 mm, at 0.3 mm), loaded from its DICOM file."""
    p = make_phantom(57312, view="CC", vendor="HOLOGIC", thickness_mm=60.0, spacing_mm=0.3, physics="realistic",
                     anti_scatter_grid=False)
    path = tmp_path_factory.mktemp("gridless") / "gridless.dcm"
    p.write_dicom(path)
    return p, load_mammogram(path)


def test_a_phantom_taken_without_a_grid_has_the_no_grid_scatter_and_says_so(gridless):
    p, img = gridless
    assert p.meta["anti_scatter_grid"] == "NO" and img.meta["anti_scatter_grid"] == "NO"  # Grid NONE, read back
    record = p.record
    assert record["anti_scatter_grid"] is False and record["grid_primary_transmission"] == 1.0
    assert record["spr_model"] == pytest.approx(scatter_to_primary_ratio(60.0, grid=False))
    assert record["spr_measured"] == pytest.approx(record["spr_model"], rel=0.15)
    assert record["spr_measured"] > 2 * scatter_to_primary_ratio(60.0)


def test_density_map_removes_the_scatter_the_header_says_is_there(gridless):
    """The scatter DensityMap removes at the breast's centre, against the phantom's true scatter
    fraction there: close with the header's NONE, well under it when the grid is assumed. The
    scatter left in then reads as a thinner breast than BodyPartThickness (a false alarm) and a
    lower density."""
    p, img = gridless
    record = p.record
    true_fraction = record["spr_measured"] / (1.0 + record["spr_measured"])
    fractions, reading, alarms = {}, {}, {}
    for said in ("NO", ""):
        image = img.clone()
        image.meta["anti_scatter_grid"] = said
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            density = DensityMap()(image, BreastRegion()(image))
        alarms[said] = [w for w in caught if issubclass(w.category, ThicknessMismatchWarning)]
        m = density.meta["density"]
        fractions[said] = m["spr"] / (1.0 + m["spr"])
        reading[said] = (m["thickness_from_image_mm"], m["vbd_percent"])
        assert m["spr"] == pytest.approx(published_spr(60.0, grid=said != "NO"))
    assert fractions["NO"] == pytest.approx(true_fraction, rel=0.2)
    assert fractions[""] < 0.6 * true_fraction
    assert not alarms["NO"] and alarms[""]  # the image reads 52 mm for 60 when the grid is assumed
    assert abs(reading["NO"][0] - 60.0) < abs(reading[""][0] - 60.0)
    truth = p.record["vbd_percent"]
    assert abs(reading["NO"][1] - truth) < abs(reading[""][1] - truth)

"""Review in OHIF, as a radiologist would: a real browser on MONAI Label's own OHIF, a real PACS.

Orthanc (Debian's ``orthanc`` + ``orthanc-dicomweb``, on loopback) holds a study with the For
Presentation rendition of a raw phantom mammogram (``monai_bac.presentation``) and a DICOM SEG of
its BAC (``monai_bac.dicom_seg``), made on the raw image and written again on the rendition. ``monailabel start_server --studies <orthanc>/dicom-web`` serves
OHIF (``/ohif/``), whose data source is the server's DICOMweb proxy (``/proxy/dicom/...``) to Orthanc.
Debian's ``chromium``, headless (SwiftShader WebGL), driven through the DevTools protocol by
``playwright`` (no browser download), opens the study, loads the SEG and takes a screenshot, on
which the test checks the pixels: the breast is drawn in grey levels (not a black or white
viewport), and the SEG's colour covers the BAC pixels, mapped to the screen by Cornerstone's own
image-to-canvas transform, and almost nothing else. The raw image is a contact view whose header gives
its magnification (1.07, which the rendition keeps): the test records the pitch OHIF's geometry (which its
ruler measures in) gives the pixels - the detector's, ImagerPixelSpacing, with no calibration applied -
against the breast's, which ``monai-bac`` measures BAC in (docs/CPU_INFERENCE.md, section 4).

Skipped, saying why, where chromium, playwright or Orthanc are missing. Set ``OHIF_REVIEW_FIGURE`` to a
path (docs/figures/ohif_review.png) to keep the screenshot.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, copy_bundle  # noqa: E402
from monailabel_utils import start_server, stop_server  # noqa: E402
from orthanc_utils import missing_reason, start_orthanc, stop_orthanc  # noqa: E402
from test_presentation import write_raw  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.label]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_ARGS = ["--no-sandbox", "--use-gl=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]
VIEWPORT = {"width": 1280, "height": 900}
WAIT_S = 90.0  # each wait in the browser (first render, SEG overlay)
CONTACT_MAGNIFICATION = 1.07  # EstimatedRadiographicMagnificationFactor (0018,1114) of the raw image

pytest.importorskip("monailabel", reason="the MONAI Label app needs the [label] extra (monailabel)")
sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="playwright is not installed (pip install playwright: it drives Debian's chromium, no browser download)")
if CHROMIUM is None:
    pytest.skip("chromium is not installed (Debian: apt-get install chromium)", allow_module_level=True)
if missing_reason():
    pytest.skip(missing_reason(), allow_module_level=True)


def _study(folder: Path) -> dict:
    """Raw phantom (left CC, 0.4 mm) with a SEG of its true BAC (as ``monai-bac infer`` writes one) -> the
    For Presentation rendition and the SEG on it (as ``monai-bac present --seg`` writes them)."""
    from monai_bac.dicom_seg import write_dicom_seg
    from monai_bac.presentation import seg_on_rendition, write_presentation

    raw, ph = write_raw(folder / "raw.dcm", "HOLOGIC", "CC", "L", spacing_mm=0.4, magnification=CONTACT_MAGNIFICATION)
    on_raw = write_dicom_seg(folder / "raw_bac_seg.dcm", ph.bac_mask, raw)
    presentation = write_presentation(raw, folder / "raw.presentation.dcm")
    seg = seg_on_rendition(on_raw, presentation, folder / "raw.presentation_bac_seg.dcm")
    return dict(raw=raw, presentation=presentation, seg=seg, bac=ph.bac_mask > 0)


@pytest.fixture(scope="module")
def review(tmp_path_factory):
    """Orthanc holding the study, and MONAI Label serving OHIF against it."""
    import pydicom

    root = tmp_path_factory.mktemp("ohif")
    files = _study(root)
    orthanc = start_orthanc(root / "orthanc")
    server = None
    try:
        for key in ("presentation", "seg"):
            orthanc.upload(files[key])
        app = root / "app"
        shutil.copytree(REPO / "monailabel_app", app, ignore=shutil.ignore_patterns("__pycache__", "model", "logs", "bin"))
        bundle = copy_bundle(root / "bundle")  # configs only: OHIF review needs no weights
        env = {"OMP_NUM_THREADS": "1", "MONAI_LABEL_AUTO_UPDATE_SCORING": "false",
               "MONAI_LABEL_SESSION_PATH": str(root / "sessions")}
        server = start_server(app, orthanc.dicomweb, {"models": "bac", "bundle_path": str(bundle)},
                              root / "server.log", env, timeout_s=180)
        files["study_uid"] = pydicom.dcmread(files["presentation"], stop_before_pixels=True).StudyInstanceUID
        yield dict(files, server=server, orthanc=orthanc)
    finally:
        if server is not None:
            stop_server(server)
        stop_orthanc(orthanc)


def _screenshot(page, clip: dict) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(page.screenshot(clip=clip))).convert("RGB")).astype(np.int16)


def _wait(predicate, what: str, timeout_s: float = WAIT_S):
    """The first value of ``predicate()`` that is not None, polled until ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value is not None:
            return value
        time.sleep(0.5)
    raise AssertionError(f"OHIF: {what} within {timeout_s:.0f} s")


def _greyish(rgb: np.ndarray) -> np.ndarray:
    """Pixels drawn in a mid grey (the breast), neither the black background nor saturated white."""
    spread = rgb.max(-1) - rgb.min(-1)
    level = rgb.mean(-1)
    return (spread < 12) & (level > 40) & (level < 235)


def _coloured(rgb: np.ndarray, colour) -> np.ndarray:
    """Pixels whose hue is the segment's (its colour blended over grey: the channel order of ``colour`` holds)."""
    c = np.asarray(colour, float)
    strongest, weakest = int(np.argmax(c)), int(np.argmin(c))
    return (rgb[..., strongest] - rgb[..., weakest]) > 0.4 * (c[strongest] - c[weakest])


# the RGB colour OHIF gave segment 1 of the loaded SEG in the viewport (null until it is loaded)
_SEGMENT_COLOUR = """() => {
  const el = document.querySelector('.cornerstone-viewport-element');
  const service = window.services.segmentationService;
  const seg = service.getSegmentations()[0];
  if (!seg || !seg.segments[1]) return null;
  const colour = service.getSegmentColor(el.getAttribute('data-viewport-uid'), seg.segmentationId, 1);
  return colour ? colour.slice(0, 3) : null;
}"""

# image (col, row) pixel centres -> page (x, y) through Cornerstone's own transforms
_TO_PAGE = """([points]) => {
  const el = document.querySelector('.cornerstone-viewport-element');
  const vp = window.cornerstone.getEnabledElement(el).viewport;
  const imageId = vp.getCurrentImageId();
  const box = el.getBoundingClientRect();
  return points.map(([c, r]) => {
    const xy = vp.worldToCanvas(window.cornerstone.utilities.imageToWorldCoords(imageId, [c + 0.5, r + 0.5]));
    return [xy[0] + box.left, xy[1] + box.top];
  });
}"""


# the world distance (mm) between neighbouring pixel centres of the viewport's image: (row, column) pitch
_PITCH = """() => {
  const el = document.querySelector('.cornerstone-viewport-element');
  const vp = window.cornerstone.getEnabledElement(el).viewport;
  const imageId = vp.getCurrentImageId();
  const world = (c, r) => window.cornerstone.utilities.imageToWorldCoords(imageId, [c, r]);
  const apart = (p, q) => Math.hypot(p[0] - q[0], p[1] - q[1], p[2] - q[2]);
  return [apart(world(0, 0), world(0, 1)), apart(world(0, 0), world(1, 0))];
}"""


def test_ohif_shows_the_mammogram_with_the_bac_seg_overlaid(review, tmp_path):
    server, uid = review["server"], review["study_uid"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS, headless=True)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{server.url}/ohif/viewer?StudyInstanceUIDs={uid}")
            element = page.wait_for_selector(".cornerstone-viewport-element", timeout=WAIT_S * 1000)
            banner = page.get_by_text("Confirm and Hide")  # OHIF's "investigational use" notice covers the viewport
            if banner.count():
                banner.click()
            box = element.bounding_box()
            clip = {k: box[k] for k in ("x", "y", "width", "height")}
            before = _wait(lambda: (lambda s: s if _greyish(s).mean() > 0.05 else None)(_screenshot(page, clip)),
                           "the mammogram was not drawn (no grey breast in the viewport)")

            page.get_by_text("SEG", exact=True).first.dblclick()  # the SEG series in the study panel
            page.get_by_role("button", name="Yes").click(timeout=WAIT_S * 1000)  # "open this Segmentation?"
            colour = _wait(lambda: page.evaluate(_SEGMENT_COLOUR), "the SEG was not loaded into the segmentation service")
            after = _wait(lambda: (lambda s: s if _coloured(s, colour).sum() > 20 else None)(_screenshot(page, clip)),
                          f"no pixel of the segment's colour {colour} appeared")
            time.sleep(1.0)  # let the last frame settle before the kept picture
            after = _screenshot(page, clip)
            shot = tmp_path / "ohif_review.png"
            page.screenshot(path=str(shot))

            rows, cols = np.nonzero(review["bac"])
            pick = np.linspace(0, rows.size - 1, min(rows.size, 20000)).astype(int)
            page_xy = np.asarray(page.evaluate(_TO_PAGE, [[[int(cols[i]), int(rows[i])] for i in pick]]))
            pitch = page.evaluate(_PITCH)
        finally:
            browser.close()
    if os.environ.get("OHIF_REVIEW_FIGURE"):
        shutil.copyfile(shot, os.environ["OHIF_REVIEW_FIGURE"])

    assert not errors, errors
    log = server.log.read_text(errors="replace")
    assert "Exception in ASGI application" not in log, server.log_tail(120)  # the DICOMweb proxy answered cleanly
    # the breast: grey levels with structure, not a black, white or flat viewport
    grey = _greyish(before)
    assert grey.mean() > 0.05, f"only {grey.mean():.1%} of the viewport is breast-grey"
    assert before[grey].mean(-1).std() > 5, "the breast is drawn flat (no tissue contrast)"
    # the SEG's colour is where the BAC is, and (almost) only there
    x = np.rint(page_xy[:, 0] - clip["x"]).astype(int)
    y = np.rint(page_xy[:, 1] - clip["y"]).astype(int)
    inside = (x >= 0) & (y >= 0) & (x < after.shape[1]) & (y < after.shape[0])
    assert inside.mean() > 0.99, "the BAC lies outside the viewport"
    coloured_after, coloured_before = _coloured(after, colour), _coloured(before, colour)
    on_bac = coloured_after[y[inside], x[inside]].mean()
    assert on_bac > 0.8, f"only {on_bac:.0%} of the BAC pixels show the SEG colour {colour}"
    assert coloured_before[y[inside], x[inside]].mean() < 0.05, "the BAC was coloured before the SEG was loaded"
    near = np.zeros(after.shape[:2], bool)
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            near[np.clip(y[inside] + dy, 0, near.shape[0] - 1), np.clip(x[inside] + dx, 0, near.shape[1] - 1)] = True
    stray = (coloured_after & ~near).sum() / max(coloured_after.sum(), 1)
    print(f"OHIF review: breast-grey {grey.mean():.1%} of the viewport; BAC pixels in the SEG colour {on_bac:.1%} "
          f"({inside.sum()} sampled); SEG-coloured pixels away from the BAC {stray:.1%}")
    assert stray < 0.1, f"{stray:.0%} of the SEG-coloured pixels are away from the BAC"
    # OHIF (as MONAI Label 0.8.5 serves it) measures at the detector's pitch; monai-bac in the breast, the
    # magnification times finer: a contact view's BAC reads that much longer on OHIF's ruler than in the report
    from monai_bac.data import load_mammogram

    meta = load_mammogram(review["raw"]).meta
    ours = [s / meta["plane_magnification"] for s in meta["spacing_mm"]]
    print(f"OHIF's pitch {pitch} mm; monai-bac's in the breast {ours} mm ({meta['measured_at']}); detector "
          f"{list(meta['spacing_mm'])} mm")
    assert meta["plane_magnification"] == CONTACT_MAGNIFICATION
    assert pitch == pytest.approx(list(meta["spacing_mm"]), rel=1e-4)
    assert pitch == pytest.approx([CONTACT_MAGNIFICATION * s for s in ours], rel=1e-4)

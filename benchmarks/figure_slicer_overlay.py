"""Figure for docs/SLICER.md: the labels the MONAI Label server returns, drawn as 3D Slicer shows them.

    python benchmarks/figure_slicer_overlay.py [--bundle trained_bundle] [--spacing 0.4] \
        [--out docs/figures/slicer_overlay.png]

Runs the Slicer module's requests against a real server (``monailabel start_server`` on loopback,
MONAI Label's own client): a raw DICOM MG phantom without ImagePositionPatient /
ImageOrientationPatient and the same pixels placed at (12.5, -30, 4) mm with rows and columns
reversed; for each, inference with ``result_extension=.nrrd`` / ``result_dtype=uint8``, and the
phantom's BAC saved as a Slicer labelmap (``.nii.gz`` on the image's grid) and downloaded back.
Every file is then read as Slicer reads it (ITK, LPS) and drawn in Slicer's RAS convention, axial
view (patient right on the screen's left, anterior up), on world-mm axes: the image, the model's
label (outline), the returned annotator label (red) and the known BAC pixel (cyan cross, mapped
label index -> RAS -> image index). Without ``--bundle`` a one-epoch bundle is trained first
(about a minute), so the model's label is a demonstration of placement, not of accuracy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(REPO / "tests"))

from _common import machine  # noqa: E402
from bench_monailabel_load import TINY, train_tiny_bundle  # noqa: E402


def run_slicer_requests(bundle: Path, root: Path, spacing_mm: float) -> dict[str, dict]:
    """Per image id: the image file, the returned .nrrd label, the returned annotator label and the truth."""
    import pydicom
    from monailabel.client import MONAILabelClient

    import test_slicer_client_loop as loop
    from monailabel_utils import start_server, stop_server

    loop.SPACING_MM = spacing_mm
    studies = root / "studies"
    studies.mkdir()
    truth = loop._write_phantom(studies / f"{loop.PLAIN_ID}.dcm", 11, "CC", "L")
    ds = pydicom.dcmread(studies / f"{loop.PLAIN_ID}.dcm")
    ds.ImagePositionPatient, ds.ImageOrientationPatient = loop.PLACEMENTS[loop.FLIPPED_ID]
    ds.save_as(studies / f"{loop.FLIPPED_ID}.dcm")
    app = root / "app"
    shutil.copytree(REPO / "monailabel_app", app, ignore=shutil.ignore_patterns("__pycache__", "model", "logs", "bin"))
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MONAI_LABEL_AUTO_UPDATE_SCORING": "false",
           "MONAI_LABEL_SESSION_PATH": str(root / "sessions")}
    server = start_server(app, studies, {"models": "bac", "bundle_path": str(bundle)}, root / "server.log", env)
    out: dict[str, dict] = {}
    try:
        client = MONAILabelClient(server.url, tmpdir=str(root / "client"))
        for image_id in (loop.PLAIN_ID, loop.FLIPPED_ID):
            image_file = loop.fetch_image(server, image_id, root / f"{image_id}.dcm")
            image = loop.SlicerVolume(image_file)
            label_file, _ = client.infer("bac", image_id, dict(loop.SLICER_INFER_PARAMS))
            upload = loop.slicer_labelmap(image, truth, root / f"{image_id}_labelmap.nii.gz")
            client.save_label(image_id, str(upload), params={"label_info": [{"name": "bac", "idx": 1}],
                                                             "model": "bac"})
            returned = client.download_label(image_id, "final")
            out[image_id] = {"image": image_file, "prediction": Path(label_file), "annotation": Path(returned),
                             "truth": truth}
    finally:
        stop_server(server)
    return out


def ras_extent(volume, shape_hw: tuple[int, int]) -> tuple[float, float, float, float]:
    """imshow extent (RAS x of the first / last column edge, RAS y of the last / first row edge)."""
    m = volume.ijk_to_ras
    if abs(m[0, 1]) > 1e-6 or abs(m[1, 0]) > 1e-6:
        raise ValueError("only images whose rows and columns run along RAS x / y are drawn (no turned or oblique "
                         "ImageOrientationPatient)")
    rows, cols = shape_hw
    x0, dx = m[0, 3], m[0, 0]
    y0, dy = m[1, 3], m[1, 1]
    return x0 - dx / 2, x0 + dx * (cols - 0.5), y0 + dy * (rows - 0.5), y0 - dy / 2


def render(files: dict[str, dict], out: Path, titles: dict[str, str]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    import test_slicer_client_loop as loop
    from monai_bac.visualize import display_window

    lines = []
    fig, axes = plt.subplots(2, len(files), figsize=(6.2 * len(files), 12.4))
    for column, (image_id, f) in enumerate(files.items()):
        image = loop.SlicerVolume(f["image"])
        prediction = loop.SlicerVolume(f["prediction"])
        annotation = loop.SlicerVolume(f["annotation"])
        for label in (prediction, annotation):
            if not label.same_grid(image):
                raise ValueError(f"{image_id}: a returned label is not on the image's grid")
        grey = display_window(image.voxels[0])
        row, col = loop.known_bac_pixel(f["truth"])
        lands = image_index_of_pixel(annotation, image, row, col)
        ras = image.ijk_to_ras @ np.array([col, row, 0, 1.0])
        extent = ras_extent(image, grey.shape)
        lines.append(f"{image_id}: image origin (LPS) {image.origin.round(3).tolist()} mm, spacing "
                     f"{image.spacing.round(4).tolist()} mm, direction {image.direction.round(3).tolist()}; "
                     f"known BAC pixel (row {row}, col {col}) -> RAS ({ras[0]:.1f}, {ras[1]:.1f}, {ras[2]:.1f}) mm "
                     f"-> image index {np.round(lands, 3).tolist()}; prediction and annotation on the same grid")
        for zoom, ax in enumerate(axes[:, column]):
            ax.imshow(grey, cmap="gray", extent=extent, interpolation="nearest")
            ax.contour(prediction.voxels[0], levels=[0.5], colors=["yellow"], linewidths=0.8, extent=extent,
                       origin="upper")
            truth_rgba = np.zeros(grey.shape + (4,))
            truth_rgba[annotation.voxels[0] > 0] = (1.0, 0.15, 0.15, 0.9)
            ax.imshow(truth_rgba, extent=extent, interpolation="nearest")
            ax.plot(ras[0], ras[1], "+", color="cyan", markersize=14 if zoom else 9, markeredgewidth=1.5)
            half = 12.0 if zoom else None
            xs, ys = sorted(extent[:2]), sorted(extent[2:])
            if half:
                xs, ys = [ras[0] - half, ras[0] + half], [ras[1] - half, ras[1] + half]
            ax.set_xlim(xs[1], xs[0])  # Slicer's axial view: patient right (+x) on the screen's left
            ax.set_ylim(ys[0], ys[1])  # anterior (+y) up
            ax.set_xlabel("RAS x (mm)   <- R | L ->")
            ax.set_ylabel("RAS y (mm)   P | A")
            ax.set_title(titles[image_id] if not zoom else f"24 mm around the known BAC pixel (RAS z = {ras[2]:.1f})",
                         fontsize=10)
    fig.legend(handles=[Patch(color=(1.0, 0.15, 0.15), label="annotator's label returned by the server (.nii.gz)"),
                        Line2D([], [], color="yellow", label="model's label returned for Slicer (.nrrd)"),
                        Line2D([], [], color="cyan", marker="+", linestyle="", markersize=10,
                               label="known BAC pixel of the phantom truth")],
               loc="lower center", ncol=3, fontsize=9)
    fig.suptitle("Labels returned by the MONAI Label server, drawn in 3D Slicer's RAS convention", fontsize=12)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return lines


def image_index_of_pixel(label, image, row: int, col: int) -> np.ndarray:
    import test_slicer_client_loop as loop

    return loop.image_index_of(label, image, np.array([[col, row, 0]]))[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, help="a trained bundle (models/model.pt); default: train a tiny one")
    parser.add_argument("--spacing", type=float, default=0.4, help="phantom pixel spacing, mm")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "figures" / "slicer_overlay.png")
    args = parser.parse_args()

    start = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="figure_slicer_"))
    try:
        bundle = args.bundle
        if bundle is None:
            from monai_bac.phantom.cohort import make_cohort

            cohort = root / "cohort"
            make_cohort(cohort, n=TINY["cohort_size"], seed=0, spacing_mm=TINY["phantom_spacing_mm"])
            bundle = train_tiny_bundle(root, cohort)
        files = run_slicer_requests(Path(bundle), root, args.spacing)
        placements = ("no ImagePositionPatient/OrientationPatient", "IPP (12.5, -30, 4), IOP (-1,0,0, 0,-1,0)")
        titles = {image_id: f"{image_id}.dcm: {placement}" for image_id, placement in zip(files, placements)}
        for line in render(files, args.out, titles):
            print(line)
        print(json.dumps({"figure": str(args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out),
                          "seconds": round(time.perf_counter() - start, 1), "machine": machine()}))
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())

"""Reading a tomosynthesis projection set against reading the 2D image of its central exposure.

Writes one full-size (0.1 mm) phantom as a 2D raw mammogram and as a Breast Projection X-Ray Image
of ``--frames`` projections (every frame the same image shifted, the central one the 2D image's
pixels), uncompressed and, with ``--jpeg2000``, JPEG 2000 lossless, to a temporary folder; then
reads them in turn (2D, set, 2D, set, ...: a host whose load drifts slows both alike) with
:func:`monai_bac.data.read_dicom_mammogram` and prints each file's size and median / min seconds.

Usage::

    python benchmarks/bench_projection_read.py [--frames 9] [--repeat 5] [--vendor GE] [--jpeg2000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _write(folder: Path, frames: int, vendor: str, jpeg2000: bool) -> dict[str, Path]:
    import pydicom
    from pydicom.encaps import encapsulate

    from monai_bac.data import dicom_write, write_mammogram_dicom
    from monai_bac.data.dicom_write_projection import write_breast_projection_dicom
    from monai_bac.phantom import make_phantom

    p = make_phantom(1, spacing_mm=0.1, vendor=vendor)
    m = p.meta
    common = dict(spacing_mm=m["spacing_mm"], kvp=m["kvp"], thickness_mm=m["thickness_mm"], anode=m["anode"],
                  filter=m["filter"], view=m["view"], laterality=m["laterality"], manufacturer=m["manufacturer"],
                  photometric=m["photometric"], bits_stored=m["bits_stored"])
    centre = frames // 2
    stack = np.stack([np.roll(p.raw, 5 * (i - centre), axis=1) for i in range(frames)])
    paths = {"2D": write_mammogram_dicom(folder / "2d.dcm", p.raw, **common),
             f"{frames} projections": write_breast_projection_dicom(
                 folder / "set.dcm", stack, angles_deg=np.linspace(-12.5, 12.5, frames), **common)}
    if jpeg2000:
        import imagecodecs

        ds = pydicom.dcmread(paths[f"{frames} projections"])
        ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEG2000Lossless
        ds.PixelData = encapsulate([imagecodecs.jpeg2k_encode(f, codecformat="j2k", reversible=True,
                                                              bitspersample=m["bits_stored"]) for f in stack])
        ds["PixelData"].VR, ds["PixelData"].is_undefined_length = "OB", True
        dicom_write.save_dataset(ds, folder / "set_j2k.dcm")
        paths[f"{frames} projections, JPEG 2000"] = folder / "set_j2k.dcm"
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=9, help="projections in the set (GE: 9, Hologic: 15)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--vendor", default="GE")
    parser.add_argument("--jpeg2000", action="store_true", help="also a JPEG 2000 lossless copy of the set")
    args = parser.parse_args()

    from monai_bac.data import read_dicom_mammogram

    with tempfile.TemporaryDirectory() as tmp:
        paths = _write(Path(tmp), args.frames, args.vendor, args.jpeg2000)
        reference = read_dicom_mammogram(paths["2D"])[0]
        for path in paths.values():  # warm up; and every file reads the central exposure
            assert np.array_equal(read_dicom_mammogram(path)[0], reference), path
        seconds: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(args.repeat):
            for name, path in paths.items():
                start = time.perf_counter()
                read_dicom_mammogram(path)
                seconds[name].append(time.perf_counter() - start)
        print(f"{'file':<28} {'MB':>8} {'median s':>9} {'min s':>7}")
        for name, path in paths.items():
            print(f"{name:<28} {path.stat().st_size / 1e6:8.1f} {statistics.median(seconds[name]):9.3f} "
                  f"{min(seconds[name]):7.3f}")


if __name__ == "__main__":
    main()

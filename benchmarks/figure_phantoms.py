"""Draw docs/figures/phantom_ideal_vs_realistic.png: an ideal and a realistic phantom of the same
seed side by side, as raw (as stored), log view, density map and breast map.

The density map and the breast map are what this tree's transforms make of each image
(``BreastRegion`` and ``DensityMap`` with default parameters; on the ideal image ``DensityMap``
with ``model="eq4"``, the paper's Eq. (4), its documented setting for a scatter-free image), so the figure shows what the realistic
effects do to them; the titles give the true VBD and the realistic image's physics.

    python benchmarks/figure_phantoms.py [--seed 3] [--view MLO] [--vendor HOLOGIC] [--spacing 0.2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from monai.data import MetaTensor  # noqa: E402

from monai_bac.phantom import make_phantom  # noqa: E402
from monai_bac.transforms import BreastRegion, DensityMap  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "figures" / "phantom_ideal_vs_realistic.png"
IDEAL_DENSITY = {"model": "eq4"}  # DensityMap's setting for a monochromatic, scatter-free image
MAP_COLOURS = ListedColormap(["black", "#4c72b0", "#dd8452", "#55a868"])  # background, periphery, compressed, pectoral


def log_view(ph) -> np.ndarray:
    """-log of the linear raw image, windowed to the breast."""
    lg = -np.log(np.maximum(ph.linear, 1.0))
    lo, hi = np.percentile(lg[ph.breast_map > 0], [0.5, 99.8])
    return np.clip((lg - lo) / (hi - lo), 0, 1)


def analyse(ph, **density) -> tuple[np.ndarray, np.ndarray, float]:
    img = MetaTensor(torch.from_numpy(ph.linear[None].copy()), meta=dict(ph.meta))
    bmap = BreastRegion()(img)
    dens = DensityMap(**density)(img, bmap)
    return np.asarray(dens)[0], np.asarray(bmap)[0], float(dens.meta["density"]["vbd_percent"])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=3)  # an MLO with the paddle rim and the abdominal fold
    ap.add_argument("--view", default="MLO")
    ap.add_argument("--laterality", default="L")
    ap.add_argument("--vendor", default="HOLOGIC")
    ap.add_argument("--thickness", type=float, default=65.0)
    ap.add_argument("--spacing", type=float, default=0.2, help="mm (0.1 = full size; 0.2 keeps the PNG small)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    kw = dict(view=args.view, laterality=args.laterality, vendor=args.vendor, thickness_mm=args.thickness,
              spacing_mm=args.spacing)
    phantoms = {"ideal": make_phantom(args.seed, **kw), "realistic": make_phantom(args.seed, physics="realistic", **kw)}
    vmax = float(np.percentile(phantoms["ideal"].h_dt[phantoms["ideal"].breast_map == 2], 99.5)) + 1.0
    fig, axes = plt.subplots(2, 4, figsize=(16, 11))
    for row, (name, ph) in zip(axes, phantoms.items()):
        density = IDEAL_DENSITY if name == "ideal" else {}
        h_dt, bmap, vbd = analyse(ph, **density)
        m, r = ph.meta, ph.record
        extras = ""
        if name == "realistic":
            extras = (f"\n{m['anode'].title()}/{m['filter'].title()} {m['kvp']:.0f} kVp, SPR {r['spr_measured']:.2f}, "
                      f"heel {100 * r['heel_fraction']:.0f} %,\ndetector offset {r['detector_offset']:.0f}"
                      + (", paddle rim" if r.get("paddle_edge") else "")
                      + (", abdomen fold" if r.get("abdomen_fold") else ""))
        row[0].imshow(ph.raw, cmap="gray")
        row[0].set_title(f"{name}: raw as stored\n({m['photometric']}, {m['bits_stored']}-bit){extras}", fontsize=9)
        row[1].imshow(log_view(ph), cmap="gray")
        row[1].set_title(f"-log(raw), breast {args.thickness:.0f} mm", fontsize=10)
        im = row[2].imshow(np.where(bmap > 0, h_dt, np.nan), cmap="magma", vmin=-5.0, vmax=vmax)
        setting = ", ".join(f"{k}={v!r}" for k, v in density.items()) or "defaults"
        row[2].set_title(f"DensityMap({setting}) h_dt (mm):\nVBD {vbd:.1f} % (true {r['vbd_percent']:.1f} %), "
                         f"min {np.nanmin(np.where(bmap > 0, h_dt, np.nan)):.0f} mm", fontsize=9)
        fig.colorbar(im, ax=row[2], fraction=0.04)
        row[3].imshow(bmap, cmap=MAP_COLOURS, vmin=0, vmax=3, interpolation="nearest")
        row[3].contour(ph.breast_map, levels=[0.5, 1.5, 2.5], colors="white", linewidths=0.6)
        row[3].set_title("BreastRegion (fill) vs truth (white lines)\nperiphery / compressed / pectoral", fontsize=10)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"Same seed ({args.seed}, {args.vendor} {args.laterality}{args.view}, {args.spacing} mm): "
                 "ideal (monochromatic, no scatter) vs realistic phantom (all effects)")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=60)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

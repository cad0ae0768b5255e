"""Draw docs/figures/phantoms.png: three full-size phantoms as raw, log view, and a zoom on the
third-party annotation (red) against the ground-truth BAC (green).

    python docs/figures/make_phantom_figure.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from monai_bac.phantom import make_phantom  # noqa: E402

CASES = [(21, "CC", "L", "HOLOGIC"), (22, "MLO", "R", "GE"), (23, "MLO", "L", "HOLOGIC")]


def log_view(ph) -> np.ndarray:
    """-log of the linear raw image, windowed to the breast: how the detector signal reads."""
    lg = -np.log(ph.linear + 1.0)
    lo, hi = np.percentile(lg[ph.breast_map > 0], [0.5, 99.8])
    return np.clip((lg - lo) / (hi - lo), 0, 1)


def zoom(ph, view: np.ndarray, half: int = 220):
    rows, cols = np.nonzero(ph.bac_mask)
    k = len(rows) // 2
    r0, c0 = max(rows[k] - half, 0), max(cols[k] - half, 0)
    sl = (slice(r0, r0 + 2 * half), slice(c0, c0 + 2 * half))
    rgb = np.dstack([view[sl]] * 3)
    tpa, gt = ph.tpa_mask[sl] > 0, ph.bac_mask[sl] > 0
    edge_tpa = tpa & ~np.roll(tpa, 1, 0) | tpa & ~np.roll(tpa, 1, 1)
    rgb[gt] = 0.55 * rgb[gt] + 0.45 * np.array([0.1, 1.0, 0.1])
    rgb[edge_tpa] = [1.0, 0.1, 0.1]
    return rgb


def main(out: Path = Path(__file__).with_name("phantoms.png")) -> None:
    fig, axes = plt.subplots(len(CASES), 3, figsize=(12, 4.6 * len(CASES)))
    for row, (seed, view, lat, vendor) in zip(axes, CASES):
        ph = make_phantom(seed, view=view, laterality=lat, vendor=vendor, spacing_mm=0.1)
        lv = log_view(ph)
        row[0].imshow(ph.raw, cmap="gray")
        row[0].set_title(f"raw as stored: {lat}{view}, {vendor}\n{ph.meta['photometric']}, "
                         f"{ph.meta['bits_stored']}-bit, {ph.meta['kvp']:.0f} kVp")
        row[1].imshow(lv, cmap="gray")
        row[1].set_title(f"-log(raw): H = {ph.meta['thickness_mm']:.0f} mm, VBD {ph.record['vbd_percent']:.1f} %")
        row[2].imshow(zoom(ph, lv))
        row[2].set_title("zoom: truth BAC (green), TPA outline (red)")
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("monai-bac digital phantom (2850 x 2394 at 0.1 mm, Beer-Lambert physics)")
    fig.tight_layout()
    fig.savefig(out, dpi=70)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Dice^L and the threshold sweep at the paper's working resolution (1600 x 1600), on one CPU core.

    python benchmarks/bench_length_dice.py [--repeat 20] [--images 64]

1. One pair of phantom masks: the ground-truth BAC and the simulated third-party annotation of
   a full-size phantom (2850 x 2394 at 0.1 mm) resized to 1600 x 1600 (nearest neighbour;
   spacing 0.178 x 0.150 mm). Timed: ``monai_bac.ops.length_dice.length_dice`` (numpy route),
   ``compute_length_dice`` (MONAI face, same route), the torch route on the CPU, and a plain
   scikit-image reference (``skeletonize`` of both whole images, ``dilation`` (binary) of the
   annotation skeleton with a disk of the band radius, pixel counts). Target: <= 50 ms per pair.
2. The validation threshold sweep (19 cut-offs) over 64 probability maps of 1600 x 1600 through
   ``ThresholdSweep`` (update per batch of 4, then the epoch-end sweep and the json file).
   Target: <= 5 s. Probability maps: blurred phantom masks (realistic: most of the image below
   0.05) and, as a worst case, uniform noise (every pixel above the first cut-off).
3. With a CUDA GPU: the torch route on the GPU for a batch of 8 pairs.

Everything runs on one thread (torch.set_num_threads(1), threadpoolctl, OMP/MKL/OpenBLAS env).
"""

from __future__ import annotations

import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402
from skimage.morphology import dilation, disk, skeletonize  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, timeit  # noqa: E402

from monai_bac.handlers import ThresholdSweep, read_threshold  # noqa: E402
from monai_bac.metrics import compute_length_dice  # noqa: E402
from monai_bac.ops.length_dice import length_dice  # noqa: E402
from monai_bac.ops.skeleton_torch import length_dice_terms_torch  # noqa: E402
from monai_bac.phantom import make_phantom  # noqa: E402

SIZE = 1600
TOL_MM = 2.1


def resize_nearest(mask: np.ndarray, size: int = SIZE) -> np.ndarray:
    h, w = mask.shape
    rows = ((np.arange(size) + 0.5) * h / size).astype(int)
    cols = ((np.arange(size) + 0.5) * w / size).astype(int)
    return np.ascontiguousarray(mask[rows][:, cols] != 0)


def phantom_pair(seed: int):
    ph = make_phantom(seed, spacing_mm=0.1)
    h, w = ph.bac_mask.shape
    spacing = (h * 0.1 / SIZE, w * 0.1 / SIZE)
    return resize_nearest(ph.tpa_mask), resize_nearest(ph.bac_mask), spacing


def reference_length_dice(pred: np.ndarray, label: np.ndarray, spacing, tol_mm: float = TOL_MM) -> float:
    """Plain scikit-image Dice^L: whole-image skeletons, disk dilation, pixel counts."""
    sp, sl = skeletonize(pred), skeletonize(label)
    radius_px = int(round(tol_mm / 2 / float(np.mean(spacing))))
    band = dilation(sl, disk(radius_px))  # binary_dilation is deprecated in scikit-image 0.26
    return 2.0 * float((sp & band).sum()) / float(sp.sum() + sl.sum())


def probability_maps(pairs, n_maps: int, rng) -> list[tuple[np.ndarray, np.ndarray]]:
    """Smooth 'network outputs' from the phantom masks: high on BAC, mid on TPA-only, low elsewhere."""
    maps = []
    for k in range(n_maps):
        tpa, gt, _ = pairs[k % len(pairs)]
        p = 0.9 * ndi.gaussian_filter(gt.astype(np.float32), 1.0 + 0.3 * k)
        p += 0.6 * ndi.gaussian_filter((tpa & ~gt).astype(np.float32), 1.5)
        p += 0.05 * rng.random(gt.shape, dtype=np.float32) ** 6
        maps.append((np.clip(p, 0, 1).astype(np.float32)[None], gt.astype(np.uint8)[None]))
    return maps


def run_sweep(maps, n_images: int, batch: int, out: Path) -> float:
    sweep = ThresholdSweep(output_path=out)
    t = time.perf_counter()
    sweep.reset()
    for i in range(0, n_images, batch):
        items = [maps[j % len(maps)] for j in range(i, min(i + batch, n_images))]
        prob = torch.from_numpy(np.stack([p for p, _ in items]))
        label = torch.from_numpy(np.stack([y for _, y in items]))
        sweep.update(prob, label)
    result = sweep.compute()
    from monai_bac.handlers.threshold_sweep import write_threshold

    write_threshold(out, result)
    elapsed = time.perf_counter() - t
    assert read_threshold(out) == result["threshold"] and result["n_images"] == n_images
    return elapsed, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=20, help="timed repetitions per pair measurement")
    ap.add_argument("--images", type=int, default=64, help="validation images in the sweep")
    ap.add_argument("--seed", type=int, default=0, help="phantom seed of the timed pair")
    args = ap.parse_args()
    torch.set_num_threads(1)
    threadpool_limits(1)

    print(f"machine: {machine()}")
    print(f"threads: torch {torch.get_num_threads()}, BLAS/OpenMP 1\n")
    pairs = [phantom_pair(args.seed), phantom_pair(args.seed + 1)]
    pred, label, spacing = pairs[0]
    print(f"pair: phantom seed {args.seed} TPA vs ground truth, {SIZE} x {SIZE}, spacing {spacing[0]:.4f} x "
          f"{spacing[1]:.4f} mm, {int(pred.sum())} / {int(label.sum())} foreground pixels, band {TOL_MM} mm\n")

    rows = []
    ours = length_dice(pred, label, spacing)
    med, best = timeit(lambda: length_dice(pred, label, spacing), args.repeat)
    rows.append(("Dice^L, monai_bac numpy route (ops.length_dice)", ours, med, best))
    y_pred, y = pred[None, None], label[None, None].astype(np.uint8)
    val = compute_length_dice(y_pred, y, spacing).item()
    med, best = timeit(lambda: compute_length_dice(y_pred, y, spacing), args.repeat)
    rows.append(("Dice^L, compute_length_dice (numpy in, metric API)", val, med, best))
    tp, tl = torch.from_numpy(pred)[None], torch.from_numpy(label)[None]

    def torch_cpu():
        return length_dice_terms_torch(tp, tl, [spacing], TOL_MM)

    t_terms = torch_cpu()[0].tolist()
    val_t = min(1.0, 2 * t_terms[2] / (t_terms[0] + t_terms[1]))
    med, best = timeit(torch_cpu, max(3, args.repeat // 4), warmup=1)
    rows.append(("Dice^L, monai_bac torch route on CPU", val_t, med, best))
    ref = reference_length_dice(pred, label, spacing)
    med, best = timeit(lambda: reference_length_dice(pred, label, spacing), max(3, args.repeat // 4), warmup=1)
    rows.append(("plain skimage reference (skeletonize+disk dilation, px counts)", ref, med, best))

    print(f"{'one 1600 x 1600 pair, 1 CPU thread':<66} {'value':>8} {'median ms':>10} {'best ms':>9}")
    for name, value, med, best in rows:
        print(f"{name:<66} {value:8.4f} {med * 1e3:10.1f} {best * 1e3:9.1f}")
    target = rows[0][2] * 1e3
    print(f"target <= 50 ms per pair: {'met' if target <= 50 else 'NOT met'} ({target:.1f} ms median); "
          f"speed-up over the skimage reference: {rows[-1][2] / rows[0][2]:.1f}x\n")

    rng = np.random.default_rng(0)
    realistic = probability_maps(pairs, 8, rng)
    frac = float(np.mean([(p >= 0.05).mean() for p, _ in realistic]))
    worst = [(rng.random((1, SIZE, SIZE), dtype=np.float32), y) for _, y in realistic[:4]]
    print(f"{'threshold sweep, 19 cut-offs, 1 CPU thread':<66} {'best t':>8} {'total s':>10} {'ms/img':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, maps in ((f"{args.images} images, phantom-like maps ({100 * frac:.1f}% px >= 0.05)", realistic),
                           (f"{args.images} images, uniform noise (worst case, 95% px >= 0.05)", worst)):
            times = []
            for _ in range(3):
                elapsed, result = run_sweep(maps, args.images, 4, Path(tmp) / "models" / "threshold.json")
                times.append(elapsed)
            el = statistics.median(times)
            print(f"{name:<66} {result['threshold']:8.2f} {el:10.2f} {el / args.images * 1e3:9.1f}")
        print("target <= 5 s for 64 images (median of 3 runs; written to models/threshold.json and read back)\n")

    if torch.cuda.is_available():
        dev = torch.device("cuda")
        gp = torch.from_numpy(np.stack([pred] * 8)).to(dev)
        gl = torch.from_numpy(np.stack([label] * 8)).to(dev)

        def gpu():
            out = length_dice_terms_torch(gp, gl, [spacing] * 8, TOL_MM)
            torch.cuda.synchronize()
            return out

        med, best = timeit(gpu, 10, warmup=2)
        terms = gpu()[0].tolist()
        print(f"GPU ({torch.cuda.get_device_name(dev)}): torch route, batch of 8 pairs: median {med * 1e3:.1f} ms "
              f"({med / 8 * 1e3:.1f} ms per pair), Dice^L {min(1.0, 2 * terms[2] / (terms[0] + terms[1])):.4f}")
    else:
        print("GPU: none (torch route on CUDA not measured)")


if __name__ == "__main__":
    main()

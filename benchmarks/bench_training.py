"""Training throughput of the three networks at 1600 x 1600, and data-loader throughput per worker.

    python benchmarks/bench_training.py [--size 1600] [--threads 2] [--steps 3] [--devices cpu cuda]

Model: forward + DiceMSE loss + backward + Adam step on one (1, 1, S, S) image (AMP on CUDA,
batch 3 there as in the paper). Loader: the bundle's training preprocessing (load a full-size
raw DICOM, breast map, log-gamma, z-score, resize, random augmentation) for one image in one
worker process; N workers give about N times that rate while cores last. If the loader's
images/s per worker times the workers is above the model's images/s, loading is not the
bottleneck.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import limit_threads, machine  # noqa: E402


def model_rate(name: str, size: int, steps: int, device) -> float:
    import torch

    from monai_bac.losses import DiceMSELoss
    from monai_bac.networks import build_network

    net = build_network(name).to(device)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    loss_fn = DiceMSELoss()
    batch = 3 if device.type == "cuda" else 2  # batch norm needs > 1 image (ASPP pooling)
    x = torch.randn(batch, 1, size, size, device=device)
    y = (torch.rand(batch, 1, size, size, device=device) > 0.995).float()
    scaler = torch.amp.GradScaler(enabled=device.type == "cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            loss = loss_fn(net(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    step()  # warm-up (allocations, cudnn autotune)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t)


def loader_rate(size: int, n: int = 4) -> tuple[float, float]:
    """Images/s of (deterministic + random transforms, random transforms only on cached data)."""
    from monai.bundle import ConfigParser

    from monai_bac.data import save_mask_nifti, write_mammogram_dicom
    from monai_bac.phantom import make_phantom

    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        items = []
        for i in range(n):
            ph = make_phantom(100 + i, spacing_mm=0.1)
            m = ph.meta
            img = Path(tmp) / f"{i}.dcm"
            write_mammogram_dicom(img, ph.raw, spacing_mm=m["spacing_mm"], kvp=m["kvp"], thickness_mm=m["thickness_mm"],
                                  anode=m["anode"], filter=m["filter"], view=m["view"], laterality=m["laterality"],
                                  manufacturer=m["manufacturer"], photometric=m["photometric"],
                                  bits_stored=m["bits_stored"])
            lab = Path(tmp) / f"{i}.nii.gz"
            save_mask_nifti(lab, ph.tpa_mask, m["spacing_mm"])
            items.append({"image": str(img), "label": str(lab)})
        parser = ConfigParser()
        parser.read_config(str(repo / "bundle" / "configs" / "train.json"))
        parser.update({"image_size": size, "crop_to_breast": False, "profile": "gpu",
                       "bundle_root": tmp, "dataset_dir": tmp})
        from monai.transforms import Compose

        deterministic = Compose(parser.get_parsed_content("deterministic_transforms"))
        random = Compose(parser.get_parsed_content("train#random_transforms"))
        deterministic(items[0])  # warm-up
        t = time.perf_counter()
        cached = [deterministic(item) for item in items]
        t_det = time.perf_counter() - t
        t = time.perf_counter()
        for item in cached:
            random(item)
        t_rand = time.perf_counter() - t
        return n / (t_det + t_rand), n / t_rand


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1600)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--networks", nargs="+", default=["deeplabv3p_mnv3", "deeplabv3p_r34", "unet_r34"])
    ap.add_argument("--devices", nargs="+", choices=["cpu", "cuda"], help="default: the CPU, and CUDA where available")
    args = ap.parse_args()
    limit_threads(args.threads)
    import torch

    print(f"machine: {machine()}; CPU threads: {args.threads}")
    names = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if "cuda" in names and not torch.cuda.is_available():
        ap.error("--devices cuda: no CUDA device (torch.cuda.is_available() is False)")
    devices = [torch.device(d) for d in names]
    print(f"| network | device | images/s at {args.size}x{args.size} | s/image |")
    print("|---|---|---|---|")
    for name in args.networks:
        for dev in devices:
            rate = model_rate(name, args.size, args.steps if dev.type == "cpu" else 20, dev)
            print(f"| {name} | {dev.type} | {rate:.3f} | {1 / rate:.2f} |")
    limit_threads(1)
    full, cached = loader_rate(args.size)
    print(f"\nloader, one worker on one thread: full-size raw DICOM -> {args.size}x{args.size} augmented tensor "
          f"{full:.2f} images/s ({1 / full:.2f} s/image); from the CacheDataset (random augmentation only) "
          f"{cached:.2f} images/s ({1 / cached:.3f} s/image)")


if __name__ == "__main__":
    main()

"""Bounded load check of the MONAI Label server: N inference requests at concurrency C.

    python benchmarks/bench_monailabel_load.py [--requests 100] [--concurrency 8] [--bundle trained_bundle]

Starts ``monailabel start_server`` on a free loopback port (the app as deployed, with its
security guard), on a studies folder of 12 phantom DICOMs (1 mm pixels, ~285 x 239), with a
bundle trained for one epoch at 128 px (trained here in about a minute unless ``--bundle``
gives one), sends the requests from C client threads, and prints: successes, latency
median / p95 / max, throughput, and the server's resident memory (its process tree) before and
after. The server runs one torch thread (OMP_NUM_THREADS=1), as the tests do.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(REPO / "tests"))
from _common import machine  # noqa: E402

TINY = dict(cohort_size=12, phantom_spacing_mm=1.0, image_size=128, num_epochs=1, batch_size=2, num_workers=0)


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, MiB (from /proc)."""
    def children(p):
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                return [int(c) for c in f.read().split()]
        except OSError:
            return []

    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children(p)
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total / 1024


def train_tiny_bundle(root: Path, cohort: Path) -> Path:
    from monai.bundle import ConfigWorkflow

    bundle = root / "bundle"
    shutil.copytree(REPO / "bundle" / "configs", bundle / "configs")
    cwd = os.getcwd()
    os.chdir(bundle)
    try:
        wf = ConfigWorkflow(config_file=str(bundle / "configs" / "train.json"), workflow_type="train",
                            logging_file=str(REPO / "bundle" / "configs" / "logging.conf"),
                            bundle_root=str(bundle), dataset_dir=str(cohort), **TINY)
        wf.initialize()
        wf.run()
        wf.finalize()
    finally:
        os.chdir(cwd)
    return bundle


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--bundle", type=Path, help="a trained bundle (models/model.pt); default: train a tiny one")
    parser.add_argument("--app", type=Path, default=REPO / "monailabel_app", help="the app folder to serve")
    args = parser.parse_args()

    import requests

    from monai_bac.phantom.cohort import make_cohort
    from monailabel_utils import start_server, stop_server

    root = Path(tempfile.mkdtemp(prefix="bench_monailabel_"))
    try:
        cohort = root / "cohort"
        make_cohort(cohort, n=TINY["cohort_size"], seed=0, spacing_mm=TINY["phantom_spacing_mm"])
        bundle = args.bundle or train_tiny_bundle(root, cohort)
        studies = root / "studies"
        studies.mkdir()
        ids = []
        for dcm in sorted((cohort / "images").glob("*.dcm")):
            shutil.copy2(dcm, studies / dcm.name)
            ids.append(dcm.stem)
        app = root / "app"
        shutil.copytree(args.app, app, ignore=shutil.ignore_patterns("__pycache__", "model", "logs",
                                                                                   "bin"))
        env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MONAI_LABEL_AUTO_UPDATE_SCORING": "false",
               "MONAI_LABEL_SESSION_PATH": str(root / "sessions")}
        server = start_server(app, studies, {"models": "bac", "bundle_path": str(bundle)}, root / "server.log", env)
        try:
            first = requests.post(f"{server.url}/infer/bac", params={"image": ids[0]}, timeout=300)
            assert first.status_code == 200, first.text  # warm-up: model loaded
            before = rss_mib(server.process.pid)
            latencies, failures, lock = [], [], threading.Lock()

            def one(i):
                start = time.perf_counter()
                r = requests.post(f"{server.url}/infer/bac", params={"image": ids[i % len(ids)]}, timeout=300)
                with lock:
                    (latencies if r.status_code == 200 else failures).append(
                        time.perf_counter() - start if r.status_code == 200 else (r.status_code, r.text[:200]))

            wall = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                list(pool.map(one, range(args.requests)))
            wall = time.perf_counter() - wall
            after = rss_mib(server.process.pid)
        finally:
            stop_server(server)
        lat = sorted(latencies)
        p95 = lat[max(0, int(round(0.95 * len(lat))) - 1)] if lat else float("nan")
        print(f"machine: {machine()}")
        print(f"{len(latencies)}/{args.requests} infers OK at concurrency {args.concurrency} "
              f"({len(failures)} failed{': ' + str(failures[:3]) if failures else ''})")
        if lat:
            print(f"latency median {statistics.median(lat):.2f} s, p95 {p95:.2f} s, max {lat[-1]:.2f} s; "
                  f"wall {wall:.1f} s = {len(lat) / wall:.1f} requests/s")
        print(f"server RSS (process tree) {before:.0f} MiB after warm-up, {after:.0f} MiB after the run "
              f"({after - before:+.0f} MiB)")
        return 0 if not failures else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())

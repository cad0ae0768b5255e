"""Shared set-up for the benchmark scripts: pin the thread count before numpy/torch start."""

from __future__ import annotations

import os
import platform
import statistics
import time


def limit_threads(n: int) -> None:
    """Run numpy/scipy/torch on ``n`` threads (call before heavy imports where possible)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        pass
    import torch

    torch.set_num_threads(n)


def timeit(fn, repeat: int = 5, warmup: int = 1) -> tuple[float, float]:
    """Median and minimum wall time of ``fn()`` in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    load = f" (load {os.getloadavg()[0]:.2f})" if hasattr(os, "getloadavg") else ""
    return f"{cpu}, {os.cpu_count()} cores{load}, {gpu}, torch {torch.__version__}"


def baseline_tree(repo, baseline: str, tmp):
    """(folder of the baseline source tree, the worktree made for it or None): ``baseline`` is a
    folder holding an older checkout, or a git revision of ``repo`` checked out into ``tmp``."""
    import subprocess
    from pathlib import Path

    if Path(baseline).is_dir():
        return Path(baseline).resolve(), None
    worktree = Path(tmp) / "baseline_tree"
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", "--detach", str(worktree), baseline], check=True)
    return worktree, worktree


def remove_worktree(repo, worktree) -> None:
    """Remove a worktree made by :func:`baseline_tree` (None: nothing to do)."""
    import subprocess

    if worktree is not None:
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(worktree)], check=False)


def source_tree() -> str:
    """The tree whose monai_bac runs: its path, commit, and whether it has local changes."""
    import subprocess
    from pathlib import Path

    import monai_bac

    root = Path(monai_bac.__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                "monai_bac"], capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(root)
    return f"{root} @ {rev}{' + local changes in monai_bac/' if dirty else ''}"

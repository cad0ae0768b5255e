"""A small on-disk cache of numpy arrays, for results that cost a process seconds to compute and
depend only on their inputs and a library's version (SpekPy's tube spectra: importing SpekPy and
computing one spectrum is ~0.9 s, paid by the first image of every process otherwise).

Where: ``$MONAI_BAC_CACHE_DIR`` when set (an empty value switches the disk cache off), else
``$XDG_CACHE_HOME/monai-bac``, else ``~/.cache/monai-bac``. Each entry is one ``.npz`` file named
by a hash of its key; the key itself is stored in the file and compared on reading. Files are
written to a temporary name in the same folder and renamed into place (``os.replace``), so a
reader never sees half a file and concurrent writers of the same entry are harmless. Anything
that goes wrong - an unwritable folder, a truncated or foreign file, a key that does not match -
counts as a miss: the caller computes the result as if there were no cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["CACHE_ENV", "cache_dir", "load_arrays", "store_arrays"]

#: environment variable naming the cache folder ("" switches the disk cache off)
CACHE_ENV = "MONAI_BAC_CACHE_DIR"


def cache_dir() -> Path | None:
    """The cache folder (not created here), or None when ``$MONAI_BAC_CACHE_DIR`` is set empty."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return Path(value).expanduser() if value.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "monai-bac"


def _entry(kind: str, key: dict) -> tuple[Path | None, str]:
    text = json.dumps({"kind": kind, **key}, sort_keys=True)
    folder = cache_dir()
    if folder is None:
        return None, text
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    return folder / f"{kind}-{digest}.npz", text


def load_arrays(kind: str, key: dict, names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The arrays ``names`` stored for (``kind``, ``key``), or None (no entry, cache off, or an
    unreadable / mismatching file)."""
    path, text = _entry(kind, key)
    if path is None:
        return None
    try:  # (is_file raises on a folder it may not search, which is a miss too)
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != text:
                return None
            return {n: np.array(z[n]) for n in names}
    except (OSError, ValueError, KeyError, EOFError):
        return None


def store_arrays(kind: str, key: dict, arrays: dict[str, np.ndarray]) -> Path | None:
    """Store ``arrays`` for (``kind``, ``key``); the file's path, or None when the cache is off or
    the folder cannot be written (never raises for that)."""
    path, text = _entry(kind, key)
    if path is None:
        return None
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".npz", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, key=np.array(text), **arrays)
        os.replace(tmp, path)
        return path
    except OSError:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        return None

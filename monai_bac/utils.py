"""Small file-system helpers shared by the writers of monai-bac.

The project never overwrites a user's data silently and never leaves a half-written file
behind (docs/ARCHITECTURE.md, "Conventions"). Writers therefore write to a temporary file in the
destination folder and move it onto the final name in one step (``os.replace`` or ``os.link``,
both atomic on POSIX file systems when source and destination share a folder).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write_path", "ensure_new_file", "full_suffix", "jsonable", "temp_file_target", "write_json"]

PathLike = str | os.PathLike


def full_suffix(path: PathLike) -> str:
    """Return every suffix of ``path``'s name, e.g. ``".nii.gz"`` for ``"mask.nii.gz"``.

    Writers such as nibabel choose the format (and compression) from the whole suffix, so a
    temporary file must keep all of it, not only the last part.
    """
    return "".join(Path(path).suffixes)


def ensure_new_file(path: PathLike, overwrite: bool = False) -> Path:
    """Check that ``path`` may be written.

    Args:
        path: destination file.
        overwrite: when True an existing file may be replaced and no check is made.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if not overwrite and (path.exists() or path.is_symlink()):
        raise FileExistsError(
            f"{path}: file already exists; refusing to overwrite it. Choose a new file name or pass overwrite=True."
        )
    return path


#: the hidden name :func:`atomic_write_path` writes to first: ``.<stem>.tmp-<12 hex><suffixes>``
_TEMP_NAME = re.compile(r"\.(?P<stem>.+?)\.tmp-[0-9a-f]{12}(?P<suffix>(?:\.[^.]+)*)")


def temp_file_target(name: str) -> str | None:
    """The file name that :func:`atomic_write_path`'s temporary file ``name`` was to become, or
    None when ``name`` is not such a file (to clean up after a run that was killed mid-write)."""
    m = _TEMP_NAME.fullmatch(name)
    return None if m is None else m["stem"] + m["suffix"]


def _make_temp_file(path: Path) -> Path:
    """Create an empty, uniquely named file next to ``path`` that keeps its suffixes.

    The file is created with mode 0o666 minus the process umask (unlike ``tempfile.mkstemp``,
    which uses 0o600), so the final file gets the permissions a plain ``open()`` would give it.
    """
    suffix = full_suffix(path)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    for _ in range(100):
        candidate = path.with_name(f".{stem}.tmp-{secrets.token_hex(6)}{suffix}")
        try:
            fd = os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise FileExistsError(f"{path}: could not create a temporary file next to it")  # pragma: no cover


def _publish_new(tmp: Path, path: Path) -> None:
    """Move ``tmp`` onto ``path`` only if ``path`` does not exist (atomic via a hard link)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path}: file appeared while it was being written; refusing to overwrite it.") from None
    except OSError:
        # file systems without hard links: check, then rename (a tiny race window remains)
        ensure_new_file(path)
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_write_path(path: PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Context manager giving a temporary path to write to instead of ``path``.

    The temporary file lies in the same folder as ``path`` and has the same suffixes (a
    ``.nii.gz`` destination gives a ``.nii.gz`` temporary file, so writers that pick the format
    by name still work). It exists (empty) when the block starts. When the block ends without
    an exception the temporary file is moved onto ``path`` in one atomic step; when the block
    raises, the temporary file is removed and ``path`` is left untouched.

    Args:
        path: the final destination.
        overwrite: when False, raise :class:`FileExistsError` if ``path`` exists, both before
            writing and at the moment of the final move (which then cannot replace a file that
            appeared in the meantime).

    Example::

        with atomic_write_path("out/mask.nii.gz", overwrite=False) as tmp:
            nibabel.save(img, tmp)
    """
    path = Path(path)
    ensure_new_file(path, overwrite)
    tmp = _make_temp_file(path)
    try:
        yield tmp
        if overwrite:
            os.replace(tmp, path)
        else:
            _publish_new(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def jsonable(o):
    """``o`` with numpy scalars as Python numbers, non-finite floats as None, tuples as lists and
    anything else unknown as its ``str``: what ``json.dumps`` can write and every reader can parse."""
    import math

    import numpy as np

    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return jsonable(o.tolist())
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, (np.integer, int)):
        return int(o)
    if isinstance(o, (np.floating, float)):
        return float(o) if math.isfinite(float(o)) else None
    if isinstance(o, str) or o is None:
        return o
    return str(o)


def write_json(path: PathLike, obj, *, overwrite: bool = True, indent: int = 1) -> Path:
    """Write :func:`jsonable` ``obj`` as JSON at ``path``, atomically (creates the folder)."""
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write_path(path, overwrite=overwrite) as tmp:
        Path(tmp).write_text(json.dumps(jsonable(obj), indent=indent) + "\n")
    return path

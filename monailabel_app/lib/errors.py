"""HTTP errors with a clear message (JSON ``{"detail": ...}``, never a stack trace).

MONAI Label's endpoints call the app synchronously, so an :class:`fastapi.HTTPException`
raised in the app, its datastore or its tasks reaches the client as that status code and
message. In the background processes MONAI Label starts for training and scoring the same
exception simply fails the task with its message in the task log.
"""

from __future__ import annotations

import os
import re
import tempfile

from fastapi import HTTPException

__all__ = ["AppError", "bad_request", "not_found", "conflict", "unsupported", "unprocessable", "unavailable",
           "internal", "root_cause", "scrub"]


class AppError(HTTPException):
    """An HTTP error of the monai-bac app: ``status`` and a message meant for the annotator."""

    def __init__(self, status: int, message: str):
        super().__init__(status_code=int(status), detail=str(message))

    def __str__(self) -> str:  # readable in logs and in background-task output
        return f"HTTP {self.status_code}: {self.detail}"


def bad_request(message: str) -> AppError:
    return AppError(400, message)


def not_found(message: str) -> AppError:
    return AppError(404, message)


def conflict(message: str) -> AppError:
    return AppError(409, message)


def unsupported(message: str) -> AppError:
    return AppError(415, message)


def unprocessable(message: str) -> AppError:
    return AppError(422, message)


def unavailable(message: str) -> AppError:
    return AppError(503, message)


def internal(message: str) -> AppError:
    return AppError(500, message)


def root_cause(exc: BaseException) -> BaseException:
    """The exception that says what went wrong: MONAI's ``Compose`` wraps a transform's error in
    ``RuntimeError("applying transform ...")`` (possibly several times); those wrappers are skipped."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        nxt = exc.__cause__ or exc.__context__
        if nxt is None or not (type(exc) is RuntimeError and str(exc).startswith("applying transform")):
            break
        exc = nxt
    return exc


def scrub(message: str, *folders: str | None) -> str:
    """``message`` with the server's folders (studies, bundle, temp) replaced by short names."""
    out = str(message)
    names = {"studies": None, "bundle": None, "tmp": tempfile.gettempdir()}
    for folder, name in zip(folders, ("studies", "bundle")):
        names[name] = folder
    for name, folder in names.items():
        if folder:
            for variant in sorted({os.path.realpath(folder), os.path.abspath(folder)}, key=len, reverse=True):
                variant = variant.rstrip(os.sep)
                if variant:
                    out = re.sub(re.escape(variant) + r"(?=/|\b|$)", f"<{name}>", out)
    return out

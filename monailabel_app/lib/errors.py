"""HTTP errors with a clear message (JSON ``{"detail": ...}``, never a stack trace).

MONAI Label's endpoints call the app synchronously, so an :class:`fastapi.HTTPException`
raised in the app, its datastore or its tasks reaches the client as that status code and
message. In the background processes MONAI Label starts for training and scoring the same
exception simply fails the task with its message in the task log.

:func:`install_exception_handlers` makes every other failure JSON too: MONAI Label's own
exceptions (unknown image or label: 404), malformed JSON form fields (400) and any unexpected
error (500, a fixed message; the traceback goes to the server log only). Messages never
contain the server's folders (:func:`scrub`).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from typing import Callable

from fastapi import HTTPException
from fastapi.responses import JSONResponse

__all__ = ["AppError", "NotServed", "bad_request", "forbidden", "not_found", "conflict", "too_large", "unsupported",
           "unprocessable", "unavailable", "internal", "root_cause", "scrub", "scrub_folders", "folder_scrubber",
           "install_exception_handlers"]


class AppError(HTTPException):
    """An HTTP error of the monai-bac app: ``status`` and a message meant for the annotator."""

    def __init__(self, status: int, message: str):
        super().__init__(status_code=int(status), detail=str(message))

    def __str__(self) -> str:  # readable in logs and in background-task output
        return f"HTTP {self.status_code}: {self.detail}"


class NotServed(AppError):
    """404 for an image the datastore holds but does not serve (not a raw screening view), found out
    only when its whole header was read: a request that picked it may pick another."""

    def __init__(self, message: str):
        super().__init__(404, message)


def bad_request(message: str) -> AppError:
    return AppError(400, message)


def forbidden(message: str) -> AppError:
    return AppError(403, message)


def not_found(message: str) -> AppError:
    return AppError(404, message)


def conflict(message: str) -> AppError:
    return AppError(409, message)


def too_large(message: str) -> AppError:
    return AppError(413, message)


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
    names: dict[str, str | None] = {"studies": None, "bundle": None}
    for folder, name in zip(folders, ("studies", "bundle")):
        names[name] = folder
    return scrub_folders(message, names)


def _folder_pattern(named: dict[str, str | None]) -> tuple[re.Pattern | None, dict[str, str]]:
    variants: dict[str, str] = {}
    for name, folder in {**named, "tmp": tempfile.gettempdir()}.items():
        if folder and not str(folder).startswith(("http://", "https://")):
            for variant in (os.path.realpath(folder), os.path.abspath(folder)):
                variant = variant.rstrip(os.sep)
                if variant and variant not in variants:
                    variants[variant] = f"<{name}>"
    if not variants:
        return None, variants
    # longest first, so a studies folder inside the temp folder is named <studies>, not <tmp>/...
    alternatives = "|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True))
    return re.compile(f"(?:{alternatives})(?=/|\\b|$)"), variants


def folder_scrubber(named: dict[str, str | None]) -> Callable[[str], str]:
    """A function replacing each folder of ``named`` (name -> path) and the temp folder by ``<name>``."""
    pattern, variants = _folder_pattern(named)
    if pattern is None:
        return str
    return lambda message: pattern.sub(lambda m: variants[m.group(0)], str(message))


def scrub_folders(message: str, named: dict[str, str | None]) -> str:
    """``message`` with each folder of ``named`` (name -> path) and the temp folder replaced by ``<name>``."""
    return folder_scrubber(named)(message)


#: MONAI Label 0.8.5 answers these request mistakes with HTTP 500; they are the client's (400)
CLIENT_ERRORS_SENT_AS_500 = {
    "Neither Image nor File not Session ID input is provided": 400,
    "DICOM SEG format is not supported in a non-DICOM datastore": 400,
}


def install_exception_handlers(app, clean: Callable[[str], str] = str) -> None:
    """Make every error of the FastAPI ``app`` a JSON ``{"detail": ...}`` whose text went through ``clean``.

    Starlette builds its middleware stack (which holds the handlers) on the first request; when
    the app has already served one, the caller must reset ``app.middleware_stack`` to ``None``.
    """
    from fastapi.exception_handlers import request_validation_exception_handler
    from fastapi.exceptions import RequestValidationError
    from monailabel.interfaces.exception import ImageNotFoundException, LabelNotFoundException, MONAILabelException
    from starlette.exceptions import HTTPException as StarletteHTTPException

    def reply(status: int, detail, headers=None) -> JSONResponse:
        return JSONResponse({"detail": clean(detail) if isinstance(detail, str) else detail},
                            status_code=status, headers=headers)

    async def http_error(request, exc: StarletteHTTPException):
        status = CLIENT_ERRORS_SENT_AS_500.get(exc.detail, exc.status_code) if exc.status_code == 500 else None
        return reply(status or exc.status_code, exc.detail, getattr(exc, "headers", None))

    async def invalid_request(request, exc: RequestValidationError):  # FastAPI's 422, with folders scrubbed
        response = await request_validation_exception_handler(request, exc)
        return JSONResponse(json.loads(clean(response.body.decode())), status_code=response.status_code)

    async def bad_json(request, exc: json.JSONDecodeError):
        return reply(400, f"a form field (params / info) is not valid JSON: {exc.msg} at character {exc.pos}")

    async def monailabel_error(request, exc: MONAILabelException):
        message = str(getattr(exc, "msg", "") or type(exc).__name__)
        if isinstance(exc, (ImageNotFoundException, LabelNotFoundException)):
            return reply(404, f"{message}; GET /datastore/?output=all lists the images and their label tags")
        return reply(500, f"{getattr(getattr(exc, 'error', None), 'value', 'APP_ERROR')}: {message}")

    async def unexpected(request, exc: Exception):  # Starlette logs the traceback after this answer
        return reply(500, "internal server error; the details are in the server log")

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(json.JSONDecodeError, bad_json)
    for cls in (MONAILabelException, ImageNotFoundException, LabelNotFoundException):
        app.add_exception_handler(cls, monailabel_error)
    app.add_exception_handler(Exception, unexpected)

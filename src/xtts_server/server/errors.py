"""The one place where errors become HTTP responses.

Domain errors are raised anywhere inside; this table gives each its status code and error code,
and every error body has the same shape: {"error": {"code": ..., "message": ...}}.
"""

from __future__ import annotations

import logging

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from xtts_server.errors import (
    Cancelled,
    InvalidAudio,
    InvalidRequest,
    InvalidText,
    MissingExtra,
    ModelLoadError,
    UnsupportedLanguage,
    VoiceNotFound,
    XTTSError,
)
from xtts_server.server import metrics
from xtts_server.voices.errors import VoiceExists, VoiceReadOnly, VoiceStorageError

logger = logging.getLogger(__name__)


class PayloadTooLarge(InvalidRequest):
    """Text or an upload beyond the server's limits."""


class NotReady(XTTSError):
    """The model is still loading or warming up."""


class Overloaded(XTTSError):
    """Every synthesis slot and queue place is taken."""


class ShuttingDown(Overloaded):
    """The server is draining after SIGTERM: running work finishes, new work goes elsewhere."""


class TooManyStreams(XTTSError):
    """One API key already has as many syntheses running as it may."""


class RequestTimeout(XTTSError):
    """A synthesis took longer than the server's per-request limit."""


class Unauthorized(XTTSError):
    """No API key, or one the server does not know."""


OUT_OF_MEMORY = "the GPU ran out of memory for this request; retry shortly, or send shorter text"


# Most specific first: the first matching class wins.
ERROR_TABLE: tuple[tuple[type[BaseException], int, str], ...] = (
    (PayloadTooLarge, 413, "payload_too_large"),
    (InvalidAudio, 415, "invalid_audio"),
    (VoiceNotFound, 404, "voice_not_found"),
    (VoiceExists, 409, "voice_exists"),
    (VoiceReadOnly, 403, "voice_read_only"),
    (UnsupportedLanguage, 400, "unsupported_language"),
    (InvalidText, 400, "invalid_text"),
    (InvalidRequest, 400, "invalid_request"),
    (MissingExtra, 501, "language_not_installed"),
    (Unauthorized, 401, "unauthorized"),
    (TooManyStreams, 429, "too_many_streams"),
    (NotReady, 503, "not_ready"),
    (ShuttingDown, 503, "shutting_down"),
    (Overloaded, 503, "overloaded"),
    # One request's allocation failed; the next may fit (the engine frees what the request held).
    (torch.OutOfMemoryError, 503, "out_of_memory"),
    (RequestTimeout, 504, "timeout"),
    (Cancelled, 499, "cancelled"),
    (VoiceStorageError, 500, "voice_storage_error"),
    (ModelLoadError, 500, "model_error"),
    (XTTSError, 500, "internal_error"),
)


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    metrics.count_error(code)
    return {"error": {"code": code, "message": message}}


def classify(error: BaseException) -> tuple[int, str]:
    for cls, status, code in ERROR_TABLE:
        if isinstance(error, cls):
            return status, code
    return 500, "internal_error"


def public_message(error: BaseException) -> str:
    """What the client is told: our own errors' messages; nothing of a bug's."""
    if isinstance(error, XTTSError):
        return str(error)
    if isinstance(error, torch.OutOfMemoryError):
        return OUT_OF_MEMORY
    return "internal server error"


def error_response(error: BaseException, retry_after_s: int = 2) -> JSONResponse:
    status, code = classify(error)
    headers = {"Retry-After": str(retry_after_s)} if status in (429, 503) else None
    return JSONResponse(error_body(code, public_message(error)), status_code=status, headers=headers)


def install(app: FastAPI, retry_after_s: int) -> None:
    async def domain(_: Request, exc: Exception) -> JSONResponse:
        status, code = classify(exc)
        if code == "out_of_memory":
            logger.error("request failed: %s", exc)
        elif status >= 500 and status not in (503, 504):
            logger.error("request failed: %s", exc, exc_info=exc)
        return error_response(exc, retry_after_s)

    async def validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg")))
        body = error_body("validation_error", "; ".join(problems) or "invalid request")
        return JSONResponse(body, status_code=422)

    async def http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        codes = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}
        code = codes.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error: %s", exc, exc_info=exc)
        return JSONResponse(error_body("internal_error", "internal server error"), status_code=500)

    app.add_exception_handler(XTTSError, domain)
    app.add_exception_handler(torch.OutOfMemoryError, domain)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http)
    app.add_exception_handler(Exception, unexpected)

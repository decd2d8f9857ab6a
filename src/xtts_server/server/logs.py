"""Logging for the server: every record carries the id of the request it was written for.

The id comes from the client's `X-Request-ID` header (when it is a sane token) or is made here, is
sent back in the response's `X-Request-ID`, and is attached to each log record as `request_id`
("-" outside a request) by a record factory, so that it reaches every handler. `--log-format json`
writes one JSON object a line. Request text is never logged unless `--log-text` is on.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any

request_id_var: ContextVar[str] = ContextVar("xtts_request_id", default="-")

_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}")
_installed = False


def new_request_id(offered: bytes | None) -> str:
    """The client's id when it is 1-128 printable token characters, else a fresh one."""
    if offered:
        try:
            text = offered.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        if _REQUEST_ID.fullmatch(text):
            return text
    return uuid.uuid4().hex


class _RequestId:
    """`record.request_id`: the id of the request the record was made in. Kept out of the record's
    own attributes (a non-data descriptor) so that a caller's `extra={"request_id": ...}` (Ray Serve's
    replicas log with one) still works instead of making logging raise "Attempt to overwrite"; the
    handlers' RequestIdFilter puts it in for %-style formats."""

    def __get__(self, record: logging.LogRecord | None, owner: type | None = None) -> Any:
        return self if record is None else record.__dict__.get("xtts_request_id", "-")


def install_request_ids() -> None:
    """Give every log record a `request_id` attribute (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.xtts_request_id = request_id_var.get()
        return record

    logging.LogRecord.request_id = _RequestId()  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
    _installed = True


class RequestIdFilter(logging.Filter):
    """Puts `request_id` among the record's attributes, where %(request_id)s formats look."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.setdefault("request_id", record.request_id)  # type: ignore[attr-defined]
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, request_id, message (and the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        for key in ("method", "route", "path", "status", "seconds", "caller", "client"):
            if key in record.__dict__:
                out[key] = record.__dict__[key]
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


def log_config(level: str, fmt: str) -> dict[str, Any]:
    """A logging.dictConfig for the server and uvicorn: one stderr handler, our format, request ids."""
    install_request_ids()
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if fmt == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            # uvicorn's own handlers would write without request ids: theirs go to the root's.
            "uvicorn": {"handlers": [], "level": level.upper(), "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level.upper(), "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": True},
        },
    }

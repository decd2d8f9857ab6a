"""The outermost middleware: a request id for every request, one access-log line, HTTP metrics.

The id (client's sane `X-Request-ID`, or a new one) is set for the whole request, so every log
record written for it carries it (logs.py), and is sent back as `X-Request-ID` (also on the
WebSocket handshake). The access line gives method, route, status, seconds and the caller's key id;
never a key, never the body.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xtts_server.server import metrics
from xtts_server.server.logs import new_request_id, request_id_var

logger = logging.getLogger("xtts_server.access")

_HEADER = b"x-request-id"
_PROBES = frozenset({"/health", "/ready", "/metrics"})


def _route(scope: Scope) -> str:
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else "unmatched"


def _printable(text: str, limit: int = 200) -> str:
    """A path as it may be logged: escapes instead of control characters, cut to `limit`."""
    shown = text.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        offered = next((v for k, v in scope.get("headers") or () if k == _HEADER), None)
        request_id = new_request_id(offered)
        request_id_var.set(request_id)
        started = time.monotonic()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] in ("http.response.start", "websocket.accept"):
                status = message.get("status", 101)
                message = {
                    **message,
                    "headers": [*message.get("headers", ()), (_HEADER, request_id.encode())],
                }
            elif message["type"] == "websocket.close" and not status:
                status = 403  # closed before the handshake completed: the client gets a 403
            await send(message)

        if kind == "websocket":
            metrics.WEBSOCKET_SESSIONS.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            status = status or 500
            raise
        finally:
            if kind == "websocket":
                metrics.WEBSOCKET_SESSIONS.dec()
            seconds = time.monotonic() - started
            route = _route(scope)
            method = scope.get("method", "WEBSOCKET")
            metrics.HTTP_REQUESTS.labels(route, method, str(status)).inc()
            if kind == "http":
                metrics.HTTP_SECONDS.labels(route).observe(seconds)
            caller = (scope.get("state") or {}).get("caller") or "-"
            path = _printable(scope.get("path", ""))
            client = scope.get("client")
            # Probes and scrapes arrive every few seconds: logged only at debug level unless they fail.
            quiet = route in _PROBES and status < 400
            logger.log(
                logging.DEBUG if quiet else logging.INFO,
                "%s %s %s %.3fs caller=%s",
                method,
                path,
                status,
                seconds,
                caller,
                extra={
                    "method": method,
                    "route": route,
                    "path": path,
                    "status": status,
                    "seconds": round(seconds, 4),
                    "caller": caller,
                    "client": f"{client[0]}:{client[1]}" if client else None,
                },
            )

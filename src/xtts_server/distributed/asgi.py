"""ASGI pieces a replica wraps around the unchanged app: its name on every response, a start-up
that waits for the model, and /ready asked in-process (Ray's health check)."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REPLICA_HEADER = "x-replica"


class ReplicaHeader:
    """Names the replica on every HTTP response and WebSocket accept (`X-Replica`)."""

    def __init__(self, app: ASGIApp, replica: str) -> None:
        self.app = app
        self.header = (REPLICA_HEADER.encode("latin-1"), replica.encode("latin-1"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def named(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, named)


class ReadyGate:
    """Lifespan start-up completes only once the app's background start (model load, voices, warm-up)
    has finished and /ready says yes, and fails with /ready's reason otherwise (the app is then shut
    down at once): Ray routes nothing to a replica that cannot serve, and retries one whose model
    failed to load."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        app = scope["app"]  # Starlette puts itself in every scope
        failed = False

        async def gated_receive() -> Message:
            if failed:  # start-up refused: shut the app down now (nobody else will ask)
                return {"type": "lifespan.shutdown"}
            return await receive()

        async def gated_send(message: Message) -> None:
            nonlocal failed
            if message["type"] == "lifespan.startup.complete":
                await app.state.starting  # create_app's lifespan: the background start-up task
                problem = await not_ready(app)
                if problem is not None:
                    failed = True
                    message = {"type": "lifespan.startup.failed", "message": problem}
            elif failed and message["type"] == "lifespan.shutdown.complete":
                return
            await send(message)

        await self.app(scope, gated_receive, gated_send)


async def not_ready(app: ASGIApp) -> str | None:
    """None if GET /ready answers 200, else why not (its error message)."""
    status, body = await asgi_get(app, "/ready")
    if status == 200:
        return None
    try:
        return str(json.loads(body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"/ready answered {status}: {body[:200]!r}"


async def asgi_get(app: ASGIApp, path: str) -> tuple[int, bytes]:
    """GET `path` from an ASGI app in this process (no socket): (status, body)."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"replica")],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
    }
    requested = False
    status = 0
    body: list[bytes] = []

    async def receive() -> Message:
        nonlocal requested
        if requested:
            return {"type": "http.disconnect"}
        requested = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(body)

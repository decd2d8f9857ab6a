"""Refuse oversized and never-ending request bodies before the app reads them whole.

- A `Content-Length` over the limit: 413 before any of the body is read.
- A body sent without a length (chunked) is counted as it arrives: 413 as soon as it passes the limit.
- A body still arriving `body_timeout_s` after the request began: 408 (a slow or stalled upload).

In the last two cases the app has already started reading: it is told the client went away (so it
stops), its own answer is dropped, and the connection is closed after ours. Uploads are also
counted by the route while it reads them (routes/voices.py).
"""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xtts_server.server.errors import error_body

logger = logging.getLogger(__name__)


class BodyLimit:
    SLACK = 64 * 1024  # multipart framing and the other JSON fields
    # Coqui bodies carry a voice by value: 32 x 1024 + 512 numbers, ~0.9 MB as float32 reprs.
    LATENTS = 4 << 20
    UPLOAD_PATHS = ("/v1/voices", "/clone_speaker")
    LATENT_PATHS = ("/tts", "/tts_stream")

    def __init__(
        self, app: ASGIApp, *, upload_limit: int, json_limit: int, body_timeout_s: float = 60.0
    ) -> None:
        self.app = app
        self.upload_limit = upload_limit  # voice uploads: bytes of all clips
        self.json_limit = json_limit  # every other body
        self.body_timeout_s = body_timeout_s

    def limit(self, path: str) -> tuple[int, str]:
        is_upload = path.startswith(self.UPLOAD_PATHS)
        limit = self.upload_limit if is_upload else self.json_limit
        if path in self.LATENT_PATHS:
            limit += self.LATENTS
        return limit, "the clips exceed" if is_upload else "the request body exceeds"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, what = self.limit(scope.get("path", ""))
        too_large = f"{what} this server's limit of {limit} bytes"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit + self.SLACK:
            await _refuse(send, 413, "payload_too_large", too_large)
            return

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout_s
        received = 0
        body_done = False
        app_started = False
        refused = False

        async def refuse(status: int, code: str, message: str) -> Message:
            nonlocal refused
            refused = True
            if not app_started:
                logger.warning("request body refused: %s", message)
                await _refuse(send, status, code, message)
            return {"type": "http.disconnect"}

        async def receive_limited() -> Message:
            nonlocal received, body_done
            if refused:
                return {"type": "http.disconnect"}
            if body_done:  # listening for a disconnect while the response streams: no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
            except asyncio.TimeoutError:
                seconds = f"{self.body_timeout_s:g}"
                return await refuse(
                    408, "request_timeout", f"the request body did not arrive within {seconds} s"
                )
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit + self.SLACK:
                    return await refuse(413, "payload_too_large", too_large)
                body_done = not message.get("more_body", False)
            return message

        async def send_unless_refused(message: Message) -> None:
            nonlocal app_started
            if refused:
                return  # we have answered; the app's answer to a body it never got is dropped
            if message["type"] == "http.response.start":
                app_started = True
            await send(message)

        try:
            await self.app(scope, receive_limited, send_unless_refused)
        except Exception:
            if not refused:
                raise
            # The app failed on the body we cut short (ClientDisconnect and the like): answered.


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

"""Refuse oversized request bodies from their Content-Length, before any of the body is read.

Uploads are also counted while they are read (routes/voices.py), which covers bodies sent without a
length; this middleware saves the server from receiving a body it will refuse anyway.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from xtts_server.server.errors import error_body


class BodyLimit:
    SLACK = 64 * 1024  # multipart framing and the other JSON fields
    # Coqui bodies carry a voice by value: 32 x 1024 + 512 numbers, ~0.9 MB as float32 reprs.
    LATENTS = 4 << 20
    UPLOAD_PATHS = ("/v1/voices", "/clone_speaker")
    LATENT_PATHS = ("/tts", "/tts_stream")

    def __init__(self, app: ASGIApp, *, upload_limit: int, json_limit: int) -> None:
        self.app = app
        self.upload_limit = upload_limit  # voice uploads: bytes of all clips
        self.json_limit = json_limit  # every other body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope.get("headers") or []).get(b"content-length")
            if length is not None and length.isdigit():
                path = scope.get("path", "")
                is_upload = path.startswith(self.UPLOAD_PATHS)
                limit = self.upload_limit if is_upload else self.json_limit
                if path in self.LATENT_PATHS:
                    limit += self.LATENTS
                if int(length) > limit + self.SLACK:
                    what = "the clips" if is_upload else "the request body"
                    message = f"{what} exceed this server's limit of {limit} bytes"
                    body = json.dumps(error_body("payload_too_large", message)).encode()
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 413,
                            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)

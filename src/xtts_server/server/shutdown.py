"""Running the app under uvicorn with a graceful stop.

On SIGTERM (or Ctrl-C): the server stops accepting connections and /ready answers 503, new
syntheses are refused (503 shutting_down, so a load balancer retries elsewhere), running streams
(HTTP and WebSocket sentences) go on for up to `shutdown_timeout_s`; whatever is still running then
is cancelled (its generation stops), and the process exits. Uvicorn re-raises the signal at the end,
so the exit status says "terminated by SIGTERM", which service managers count as a clean stop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import time
from types import FrameType

import uvicorn
from fastapi import FastAPI

from xtts_server.server.limits import StreamGuard
from xtts_server.server.logs import log_config
from xtts_server.server.settings import Settings

logger = logging.getLogger(__name__)


class GracefulServer(uvicorn.Server):
    """uvicorn's Server, draining our streams before its own shutdown (which would close
    WebSockets at once and wait without limit for a slow reader)."""

    def __init__(self, config: uvicorn.Config, guard: StreamGuard, timeout_s: float) -> None:
        super().__init__(config)
        self.guard = guard
        self.timeout_s = timeout_s

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.guard.draining = True  # from here on new syntheses are refused
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.guard.draining = True
        for server in self.servers:
            server.close()  # stop accepting before waiting
        deadline = time.monotonic() + self.timeout_s
        if self.guard.active:
            logger.info(
                "draining: %d streams running; waiting up to %.0f s for them",
                self.guard.active,
                self.timeout_s,
            )
        while self.guard.active and time.monotonic() < deadline and not self.force_exit:
            await asyncio.sleep(0.05)
        left = max(deadline - time.monotonic(), 0.0)
        if self.guard.active:
            logger.warning("shutdown timeout: cancelling %d streams still running", self.guard.active)
        # uvicorn then waits for the remaining connections for what is left of the timeout, then
        # cancels their tasks (a cancelled stream stops its generation) and runs the lifespan end.
        self.config.timeout_graceful_shutdown = math.ceil(left)
        await super().shutdown(sockets)


def serve(app: FastAPI, settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; 0, or 3 when the server could not start (e.g. the port is taken)."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=log_config(settings.log_level, settings.log_format),
        log_level=settings.log_level,
        access_log=False,  # ours (access.py) carries request ids
        ws_max_size=settings.ws_max_message_bytes,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout_s),
        lifespan="on",
    )
    server = GracefulServer(config, app.state.guard, settings.shutdown_timeout_s)
    server.run()
    return 0 if server.started else 3

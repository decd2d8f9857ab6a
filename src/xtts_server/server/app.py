"""The FastAPI application: create_app() wires settings, state, routes and the error table."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from xtts_server import __version__
from xtts_server.server import errors
from xtts_server.server.body_limit import BodyLimit
from xtts_server.server.routes import coqui, health, openai, tts, voices, ws
from xtts_server.server.settings import Settings
from xtts_server.server.state import ServerState
from xtts_server.tts import XTTS

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, tts_model: XTTS | None = None) -> FastAPI:
    """The app. Start-up loads (or takes `tts_model`) and warms the model in the background:
    /health answers at once, /ready and the speech routes once the model is ready."""
    settings = settings or Settings()
    state = ServerState(settings, tts_model)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        starting = asyncio.create_task(state.start())
        app.state.starting = starting
        try:
            yield
        finally:
            starting.cancel()
            state.shutdown()

    app = FastAPI(
        title="xtts-server",
        version=__version__,
        description="Fast, dependable XTTS v2 text to speech for voice agents.",
        lifespan=lifespan,
    )
    app.state.server = state
    errors.install(app, settings.retry_after_s)
    # JSON: the longest text, every character escaped (\uXXXX), plus the other fields.
    app.add_middleware(
        BodyLimit, upload_limit=settings.max_upload_bytes, json_limit=6 * settings.max_text_chars
    )
    app.include_router(health.router)
    app.include_router(tts.router)
    app.include_router(voices.router)
    app.include_router(coqui.router)
    app.include_router(openai.router)
    app.include_router(ws.router)
    return app

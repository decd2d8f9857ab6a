"""The FastAPI application: create_app() wires settings, state, routes and the error table."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from xtts_server import __version__
from xtts_server.server import errors, limits, metrics
from xtts_server.server.access import RequestContext
from xtts_server.server.auth import AuthMiddleware, KeyRing, check_exposure, load_keys
from xtts_server.server.body_limit import BodyLimit
from xtts_server.server.logs import install_request_ids
from xtts_server.server.routes import coqui, health, openai, tts, voices, ws
from xtts_server.server.settings import Settings
from xtts_server.server.state import ServerState
from xtts_server.tts import XTTS

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, tts_model: XTTS | None = None) -> FastAPI:
    """The app. Start-up loads (or takes `tts_model`) and warms the model in the background:
    /health answers at once, /ready and the speech routes once the model is ready.
    Raises InsecureConfig for an open server on a non-loopback address without --no-auth."""
    settings = settings or Settings()
    keys = load_keys(settings)
    check_exposure(settings, keys)
    install_request_ids()
    state = ServerState(settings, tts_model)
    guard = limits.StreamGuard(settings, per_key=bool(keys))
    limits.attach(state, guard)
    _report_load(state)

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
    app.state.guard = guard
    app.state.keyring = KeyRing(keys) if keys else None
    errors.install(app, settings.retry_after_s)
    # Innermost first: each add_middleware wraps the ones before it.
    # JSON: the longest text, every character escaped (\uXXXX), plus the other fields.
    app.add_middleware(
        BodyLimit,
        upload_limit=settings.max_upload_bytes,
        json_limit=6 * settings.max_text_chars,
        body_timeout_s=settings.body_timeout_s,
    )
    app.add_middleware(limits.RequestDeadline, timeout_s=settings.request_timeout_s)
    app.add_middleware(AuthMiddleware, keyring=app.state.keyring)
    if settings.cors_origins:  # outside auth: preflights carry no key, and 401s need CORS headers
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "X-Language", "X-Sample-Rate", "Retry-After"],
        )
    app.add_middleware(RequestContext)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(tts.router)
    app.include_router(voices.router)
    app.include_router(coqui.router)
    app.include_router(openai.router)
    app.include_router(ws.router)
    return app


def _report_load(state: ServerState) -> None:
    """Queue depth and slot occupancy, read at each /metrics scrape: the batching engine's rows
    when it runs, else the thread Synthesizer's workers."""
    ref = weakref.ref(state)

    def load() -> metrics.EngineLoad:
        current = ref()
        if current is None:
            return metrics.EngineLoad(0, 0, 0)
        engine = current.engine
        if engine is not None:
            return metrics.EngineLoad(engine.queued, engine.active, engine.config.slots)
        synth = current.synth
        running = min(synth.in_flight, synth.max_concurrent)
        return metrics.EngineLoad(synth.in_flight - running, running, synth.max_concurrent)

    metrics.set_load_provider(load)

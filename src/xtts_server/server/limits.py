"""Limits around each synthesis, at the route level (the engine's own admission is below them).

`speak(state, req)` is what the routes call instead of `ServerState.speak`: it
- refuses new work while the server drains after SIGTERM (503 shutting_down);
- holds one of the caller's `max_streams_per_key` places for the whole stream (429 beyond; with
  API keys only: without keys there is no caller to count);
- gives up on a request with no audio after `queue_timeout_s` (503 overloaded + Retry-After) and
  cancels it (a queued request never starts; the engine frees its place when it would have);
- optionally ends the synthesis at a deadline (WebSocket sentences; HTTP requests are bounded
  whole by `RequestDeadline`);
- counts it in `xtts_active_streams` and observes time to first audio and the real-time factor.

The place and the gauge are given back when the stream is closed, fails, or is dropped unclosed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from contextvars import ContextVar
from typing import Any
from weakref import WeakKeyDictionary

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xtts_server.server import metrics
from xtts_server.server.auth import ANONYMOUS, caller_var
from xtts_server.server.errors import (
    Overloaded,
    RequestTimeout,
    ShuttingDown,
    TooManyStreams,
    error_body,
)
from xtts_server.server.settings import Settings
from xtts_server.server.state import ServerState, SpeakRequest
from xtts_server.tts import AudioChunk

logger = logging.getLogger(__name__)

# Set by RequestDeadline for each HTTP request: when it arrived, and its route (once routed).
request_started_var: ContextVar[float | None] = ContextVar("xtts_request_started", default=None)
request_scope_var: ContextVar[Scope | None] = ContextVar("xtts_request_scope", default=None)


class StreamGuard:
    """Per app: active syntheses in all and per caller, and whether the server is draining."""

    def __init__(self, settings: Settings, *, per_key: bool) -> None:
        self.settings = settings
        self.per_key = per_key
        self.draining = False
        self.active = 0
        self._by_caller: dict[str, int] = {}
        self._lock = threading.Lock()  # a stream dropped unclosed is released by the GC, in any thread

    def acquire(self, caller: str) -> None:
        if self.draining:
            raise ShuttingDown("the server is shutting down; retry on another instance")
        limit = self.settings.max_streams_per_key
        with self._lock:
            held = self._by_caller.get(caller, 0)
            if self.per_key and caller != ANONYMOUS and held >= limit:
                raise TooManyStreams(
                    f"this API key already has {held} syntheses running, the most it may; "
                    "retry when one has finished"
                )
            self._by_caller[caller] = held + 1
            self.active += 1
        metrics.ACTIVE_STREAMS.inc()

    def release(self, caller: str) -> None:
        with self._lock:
            held = self._by_caller.get(caller, 0) - 1
            if held > 0:
                self._by_caller[caller] = held
            else:
                self._by_caller.pop(caller, None)
            self.active -= 1
        metrics.ACTIVE_STREAMS.dec()


_GUARDS: WeakKeyDictionary[ServerState, StreamGuard] = WeakKeyDictionary()


def attach(state: ServerState, guard: StreamGuard) -> None:
    _GUARDS[state] = guard


def guard_for(state: ServerState) -> StreamGuard:
    guard = _GUARDS.get(state)
    if guard is None:  # a state made outside create_app
        guard = _GUARDS[state] = StreamGuard(state.settings, per_key=False)
    return guard


def _route_label(default: str) -> str:
    scope = request_scope_var.get()
    route = scope.get("route") if scope else None
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else default


class GuardedStream:
    """The rest of a synthesis (after its first chunk): an async iterator the routes close."""

    def __init__(
        self,
        inner: Any,
        release: Any,
        *,
        route: str,
        started: float,
        first: AudioChunk,
        deadline: float | None,
    ) -> None:
        self._inner = inner
        self._release = release
        self._route = route
        self._started = started
        self._deadline = deadline
        self._samples = len(first.audio)
        self._rate = first.sample_rate
        self._done = False

    def __aiter__(self) -> GuardedStream:
        return self

    async def __anext__(self) -> AudioChunk:
        if self._done:
            raise StopAsyncIteration
        try:
            if self._deadline is None:
                chunk: AudioChunk = await self._inner.__anext__()
            else:
                remaining = self._deadline - time.monotonic()
                chunk = await asyncio.wait_for(self._inner.__anext__(), max(remaining, 0.0))
        except StopAsyncIteration:
            self._observe_rtf()
            await self.aclose()
            raise
        except asyncio.TimeoutError:
            await self.aclose()
            raise RequestTimeout(
                "the synthesis took longer than this server's limit of "
                f"{self._deadline_limit():.0f} s; send shorter text"
            ) from None
        except BaseException:
            await self.aclose()
            raise
        self._samples += len(chunk.audio)
        return chunk

    def _deadline_limit(self) -> float:
        return (self._deadline or self._started) - self._started

    def _observe_rtf(self) -> None:
        seconds = self._samples / self._rate if self._rate else 0.0
        if seconds > 0:
            metrics.REAL_TIME_FACTOR.labels(self._route).observe((time.monotonic() - self._started) / seconds)

    async def aclose(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            await self._inner.aclose()
        finally:
            self._release()

    def __del__(self) -> None:  # dropped without aclose (a response that never started)
        if not self._done:
            self._done = True
            self._release()


async def speak(
    state: ServerState, req: SpeakRequest, *, deadline_s: float | None = None
) -> tuple[AudioChunk, GuardedStream]:
    """`state.speak(req)` under the limits above: the first chunk and the rest, which the caller
    must close (`aclose`) when done."""
    guard = guard_for(state)
    settings = state.settings
    caller = caller_var.get()
    route = _route_label("other")
    started = time.monotonic()
    request_started = request_started_var.get()  # None on a WebSocket: from this sentence on
    guard.acquire(caller)
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            guard.release(caller)

    if settings.log_text:
        logger.info("text (%d characters): %r", len(req.text), req.text[:500])
    try:
        first, rest = await asyncio.wait_for(state.speak(req), settings.queue_timeout_s)
    except asyncio.TimeoutError:
        release()
        raise Overloaded(
            f"no synthesis slot became free within {settings.queue_timeout_s:g} s; retry shortly"
        ) from None
    except BaseException:
        release()
        raise
    metrics.TTFA_SECONDS.labels(route).observe(time.monotonic() - (request_started or started))
    deadline = started + deadline_s if deadline_s is not None else None
    return first, GuardedStream(rest, release, route=route, started=started, first=first, deadline=deadline)


class RequestDeadline:
    """Bounds each HTTP request, from its first byte to its response's last, by `request_timeout_s`:
    a request past it is cancelled (its synthesis stops) and answered 504, or, once its response
    has started, cut (the client sees an incomplete body). A slow reader is bounded the same way."""

    def __init__(self, app: ASGIApp, *, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            request_scope_var.set(scope)
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_started_var.set(time.monotonic())
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await asyncio.wait_for(self.app(scope, receive, send_tracked), self.timeout_s)
        except asyncio.TimeoutError:
            logger.warning("request cancelled after %.0f s (--request-timeout)", self.timeout_s)
            if started:
                metrics.count_error("stream_cut")
                return
            message = f"the request took longer than this server's limit of {self.timeout_s:g} s"
            body = json.dumps(error_body("timeout", message)).encode()
            headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
            await send({"type": "http.response.start", "status": 504, "headers": headers})
            await send({"type": "http.response.body", "body": body})

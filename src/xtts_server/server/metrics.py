"""Prometheus metrics, served at GET /metrics (behind the API key when keys are set).

One set per process, in prometheus_client's default registry (which adds process_* metrics such as
`process_resident_memory_bytes`). Names:

    xtts_http_requests_total{route, method, code}       every HTTP request (route = its template,
                                                        "unmatched" for unknown paths; WebSocket
                                                        handshakes as method "WEBSOCKET")
    xtts_http_request_duration_seconds{route}           to the end of the response (streams included)
    xtts_time_to_first_audio_seconds{route}             request start -> first audio chunk ready
    xtts_real_time_factor{route}                        synthesis seconds / audio seconds, per finished stream
    xtts_active_streams                                 syntheses holding a slot or streaming now
    xtts_queue_depth                                    syntheses admitted and waiting for the engine
    xtts_batch_active_slots, xtts_batch_capacity,
    xtts_batch_occupancy                                the engine's slots in use, of how many, and the ratio
    xtts_errors_total{code}                             every error answer, by its `code` (+ stream_cut)
    xtts_websocket_sessions                             open WebSocket sessions

The engine reports its load with `set_queue_depth` and `set_batch_occupancy` (call them whenever the
numbers change, e.g. after each scheduling step), or installs a function read at each scrape with
`set_load_provider`; a provider, while one is installed, wins.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
_RTF_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "xtts_http_requests",
    "HTTP requests by route template, method and status code",
    ["route", "method", "code"],
)
HTTP_SECONDS = Histogram(
    "xtts_http_request_duration_seconds",
    "seconds from the request to the end of its response",
    ["route"],
    buckets=_LATENCY_BUCKETS,
)
TTFA_SECONDS = Histogram(
    "xtts_time_to_first_audio_seconds",
    "seconds from the request (or WebSocket sentence) to its first audio chunk",
    ["route"],
    buckets=_LATENCY_BUCKETS,
)
REAL_TIME_FACTOR = Histogram(
    "xtts_real_time_factor",
    "seconds spent per second of audio, per finished synthesis (below 1: faster than real time)",
    ["route"],
    buckets=_RTF_BUCKETS,
)
ACTIVE_STREAMS = Gauge("xtts_active_streams", "syntheses holding a slot or streaming now")
ERRORS = Counter("xtts_errors", "error answers by error code", ["code"])
WEBSOCKET_SESSIONS = Gauge("xtts_websocket_sessions", "open WebSocket sessions")


@dataclass(frozen=True)
class EngineLoad:
    queued: int  # admitted, waiting for a slot
    active_slots: int  # slots generating now
    capacity: int  # slots in all


class _EngineLoadCollector(Collector):
    """Queue depth and batch occupancy, from the engine's last report or a provider read at scrape."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._load = EngineLoad(0, 0, 0)
        self.provider: Callable[[], EngineLoad] | None = None

    def update(
        self, *, queued: int | None = None, active: int | None = None, capacity: int | None = None
    ) -> None:
        with self._lock:
            old = self._load
            self._load = EngineLoad(
                old.queued if queued is None else queued,
                old.active_slots if active is None else active,
                old.capacity if capacity is None else capacity,
            )

    def load(self) -> EngineLoad:
        provider = self.provider
        if provider is not None:
            return provider()
        return self._load

    def collect(self) -> Iterator[GaugeMetricFamily]:
        load = self.load()
        yield GaugeMetricFamily(
            "xtts_queue_depth", "syntheses admitted and waiting for the engine", load.queued
        )
        yield GaugeMetricFamily("xtts_batch_active_slots", "engine slots generating now", load.active_slots)
        yield GaugeMetricFamily("xtts_batch_capacity", "engine slots in all", load.capacity)
        ratio = load.active_slots / load.capacity if load.capacity else 0.0
        yield GaugeMetricFamily("xtts_batch_occupancy", "engine slots in use / slots in all (0..1)", ratio)


_ENGINE = _EngineLoadCollector()
REGISTRY.register(_ENGINE)


def set_batch_occupancy(active_slots: int, capacity: int) -> None:
    """For the engine: `active_slots` of its `capacity` batch slots are generating now."""
    _ENGINE.update(active=max(0, int(active_slots)), capacity=max(0, int(capacity)))


def set_queue_depth(queued: int) -> None:
    """For the engine: `queued` requests are admitted and waiting for a slot."""
    _ENGINE.update(queued=max(0, int(queued)))


def set_load_provider(provider: Callable[[], EngineLoad] | None) -> None:
    """Read the engine's load from `provider()` at each scrape instead (None: back to the set_* values)."""
    _ENGINE.provider = provider


def engine_load() -> EngineLoad:
    return _ENGINE.load()


def count_error(code: str) -> None:
    ERRORS.labels(code).inc()


router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics() -> Response:
    """Prometheus text format."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

"""How many requests one replica takes at once: the single number Ray's routing and autoscaling use."""

from __future__ import annotations

from xtts_server.server.settings import Settings


def uses_engine(settings: Settings) -> bool:
    """Whether a replica runs the batching engine: as ServerState decides, with device "auto" taken
    to be the replica's GPU (deployment_options gives it one unless the device is "cpu")."""
    return settings.engine == "on" or (settings.engine == "auto" and settings.device != "cpu")


def replica_capacity(settings: Settings) -> int:
    """Requests one replica serves at once: what its server admits before it answers 503, streams
    running (the engine's slots, or the worker threads without it) plus queued.

    Ray's `max_ongoing_requests` is set to this, so Ray never sends a replica more than it admits:
    beyond it requests wait in Ray's queue for whichever replica frees first. A WebSocket session
    is one ongoing request for its whole life, so open sessions and HTTP streams share this number.
    """
    running = settings.engine_slots if uses_engine(settings) else settings.max_concurrent
    return running + settings.max_queued


def replica_settings(settings: Settings) -> Settings:
    """The settings a replica runs with: its own admission raised by one capacity's worth of queue,
    so that Ray, which holds each replica to `replica_capacity`, is the one that refuses. Without
    the headroom a replica would answer 503 in the moment after a client leaves, when Ray already
    counts that request as done while the engine is still stopping it (up to one decode step), and
    to a WebSocket session speaking several contexts at once (one ongoing request to Ray)."""
    return settings.model_copy(update={"max_queued": settings.max_queued + replica_capacity(settings)})

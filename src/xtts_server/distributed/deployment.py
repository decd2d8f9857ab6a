"""The Ray Serve application: replicas of the unchanged FastAPI app, one engine (GPU) each.

    xtts-server serve --ray --replicas 2 ...            # this machine, or --ray-address a cluster
    serve run deploy/ray/serve.yaml                     # a config file (import_path: app_builder)

Ray's proxy takes HTTP (streamed responses included) and WebSockets and routes each request to the
replica with the fewest ongoing requests of two it samples, never past `replica_capacity`; beyond
that, requests wait in Ray's queue, and past `max_queued_requests` they get 503 with Retry-After
as from the single server. Each replica answers with `X-Replica: <app>#<deployment>#<id>`. Voices
are shared when `voices_dir` is on storage every replica sees (VoiceStore keeps each replica's
index coherent). Ray's health check asks the app's own /ready; a replica that fails it is replaced.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

import torch
from fastapi import FastAPI
from ray import serve
from ray.serve import Application

from xtts_server.distributed.asgi import ReadyGate, ReplicaHeader, not_ready
from xtts_server.distributed.capacity import replica_settings
from xtts_server.distributed.options import APP_NAME, DEPLOYMENT_NAME, RaySettings, deployment_options
from xtts_server.server.app import create_app
from xtts_server.server.auth import check_exposure, load_keys
from xtts_server.server.settings import Settings

logger = logging.getLogger(__name__)


def replica_name() -> str:
    """This replica's id without Ray's actor-name prefix: `<app>#<deployment>#<unique id>`."""
    full = serve.get_replica_context().replica_id.to_full_id_str()
    return full.split("::", 1)[-1]


@serve.deployment(name=DEPLOYMENT_NAME)
@serve.ingress()
class XTTSReplica:
    """One server (model, voices, synthesizer) in a Ray actor. `settings` travels pickled, as the
    driver resolved it (flags, XTTS_* variables; API keys included: prefer an api_key_file that
    every node mounts to keys in Ray's object store)."""

    def __init__(self, settings: Settings, torch_threads: int | None = None) -> None:
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        self._settings = settings
        self._app: FastAPI | None = None

    def __serve_build_asgi_app__(self) -> FastAPI:
        app = create_app(self._settings)
        app.add_middleware(ReplicaHeader, replica=replica_name())
        app.add_middleware(ReadyGate)  # outermost: sees the lifespan first
        self._app = app
        return app

    async def check_health(self) -> None:
        """Ray calls this every health_check_period_s; raising marks the replica unhealthy."""
        assert self._app is not None
        problem = await not_ready(self._app)
        if problem is not None:
            raise RuntimeError(f"replica {replica_name()} is not ready: {problem}")


def build_app(settings: Settings, ray: RaySettings) -> Application:
    """The application, its deployment options derived from the settings."""
    options = deployment_options(settings, ray)
    deployment = XTTSReplica.options(**options)  # type: ignore[attr-defined]  # a Deployment, by the decorator
    return deployment.bind(replica_settings(settings), ray.torch_threads)


def app_builder(args: dict[str, Any]) -> Application:
    """For `serve run` and Serve config files: `args` = {"settings": {...}, "ray": {...}}, the fields
    of Settings and RaySettings (XTTS_* / XTTS_RAY_* variables fill in the rest)."""
    unknown = set(args) - {"settings", "ray"}
    if unknown:
        raise ValueError(f"unknown args {sorted(unknown)}: give 'settings' and 'ray'")
    settings = Settings(**args.get("settings", {}))
    # The config's http_options, not settings.host, say where Ray's proxy listens: a cluster is
    # taken to be reachable from its network, so it needs API keys or an explicit no_auth.
    check_exposure(settings.model_copy(update={"host": "0.0.0.0"}), load_keys(settings))
    return build_app(settings, RaySettings(**args.get("ray", {})))


def run(settings: Settings, ray_settings: RaySettings) -> int:
    """`xtts-server serve --ray`: join or start a Ray cluster, serve on settings.host:port, block."""
    import ray

    # An open server off loopback is refused here, before any replica starts (create_app checks it too).
    check_exposure(settings, load_keys(settings))
    ray.init(address=ray_settings.address)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM as Ctrl-C: replicas drain their streams, then Ray stops

    signal.signal(signal.SIGTERM, stop)
    try:
        serve.start(http_options={"host": settings.host, "port": settings.port})
        serve.run(build_app(settings, ray_settings), name=APP_NAME, route_prefix="/", blocking=True)
    except KeyboardInterrupt:
        pass
    finally:
        # Deleting the application first lets each replica finish its streams (up to
        # graceful_shutdown_timeout_s) while the proxies still carry them; shutdown() would cut them.
        serve.delete(APP_NAME)
        serve.shutdown()
        ray.shutdown()
    return 0

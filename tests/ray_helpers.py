"""A local Ray cluster serving the app on the tiny model: for tests/distributed, and for running the
server tests through Ray's proxy (XTTS_TEST_RAY=1, see tests/server/conftest.py).

One cluster per test session (its start costs ~10 s). `deploy` runs the production deployment
(XTTSReplica) with given settings: two replicas of one torch thread each. For the server tests,
whose settings change from test to test, `suite_url` instead gives each set of settings a path on
one deployment started once: in each replica, /cfg/<id>/... goes to the app of settings <id>, made
by create_app and wrapped as XTTSReplica wraps it on first use, with the replica's one model. The
proxy, the routing and the replicas are Ray's either way; only the settings no longer cost a
restart (~10 s each).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

RAY_MODE_ENV = "XTTS_TEST_RAY"  # "1": the server tests talk to the app through Ray's proxy
REPLICAS = 2
CLUSTER_CPUS = 4  # logical: two replicas of 1 CPU plus room for the tests' own tasks
CONFIG_PREFIX = "/cfg/"
SUITE = "suite"  # what is deployed when the server tests' dispatching replicas run


def ray_mode() -> bool:
    return os.environ.get(RAY_MODE_ENV) == "1"


def required(name: str) -> bool:
    """XTTS_TEST_REQUIRE (comma-separated) names the optional parts that must not skip (CI)."""
    return name in os.environ.get("XTTS_TEST_REQUIRE", "").replace(" ", "").split(",")


def import_triton(module: str) -> Any:
    """`module` (one of ours that needs Triton), or a module-level skip (a failure where
    XTTS_TEST_REQUIRE names triton)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if required("triton"):
            raise
        pytest.skip(f"needs Triton (the dev extra installs it): {exc}", allow_module_level=True)


def import_ray() -> Any:
    """`ray`, or a skip saying how to get it (a failure where XTTS_TEST_REQUIRE names ray)."""
    try:
        import ray
        from ray import serve  # noqa: F401
    except ImportError as exc:
        reason = f"needs the ray extra (pip install -e '.[ray]'): {exc}"
        if required("ray"):
            pytest.fail(reason)
        pytest.skip(reason)
    return ray


def settings_json(settings: Any) -> dict[str, Any]:
    """Settings as JSON, API keys included (model_dump masks them)."""
    fields = settings.model_dump(mode="json")
    fields["api_keys"] = [key.get_secret_value() for key in settings.api_keys]
    return dict(fields)


class RayServe:
    """A local Ray cluster with Serve's proxy on a free port."""

    def __init__(self, model_dir: Path, work_dir: Path) -> None:
        from server_helpers import free_port

        ray = import_ray()
        from ray import serve

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self.model_dir = model_dir
        self.voices_dir = work_dir / "voices"
        self.configs = work_dir / "configs"
        self.configs.mkdir()
        ray.init(num_cpus=CLUSTER_CPUS, include_dashboard=False, log_to_driver=False, logging_level="warning")
        self.port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": self.port})
        self.url = f"http://127.0.0.1:{self.port}"
        self._deployed: str | None = None

    def _run(self, app: Any, key: str) -> None:
        from ray import serve

        from xtts_server.distributed.options import APP_NAME

        if key != self._deployed:
            self._deployed = None
            serve.run(app, name=APP_NAME, route_prefix="/")
            self._deployed = key

    def deploy(self, settings: Any = None, **ray_fields: Any) -> str:
        """Run XTTSReplica with `settings` (its model, device, warm-up and voices directory replaced
        by the tiny model on CPU, no warm-up and one shared directory) on REPLICAS replicas, unless
        that already runs; the proxy's URL."""
        from xtts_server.distributed.deployment import build_app
        from xtts_server.distributed.options import RaySettings
        from xtts_server.server.settings import Settings

        fields = settings_json(settings) if settings is not None else {}
        fields.update(
            model_dir=str(self.model_dir), device="cpu", warmup=False, voices_dir=str(self.voices_dir)
        )
        options = {**replica_options(), **ray_fields}
        key = json.dumps([fields, options], sort_keys=True)
        self._run(build_app(Settings(**fields), RaySettings(**options)), key)
        return self.url

    def forget(self) -> None:
        """The application was deleted: the next deploy runs it again."""
        self._deployed = None

    def clear_voices(self) -> None:
        for path in self.voices_dir.glob("*"):
            path.unlink()

    def suite_url(self, settings: Any) -> str:
        """The URL of an app with these settings (the test's own voices directory included) on
        the dispatching replicas; the same settings, the same app."""
        fields = settings_json(settings)
        config = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
        path = self.configs / f"{config}.json"
        if not path.exists():
            path.write_text(json.dumps(fields))
        self._run(suite_app(self.configs, self.model_dir), SUITE)
        return f"{self.url}{CONFIG_PREFIX}{config}"

    def client(self, settings: Any) -> RemoteClient:
        """What make_client gives in Ray mode: a client of the app with `settings`."""
        return RemoteClient(self.suite_url(settings))

    def serve_app(self, app: Any, uvicorn_options: dict[str, Any]) -> str:
        """What uvicorn_thread gives in Ray mode: the app's settings served by the replicas (a
        skip when its engine is a stand-in, which exists only in this process, or when the test
        configures uvicorn, which Ray's proxy replaces)."""
        from xtts_server.tts import XTTS

        state = app.state.server
        if type(state._tts) is not XTTS:
            pytest.skip("an engine stand-in exists only in this process; the replicas load the model")
        if uvicorn_options:
            pytest.skip(f"configures uvicorn ({sorted(uvicorn_options)}); through Ray the proxy serves")
        return self.suite_url(state.settings)

    def close(self) -> None:
        import ray
        from ray import serve

        serve.shutdown()
        ray.shutdown()


def replica_options() -> dict[str, Any]:
    return {
        "replicas": REPLICAS,
        "torch_threads": 1,
        "cpus_per_replica": 1.0,
        "health_check_period_s": 1.0,
        "health_check_timeout_s": 10.0,
    }


@contextlib.contextmanager
def ray_serve(model_dir: Path, work_dir: Path) -> Iterator[RayServe]:
    cluster = RayServe(model_dir, work_dir)
    try:
        yield cluster
    finally:
        cluster.close()


ACTIVE: RayServe | None = None  # in Ray mode: where make_client and uvicorn_thread send the tests


# --- the dispatching replicas (run in Ray's worker processes) ---------------------------------------


def suite_app(configs: Path, model_dir: Path) -> Any:
    """The deployment of the server tests: XTTSReplica's options, ConfigApps as its ASGI app."""
    from ray import serve

    from xtts_server.distributed.options import DEPLOYMENT_NAME, RaySettings, deployment_options
    from xtts_server.server.settings import Settings

    options = deployment_options(Settings(device="cpu"), RaySettings(**replica_options()))
    tests = Path(__file__).parent  # the replicas import this module
    path = os.pathsep.join([str(tests), str(tests / "server")])
    options["ray_actor_options"]["runtime_env"] = {"env_vars": {"PYTHONPATH": path}}

    @serve.deployment(name=DEPLOYMENT_NAME, **options)
    @serve.ingress()
    class SuiteReplica:
        def __init__(self, configs: str, model_dir: str) -> None:
            import torch

            torch.set_num_threads(1)
            self.configs, self.model_dir = Path(configs), Path(model_dir)

        def __serve_build_asgi_app__(self) -> Any:
            from ray_helpers import ConfigApps
            from xtts_server.distributed.deployment import replica_name

            return ConfigApps(self.configs, self.model_dir, replica_name())

    return SuiteReplica.bind(str(configs), str(model_dir))  # type: ignore[attr-defined]


class ConfigApps:
    """ASGI: /cfg/<id>/<path> -> <path> of the app of settings <id> (<configs>/<id>.json)."""

    def __init__(self, configs: Path, model_dir: Path, replica: str) -> None:
        from xtts_server import XTTS

        self.configs = configs
        self.replica = replica
        self.tts = XTTS.load(model_dir, device="cpu")
        self.apps: dict[str, tuple[Any, Any]] = {}
        self.lock = asyncio.Lock()

    async def app(self, config: str) -> Any:
        from uvicorn.config import Config
        from uvicorn.lifespan.on import LifespanOn

        from xtts_server.distributed.asgi import ReadyGate, ReplicaHeader
        from xtts_server.server.app import create_app
        from xtts_server.server.settings import Settings

        async with self.lock:
            if config not in self.apps:
                fields = json.loads((self.configs / f"{config}.json").read_text())
                app = create_app(Settings(**fields), tts_model=self.tts)
                app.add_middleware(ReplicaHeader, replica=self.replica)
                app.add_middleware(ReadyGate)
                lifespan = LifespanOn(Config(app, lifespan="on", log_config=None))  # as Ray runs it
                await lifespan.startup()
                assert not lifespan.should_exit, f"settings {config} did not start"
                self.apps[config] = (app, lifespan)
            return self.apps[config][0]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    for _, lifespan in self.apps.values():
                        await lifespan.shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        config, _, rest = scope["path"].removeprefix(CONFIG_PREFIX).partition("/")
        app = await self.app(config)
        path = "/" + rest
        await app({**scope, "path": path, "raw_path": path.encode()}, receive, send)


# --- TestClient's API over HTTP ----------------------------------------------------------------------


class RemoteWebSocket:
    """TestClient's WebSocket session API over a real connection (websockets' sync client)."""

    def __init__(self, connection: Any) -> None:
        self._ws = connection

    def send_text(self, data: str) -> None:
        self._ws.send(data)

    def send_bytes(self, data: bytes) -> None:
        self._ws.send(data)

    def send_json(self, data: Any) -> None:
        self._ws.send(json.dumps(data))

    def receive_text(self) -> str:
        message = self._ws.recv(timeout=120)
        assert isinstance(message, str), f"expected a text frame, got {len(message)} bytes"
        return message

    def receive_bytes(self) -> bytes:
        message = self._ws.recv(timeout=120)
        assert isinstance(message, bytes), f"expected a binary frame, got {message[:200]!r}"
        return message

    def receive_json(self) -> Any:
        return json.loads(self.receive_text())

    def close(self, code: int = 1000) -> None:
        self._ws.close(code)


class RemoteClient(httpx.Client):
    """What the server tests use of TestClient, against a URL (Ray's proxy)."""

    def __init__(self, url: str) -> None:
        super().__init__(base_url=url, timeout=120, follow_redirects=True)

    @property
    def app(self) -> Any:
        pytest.skip("reads the in-process app's state; here the server runs in Ray replicas")

    @contextlib.contextmanager
    def websocket_connect(
        self, path: str, headers: dict[str, str] | None = None
    ) -> Iterator[RemoteWebSocket]:
        from websockets.sync.client import connect

        url = str(self.base_url).rstrip("/").replace("http", "ws", 1) + path
        with connect(url, additional_headers=headers, max_size=None) as ws:
            yield RemoteWebSocket(ws)

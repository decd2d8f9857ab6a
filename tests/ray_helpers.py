"""A local Ray cluster serving the app on the tiny model: for tests/distributed, and for running the
server tests through Ray's proxy (XTTS_TEST_RAY=1, see tests/server/conftest.py).

One cluster per test session (its start costs ~10 s); the application is redeployed only when the
settings change, with two replicas of one torch thread each sharing one voices directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

RAY_MODE_ENV = "XTTS_TEST_RAY"  # "1": the server tests talk to the app through Ray's proxy
REPLICAS = 2
CLUSTER_CPUS = 4  # logical: two replicas of 1 CPU plus room for the tests' own tasks


def ray_mode() -> bool:
    return os.environ.get(RAY_MODE_ENV) == "1"


def required(name: str) -> bool:
    """XTTS_TEST_REQUIRE (comma-separated) names the optional parts that must not skip (CI)."""
    return name in os.environ.get("XTTS_TEST_REQUIRE", "").replace(" ", "").split(",")


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


class RayServe:
    """A local Ray cluster with Serve's proxy on a free port; `deploy` runs the app on it."""

    def __init__(self, model_dir: Path, work_dir: Path) -> None:
        from server_helpers import free_port

        ray = import_ray()
        from ray import serve

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self.model_dir = model_dir
        self.voices_dir = work_dir / "voices"
        ray.init(
            num_cpus=CLUSTER_CPUS,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="warning",
        )
        self.port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": self.port})
        self.url = f"http://127.0.0.1:{self.port}"
        self._deployed: str | None = None

    def deploy(self, settings: Any = None, **ray_fields: Any) -> str:
        """Serve `settings` (a Settings; its model, device, warm-up and voices directory replaced
        by the tiny model on CPU, no warm-up and the shared directory) on REPLICAS replicas, unless
        that already runs; the proxy's URL."""
        from ray import serve

        from xtts_server.distributed.deployment import build_app
        from xtts_server.distributed.options import APP_NAME, RaySettings
        from xtts_server.server.settings import Settings

        fields = settings.model_dump() if settings is not None else {}
        fields.update(model_dir=self.model_dir, device="cpu", warmup=False, voices_dir=self.voices_dir)
        options = {
            "replicas": REPLICAS,
            "torch_threads": 1,
            "cpus_per_replica": 1.0,
            "health_check_period_s": 1.0,
            "health_check_timeout_s": 10.0,
            **ray_fields,
        }
        key = json.dumps([fields, options], sort_keys=True, default=repr)
        if key != self._deployed:
            self._deployed = None
            serve.run(build_app(Settings(**fields), RaySettings(**options)), name=APP_NAME, route_prefix="/")
            self._deployed = key
        return self.url

    def clear_voices(self) -> None:
        """Remove every stored voice, and wait until the replicas' next directory check sees that."""
        if self.voices_dir.exists() and any(self.voices_dir.iterdir()):
            for path in self.voices_dir.iterdir():
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            time.sleep(1.1)  # VoiceStore's refresh_s

    def close(self) -> None:
        import ray
        from ray import serve

        serve.shutdown()
        ray.shutdown()


@contextlib.contextmanager
def ray_serve(model_dir: Path, work_dir: Path) -> Iterator[RayServe]:
    cluster = RayServe(model_dir, work_dir)
    try:
        yield cluster
    finally:
        cluster.close()


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

"""An in-process server on the tiny random checkpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from server_helpers import wait_ready

import ray_helpers
from xtts_server.server.app import create_app
from xtts_server.server.settings import Settings

_TINY = object()  # make_client's default engine: the session's tiny model


@pytest.fixture(scope="session", autouse=True)
def _through_ray(request: pytest.FixtureRequest) -> Iterator[None]:
    """XTTS_TEST_RAY=1: the servers these tests start are served by Ray replicas instead."""
    if not ray_helpers.ray_mode():
        yield
        return
    ray_helpers.ACTIVE = request.getfixturevalue("ray_serve")
    try:
        yield
    finally:
        ray_helpers.ACTIVE = None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """XTTS_TEST_RAY=1: tests that rely on this process's state (marked in_process, or patching it
    with monkeypatch) skip; the server runs elsewhere."""
    if not ray_helpers.ray_mode():
        return
    here = Path(__file__).parent
    for item in items:
        if item.path.parent != here:
            continue
        if item.get_closest_marker("in_process") or "monkeypatch" in getattr(item, "fixturenames", ()):
            reason = "relies on this process's state; through Ray the server is elsewhere"
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def make_client(tiny_tts, tmp_path: Path):  # type: ignore[no-untyped-def]
    clients: list[Any] = []

    def make(*, tts_model: object = _TINY, wait: bool = True, **overrides: object) -> TestClient:
        """A started client; `tts_model` replaces the tiny engine (None: load `model_dir`),
        `wait=False` returns before the model is ready. With XTTS_TEST_RAY=1, a client of the same
        settings served by Ray replicas (tests/ray_helpers.py)."""
        fields: dict[str, object] = {"voices_dir": tmp_path / "voices", "warmup": False, **overrides}
        if ray_helpers.ACTIVE is not None:
            if tts_model is not _TINY or not wait:
                pytest.skip("an engine stand-in or a server still starting exists only in this process")
            remote = ray_helpers.ACTIVE.client(Settings(**fields))  # type: ignore[arg-type]
            clients.append(remote)
            return remote  # type: ignore[return-value]  # TestClient's API over HTTP
        engine = tiny_tts if tts_model is _TINY else tts_model
        client = TestClient(create_app(Settings(**fields), tts_model=engine))  # type: ignore[arg-type]
        client.__enter__()
        clients.append(client)
        if wait:
            wait_ready(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    return make_client(default_voice="Ana Florence")  # type: ignore[no-any-return]

"""An in-process server on the tiny random checkpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from server_helpers import wait_ready

from xtts_server.server.app import create_app
from xtts_server.server.settings import Settings

_TINY = object()  # make_client's default engine: the session's tiny model


@pytest.fixture
def make_client(tiny_tts, tmp_path: Path):  # type: ignore[no-untyped-def]
    clients: list[TestClient] = []

    def make(*, tts_model: object = _TINY, wait: bool = True, **overrides: object) -> TestClient:
        """A started client; `tts_model` replaces the tiny engine (None: load `model_dir`),
        `wait=False` returns before the model is ready."""
        fields: dict[str, object] = {"voices_dir": tmp_path / "voices", "warmup": False, **overrides}
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

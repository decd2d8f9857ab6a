"""The rest of the error table (501, 500) and failures after a stream has started."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from server_helpers import ENGINE_RATE, EngineProxy, assert_error, uvicorn_thread, wait_ready

from xtts_server.errors import ModelLoadError
from xtts_server.server.app import create_app
from xtts_server.server.settings import Settings
from xtts_server.tts import AudioChunk


class FailingEngine(EngineProxy):
    """`stream` yields `good` chunks of audio, then raises `error`."""

    def __init__(self, tts: Any, error: BaseException, good: int = 0) -> None:
        super().__init__(tts)
        self.error = error
        self.good = good

    def stream(self, text: str, language: str, voice: Any, **options: Any) -> Iterator[AudioChunk]:
        for _ in range(self.good):
            yield AudioChunk(np.full(2400, 0.1, np.float32), ENGINE_RATE, 0, text, False, language)
        raise self.error


def test_missing_language_extra_is_501(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pypinyin", None)  # as if xtts-server[zh] were not installed
    body = {"text": "你好。", "language": "zh-cn", "max_new_tokens": 4}
    error = assert_error(client.post("/v1/tts", json=body), 501, "language_not_installed")
    assert "xtts-server[zh]" in error["message"]


@pytest.mark.parametrize(
    ("error", "status", "code", "message"),
    [
        (RuntimeError("secret detail of a bug"), 500, "internal_error", "internal server error"),
        (ModelLoadError("the checkpoint is damaged"), 500, "model_error", "the checkpoint is damaged"),
    ],
)
def test_engine_failures_are_500_without_leaking(
    tiny_tts, tmp_path: Path, error: BaseException, status: int, code: str, message: str
) -> None:
    settings = Settings(voices_dir=tmp_path / "voices", warmup=False, default_voice="Ana Florence")
    app = create_app(settings, tts_model=FailingEngine(tiny_tts, error))  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready(client)
        for body in ({"text": "Hi."}, {"text": "Hi.", "stream": True}):
            got = assert_error(client.post("/v1/tts", json=body), status, code)
            assert got["message"] == message
        assert client.get("/ready").json()["in_flight"] == 0


def test_a_failure_mid_stream_cuts_the_stream(tiny_tts, tmp_path: Path) -> None:
    """Once audio has been sent the status cannot change: the server ends the chunked body without
    its terminating chunk, so the client sees an incomplete response instead of a short file."""
    settings = Settings(voices_dir=tmp_path / "voices", warmup=False, default_voice="Ana Florence")
    engine = FailingEngine(tiny_tts, RuntimeError("the GPU fell off"), good=3)
    app = create_app(settings, tts_model=engine)  # type: ignore[arg-type]
    with uvicorn_thread(app) as url:
        received = b""
        body = {"text": "Hi.", "stream": True, "format": "pcm"}
        with (
            pytest.raises(httpx.RemoteProtocolError),
            httpx.Client(timeout=30) as http,
            http.stream("POST", f"{url}/v1/tts", json=body) as response,
        ):
            assert response.status_code == 200
            for data in response.iter_bytes():
                received += data
        assert len(received) >= 2400 * 2  # the first chunk(s) did arrive
        assert httpx.get(f"{url}/ready").json()["in_flight"] == 0

"""A client that goes away cancels its synthesis; a busy server refuses at once. Against a real
uvicorn (in a thread) and real sockets: the test client cannot disconnect."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import assert_error, uvicorn_thread

import xtts_server.tts as tts_module
from xtts_server.server.app import create_app
from xtts_server.server.settings import Settings

MAX_TOKENS = 600  # far more than the test waits for
LONG = {"text": "Hello there.", "max_new_tokens": MAX_TOKENS, "stream_chunk_size": 4, "seed": 0}


class StepCounter:
    """Wraps the engine's decode loop: how many steps each generation ran, and which are running."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: list[int] = []
        self.running = 0
        self._lock = threading.Lock()
        real = tts_module.generate

        def counting(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with self._lock:
                index = len(self.counts)
                self.counts.append(0)
                self.running += 1
            try:
                for step in real(*args, **kwargs):
                    self.counts[index] += 1
                    yield step
            finally:
                with self._lock:
                    self.running -= 1

        monkeypatch.setattr(tts_module, "generate", counting)


def in_flight(url: str) -> int:
    return int(httpx.get(f"{url}/ready", timeout=5).json()["in_flight"])


def wait_until(condition: Any, timeout: float, what: str) -> float:
    """Seconds until `condition()` held; fails after `timeout`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
def server(tiny_tts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, StepCounter]]:
    counter = StepCounter(monkeypatch)
    settings = Settings(
        voices_dir=tmp_path / "voices",
        warmup=False,
        default_voice="Ana Florence",
        max_concurrent=1,
        max_queued=0,
    )
    with uvicorn_thread(create_app(settings, tts_model=tiny_tts)) as url:
        yield url, counter


@pytest.mark.parametrize("fmt", ["pcm", "mp3"])
def test_closing_a_stream_cancels_the_generation(server: tuple[str, StepCounter], fmt: str) -> None:
    url, counter = server
    with httpx.Client(timeout=30) as http:
        with http.stream("POST", f"{url}/v1/tts", json={**LONG, "format": fmt, "stream": True}) as response:
            assert response.status_code == 200
            assert response.headers["transfer-encoding"] == "chunked"
            # Keep the iterator: dropping it (e.g. a `break` out of the loop) closes the response.
            chunks = response.iter_bytes()
            received = 0
            while received < 4096:
                received += len(next(chunks))
            assert in_flight(url) == 1 and counter.running == 1
            # A second stream while the only slot is taken: refused at once, not queued
            busy = http.post(f"{url}/v1/tts", json={**LONG, "stream": True})
            assert_error(busy, 503, "overloaded")
            assert busy.headers["retry-after"] == "2"
        # leaving the block closes the connection mid-stream
        seconds = wait_until(lambda: in_flight(url) == 0, 10, "the slot to be freed")
        assert counter.running == 0
    (steps,) = counter.counts
    assert steps < MAX_TOKENS / 2, f"the generation ran {steps} of {MAX_TOKENS} steps after the client left"
    print(f"{fmt}: slot freed {seconds:.2f} s after the disconnect; {steps} of {MAX_TOKENS} steps ran")
    # and the server serves the next request
    again = httpx.post(f"{url}/v1/tts", json={**LONG, "max_new_tokens": 4, "format": "wav"}, timeout=30)
    assert again.status_code == 200 and again.content[:4] == b"RIFF"


def test_leaving_a_whole_request_cancels_it(server: tuple[str, StepCounter]) -> None:
    """`stream: false`: the answer waits for the end; a client that hangs up before stops the work."""
    url, counter = server
    port = int(url.rsplit(":", 1)[1])
    body = httpx.Request("POST", f"{url}/v1/tts", json={**LONG, "stream": False}).content
    head = (
        f"POST /v1/tts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        wait_until(lambda: counter.counts and counter.counts[0] >= 8, 20, "generation to start")
    seconds = wait_until(lambda: in_flight(url) == 0, 10, "the slot to be freed")
    (steps,) = counter.counts
    assert steps < MAX_TOKENS / 2, f"the generation ran {steps} of {MAX_TOKENS} steps after the client left"
    print(f"whole: slot freed {seconds:.2f} s after the disconnect; {steps} of {MAX_TOKENS} steps ran")

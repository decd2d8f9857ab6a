"""SIGTERM against `xtts-server serve` in a subprocess: running streams finish (up to
--shutdown-timeout), nothing new is accepted, and past the timeout streams are cut and the process
exits anyway."""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from server_helpers import STOP_TIMEOUT, serve

TOKENS = 250


def stream_in_thread(url: str, body: dict, results: dict, i: int, first: threading.Event) -> threading.Thread:
    def run() -> None:
        try:
            data = b""
            with httpx.stream("POST", f"{url}/v1/tts", json=body, timeout=120) as response:
                results[i] = response.status_code
                for part in response.iter_bytes():
                    data += part
                    first.set()
            results[i] = (response.status_code, data)
        except BaseException as e:
            results[i] = e
            first.set()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_sigterm_lets_running_streams_finish(tiny_model_dir: Path, tiny_tts, tmp_path: Path) -> None:
    body = {"text": "Hello there.", "format": "pcm", "stream": True, "max_new_tokens": TOKENS}
    with serve(tiny_model_dir, tmp_path / "voices", tmp_path / "log", ["--shutdown-timeout", "60"]) as server:
        results: dict = {}
        started = [threading.Event() for _ in range(3)]
        threads = [
            stream_in_thread(server.url, {**body, "seed": i}, results, i, started[i]) for i in range(3)
        ]
        for event in started:
            assert event.wait(60)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(httpx.TransportError):  # the listening socket is closed
            httpx.get(f"{server.url}/health", timeout=5)
        for thread in threads:
            thread.join(120)
        status = server.process.wait(STOP_TIMEOUT)
        log = server.output()
    assert status in (0, -signal.SIGTERM), log
    running = re.search(r"draining: (\d+) streams running", log)
    assert running and int(running.group(1)) >= 1, log  # SIGTERM came while streams ran
    assert "Traceback" not in log and "cancelling" not in log, log
    for i in range(3):
        code, data = results[i]
        expected = tiny_tts.synthesize(
            "Hello there.", "en", tiny_tts.studio_voice("Ana Florence"), seed=i, max_new_tokens=TOKENS
        )
        assert code == 200 and len(data) == 2 * len(expected.audio), (i, len(data), len(expected.audio))


def test_past_the_shutdown_timeout_streams_are_cut(tiny_model_dir: Path, tmp_path: Path) -> None:
    body = {"text": "Hello there. " * 20, "format": "pcm", "stream": True, "max_new_tokens": 600}
    with serve(tiny_model_dir, tmp_path / "voices", tmp_path / "log", ["--shutdown-timeout", "1"]) as server:
        results: dict = {}
        first = threading.Event()
        thread = stream_in_thread(server.url, body, results, 0, first)
        assert first.wait(60)
        stopped = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        status = server.process.wait(STOP_TIMEOUT)
        seconds = time.monotonic() - stopped
        thread.join(30)
        log = server.output()
    assert status in (0, -signal.SIGTERM), log
    assert seconds < 15, (seconds, log)
    assert isinstance(results[0], httpx.RemoteProtocolError), results[0]  # cut, not a short valid body
    assert "shutdown timeout: cancelling 1 streams" in log, log

"""The event loop never waits on heavy work: while one request synthesizes or encodes a whole file,
others (a health probe, another stream) are answered at once."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest
from server_helpers import SignalEngine

import xtts_server.server.routes.speech as speech

SLOW_S = 1.5


def test_encoding_a_whole_file_does_not_block_other_requests(
    make_client, tiny_tts, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, results = threading.Event(), []
    real = speech.encode_whole

    def slow_encode(*args: Any, **kwargs: Any) -> bytes:
        entered.set()
        time.sleep(SLOW_S)  # stands for minutes of speech encoded to MP3 (~0.5 s per minute here)
        return real(*args, **kwargs)

    monkeypatch.setattr(speech, "encode_whole", slow_encode)
    signal = (0.1 * np.sin(np.arange(24000 * 2) / 7)).astype(np.float32)
    client = make_client(tts_model=SignalEngine(tiny_tts, signal), default_voice="Ana Florence")
    body = {"text": "A long text.", "format": "mp3"}
    thread = threading.Thread(target=lambda: results.append(client.post("/v1/tts", json=body)))
    thread.start()
    try:
        assert entered.wait(10)
        started = time.monotonic()
        assert client.get("/health").status_code == 200
        waited = time.monotonic() - started
        streamed = client.post("/v1/tts", json={**body, "format": "pcm", "stream": True})
        assert streamed.status_code == 200 and len(streamed.content) == 2 * len(signal)
        assert time.monotonic() - started < SLOW_S / 2
    finally:
        thread.join(30)
    assert waited < 0.3, f"/health waited {waited:.2f} s behind an encode"
    assert results[0].status_code == 200 and results[0].content[:1] == b"\xff"  # an MP3 frame

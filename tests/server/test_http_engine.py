"""The server on the batching engine (forced on, on the CPU): the same API, the same audio as the
simple path for greedy decoding, concurrent streams, cancellation freeing engine rows."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

TEXT = "Hello there, how can I help you today?"


@pytest.fixture
def engine_client(make_client):  # type: ignore[no-untyped-def]
    return make_client(default_voice="Ana Florence", engine="on", engine_slots=4)


def pcm(body: bytes) -> np.ndarray:
    return np.frombuffer(body, dtype="<i2").astype(np.float32) / 32768


def test_streamed_greedy_audio_equals_the_simple_path(engine_client: Any, make_client: Any) -> None:
    # top_k 1: both paths take the argmax, whatever their random draws.
    body = {"text": TEXT, "format": "pcm", "stream": True, "top_k": 1, "max_new_tokens": 40, "seed": 3}
    state = engine_client.app.state.server
    assert state.engine is not None
    with engine_client.stream("POST", "/v1/tts", json=body) as r:
        assert r.status_code == 200
        chunks = [c for c in r.iter_bytes() if c]
    plain = make_client(default_voice="Ana Florence", engine="off")
    assert plain.app.state.server.engine is None
    whole = plain.post("/v1/tts", json=body)
    assert whole.status_code == 200
    got, ref = pcm(b"".join(chunks)), pcm(whole.content)
    assert got.size == ref.size > 0
    assert np.abs(got - ref).max() <= 2 / 32768  # one PCM step of rounding


def test_concurrent_requests_share_the_engine(engine_client: Any) -> None:
    results: list[int] = []

    def one(i: int) -> None:
        r = engine_client.post(
            "/v1/tts", json={"text": f"Request number {i}.", "format": "pcm", "max_new_tokens": 30, "seed": i}
        )
        results.append(r.status_code if r.status_code != 200 else len(r.content))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 6 and all(n > 1000 for n in results), results
    engine = engine_client.app.state.server.engine
    for _ in range(100):  # rows are freed at the engine's next step, just after the last chunk
        if engine.active == 0 and engine.queued == 0:
            break
        threading.Event().wait(0.02)
    assert engine.active == 0 and engine.queued == 0


def test_bad_options_are_refused_before_the_engine(engine_client: Any) -> None:
    r = engine_client.post("/v1/tts", json={"text": TEXT, "max_new_tokens": 10, "min_new_tokens": 20})
    assert r.status_code == 400 and "min_new_tokens" in r.json()["error"]["message"]


def test_a_dead_engine_reports_not_ready(engine_client: Any) -> None:
    engine = engine_client.app.state.server.engine
    engine.dead = RuntimeError("simulated")
    r = engine_client.get("/ready")
    assert r.status_code == 503 and "engine" in r.json()["error"]["message"]
    engine.dead = None


def test_a_client_that_leaves_frees_its_engine_row(engine_client: Any) -> None:
    engine = engine_client.app.state.server.engine
    body = {"text": TEXT, "format": "pcm", "stream": True, "max_new_tokens": 400, "min_new_tokens": 400,
            "stream_chunk_size": 2}  # fmt: skip
    with engine_client.stream("POST", "/v1/tts", json=body) as r:
        assert r.status_code == 200
        next(r.iter_bytes())  # the first audio, then hang up
    for _ in range(200):
        if engine.active == 0:
            break
        threading.Event().wait(0.02)
    assert engine.active == 0 and engine_client.app.state.server.synth.in_flight == 0


def test_metrics_report_the_engine_rows(engine_client: Any) -> None:
    text = engine_client.get("/metrics").text
    assert "xtts_batch_capacity 4.0" in text  # the engine's slots, not the thread pool's workers


@pytest.mark.in_process  # reads the engine's configuration
def test_fused_decode_setting_reaches_the_engine(engine_client: Any, make_client: Any) -> None:
    # Default on a CPU: off. Forced on, the fused kernels (Triton's interpreter here) serve the same
    # greedy audio as the unfused engine.
    from ray_helpers import required

    assert engine_client.app.state.server.engine.runner.config.fused_batches == 0
    try:
        import triton  # noqa: F401
    except ImportError:
        if required("triton"):
            raise
        pytest.skip("needs Triton (the dev extra installs it)")
    fused = make_client(default_voice="Ana Florence", engine="on", engine_slots=2, engine_fused_batches=2)
    assert fused.app.state.server.engine.runner.config.fused_batches == 2
    body = {"text": "Hi.", "format": "pcm", "top_k": 1, "max_new_tokens": 6, "seed": 3}
    got, want = fused.post("/v1/tts", json=body), engine_client.post("/v1/tts", json=body)
    assert got.status_code == want.status_code == 200
    a, b = pcm(got.content), pcm(want.content)
    assert a.size == b.size > 0
    assert np.abs(a - b).max() <= 2 / 32768


def test_text_of_any_length_is_prepared_and_checked(engine_client: Any) -> None:
    # Short text in a named language is split on the event loop, longer text in a worker thread
    # (engine/stream.py): both speak it all, and both refuse a bad request with a 400.
    from xtts_server.engine.stream import INLINE_PREPARE_CHARS

    sizes = []
    for repeat in (1, 12):
        text = " ".join(f"Sentence {i} is about the weather today." for i in range(repeat))
        assert (len(text) <= INLINE_PREPARE_CHARS) == (repeat == 1)
        body = {"text": text, "language": "en", "format": "pcm", "max_new_tokens": 6, "min_new_tokens": 6}
        r = engine_client.post("/v1/tts", json=body)
        assert r.status_code == 200
        sizes.append(pcm(r.content).size)
        r = engine_client.post("/v1/tts", json={**body, "stream": True, "language": "xx"})
        assert r.status_code == 400 and "xx" in r.json()["error"]["message"]
    # Split into several sentences (at the language's length limit), six codes each.
    assert sizes[1] % sizes[0] == 0 and sizes[1] >= 2 * sizes[0] > 0

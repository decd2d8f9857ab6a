"""Limits and faults: per-key streams (429), queue and request timeouts, bodies that are too large or
never end, an out-of-memory or other failure in one request, draining. The server answers each
with a clear error and goes on serving; every stream it counted is given back."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from server_helpers import ENGINE_RATE, EngineProxy, GatedEngine, assert_error, uvicorn_thread, wait_ready

from xtts_server.server.app import create_app
from xtts_server.server.limits import guard_for
from xtts_server.server.settings import Settings
from xtts_server.tts import AudioChunk

KEY, OTHER = "limits-key-0123456789abcdef", "limits-other-0123456789abcd"
FAST = {"max_new_tokens": 4, "seed": 0}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class SlowEngine(EngineProxy):
    """`stream` yields `chunks` chunks of 0.1 s audio, `pause` seconds apart, until cancelled."""

    def __init__(self, tts: Any, chunks: int = 200, pause: float = 0.05) -> None:
        super().__init__(tts)
        self.chunks, self.pause = chunks, pause
        self.cancelled = threading.Event()
        self.calls = 0

    def stream(self, text: str, language: str, voice: Any, **options: Any) -> Iterator[AudioChunk]:
        self.calls += 1
        cancel = options.get("cancel")
        for i in range(self.chunks):
            if cancel is not None and cancel.is_set():
                self.cancelled.set()
                return
            time.sleep(self.pause)
            last = i == self.chunks - 1
            yield AudioChunk(np.full(2400, 0.1, np.float32), ENGINE_RATE, 0, text, last, language)


class FailingOnce(EngineProxy):
    """The first `stream` raises `error`; later ones are the real engine's."""

    def __init__(self, tts: Any, error: BaseException) -> None:
        super().__init__(tts)
        self.error: BaseException | None = error

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[AudioChunk]:
        error, self.error = self.error, None
        if error is not None:
            raise error
        yield from self._tts.stream(*args, **kwargs)


def post_in_thread(client: TestClient, body: dict, headers: dict, results: list) -> threading.Thread:
    thread = threading.Thread(
        target=lambda: results.append(client.post("/v1/tts", json=body, headers=headers))
    )
    thread.start()
    return thread


def active_streams(client: TestClient | str, headers: dict[str, str] | None = None) -> float:
    get = client.get if isinstance(client, TestClient) else lambda p, **kw: httpx.get(client + p, **kw)
    text = get("/metrics", headers=headers or {}).text
    (line,) = [x for x in text.splitlines() if x.startswith("xtts_active_streams ")]
    return float(line.split()[1])


def test_streams_per_key_get_429_beyond_the_limit(make_client, tiny_tts) -> None:  # type: ignore[no-untyped-def]
    engine = GatedEngine(tiny_tts)
    client = make_client(
        tts_model=engine, api_keys=[KEY, OTHER], max_streams_per_key=1, default_voice="Ana Florence"
    )
    body = {"text": "Hello.", "stream": True, **FAST}
    results: list = []
    threads = [post_in_thread(client, body, auth(KEY), results)]
    try:
        assert engine.entered.acquire(timeout=10)
        refused = client.post("/v1/tts", json=body, headers=auth(KEY))
        error = assert_error(refused, 429, "too_many_streams")
        assert "this API key already has 1" in error["message"]
        with client.websocket_connect("/v1/tts/ws", headers=auth(KEY)) as ws:  # WebSocket sentences too
            ws.send_json({"type": "config", "voice": "Ana Florence", **FAST})
            assert ws.receive_json() == {"type": "ready"}
            ws.send_json({"type": "text", "context_id": "a", "text": "Hi there. "})
            ws.send_json({"type": "close", "context_id": "a"})
            events = [ws.receive_json() for _ in range(3)]
            assert [e["type"] for e in events] == ["started", "error", "done"]
            assert events[1]["code"] == "too_many_streams"
        threads.append(post_in_thread(client, body, auth(OTHER), results))  # another key: admitted
        assert engine.entered.acquire(timeout=10)
        assert active_streams(client, auth(KEY)) == 2
    finally:
        engine.gate.set()
        for thread in threads:
            thread.join(60)
    assert [r.status_code for r in results] == [200, 200]
    assert active_streams(client, auth(KEY)) == 0
    assert client.post("/v1/tts", json=body, headers=auth(KEY)).status_code == 200


def test_a_request_waiting_too_long_for_its_first_audio_gets_503(make_client, tiny_tts) -> None:  # type: ignore[no-untyped-def]
    """One slot, busy for ~4 s (audio every 0.05 s); the limit is 1.5 s: the next request is refused,
    and never runs."""
    engine = SlowEngine(tiny_tts, chunks=80, pause=0.05)
    client = make_client(
        tts_model=engine, default_voice="Ana Florence", max_concurrent=1, max_queued=4, queue_timeout_s=1.5
    )
    body = {"text": "Hello.", "stream": True, "format": "pcm"}
    results: list = []
    thread = post_in_thread(client, body, {}, results)
    deadline = time.monotonic() + 10
    while engine.calls == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()
    error = assert_error(client.post("/v1/tts", json=body), 503, "overloaded")
    assert 1.4 < time.monotonic() - started < 15
    assert "within 1.5 s" in error["message"]
    thread.join(60)
    assert results[0].status_code == 200 and len(results[0].content) == 80 * 2400 * 2
    deadline = time.monotonic() + 10
    while client.get("/ready").json()["in_flight"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert engine.calls == 1  # the refused request never ran
    assert active_streams(client) == 0


def test_request_timeout_whole_stream_and_websocket(tiny_tts, tmp_path: Path) -> None:
    engine = SlowEngine(tiny_tts)
    settings = Settings(
        voices_dir=tmp_path / "voices", warmup=False, default_voice="Ana Florence", request_timeout_s=1.0
    )
    app = create_app(settings, tts_model=engine)  # type: ignore[arg-type]
    with uvicorn_thread(app) as url:
        started = time.monotonic()
        whole = httpx.post(f"{url}/v1/tts", json={"text": "Hi.", "format": "pcm"}, timeout=30)
        assert_error(whole, 504, "timeout")
        assert time.monotonic() - started < 10
        assert engine.cancelled.wait(10)  # the generation was stopped
        engine.cancelled.clear()

        received = 0
        with (
            pytest.raises(httpx.RemoteProtocolError),
            httpx.stream("POST", f"{url}/v1/tts", json={"text": "Hi.", "stream": True}, timeout=30) as r,
        ):
            assert r.status_code == 200
            for data in r.iter_bytes():
                received += len(data)
        assert received > 0  # audio came, then the stream was cut at the deadline
        assert engine.cancelled.wait(10)
        wait_for_zero(url)
    # The WebSocket: each sentence gets the limit (a connection may live long)
    app = create_app(settings, tts_model=engine)  # type: ignore[arg-type]
    with TestClient(app) as client:
        wait_ready(client)  # start-up runs in the background: a config before it ends gets not_ready
        with client.websocket_connect("/v1/tts/ws") as ws:
            ws.send_json({"type": "config", "voice": "Ana Florence", "format": "pcm"})
            assert ws.receive_json() == {"type": "ready"}
            ws.send_json({"type": "text", "context_id": "a", "text": "Hi there. "})
            ws.send_json({"type": "close", "context_id": "a"})
            seen = []
            while not seen or seen[-1]["type"] != "done":
                message = ws.receive()
                if message.get("text"):
                    seen.append(json.loads(message["text"]))
            errors = [e for e in seen if e["type"] == "error"]
            assert [e["code"] for e in errors] == ["timeout"], seen
            assert active_streams(client) == 0


def wait_for_zero(url: str) -> None:
    deadline = time.monotonic() + 10
    while active_streams(url) or httpx.get(f"{url}/ready").json()["in_flight"]:
        assert time.monotonic() < deadline, "a stream was never given back"
        time.sleep(0.05)


def raw_request(port: int, head: bytes, parts: list[bytes], pause: float = 0.0) -> bytes:
    """Send a request by hand (parts `pause` s apart) and read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head)
        for part in parts:
            time.sleep(pause)
            try:
                sock.sendall(part)
            except OSError:  # the server answered and closed early: what we want to see
                break
        out = b""
        while b"\r\n\r\n" not in out or len(out) < _response_length(out):
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def _response_length(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return 1 << 62  # no length: until the server closes


def test_bodies_that_are_too_large_or_never_end(tiny_tts, tmp_path: Path) -> None:
    settings = Settings(
        voices_dir=tmp_path / "voices",
        warmup=False,
        default_voice="Ana Florence",
        max_upload_bytes=4096,
        max_text_chars=100,
        body_timeout_s=0.5,
    )
    with uvicorn_thread(create_app(settings, tts_model=tiny_tts)) as url:
        port = int(url.rsplit(":", 1)[1])
        # a chunked upload (no Content-Length) is refused once it passes the limit, not after it ends
        sent = 0

        boundary = "b0undary"

        def endless() -> Iterator[bytes]:
            # A well-formed start, then a file that never ends: only the size can refuse it (a body
            # of bare zeros may be refused first as malformed multipart, 400, if the server reads
            # less than the limit before the parser sees it).
            nonlocal sent
            disposition = 'Content-Disposition: form-data; name="files"; filename="a.wav"'
            yield f"--{boundary}\r\n{disposition}\r\n\r\n".encode()
            while sent < 50_000_000:
                sent += 65536
                yield b"\0" * 65536

        response = httpx.post(
            f"{url}/v1/voices",
            content=endless(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=30,
        )
        assert_error(response, 413, "payload_too_large")
        assert sent < 5_000_000
        # chunked JSON likewise
        big = httpx.post(
            f"{url}/v1/tts",
            content=iter([b'{"text": "', b"a" * 200_000, b'"}']),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert_error(big, 413, "payload_too_large")
        # a body that stalls: 408 after body_timeout_s, the connection closed
        head = (
            b"POST /v1/tts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n"
        )
        started = time.monotonic()
        answer = raw_request(port, head, [b'{"text": ', b'"hello'], pause=0.3)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b'"request_timeout"' in answer
        assert time.monotonic() - started < 10
        # a slowloris upload: a byte at a time, each in time, the whole too slow
        head = (
            b"POST /v1/voices HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        part = b'--x\r\nContent-Disposition: form-data; name="files"; filename="a.wav"\r\n\r\n'
        trickle = [b"%x\r\n%s\r\n" % (len(part), part)] + [b"1\r\nx\r\n"] * 40
        answer = raw_request(port, head, trickle, pause=0.05)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        # and the server is fine
        ok = httpx.post(f"{url}/v1/tts", json={"text": "Hi.", **FAST}, timeout=30)
        assert ok.status_code == 200 and ok.content[:4] == b"RIFF"


@pytest.mark.parametrize(
    ("error", "status", "code", "message"),
    [
        (
            torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (secret detail)"),
            503,
            "out_of_memory",
            "the GPU ran out of memory for this request; retry shortly, or send shorter text",
        ),
        (RuntimeError("secret detail of a bug"), 500, "internal_error", "internal server error"),
    ],
)
def test_a_failure_in_one_request_fails_only_that_request(
    tiny_tts, tmp_path: Path, error: BaseException, status: int, code: str, message: str
) -> None:
    settings = Settings(voices_dir=tmp_path / "voices", warmup=False, default_voice="Ana Florence")
    for route, body in (("/v1/tts", {"text": "Hi.", **FAST}), ("/v1/audio/speech", {"input": "Hi."})):
        engine = FailingOnce(tiny_tts, error)
        app = create_app(settings, tts_model=engine)  # type: ignore[arg-type]
        with TestClient(app, raise_server_exceptions=False) as client:
            wait_ready(client)
            if route == "/v1/audio/speech":
                body = {**body, "model": "tts-1", "voice": "alloy", "response_format": "pcm"}
            got = assert_error(client.post(route, json=body), status, code)
            assert got["message"] == message
            again = client.post(route, json=body)  # the next request is served
            assert again.status_code == 200 and len(again.content) > 100
            assert client.get("/ready").json()["in_flight"] == 0
            assert active_streams(client) == 0


def test_draining_refuses_new_work_and_says_so(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(default_voice="Ana Florence")
    guard = guard_for(client.app.state.server)  # type: ignore[attr-defined]
    guard.draining = True
    try:
        assert_error(client.get("/ready"), 503, "shutting_down")
        assert client.get("/health").status_code == 200
        assert_error(client.post("/v1/tts", json={"text": "Hi.", **FAST}), 503, "shutting_down")
    finally:
        guard.draining = False
    assert client.post("/v1/tts", json={"text": "Hi.", **FAST}).status_code == 200

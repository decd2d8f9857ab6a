"""Hostile input: path tricks, malformed multipart and JSON, non-UTF-8, control characters, absurd
words, deep nesting, pickles, bad WebSocket frames. Each gets a clear 4xx (or is spoken), never a
500 or a crash, and nothing outside the voices directory is touched."""

from __future__ import annotations

import base64
import json
import os
import pickle
import socket
import struct
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client
from fastapi.testclient import TestClient
from server_helpers import assert_error, uvicorn_thread
from websockets.exceptions import ConnectionClosed

from xtts_server.server.app import create_app
from xtts_server.server.settings import Settings

FAST = {"max_new_tokens": 4, "seed": 0}


@pytest.fixture
def client(make_client) -> TestClient:  # type: ignore[no-untyped-def]
    """Every route capped at 4 audio tokens a sentence (the seed, Coqui and OpenAI bodies have no cap)."""
    return make_client(default_voice="Ana Florence", max_new_tokens=4)  # type: ignore[no-any-return]


def post_json(client: TestClient, path: str, body: Any) -> httpx.Response:
    """JSON as a hostile client writes it: lone surrogates escaped, any nesting."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=data, headers={"content-type": "application/json"})


def assert_spoken_or_refused(response: httpx.Response, *codes: str) -> None:
    """200, or a 4xx with one of `codes`."""
    if response.status_code != 200:
        assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
        assert response.json()["error"]["code"] in codes, response.text[:300]


def test_path_tricks_never_leave_the_voices_directory(make_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client = make_client(default_voice="Ana Florence")
    victim = tmp_path / "victim.safetensors"
    victim.write_bytes(b"not yours")
    for name in (
        "..%2Fvictim",
        "..%2F..%2Fvictim",
        "%2e%2e%2fvictim",
        "..%5Cvictim",
        "%2e%2e",
        "....%2F%2Fvictim",
        "%252e%252e%252fvictim",
        "%00",
        "victim%00.safetensors",
        "%E2%80%AEvictim",
        "a%0D%0AX-Injected:%201",
        "x" * 5000,
    ):
        for response in (client.delete(f"/v1/voices/{name}"), client.get(f"/v1/voices/{name}?latents=true")):
            assert response.status_code in (400, 403, 404), (name, response.status_code, response.text)
            assert "x-injected" not in response.headers
    assert victim.read_bytes() == b"not yours"
    data = b"RIFF0000WAVE"  # anything: the name is refused first
    for name in ("\u202eevil", "a\u200bb", "a\x00b", "..\\..\\victim", "con\n", "\ud800"):
        upload = client.post(
            "/v1/voices",
            data={"name": name.encode("utf-8", "surrogatepass")},
            files={"files": ("a.wav", data)},
        )
        assert_error(upload, 400, "invalid_request")
    assert sorted(os.listdir(tmp_path / "voices")) == []


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=abc", b"garbage"),
        ("multipart/form-data", b"--x\r\n"),
        ("multipart/form-data; boundary=abc", b'--abc\r\nContent-Disposition: form-data; name="files"'),
        ("multipart/form-data; boundary=abc", b"--abc\r\n\r\n\r\n--abc--\r\n"),
        ("multipart/form-data; boundary=" + "b" * 5000, b"--" + b"b" * 5000 + b"--\r\n"),
        ("multipart/form-data; boundary=abc", b"--abc\r\nContent-Disposition: form-data\r\n\r\nx\r\n--abc--"),
        ("application/json", b'{"name": "x"}'),
        ("text/plain", b"\xff\xfe\x00"),
    ],
)
def test_malformed_multipart(client: TestClient, content_type: str, body: bytes) -> None:
    for path in ("/v1/voices", "/clone_speaker"):
        response = client.post(path, content=body, headers={"content-type": content_type})
        assert response.status_code in (400, 422), (path, response.status_code, response.text)
        assert response.json()["error"]["code"] in ("invalid_request", "validation_error")


@pytest.mark.parametrize(
    "text",
    [
        "\x00\x01\x02 hello",
        "\x1b[31mred\x1b[0m \u202eevil\u202c",
        "\ufeff\ufeff\u200b\u200b",
        "a" * 2000,  # one absurd word
        "🎉" * 300,
        "." * 2000,
        "\u0301" * 500,  # combining marks with nothing to combine with
        "\t\n\r\x0b\x0c" * 200,
        "١٢٣٤٥٦٧٨٩٠" * 50,
    ],
)
def test_hostile_text_is_spoken_or_refused(client: TestClient, text: str) -> None:
    for path, body in (
        ("/v1/tts", {"text": text, **FAST}),
        ("/v1/tts", {"text": text, "stream": True, "format": "mp3", **FAST}),
        ("/tts_stream", {"text": text, "speaker": "Ana Florence"}),
        ("/v1/audio/speech", {"input": text, "model": "tts-1", "voice": "alloy", "max_new_tokens": 4}),
    ):
        response = post_json(client, path, body)
        assert_spoken_or_refused(
            response, "invalid_text", "invalid_request", "validation_error", "payload_too_large"
        )


@pytest.mark.parametrize(
    "body",
    [
        {"text": "\ud800 lone surrogate"},
        {"text": "hi", "voice": "\udfff"},
        {"text": "hi", "language": "\ud800"},
        b'{"text": "\xff\xfe not utf-8"}',
        b'{"text": "hi"',
        b'{"text": "hi"}}',
        b"[" * 20000,
        b'{"text":' + b"[" * 20000,
        b'{"text": "hi", "speed": 1e999}',
        b'{"text": "hi", "seed": 99999999999999999999999999999}',
        b"\x80\x04\x95\x00",  # a pickle header
        b"",
        b"null",
    ],
)
def test_broken_json_is_4xx_on_every_json_route(client: TestClient, body: Any) -> None:
    for path in ("/v1/tts", "/tts", "/tts_stream", "/v1/audio/speech"):
        response = post_json(client, path, body)  # (the seed's body has no 'voice': spoken)
        codes = ("invalid_request", "validation_error", "voice_not_found", "unsupported_language")
        assert_spoken_or_refused(response, *codes)


def test_coqui_latents_that_are_not_numbers(client: TestClient) -> None:
    tts = client.app.state.server.tts  # type: ignore[attr-defined]
    width = tts.config.args.gpt_n_model_channels
    for latent, speaker in (
        ([[float("nan")] * width] * 32, [0.0] * 512),
        ([[1e308] * width] * 32, [float("inf")] * 512),
        ([[0.0] * width] * 31, [0.0] * 512),
        ([[0.0] * width] * 32, [0.0] * 513),
        ([["x"] * width] * 32, [0.0] * 512),
    ):
        body = {"text": "Hi.", "language": "en", "gpt_cond_latent": latent, "speaker_embedding": speaker}
        data = json.dumps(body).encode()  # NaN and Infinity as Python writes them
        for path in ("/tts", "/tts_stream"):
            response = client.post(path, content=data, headers={"content-type": "application/json"})
            assert response.status_code in (400, 422), (path, response.status_code, response.text[:200])


class _Marker:
    """Unpickling this creates the marker file: proof that something was unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def test_pickles_are_never_unpickled(make_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_Marker(marker))
    voices = tmp_path / "voices"
    voices.mkdir()
    for name in ("evil.safetensors", "evil.pth", "evil.pkl"):
        (voices / name).write_bytes(payload)
    client = make_client(default_voice="Ana Florence")
    for name in ("evil.pth", "evil.pkl", "evil.wav", "evil.safetensors"):
        upload = client.post("/v1/voices", data={"name": "evil"}, files={"files": (name, payload)})
        assert_error(upload, 415, "invalid_audio")
        assert_error(client.post("/clone_speaker", files={"wav_file": (name, payload)}), 415, "invalid_audio")
    for content_type in ("application/octet-stream", "application/python-pickle", "application/json"):
        response = client.post("/v1/tts", content=payload, headers={"content-type": content_type})
        assert response.status_code in (400, 415, 422)
    latents = {"text": "Hi.", "language": "en", "gpt_cond_latent": base64.b64encode(payload).decode()}
    assert post_json(client, "/tts", {**latents, "speaker_embedding": [0.0] * 512}).status_code == 422
    with client.websocket_connect("/v1/tts/ws") as ws:
        ws.send_bytes(payload)
        assert ws.receive_json()["type"] == "error"
    assert "evil" not in [v["name"] for v in client.get("/v1/voices").json()["voices"]]
    assert not marker.exists()


def _raw_websocket(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"GET /v1/tts/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def _frame(opcode: int, payload: bytes) -> bytes:
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


def _close_code(sock: socket.socket) -> int:
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"closed without a close frame: {data!r}")
        data += chunk
        at = data.find(b"\x88")
        if at >= 0 and len(data) >= at + 4:
            return int(struct.unpack("!H", data[at + 2 : at + 4])[0])


def test_bad_websocket_frames(tiny_tts, tmp_path: Path) -> None:
    settings = Settings(voices_dir=tmp_path / "voices", warmup=False, default_voice="Ana Florence")
    app = create_app(settings, tts_model=tiny_tts)
    with uvicorn_thread(app, ws_max_size=65536) as url:
        port = int(url.rsplit(":", 1)[1])
        ws_url = url.replace("http", "ws") + "/v1/tts/ws"
        with ws_client.connect(ws_url, max_size=None) as ws:  # a message over the server's limit
            ws.send("x" * 100_000)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        with _raw_websocket(port) as sock:  # a text frame that is not UTF-8
            sock.sendall(_frame(0x1, b"\xff\xfe\xfd"))
            assert _close_code(sock) == 1007
        with _raw_websocket(port) as sock:  # a reserved opcode
            sock.sendall(_frame(0x3, b"x"))
            assert _close_code(sock) == 1002
        with ws_client.connect(ws_url) as ws:  # JSON nested too deeply, then a good session
            ws.send("[" * 60_000)
            assert json.loads(ws.recv(timeout=10))["code"] == "invalid_request"
            ws.send(json.dumps({"type": "config", "voice": "Ana Florence", **FAST}))
            assert json.loads(ws.recv(timeout=10)) == {"type": "ready"}
        assert httpx.get(f"{url}/ready").status_code == 200

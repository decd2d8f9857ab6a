"""Every status code of the error table, through HTTP, each with the one error body shape."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from server_helpers import GatedEngine, assert_error, wait_ready

from xtts_server.server.errors import ERROR_TABLE
from xtts_server.text.languages import LANGUAGES
from xtts_server.tts import XTTS

FAST = {"max_new_tokens": 8, "seed": 0}


def wav_bytes(samples: np.ndarray, rate: int = 22050) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


# --- 200 ------------------------------------------------------------------------------------------


def test_health_ready_languages_docs(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "device": "cpu", "voices": 4, "in_flight": 0}
    languages = client.get("/v1/languages").json()["languages"]
    assert set(languages) == {*LANGUAGES, "auto"} and "en" in languages
    schema = client.get("/openapi.json").json()
    paths = set(schema["paths"])
    expected = {"/v1/tts", "/v1/voices", "/v1/voices/{name}", "/v1/languages", "/health", "/ready"}
    assert expected | {"/tts", "/tts_stream"} <= paths
    assert set(schema["components"]["schemas"]["TTSRequest"]["properties"]) >= {"text", "format", "stream"}
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_the_error_table_is_covered() -> None:
    """The codes the server can answer with; the tests below reach each 4xx/503 through HTTP
    (401, 429 and 504 in test_auth.py and test_limits.py)."""
    statuses = {status for _, status, _ in ERROR_TABLE}
    assert statuses == {400, 401, 403, 404, 409, 413, 415, 429, 499, 500, 501, 503, 504}


# --- 400 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["xx", "klingon", "zz-ZZ"])
def test_unsupported_language_is_400(client: TestClient, language: str) -> None:
    response = client.post("/v1/tts", json={"text": "Hello.", "language": language, **FAST})
    error = assert_error(response, 400, "unsupported_language")
    assert language.split("-")[0] in error["message"]


def test_region_language_and_auto_are_accepted(client: TestClient) -> None:
    response = client.post("/v1/tts", json={"text": "Hello there.", "language": "en-US", **FAST})
    assert response.status_code == 200 and response.headers["x-language"] == "en"
    response = client.post("/v1/tts", json={"text": "Bonjour tout le monde.", "language": "auto", **FAST})
    assert response.status_code == 200 and response.headers["x-language"] == "fr"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"format": "vorbis"}, ["vorbis", "mp3"]),
        ({"format": "wav", "sample_rate": 12345}, ["12345", "wav"]),
        ({"format": "opus", "sample_rate": 44100}, ["44100", "opus"]),
        ({"format": "mulaw", "sample_rate": 16000}, ["16000", "8000"]),
        ({"format": "alaw_wav", "sample_rate": 24000}, ["24000", "8000"]),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_bad_format_or_rate_is_400(client: TestClient, fields: dict, words: list[str], stream: bool) -> None:
    response = client.post("/v1/tts", json={"text": "Hello.", "stream": stream, **fields, **FAST})
    error = assert_error(response, 400, "invalid_request")
    assert all(word in error["message"] for word in words), error


def test_blank_text_is_400(client: TestClient) -> None:
    error = assert_error(client.post("/v1/tts", json={"text": "  \n ", **FAST}), 400, "invalid_text")
    assert "empty" in error["message"]


def test_no_voice_and_no_default_is_400(make_client) -> None:
    client = make_client()  # no default_voice
    error = assert_error(client.post("/v1/tts", json={"text": "Hi.", **FAST}), 400, "invalid_request")
    assert "voice" in error["message"]
    assert_error(client.post("/tts", json={"text": "Hi."}), 400, "invalid_request")


def test_bad_voice_name_is_400(client: TestClient, clip_paths: list[Path]) -> None:
    data = clip_paths[1].read_bytes()
    for name in ["../x", "..\\x", "a/b", "..", ".hidden", " padded", "x" * 65, "", "   "]:
        response = client.post("/v1/voices", data={"name": name}, files={"files": ("a.wav", data)})
        error = assert_error(response, 400, "invalid_request")
        assert "voice name" in error["message"]
    # No name field at all: the same rule speaks (forms send an empty field as absent)
    error = assert_error(client.post("/v1/voices", files={"files": ("a.wav", data)}), 400, "invalid_request")
    assert "empty" in error["message"]
    assert [v["source"] for v in client.get("/v1/voices").json()["voices"]] == ["builtin"] * 4


# --- 403 / 404 / 409 ------------------------------------------------------------------------------


def test_builtin_voices_are_read_only(client: TestClient, clip_paths: list[Path]) -> None:
    error = assert_error(client.delete("/v1/voices/Ana Florence"), 403, "voice_read_only")
    assert "built-in" in error["message"]
    files = {"files": ("a.wav", clip_paths[1].read_bytes())}
    for overwrite in ("false", "true"):  # names are case-insensitive: this is Ana Florence too
        response = client.post(
            "/v1/voices", data={"name": "ana florence", "overwrite": overwrite}, files=files
        )
        assert_error(response, 403, "voice_read_only")
    assert client.get("/v1/voices/Ana Florence").json()["source"] == "builtin"


def test_unknown_voice_is_404(client: TestClient) -> None:
    error = assert_error(
        client.post("/v1/tts", json={"text": "Hi.", "voice": "Ana Florense", **FAST}), 404, "voice_not_found"
    )
    assert "Ana Florence" in error["message"]  # the close match is suggested
    assert_error(
        client.post("/v1/tts", json={"text": "Hi.", "voice": "nobody", "stream": True}),
        404,
        "voice_not_found",
    )
    assert_error(client.post("/tts", json={"text": "Hi.", "speaker": "nobody"}), 404, "voice_not_found")
    assert_error(
        client.post("/tts_stream", json={"text": "Hi.", "speaker": "nobody"}), 404, "voice_not_found"
    )
    assert_error(client.get("/v1/voices/nobody"), 404, "voice_not_found")
    assert_error(client.get("/v1/voices/nobody?latents=true"), 404, "voice_not_found")
    assert_error(client.delete("/v1/voices/nobody"), 404, "voice_not_found")


def test_unknown_route_and_method_have_our_body(client: TestClient) -> None:
    assert_error(client.get("/v2/nothing"), 404, "not_found")
    assert_error(client.post("/v1/tts/extra", json={}), 404, "not_found")
    assert_error(client.get("/v1/tts"), 405, "method_not_allowed")
    assert_error(client.put("/v1/voices/x"), 405, "method_not_allowed")


def test_existing_voice_is_409_unless_overwritten(client: TestClient, clip_paths: list[Path]) -> None:
    files = {"files": ("a.wav", clip_paths[1].read_bytes())}
    assert client.post("/v1/voices", data={"name": "Twice"}, files=files).status_code == 201
    error = assert_error(client.post("/v1/voices", data={"name": "twice"}, files=files), 409, "voice_exists")
    assert "Twice" in error["message"]
    replaced = client.post("/v1/voices", data={"name": "TWICE", "overwrite": "true"}, files=files)
    assert replaced.status_code == 201 and replaced.json()["name"] == "TWICE"
    assert [v["name"] for v in client.get("/v1/voices").json()["voices"] if v["source"] == "cloned"] == [
        "TWICE"
    ]


# --- 413 ------------------------------------------------------------------------------------------


def test_text_over_the_limit_is_413(make_client) -> None:
    client = make_client(default_voice="Ana Florence", max_text_chars=20)
    assert client.post("/v1/tts", json={"text": "x" * 20 + ".", **FAST}).status_code == 413
    error = assert_error(client.post("/v1/tts", json={"text": "y" * 21, **FAST}), 413, "payload_too_large")
    assert "21" in error["message"] and "20" in error["message"]
    for stream in (True, False):
        assert_error(
            client.post("/v1/tts", json={"text": "z" * 50, "stream": stream}), 413, "payload_too_large"
        )
    assert_error(client.post("/tts", json={"text": "z" * 50}), 413, "payload_too_large")
    assert_error(client.post("/tts_stream", json={"text": "z" * 50}), 413, "payload_too_large")


def test_upload_over_the_limit_is_413(make_client, clip_paths: list[Path], tmp_path: Path) -> None:
    client = make_client(max_upload_bytes=1024)
    data = clip_paths[1].read_bytes()
    assert len(data) > 1024
    error = assert_error(
        client.post("/v1/voices", data={"name": "Big"}, files={"files": ("a.wav", data)}),
        413,
        "payload_too_large",
    )
    assert "1024" in error["message"]
    # Two small parts whose sum passes the limit
    parts = [("files", ("a.bin", b"\0" * 600)), ("files", ("b.bin", b"\0" * 600))]
    assert_error(client.post("/v1/voices", data={"name": "Big"}, files=parts), 413, "payload_too_large")
    assert_error(client.get("/v1/voices/Big"), 404, "voice_not_found")
    assert not list((tmp_path / "voices").glob("*.safetensors"))


def test_too_many_clips_is_413(make_client, clip_paths: list[Path]) -> None:
    client = make_client(max_clips=1)
    parts = [("files", (p.name, p.read_bytes())) for p in clip_paths]
    error = assert_error(
        client.post("/v1/voices", data={"name": "Many"}, files=parts), 413, "payload_too_large"
    )
    assert "2 clips" in error["message"] and "1" in error["message"]


# --- 415 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clip", "word"),
    [
        (b"this is not audio at all" * 50, ""),
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(200), ""),
        (b"", "empty"),
        ("silent", "silent"),
        ("short", "short"),
    ],
    ids=["garbage", "broken-wav", "empty", "silent", "too-short"],
)
def test_unusable_clip_is_415_and_stores_nothing(
    client: TestClient, tmp_path: Path, clip: bytes | str, word: str
) -> None:
    if clip == "silent":
        clip = wav_bytes(np.zeros(22050 * 3, np.float32))
    elif clip == "short":
        clip = wav_bytes((0.5 * np.sin(np.arange(2000) / 5)).astype(np.float32))
    assert isinstance(clip, bytes)
    response = client.post("/v1/voices", data={"name": "Broken"}, files={"files": ("clip.wav", clip)})
    error = assert_error(response, 415, "invalid_audio")
    assert word in error["message"]
    assert_error(client.get("/v1/voices/Broken"), 404, "voice_not_found")
    assert "Broken" not in [v["name"] for v in client.get("/v1/voices").json()["voices"]]
    assert not [p for p in (tmp_path / "voices").iterdir() if not p.name.startswith(".")]


# --- 422 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "text"),
        ({"language": "en"}, "text"),
        ({"text": ""}, "text"),
        ({"text": "Hi.", "voices": "Ana"}, "voices"),
        ({"text": "Hi.", "speed": 100}, "speed"),
        ({"text": "Hi.", "speed": 0}, "speed"),
        ({"text": "Hi.", "temperature": 0}, "temperature"),
        ({"text": "Hi.", "top_p": 1.5}, "top_p"),
        ({"text": "Hi.", "max_new_tokens": 1000}, "max_new_tokens"),
        ({"text": "Hi.", "stream_chunk_size": 0}, "stream_chunk_size"),
        ({"text": "Hi.", "seed": -1}, "seed"),
        ({"text": "Hi.", "stream": "maybe"}, "stream"),
        ({"text": ["Hi."]}, "text"),
    ],
)
def test_schema_violations_are_422(client: TestClient, body: dict, field: str) -> None:
    error = assert_error(client.post("/v1/tts", json=body), 422, "validation_error")
    assert field in error["message"]


def test_malformed_bodies_are_422(client: TestClient) -> None:
    assert_error(
        client.post("/v1/tts", content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "validation_error",
    )
    assert_error(client.post("/v1/tts", json=["text"]), 422, "validation_error")
    assert_error(client.post("/tts", json={"speaker": "Ana Florence"}), 422, "validation_error")
    assert_error(client.post("/v1/voices", data={"name": "NoFiles"}), 422, "validation_error")
    assert_error(client.get("/v1/voices/Ana Florence?latents=perhaps"), 422, "validation_error")


# --- 503 ------------------------------------------------------------------------------------------


def assert_not_ready(client: TestClient, words: str) -> None:
    """Every route that needs the model answers 503 not_ready; /health still answers."""
    assert client.get("/health").status_code == 200
    ready = client.get("/ready")
    error = assert_error(ready, 503, "not_ready")
    assert words in error["message"], error
    assert ready.headers["retry-after"] == "2"
    for response in (
        client.post("/v1/tts", json={"text": "Hi.", **FAST}),
        client.post("/v1/tts", json={"text": "Hi.", "stream": True, **FAST}),
        client.post("/tts", json={"text": "Hi."}),
        client.post("/tts_stream", json={"text": "Hi."}),
        client.get("/v1/voices"),
        client.get("/v1/voices/Ana Florence"),
        client.delete("/v1/voices/x"),
        client.post("/v1/voices", data={"name": "x"}, files={"files": ("a.wav", b"RIFF")}),
    ):
        assert_error(response, 503, "not_ready")
    assert client.get("/v1/languages").status_code == 200


def test_loading_model_is_503_then_ready(make_client, tiny_model_dir: Path, monkeypatch) -> None:
    release = threading.Event()
    real_load = XTTS.load.__func__  # type: ignore[attr-defined]

    def slow_load(cls, *args, **kwargs):
        assert release.wait(30)
        return real_load(cls, *args, **kwargs)

    monkeypatch.setattr(XTTS, "load", classmethod(slow_load))
    client = make_client(tts_model=None, model_dir=tiny_model_dir, default_voice="Ana Florence", wait=False)
    try:
        assert_not_ready(client, "loading")
    finally:
        release.set()
    wait_ready(client)
    assert client.post("/v1/tts", json={"text": "Hi.", **FAST}).status_code == 200


def test_failed_model_load_is_503_with_the_reason(make_client, tmp_path: Path) -> None:
    client = make_client(tts_model=None, model_dir=tmp_path / "no-such-model", wait=False)
    deadline = time.monotonic() + 30
    while "failed" not in client.get("/ready").text:
        assert time.monotonic() < deadline, client.get("/ready").text
        time.sleep(0.05)
    assert_not_ready(client, "no-such-model")


def _run_in_thread(client: TestClient, body: dict, results: list) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.append(client.post("/v1/tts", json=body)), daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("queued", [0, 1])
def test_overload_gives_503_and_frees_slots(make_client, tiny_tts, queued: int) -> None:
    """max_concurrent=1 and max_queued=0 or 1: streams past running + queued are refused at once with
    Retry-After; the slots come back when the work ends."""
    engine = GatedEngine(tiny_tts)
    client = make_client(
        tts_model=engine, default_voice="Ana Florence", max_concurrent=1, max_queued=queued, retry_after_s=3
    )
    body = {"text": "Hello.", "stream": True, **FAST}
    results: list = []
    threads = [_run_in_thread(client, body, results)]
    try:
        assert engine.entered.acquire(timeout=10), "the first stream never started"
        if queued:  # the second waits for the worker (admitted, not yet running)
            threads.append(_run_in_thread(client, body, results))
            deadline = time.monotonic() + 10
            while client.get("/ready").json()["in_flight"] < 2:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        assert client.get("/ready").json()["in_flight"] == 1 + queued
        for refused in (
            client.post("/v1/tts", json=body),
            client.post("/v1/tts", json={**body, "stream": False}),
            client.post("/tts_stream", json={"text": "Hello."}),
        ):
            assert_error(refused, 503, "overloaded")
            assert refused.headers["retry-after"] == "3"
    finally:
        engine.gate.set()
        for thread in threads:
            thread.join(60)
    assert [r.status_code for r in results] == [200] * (1 + queued)
    assert client.get("/ready").json()["in_flight"] == 0
    assert client.post("/v1/tts", json=body).status_code == 200  # the slots are free again


def test_oversized_bodies_are_refused_from_their_length(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(default_voice="Ana Florence", max_text_chars=100, max_upload_bytes=2048)
    big = {"text": "x" * 100_000}
    response = client.post("/v1/tts", json=big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    upload = client.post(
        "/v1/voices", data={"name": "big"}, files=[("files", ("a.wav", b"\0" * 200_000, "audio/wav"))]
    )
    assert upload.status_code == 413
    assert client.get("/health").status_code == 200

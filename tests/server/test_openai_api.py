"""The OpenAI-compatible API in process: POST /v1/audio/speech (every field, format and error),
GET /v1/models, GET /v1/audio/voices, the voice map and its settings."""

from __future__ import annotations

import base64
import json
import logging

import numpy as np
import pytest
from fastapi.testclient import TestClient
from server_helpers import CODECS, assert_error, check_length, decode

from xtts_server.server.routes.openai import MODELS, OPENAI_VOICES
from xtts_server.server.settings import DEFAULT_OPENAI_VOICES, Settings

TEXT = "Hello there."
TOKENS = 8
# Our extensions pin the language, the seed and the length, so that two requests make the same audio.
BASE = {"model": "tts-1", "input": TEXT, "voice": "alloy", "language": "en", "seed": 0}


@pytest.fixture(scope="module")
def reference(tiny_tts) -> dict[str, np.ndarray]:
    """What the engine makes for TEXT with each test voice (seed 0, TOKENS tokens)."""
    out = {}
    for name in ("Claribel Dervla", "Ana Florence", "Viktor Menelaos"):
        voice = tiny_tts.studio_voice(name)
        out[name] = tiny_tts.synthesize(TEXT, "en", voice, seed=0, max_new_tokens=TOKENS).audio
    return out


@pytest.fixture
def fast(make_client) -> TestClient:
    return make_client(max_new_tokens=TOKENS)


def _pcm(data: bytes) -> np.ndarray:
    return np.frombuffer(data, "<i2").astype(np.float32) / 32767


def _same_audio(data: bytes, reference: np.ndarray) -> None:
    samples = _pcm(data)
    assert len(samples) == len(reference)
    assert np.max(np.abs(samples - reference)) <= 1.01 / 32767


def _events(body: bytes) -> list[dict[str, object]]:
    """SSE as OpenAI frames it: `data: <json>` lines, events separated by a blank line."""
    text = body.decode()
    assert text.endswith("\n\n")
    events = []
    for block in text.split("\n\n")[:-1]:
        assert block.startswith("data: ") and "\n" not in block, block
        events.append(json.loads(block[len("data: ") :]))
    return events


def test_pcm_is_24k_s16le_of_the_mapped_voice(fast: TestClient, reference) -> None:
    r = fast.post("/v1/audio/speech", json={**BASE, "response_format": "pcm"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("audio/pcm")
    assert "rate=24000" in r.headers["content-type"]
    assert r.headers["x-sample-rate"] == "24000"
    assert "content-length" not in r.headers  # streamed, as OpenAI's (chunked over HTTP)
    _same_audio(r.content, reference["Claribel Dervla"])  # alloy -> Claribel Dervla by default


def test_default_format_is_mp3(fast: TestClient, reference) -> None:
    r = fast.post("/v1/audio/speech", json=BASE)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/mpeg"
    decoded = decode(r.content, "mp3")
    assert (decoded.codec, decoded.container) == CODECS["mp3"]
    check_length("mp3", decoded, len(reference["Claribel Dervla"]), 24000, whole=False)


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_every_openai_format_decodes_to_the_right_length(fast: TestClient, reference, fmt: str) -> None:
    r = fast.post("/v1/audio/speech", json={**BASE, "response_format": fmt})
    assert r.status_code == 200, r.text
    decoded = decode(r.content, fmt, 24000)
    assert (decoded.codec, decoded.container) == CODECS[fmt]
    assert decoded.channels == 1
    check_length(fmt, decoded, len(reference["Claribel Dervla"]), 24000, whole=False)


def test_sse_framing_deltas_and_done(fast: TestClient, reference) -> None:
    r = fast.post("/v1/audio/speech", json={**BASE, "response_format": "pcm", "stream_format": "sse"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    events = _events(r.content)
    *deltas, done = events
    assert deltas and all(set(e) == {"type", "audio"} for e in deltas)
    assert all(e["type"] == "speech.audio.delta" for e in deltas)
    audio = b"".join(base64.b64decode(str(e["audio"])) for e in deltas)
    _same_audio(audio, reference["Claribel Dervla"])
    assert done["type"] == "speech.audio.done"
    usage = done["usage"]
    assert isinstance(usage, dict)
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_sse_carries_the_requested_format(fast: TestClient, reference) -> None:
    r = fast.post("/v1/audio/speech", json={**BASE, "stream_format": "sse"})  # mp3 by default
    *deltas, done = _events(r.content)
    audio = b"".join(base64.b64decode(str(e["audio"])) for e in deltas)
    check_length("mp3", decode(audio, "mp3"), len(reference["Claribel Dervla"]), 24000, whole=False)
    assert done["type"] == "speech.audio.done"


def test_voice_forms(fast: TestClient, reference) -> None:
    """An OpenAI name in any case, an object with an id, and our own voice names."""
    for voice, ours in [
        ("ALLOY", "Claribel Dervla"),
        ({"id": "alloy"}, "Claribel Dervla"),
        ("Viktor Menelaos", "Viktor Menelaos"),
        ({"id": "ana florence"}, "Ana Florence"),
        ("fable", "Viktor Menelaos"),
    ]:
        r = fast.post("/v1/audio/speech", json={**BASE, "voice": voice, "response_format": "pcm"})
        assert r.status_code == 200, (voice, r.text)
        _same_audio(r.content, reference[ours])


def test_mapped_voice_missing_falls_back_to_the_first_studio_voice(
    fast: TestClient, reference, caplog: pytest.LogCaptureFixture
) -> None:
    """ "nova" maps to a release voice the test model lacks: its first studio voice speaks."""
    assert DEFAULT_OPENAI_VOICES["nova"] not in reference
    with caplog.at_level(logging.WARNING, logger="xtts_server.server.routes.openai"):
        for _ in range(2):
            r = fast.post("/v1/audio/speech", json={**BASE, "voice": "nova", "response_format": "pcm"})
            assert r.status_code == 200, r.text
            _same_audio(r.content, reference["Ana Florence"])
    # once per process (a fresh process logs it again)
    assert sum("nova" in rec.getMessage() for rec in caplog.records) <= 1


def test_configured_map_and_language(make_client, reference) -> None:
    client = make_client(
        max_new_tokens=TOKENS, openai_voices={"alloy": "Viktor Menelaos", "Mine": "Ana Florence"}
    )
    r = client.post("/v1/audio/speech", json={**BASE, "response_format": "pcm"})
    _same_audio(r.content, reference["Viktor Menelaos"])
    r = client.post("/v1/audio/speech", json={**BASE, "voice": "mine", "response_format": "pcm"})
    _same_audio(r.content, reference["Ana Florence"])
    # not in the configured map any more: unknown
    r = client.post("/v1/audio/speech", json={**BASE, "voice": "echo"})
    assert_error(r, 404, "voice_not_found")


def test_openai_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XTTS_OPENAI_VOICES", '{"alloy": "Daisy Studious"}')
    monkeypatch.setenv("XTTS_OPENAI_LANGUAGE", "de")
    settings = Settings()
    assert settings.openai_voices == {"alloy": "Daisy Studious"}
    assert settings.openai_language == "de"
    monkeypatch.delenv("XTTS_OPENAI_VOICES")
    monkeypatch.delenv("XTTS_OPENAI_LANGUAGE")
    assert Settings().openai_voices == DEFAULT_OPENAI_VOICES
    assert Settings().openai_language == "auto"
    assert set(DEFAULT_OPENAI_VOICES) == set(OPENAI_VOICES)
    assert len(set(DEFAULT_OPENAI_VOICES.values())) == len(OPENAI_VOICES)  # distinct voices


def test_language_auto_by_default_then_setting_then_field(make_client) -> None:
    body = {"model": "tts-1", "input": "Bonjour, comment allez-vous aujourd'hui ?", "voice": "alloy"}
    auto = make_client(max_new_tokens=TOKENS)
    r = auto.post("/v1/audio/speech", json={**body, "response_format": "pcm"})
    assert r.status_code == 200, r.text
    assert r.headers["x-language"] == "fr"  # detected
    r = auto.post("/v1/audio/speech", json={**body, "language": "es", "response_format": "pcm"})
    assert r.headers["x-language"] == "es"
    pinned = make_client(max_new_tokens=TOKENS, openai_language="de")
    r = pinned.post("/v1/audio/speech", json={**body, "response_format": "pcm"})
    assert r.headers["x-language"] == "de"


def test_accepted_fields_and_extras(fast: TestClient, reference) -> None:
    """Any model name, instructions (ignored), unknown fields (ignored), speed in range."""
    for model in ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "xtts-v2", "kokoro"):
        body = {
            **BASE,
            "model": model,
            "instructions": "Speak cheerfully.",
            "response_format": "pcm",
            "download_format": "mp3",  # Kokoro-FastAPI's
            "stream": True,
            "volume_multiplier": 1,
        }
        r = fast.post("/v1/audio/speech", json=body)
        assert r.status_code == 200, (model, r.text)
        _same_audio(r.content, reference["Claribel Dervla"])
    for speed in (0.25, 4.0):
        r = fast.post("/v1/audio/speech", json={**BASE, "speed": speed, "response_format": "pcm"})
        assert r.status_code == 200, r.text
        assert len(r.content) > 0


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"voice": "nobody"}, 404, "voice_not_found"),
        ({"voice": {"name": "alloy"}}, 422, "validation_error"),
        ({"voice": {"id": ""}}, 422, "validation_error"),
        ({"response_format": "mulaw"}, 422, "validation_error"),  # ours, not OpenAI's
        ({"response_format": "ogg"}, 422, "validation_error"),
        ({"speed": 0.2}, 422, "validation_error"),
        ({"speed": 4.5}, 422, "validation_error"),
        ({"stream_format": "chunks"}, 422, "validation_error"),
        ({"input": ""}, 422, "validation_error"),
        ({"input": None}, 422, "validation_error"),
        ({"model": " "}, 422, "validation_error"),
        ({"model": None}, 422, "validation_error"),
        ({"language": "xx"}, 400, "unsupported_language"),
        ({"input": "x" * 5001}, 413, "payload_too_large"),
        ({"max_new_tokens": 0}, 422, "validation_error"),
    ],
)
def test_errors(fast: TestClient, change: dict[str, object], status: int, code: str) -> None:
    r = fast.post("/v1/audio/speech", json={**BASE, **change})
    assert_error(r, status, code)


def test_missing_required_fields(fast: TestClient) -> None:
    for field in ("model", "input", "voice"):
        body = {k: v for k, v in BASE.items() if k != field}
        error = assert_error(fast.post("/v1/audio/speech", json=body), 422, "validation_error")
        assert field in error["message"]


def test_not_ready_is_503(make_client, tmp_path) -> None:
    client = make_client(tts_model=None, model_dir=tmp_path / "missing", wait=False)
    assert_error(client.post("/v1/audio/speech", json=BASE), 503, "not_ready")


def test_models(fast: TestClient) -> None:
    body = fast.get("/v1/models").json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == list(MODELS)
    assert set(MODELS) >= {"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "xtts-v2"}
    for m in body["data"]:
        assert m["object"] == "model" and isinstance(m["created"], int) and m["owned_by"]
    assert fast.get("/v1/models/tts-1").json()["id"] == "tts-1"
    assert_error(fast.get("/v1/models/whisper-1"), 404, "not_found")


def test_voices_list(fast: TestClient) -> None:
    voices = fast.get("/v1/audio/voices").json()["voices"]
    by_id = {v["id"]: v for v in voices}
    assert [v["id"] for v in voices[: len(OPENAI_VOICES)]] == list(OPENAI_VOICES)
    assert by_id["alloy"] == {"id": "alloy", "name": "alloy", "source": "openai", "voice": "Claribel Dervla"}
    assert by_id["nova"]["voice"] == "Ana Florence"  # fallback shown
    for name in ("Ana Florence", "Claribel Dervla", "Daisy Studious", "Viktor Menelaos"):
        assert by_id[name]["source"] == "builtin" and by_id[name]["voice"] == name

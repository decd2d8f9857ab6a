"""Coqui's xtts-streaming-server API: the exact requests pipecat's XTTSService sends, /clone_speaker,
/tts with latents, /studio_speakers, /languages, the 0-frame WAV header, shape errors and the
seed bodies on the same paths."""

from __future__ import annotations

import base64
import io
import wave
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from server_helpers import assert_error, decode, uvicorn_thread

from xtts_server.server.app import create_app
from xtts_server.server.settings import Settings

TOKENS = 8
VOICE = "Ana Florence"


def pipecat_body(speakers: dict[str, dict[str, Any]], text: str, voice: str = VOICE) -> dict[str, Any]:
    """What pipecat's XTTSService.run_tts posts (pipecat/services/xtts/tts.py)."""
    return {
        "text": text.replace(".", "").replace("*", ""),
        "language": "en",
        "speaker_embedding": speakers[voice]["speaker_embedding"],
        "gpt_cond_latent": speakers[voice]["gpt_cond_latent"],
        "add_wav_header": False,
        "stream_chunk_size": 20,
    }


def possible_lengths(tiny_tts) -> set[int]:
    """No seed in coqui's bodies, so the model may stop early: the audio of 1..TOKENS latents."""
    frames = tiny_tts.model.hifigan_decoder.num_frames
    return {frames(n) * 256 for n in range(1, TOKENS + 1)}


def empty_wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(24000)
        out.writeframes(b"")
    return buffer.getvalue()


@pytest.fixture
def fast(make_client) -> TestClient:
    return make_client(default_voice=VOICE, max_new_tokens=TOKENS)


def test_studio_speakers_and_languages(fast: TestClient, tiny_tts) -> None:
    speakers = fast.get("/studio_speakers").json()
    assert sorted(speakers) == tiny_tts.studio_voices and speakers
    width = tiny_tts.config.args.gpt_n_model_channels
    for name, entry in speakers.items():
        assert set(entry) == {"speaker_embedding", "gpt_cond_latent"}
        voice = tiny_tts.studio_voice(name)
        latent = np.array(entry["gpt_cond_latent"], dtype=np.float32)
        assert latent.shape == (32, width)
        assert len(entry["speaker_embedding"]) == 512
        np.testing.assert_array_equal(latent, voice.gpt_cond_latent.reshape(32, width).numpy())
        np.testing.assert_array_equal(
            np.array(entry["speaker_embedding"], dtype=np.float32),
            voice.speaker_embedding.reshape(-1).numpy(),
        )
    assert fast.get("/languages").json() == list(tiny_tts.languages)


def test_studio_speakers_empty_when_the_model_has_none(make_client, tiny_tts) -> None:
    from server_helpers import EngineProxy

    class NoStudio(EngineProxy):
        studio_voices: tuple[str, ...] = ()

    client = make_client(tts_model=NoStudio(tiny_tts))
    assert client.get("/studio_speakers").json() == {}


def test_pipecat_requests(fast: TestClient, tiny_tts) -> None:
    speakers = fast.get("/studio_speakers").json()
    response = fast.post("/tts_stream", json=pipecat_body(speakers, "Hello there. *Nice* to meet you."))
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "audio/wav"
    data = response.content
    assert data[:4] != b"RIFF" and len(data) % 2 == 0  # add_wav_header false: raw s16le only
    decoded = decode(data, "pcm", 24000)
    assert decoded.length in possible_lengths(tiny_tts)
    assert 0.001 < float(np.sqrt(np.mean(decoded.samples**2))) < 1


def test_wav_header_is_what_wave_writes_for_0_frames(fast: TestClient, tiny_tts) -> None:
    speakers = fast.get("/studio_speakers").json()
    body = {**pipecat_body(speakers, "Hello."), "stream_chunk_size": "3"}  # coqui's own type: a string
    del body["add_wav_header"]  # default true
    response = fast.post("/tts_stream", json=body)
    assert response.status_code == 200, response.text[:300]
    header = empty_wav()
    assert len(header) == 44 and header[4:8] == (36).to_bytes(4, "little") and header[40:44] == bytes(4)
    assert response.content[:44] == header
    pcm = response.content[44:]
    assert len(pcm) // 2 in possible_lengths(tiny_tts)


@pytest.mark.in_process  # seeds this process's RNG
def test_latents_by_value_equal_the_voice_by_name(fast: TestClient) -> None:
    """A studio voice's latents sent by value make the same audio as the voice named (the seed body),
    with the engine's global RNG seeded alike (coqui bodies carry no seed)."""
    import torch

    speakers = fast.get("/studio_speakers").json()
    torch.manual_seed(99)
    by_value = fast.post("/tts_stream", json=pipecat_body(speakers, "Hello"))
    torch.manual_seed(99)
    by_name = fast.post("/tts_stream", json={"text": "Hello", "speaker": VOICE, "language": "en"})
    assert by_value.status_code == by_name.status_code == 200
    assert by_value.content == by_name.content and len(by_value.content) > 0


@pytest.mark.in_process  # seeds this process's RNG
def test_clone_speaker_round_trip(fast: TestClient, clip_paths) -> None:
    """Latents from /clone_speaker fed to /tts_stream make the same audio as a stored voice cloned from
    the same clip (the engine's global RNG seeded alike: coqui bodies carry no seed)."""
    clip = clip_paths[0].read_bytes()
    cloned = fast.post("/clone_speaker", files={"wav_file": ("a.wav", clip, "audio/wav")})
    assert cloned.status_code == 200, cloned.text[:300]
    latents = cloned.json()
    assert set(latents) == {"gpt_cond_latent", "speaker_embedding"}
    assert np.array(latents["gpt_cond_latent"]).shape[0] == 32 and len(latents["speaker_embedding"]) == 512
    stored = fast.post("/v1/voices", data={"name": "Same Clip"}, files={"files": ("a.wav", clip)})
    assert stored.status_code == 201
    exported = fast.get("/v1/voices/Same Clip", params={"latents": True}).json()
    np.testing.assert_array_equal(np.array(exported["gpt_cond_latent"]), np.array(latents["gpt_cond_latent"]))
    np.testing.assert_array_equal(
        np.array(exported["speaker_embedding"]), np.array(latents["speaker_embedding"])
    )
    # Coqui bodies carry no seed: seed the engine's sampling the same way for both requests.
    import torch

    torch.manual_seed(1234)
    by_value = fast.post(
        "/tts_stream",
        json={"text": "Hello", "language": "en", **latents, "add_wav_header": False, "stream_chunk_size": 20},
    )
    torch.manual_seed(1234)
    by_name = fast.post("/tts_stream", json={"text": "Hello", "speaker": "Same Clip", "language": "en"})
    assert by_value.status_code == by_name.status_code == 200
    assert by_value.content == by_name.content and len(by_value.content) > 0
    # the by-value voice was not stored
    names = [v["name"] for v in fast.get("/v1/voices").json()["voices"]]
    assert names.count("Same Clip") == 1 and len(names) == len(set(names))


def test_clone_speaker_errors(make_client) -> None:
    client = make_client(max_upload_bytes=1024)
    assert_error(
        client.post("/clone_speaker", files={"wav_file": ("a.wav", b"x" * 4096)}), 413, "payload_too_large"
    )
    client = make_client()
    assert_error(
        client.post("/clone_speaker", files={"wav_file": ("a.wav", b"not audio")}), 415, "invalid_audio"
    )
    assert_error(client.post("/clone_speaker", files={"wav_file": ("a.wav", b"")}), 415, "invalid_audio")
    assert client.post("/clone_speaker").status_code == 422


def test_tts_coqui_body_returns_base64_wav(fast: TestClient, tiny_tts) -> None:
    speakers = fast.get("/studio_speakers").json()
    body = {
        k: v
        for k, v in pipecat_body(speakers, "Hello.").items()
        if k not in ("add_wav_header", "stream_chunk_size")
    }
    response = fast.post("/tts", json=body)
    assert response.status_code == 200, response.text[:300]
    encoded = response.json()
    assert isinstance(encoded, str)
    wav = base64.b64decode(encoded, validate=True)
    with wave.open(io.BytesIO(wav)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24000)
        assert w.getnframes() in possible_lengths(tiny_tts)
        assert len(w.readframes(w.getnframes())) == 2 * w.getnframes()


def test_seed_bodies_still_work(fast: TestClient) -> None:
    whole = fast.post("/tts", json={"text": "Hello.", "speaker": VOICE, "language": "en"})
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/wav"
    assert whole.content[:4] == b"RIFF"
    stream = fast.post("/tts_stream", json={"text": "Hello.", "speaker": VOICE, "language": "en"})
    assert stream.status_code == 200
    assert stream.headers["content-type"] == "audio/L16; rate=24000; channels=1"


@pytest.mark.parametrize("path", ["/tts", "/tts_stream"])
def test_shape_errors(fast: TestClient, path: str) -> None:
    speakers = fast.get("/studio_speakers").json()
    good = pipecat_body(speakers, "Hello")
    latent = np.array(good["gpt_cond_latent"])
    # latents of another width, another count, a wrong speaker embedding: 400
    for bad in (
        {"gpt_cond_latent": latent[:, :-1].tolist()},
        {"gpt_cond_latent": latent[:-1].tolist()},
        {"speaker_embedding": good["speaker_embedding"][:-1]},
    ):
        error = assert_error(fast.post(path, json={**good, **bad}), 400, "invalid_request")
        assert "shape" in error["message"]
    # neither shape: 422 naming both
    for body in ({"language": "en"}, {"text": "Hi", "speaker": VOICE, **{"add_wav_header": False}}, [1, 2]):
        error = assert_error(fast.post(path, json=body), 422, "validation_error")
        assert "Coqui" in error["message"] and "seed" in error["message"]
    # Coqui shape with a missing or wrong field: 422 naming it
    missing = {k: v for k, v in good.items() if k != "gpt_cond_latent"}
    assert (
        "gpt_cond_latent" in assert_error(fast.post(path, json=missing), 422, "validation_error")["message"]
    )
    if path == "/tts_stream":
        bad_size = {**good, "stream_chunk_size": "twenty"}
        message = assert_error(fast.post(path, json=bad_size), 422, "validation_error")["message"]
        assert "stream_chunk_size" in message


def test_pipecat_against_live_server(tiny_tts, tmp_path) -> None:
    """Over real HTTP (uvicorn): GET /studio_speakers once, then streamed POST /tts_stream, read
    in pieces as pipecat's aiohttp loop does."""
    settings = Settings(voices_dir=tmp_path / "voices", warmup=False, max_new_tokens=TOKENS)
    with uvicorn_thread(create_app(settings, tts_model=tiny_tts)) as url:
        speakers = httpx.get(f"{url}/studio_speakers", timeout=30).json()
        body = pipecat_body(speakers, "Hello there.", voice=sorted(speakers)[-1])
        data = b""
        with httpx.stream("POST", f"{url}/tts_stream", json=body, timeout=60) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "audio/wav"
            for piece in response.iter_bytes():
                data += piece
    assert len(data) // 2 in possible_lengths(tiny_tts) and len(data) % 2 == 0


def test_release_sized_latents_pass_the_body_limit(fast: TestClient, tiny_tts) -> None:
    """A voice by value at the release's width (32 x 1024, ~0.9 MB of JSON) is read, not refused
    as an oversized body: the tiny model (another width) answers with the shape error."""
    assert tiny_tts.config.args.gpt_n_model_channels != 1024
    rng = np.random.default_rng(0)
    body = {
        "text": "Hello",
        "language": "en",
        "gpt_cond_latent": rng.standard_normal((32, 1024)).astype(np.float32).tolist(),
        "speaker_embedding": rng.standard_normal(512).astype(np.float32).tolist(),
    }
    for path in ("/tts", "/tts_stream"):
        error = assert_error(fast.post(path, json=body), 400, "invalid_request")
        assert "1024" in error["message"]

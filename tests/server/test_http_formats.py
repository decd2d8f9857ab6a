"""Every output format through POST /v1/tts, whole and streamed, decoded by FFmpeg (PyAV): rate,
channels, length against the audio of the generated tokens, headers; and the seed endpoints."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import soxr
from fastapi.testclient import TestClient
from server_helpers import (
    CODECS,
    CONTENT_TYPES,
    DEFAULT_RATES,
    check_length,
    decode,
    opus_input_rate,
)

from xtts_server.audio.formats import FORMAT_NAMES, SAMPLE_RATES

TEXT = "Hello there."
TOKENS = 8
REQUEST = {"text": TEXT, "seed": 0, "max_new_tokens": TOKENS, "stream_chunk_size": 3}
LOSSLESS = ("pcm", "wav", "flac", "mulaw", "alaw", "mulaw_wav", "alaw_wav")


@dataclass(frozen=True)
class Reference:
    audio: np.ndarray  # float32 [N] at 24 kHz: what the engine makes for REQUEST
    tokens: int


@pytest.fixture(scope="module")
def reference(tiny_tts) -> Reference:
    voice = tiny_tts.studio_voice("Ana Florence")
    out = tiny_tts.synthesize(TEXT, "en", voice, seed=0, max_new_tokens=TOKENS)
    (codes,) = out.codes
    # The random model does not stop by itself within a few tokens: every token is generated,
    # and the vocoder makes num_frames(tokens) frames of 256 samples from their latents.
    assert len(codes) == TOKENS
    assert len(out.audio) == tiny_tts.model.hifigan_decoder.num_frames(TOKENS) * 256
    return Reference(out.audio, TOKENS)


@pytest.fixture
def fast(make_client) -> TestClient:
    return make_client(default_voice="Ana Florence", max_new_tokens=TOKENS)


def _at(audio: np.ndarray, rate: int) -> np.ndarray:
    return audio if rate == 24000 else soxr.resample(audio, 24000, rate, quality="HQ")


def _check_content(fmt: str, samples: np.ndarray, reference: np.ndarray, rate: int) -> None:
    """Lossless formats carry the engine's samples (to 16-bit, or G.711's ~1/64 steps); lossy ones
    at least carry audio at the reference's level."""
    expected = _at(reference, rate)
    if fmt in LOSSLESS:
        n = min(len(samples), len(expected))
        step = 1 / 32768 if fmt in ("pcm", "wav", "flac") else 0.04
        # Resampling (one pass here, a stream there) may differ in the last bits
        tolerance = step if rate == 24000 else step + 2e-3
        np.testing.assert_allclose(samples[:n], expected[:n], atol=tolerance, rtol=0.05 if step > 0.01 else 0)
    else:
        ratio = np.sqrt(np.mean(samples**2) / np.mean(expected**2))
        assert 0.5 < ratio < 2.0, ratio


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("fmt", FORMAT_NAMES)
def test_every_format(fast: TestClient, reference: Reference, fmt: str, stream: bool) -> None:
    response = fast.post("/v1/tts", json={**REQUEST, "format": fmt, "stream": stream})
    assert response.status_code == 200, response.text[:300]
    rate = DEFAULT_RATES[fmt]
    assert response.headers["content-type"] == CONTENT_TYPES[fmt].format(rate=rate)
    assert response.headers["x-language"] == "en"
    assert response.headers["x-sample-rate"] == str(rate)
    if stream:
        assert "content-length" not in response.headers  # chunked: the length is not known up front
    decoded = decode(response.content, fmt, rate)
    assert (decoded.codec, decoded.container) == CODECS[fmt]
    assert decoded.channels == 1
    if fmt == "opus":  # decoders play Opus at 48 kHz; the encoder's rate is in the OpusHead
        assert decoded.sample_rate == 48000
        assert opus_input_rate(response.content) == rate
    else:
        assert decoded.sample_rate == rate
    check_length(fmt, decoded, len(reference.audio), rate, whole=not stream)
    if fmt != "opus":
        _check_content(fmt, decoded.samples[0], reference.audio, rate)
    if fmt in ("wav", "mulaw_wav", "alaw_wav") and not stream:  # a whole WAV has real sizes
        data = response.content
        assert int.from_bytes(data[4:8], "little") == len(data) - 8


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("rate", SAMPLE_RATES)
def test_pcm_at_every_rate(fast: TestClient, reference: Reference, rate: int, stream: bool) -> None:
    response = fast.post("/v1/tts", json={**REQUEST, "format": "pcm", "sample_rate": rate, "stream": stream})
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == f"audio/pcm; rate={rate}; channels=1; format=s16le"
    assert response.headers["x-sample-rate"] == str(rate)
    assert len(response.content) % 2 == 0
    decoded = decode(response.content, "pcm", rate)
    check_length("pcm", decoded, len(reference.audio), rate, whole=not stream)
    _check_content("pcm", decoded.samples[0], reference.audio, rate)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac"])
def test_other_rates_in_containers(fast: TestClient, reference: Reference, fmt: str) -> None:
    """The container says the requested rate (not the engine's)."""
    response = fast.post("/v1/tts", json={**REQUEST, "format": fmt, "sample_rate": 16000, "stream": True})
    assert response.status_code == 200
    decoded = decode(response.content, fmt)
    assert decoded.sample_rate == 16000 and decoded.channels == 1
    check_length(fmt, decoded, len(reference.audio), 16000, whole=False)


def test_stream_and_whole_carry_the_same_samples(fast: TestClient, reference: Reference) -> None:
    """Chunked or not, the same samples (the streamed vocoder equals the whole one to float
    rounding: at most 1 LSB apart after 16-bit rounding)."""
    whole = np.frombuffer(fast.post("/v1/tts", json={**REQUEST, "format": "pcm"}).content, "<i2")
    expected = np.round(np.clip(reference.audio, -1, 1) * 32767).astype(np.int32)
    assert len(whole) == len(expected) and np.abs(whole - expected).max() <= 1
    for chunk_size in (1, 20):
        body = {**REQUEST, "format": "pcm", "stream": True, "stream_chunk_size": chunk_size}
        streamed = np.frombuffer(fast.post("/v1/tts", json=body).content, "<i2")
        assert len(streamed) == len(expected) and np.abs(streamed - expected).max() <= 1


def _possible_lengths(tiny_tts) -> set[int]:
    """Without a seed the model may stop early: the audio of 1..TOKENS latents."""
    frames = tiny_tts.model.hifigan_decoder.num_frames
    return {frames(n) * 256 for n in range(1, TOKENS + 1)}


def test_seed_tts_returns_wav(fast: TestClient, tiny_tts) -> None:
    response = fast.post("/tts", json={"text": TEXT, "speaker": "Claribel Dervla", "language": "en"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    assert response.content[:4] == b"RIFF" and response.content[8:12] == b"WAVE"
    decoded = decode(response.content, "wav")
    assert (decoded.sample_rate, decoded.channels, decoded.codec) == (24000, 1, "pcm_s16le")
    assert decoded.length in _possible_lengths(tiny_tts)
    # the default voice when no speaker is named
    assert fast.post("/tts", json={"text": TEXT}).status_code == 200


def test_seed_tts_stream_is_raw_l16(fast: TestClient, tiny_tts) -> None:
    response = fast.post("/tts_stream", json={"text": TEXT, "speaker": "Ana Florence", "language": "en"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/L16; rate=24000; channels=1"
    assert response.headers["x-language"] == "en"
    data = response.content
    assert data[:4] != b"RIFF" and len(data) % 2 == 0
    decoded = decode(data, "pcm", 24000)
    assert decoded.length in _possible_lengths(tiny_tts)
    assert 0.001 < float(np.sqrt(np.mean(decoded.samples**2))) < 1

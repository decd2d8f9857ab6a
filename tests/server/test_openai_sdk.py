"""The OpenAI-compatible API against a live uvicorn server, through the official `openai` SDK and
exactly the requests pipecat's OpenAITTSService and LiveKit's openai.TTS send (reference notes
servers-and-clients.md §7b, §7c): paths, JSON, voice names, formats, SSE framing.

The server caps every sentence at TOKENS audio tokens (the random model never stops by itself), so
each request makes exactly num_frames(TOKENS) * 256 samples whatever the voice or language.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import openai
import pytest
from openai._streaming import SSEDecoder
from server_helpers import check_length, decode, uvicorn_thread

from xtts_server.server.app import create_app
from xtts_server.server.routes.openai import OPENAI_VOICES
from xtts_server.server.settings import Settings

TOKENS = 8
TEXT = "Hello there, how are you?"


@pytest.fixture(scope="module")
def base_url(tiny_tts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(voices_dir=tmp_path_factory.mktemp("voices"), warmup=False, max_new_tokens=TOKENS)
    with uvicorn_thread(create_app(settings, tts_model=tiny_tts)) as url:
        yield url + "/v1"


@pytest.fixture(scope="module")
def samples(tiny_tts) -> int:
    return int(tiny_tts.model.hifigan_decoder.num_frames(TOKENS) * 256)


def _client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="not-needed", max_retries=0)


@pytest.mark.parametrize("fmt", ["pcm", "mp3"])
def test_sdk_streaming_response(base_url: str, samples: int, fmt: Literal["pcm", "mp3"]) -> None:
    with _client(base_url).audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=TEXT, response_format=fmt
    ) as response:
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.headers["content-type"].startswith("audio/pcm" if fmt == "pcm" else "audio/mpeg")
        data = b"".join(response.iter_bytes())
    check_length(fmt, decode(data, fmt, 24000), samples, 24000, whole=False)


def test_sdk_sse(base_url: str, samples: int) -> None:
    """stream_format="sse" through the SDK; the events read with the SDK's own SSE decoder."""
    with _client(base_url).audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="coral", input=TEXT, response_format="pcm", stream_format="sse"
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(SSEDecoder().iter_bytes(response.iter_bytes()))
    assert all(e.event is None for e in events)  # data-only events, as OpenAI's
    payloads = [json.loads(e.data) for e in events]
    *deltas, done = payloads
    assert {p["type"] for p in deltas} == {"speech.audio.delta"}
    audio = b"".join(base64.b64decode(p["audio"]) for p in deltas)
    assert len(audio) == 2 * samples
    assert done["type"] == "speech.audio.done"
    assert set(done["usage"]) == {"input_tokens", "output_tokens", "total_tokens"}


def test_sdk_errors(base_url: str) -> None:
    client = _client(base_url)
    with pytest.raises(openai.NotFoundError) as caught:
        client.audio.speech.create(model="tts-1", voice="nobody", input=TEXT)
    assert "nobody" in caught.value.message
    with pytest.raises(openai.UnprocessableEntityError):
        client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, speed=9.0)


def test_sdk_models(base_url: str) -> None:
    ids = [m.id for m in _client(base_url).models.list()]
    assert {"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "xtts-v2"} <= set(ids)


def test_pipecat_openai_tts_service_requests(base_url: str, samples: int) -> None:
    """pipecat: AsyncOpenAI, with_streaming_response, {input, model gpt-4o-mini-tts, voice (one of
    the 13 it validates), response_format pcm, instructions?, speed?}, read as 24 kHz s16le."""

    async def one(client: openai.AsyncOpenAI, voice: str, extra: dict[str, Any]) -> bytes:
        async with client.audio.speech.with_streaming_response.create(
            input=TEXT, model="gpt-4o-mini-tts", voice=voice, response_format="pcm", **extra
        ) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("audio/pcm")
            return b"".join([chunk async for chunk in r.iter_bytes(4800)])

    async def main() -> list[bytes]:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)
        async with client:
            first = [await one(client, "alloy", {"instructions": "Be warm.", "speed": 1.0})]
            rest = await asyncio.gather(*(one(client, v, {}) for v in OPENAI_VOICES))
            return first + list(rest)

    for data in asyncio.run(main()):
        assert len(data) == 2 * samples


@pytest.mark.parametrize(
    ("model", "stream_format", "fmt"),
    [("gpt-4o-mini-tts", "sse", "mp3"), ("tts-1", "audio", "mp3"), ("gpt-4o-mini-tts", "sse", "pcm")],
)
def test_livekit_openai_tts_requests(
    base_url: str, samples: int, model: str, stream_format: str, fmt: str
) -> None:
    """LiveKit: POST {base_url}/audio/speech {input, model, voice "ash", response_format, speed,
    stream_format: sse unless tts-1/tts-1-hd}; the parser picked by the response Content-Type."""
    body = {
        "input": TEXT,
        "model": model,
        "voice": "ash",
        "response_format": fmt,
        "speed": 1.0,
        "stream_format": stream_format,
    }
    timeout = httpx.Timeout(30, connect=15, read=5)
    with httpx.stream("POST", f"{base_url}/audio/speech", json=body, timeout=timeout) as r:
        assert r.status_code == 200
        content_type = r.headers["content-type"].split(";")[0].strip()
        lines = list(r.iter_lines()) if content_type == "text/event-stream" else None
        raw = b"" if lines is not None else r.read()
    if stream_format == "sse":
        assert content_type == "text/event-stream"
        assert lines is not None
        audio = b""
        done = None
        for line in lines:  # LiveKit reads `data: ` lines and decodes "audio" (or "delta")
            if not line.startswith("data: "):
                assert line == ""
                continue
            event = json.loads(line[len("data: ") :])
            if event["type"] == "speech.audio.delta":
                audio += base64.b64decode(event.get("audio") or event["delta"])
            elif event["type"] == "speech.audio.done":
                done = event
        assert done is not None and done["usage"]["output_tokens"] > 0
        raw = audio
    else:
        assert content_type == "audio/mpeg"  # in LiveKit's list of raw audio types
    check_length(fmt, decode(raw, fmt, 24000), samples, 24000, whole=False)

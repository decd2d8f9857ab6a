"""The OpenAI-compatible API: POST /v1/audio/speech, GET /v1/models, GET /v1/audio/voices.

What OpenAI clients (the `openai` SDK, pipecat's OpenAITTSService, LiveKit's openai.TTS) send works
unchanged with `base_url` pointed here:
- `voice`: one of our voices, or an OpenAI voice name mapped to one by `Settings.openai_voices`
  (a mapped voice missing from the model falls back to its first studio voice, logged once).
- `response_format` pcm is raw 24 kHz s16le mono, like OpenAI's; the default is mp3.
- `stream_format` "audio" (default): the encoded bytes, chunked as they are generated; "sse":
  `data: {"type":"speech.audio.delta","audio":<base64>}` per chunk, then
  `data: {"type":"speech.audio.done","usage":{...}}`.
- OpenAI sends no language: `Settings.openai_language` ("auto" = detect) unless the `language`
  extension field says otherwise.
Errors keep this server's one shape, {"error": {"code", "message"}} (OpenAI's SDK reads `message`).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response, StreamingResponse

from xtts_server.audio.formats import StreamEncoder, parse_format
from xtts_server.errors import VoiceNotFound
from xtts_server.server import limits
from xtts_server.server.deps import State
from xtts_server.server.routes.speech import streaming_response
from xtts_server.server.schemas_openai import OpenAISpeechRequest
from xtts_server.server.state import ServerState, SpeakRequest

logger = logging.getLogger(__name__)

router = APIRouter(tags=["openai"])

OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)
MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "xtts-v2")
_CREATED = 1_700_000_000  # a fixed "created" time for the model list (OpenAI's shape wants one)

# Audio codes per second of speech: one code per 1024 samples of the 22.05 kHz code rate.
_CODES_PER_SECOND = 22050 / 1024

_warned: set[tuple[str, str]] = set()


def _openai_map(state: ServerState) -> dict[str, str]:
    return {k.strip().lower(): v for k, v in state.settings.openai_voices.items()}


def _fallback(state: ServerState, alias: str, mapped: str) -> str:
    studio = state.voices.list(builtin=True)
    if not studio:
        raise VoiceNotFound(
            f"voice {alias!r} maps to {mapped!r}, which this server lacks, and it has no studio voice"
        )
    name = studio[0].name
    if (alias, mapped) not in _warned:
        _warned.add((alias, mapped))
        logger.warning("OpenAI voice %r maps to %r, which this model lacks: using %r", alias, mapped, name)
    return name


def resolve_voice(state: ServerState, name: str) -> str:
    """The stored voice a request's `voice` names: ours first (a voice cloned as "alloy" wins),
    then the OpenAI map. Raises VoiceNotFound for anything else."""
    store = state.voices
    if name in store:
        return name
    mapped = _openai_map(state).get(name.strip().lower())
    if mapped is None:
        raise VoiceNotFound(
            f"no voice named {name!r}: use one of OpenAI's ({', '.join(OPENAI_VOICES)}) "
            f"or one of GET /v1/audio/voices"
        )
    return mapped if mapped in store else _fallback(state, name, mapped)


def _sse(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


async def _sse_response(state: ServerState, req: SpeakRequest, fmt_name: str) -> StreamingResponse:
    fmt = parse_format(fmt_name)
    first, rest = await limits.speak(state, req)  # limits, metrics, then state.speak
    encoder = StreamEncoder(fmt, first.sample_rate)
    tts = state.tts

    def delta(data: bytes) -> bytes:
        return _sse({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")})

    async def body() -> AsyncIterator[bytes]:
        finished = False
        samples = len(first.audio)
        try:
            if data := encoder.encode(first.audio):
                yield delta(data)
            async for chunk in rest:
                samples += len(chunk.audio)
                if data := encoder.encode(chunk.audio):
                    yield delta(data)
            tail = encoder.finish()
            finished = True
            if tail:
                yield delta(tail)
            input_tokens = len(tts.tokenize(req.text, first.language))
            output_tokens = round(samples / first.sample_rate * _CODES_PER_SECOND)  # estimate
            usage = {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            }
            yield _sse({"type": "speech.audio.done", "usage": usage})
        finally:
            if not finished:
                encoder.close()
            await rest.aclose()

    headers = {
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        "X-Language": first.language,
        "X-Sample-Rate": str(fmt.sample_rate),
    }
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


AUDIO_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "content": {
            "audio/mpeg": {},
            "audio/pcm": {},
            "audio/wav": {},
            "audio/ogg": {},
            "audio/flac": {},
            "audio/aac": {},
            "text/event-stream": {},
        },
        "description": "audio bytes (stream_format audio) or server-sent events (stream_format sse)",
    }
}


@router.post("/v1/audio/speech", responses=AUDIO_RESPONSES, response_class=Response)
async def speech(body: OpenAISpeechRequest, state: State, request: Request) -> Response:
    """OpenAI's text to speech: streamed as generated, in any of OpenAI's formats."""
    voice = resolve_voice(state, body.voice_name)
    language = body.language or state.settings.openai_language
    req = SpeakRequest(body.input, language, voice, body.options())
    if body.stream_format == "sse":
        return await _sse_response(state, req, body.response_format)
    return await streaming_response(state, req, parse_format(body.response_format))


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _CREATED, "owned_by": "xtts-server"}


@router.get("/v1/models")
async def list_models() -> dict[str, Any]:
    """OpenAI's model list: every name is accepted and served by the one XTTS v2 model."""
    return {"object": "list", "data": [_model(m) for m in MODELS]}


@router.get("/v1/models/{model_id}")
async def get_model(model_id: str) -> dict[str, Any]:
    if model_id not in MODELS:
        raise HTTPException(404, f"no model {model_id!r}; models: {', '.join(MODELS)}")
    return _model(model_id)


@router.get("/v1/audio/voices")
async def list_openai_voices(state: State) -> dict[str, Any]:
    """The OpenAI names with the voice each speaks with, then this server's voices."""
    mapping = _openai_map(state)
    voices: list[dict[str, Any]] = []
    # OpenAI's names in their order, then extra names an operator added
    aliases = [a for a in OPENAI_VOICES if a in mapping] + sorted(set(mapping) - set(OPENAI_VOICES))
    for alias in aliases:
        target = resolve_voice(state, alias)
        voices.append({"id": alias, "name": alias, "source": "openai", "voice": target})
    for info in state.voices.list():
        voices.append({"id": info.name, "name": info.name, "source": info.source, "voice": info.name})
    return {"voices": voices}

"""POST /v1/tts (native); POST /tts and POST /tts_stream with the seed server's body or coqui's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from xtts_server.audio.formats import parse_format
from xtts_server.server.deps import State
from xtts_server.server.routes.coqui import (
    CoquiStreamingRequest,
    CoquiTTSRequest,
    coqui_stream,
    coqui_tts,
    parse_body,
)
from xtts_server.server.routes.speech import streaming_response, whole_response
from xtts_server.server.schemas import SeedTTSRequest, TTSRequest
from xtts_server.server.state import SpeakRequest

router = APIRouter()

SEED_STREAM_TYPE = "audio/L16; rate=24000; channels=1"  # what the seed's users know (little-endian samples)

AUDIO_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "content": {"audio/wav": {}, "audio/mpeg": {}, "application/octet-stream": {}},
        "description": "audio",
    }
}


@router.post("/v1/tts", tags=["speech"], responses=AUDIO_RESPONSES, response_class=Response)
async def tts(body: TTSRequest, state: State, request: Request) -> Response:
    """Speak `text`: the whole file (`stream: false`) or a chunked stream (`stream: true`)."""
    fmt = parse_format(body.format, body.sample_rate)
    req = SpeakRequest(body.text, body.language, body.voice, body.options(), body.stream_chunk_size)
    if body.stream:
        return await streaming_response(state, req, fmt)
    return await whole_response(state, req, fmt, request)


def _either_body(coqui: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a body that is one of two shapes (parsed by hand: see coqui.parse_body)."""
    schemas = [coqui.model_json_schema(), SeedTTSRequest.model_json_schema()]
    content = {"application/json": {"schema": {"oneOf": schemas}}}
    return {"requestBody": {"required": True, "content": content}}


@router.post(
    "/tts",
    tags=["seed", "coqui"],
    responses=AUDIO_RESPONSES,
    response_class=Response,
    openapi_extra=_either_body(CoquiTTSRequest),
)
async def seed_tts(state: State, request: Request) -> Response:
    """Seed body {text, speaker, language}: the WAV itself (not a path on the server). Coqui body
    {speaker_embedding, gpt_cond_latent, text, language}: a JSON string, the WAV in base64."""
    body = await parse_body(request, CoquiTTSRequest)
    if isinstance(body, CoquiTTSRequest):
        return await coqui_tts(state, body, request)
    req = SpeakRequest(body.text, body.language, body.speaker, {})
    return await whole_response(state, req, parse_format("wav"), request)


@router.post(
    "/tts_stream",
    tags=["seed", "coqui"],
    responses=AUDIO_RESPONSES,
    response_class=Response,
    openapi_extra=_either_body(CoquiStreamingRequest),
)
async def seed_tts_stream(state: State, request: Request) -> Response:
    """Seed body: raw 16-bit PCM, `audio/L16; rate=24000; channels=1`. Coqui body (latents,
    add_wav_header, stream_chunk_size): `audio/wav`, a 0-frame WAV header unless add_wav_header is
    false, then raw s16le mono 24 kHz chunks."""
    body = await parse_body(request, CoquiStreamingRequest)
    if isinstance(body, CoquiStreamingRequest):
        return await coqui_stream(state, body)
    assert isinstance(body, SeedTTSRequest)
    req = SpeakRequest(body.text, body.language, body.speaker, {})
    return await streaming_response(state, req, parse_format("pcm", 24000), SEED_STREAM_TYPE)

"""POST /v1/tts (native) and the seed server's POST /tts and POST /tts_stream."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from xtts_server.audio.formats import parse_format
from xtts_server.server.deps import State
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


@router.post("/tts", tags=["seed"], responses=AUDIO_RESPONSES, response_class=Response)
async def seed_tts(body: SeedTTSRequest, state: State, request: Request) -> Response:
    """The seed server's endpoint: the WAV itself (not a path on the server)."""
    req = SpeakRequest(body.text, body.language, body.speaker, {})
    return await whole_response(state, req, parse_format("wav"), request)


@router.post("/tts_stream", tags=["seed"], responses=AUDIO_RESPONSES, response_class=Response)
async def seed_tts_stream(body: SeedTTSRequest, state: State) -> Response:
    """The seed server's streaming endpoint: raw 16-bit PCM, `audio/L16; rate=24000; channels=1`."""
    req = SpeakRequest(body.text, body.language, body.speaker, {})
    return await streaming_response(state, req, parse_format("pcm", 24000), SEED_STREAM_TYPE)

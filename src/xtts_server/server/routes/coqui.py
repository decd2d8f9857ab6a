"""Coqui's xtts-streaming-server API, so its clients (pipecat's XTTSService, the demo) work unchanged.

POST /clone_speaker, GET /studio_speakers and GET /languages live here; POST /tts and POST /tts_stream
share their paths with the seed server's bodies, so routes/tts.py dispatches to the helpers below.
Voices travel by value: the latents in each body are used for that request only, never stored.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import wave
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, ValidationError, field_validator

from xtts_server.audio.formats import parse_format
from xtts_server.inference.voice import Voice
from xtts_server.server.deps import State
from xtts_server.server.routes.speech import streaming_response, whole_response
from xtts_server.server.routes.voices import read_clips
from xtts_server.server.schemas import SeedTTSRequest
from xtts_server.server.state import ServerState, SpeakRequest
from xtts_server.voices.codec import voice_from_json, voice_to_json
from xtts_server.voices.engine import model_signature

router = APIRouter(tags=["coqui"])

SAMPLE_RATE = 24000  # what coqui's server sends: s16le mono at the vocoder's rate
# Fields only the Coqui bodies have: any of them picks the Coqui shape.
COQUI_FIELDS = frozenset({"speaker_embedding", "gpt_cond_latent", "add_wav_header", "stream_chunk_size"})
SHAPES = (
    "a Coqui body {text, language, speaker_embedding, gpt_cond_latent[, add_wav_header, stream_chunk_size]} "
    "or a seed body {text[, speaker, language]}"
)


class CoquiTTSRequest(BaseModel):
    """Coqui's TTSInputs: the voice by value."""

    speaker_embedding: list[float] = Field(description="[512], as /clone_speaker or /studio_speakers give")
    gpt_cond_latent: list[list[float]] = Field(description="[32][width]")
    text: str
    language: str


class CoquiStreamingRequest(CoquiTTSRequest):
    """Coqui's StreamingInputs."""

    add_wav_header: bool = Field(default=True, description="start with a WAV header saying 0 frames")
    # Coqui declares a string and casts it with int(); pipecat sends an int: both are accepted.
    stream_chunk_size: int = Field(default=20, ge=1, le=200, description="audio tokens per chunk")

    @field_validator("stream_chunk_size", mode="before")
    @classmethod
    def _cast(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise ValueError(f"stream_chunk_size must be a whole number, got {value!r}") from None
        return value


def _validation_error(message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body",), "msg": message, "type": "value_error"}])


async def parse_body(request: Request, coqui: type[CoquiTTSRequest]) -> CoquiTTSRequest | SeedTTSRequest:
    """The body as the Coqui shape (any Coqui-only field present) or the seed shape (`text` and no
    Coqui field); anything else is a 422 naming both."""
    try:
        data = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _validation_error(f"the body is not valid JSON ({exc}); send {SHAPES}") from exc
    except RecursionError:  # hostile nesting ([[[[...): refused, not a crash
        raise _validation_error(f"the body's JSON is nested too deeply; send {SHAPES}") from None
    if not isinstance(data, dict):
        raise _validation_error(f"the body must be a JSON object: {SHAPES}")
    is_coqui = bool(COQUI_FIELDS & data.keys())
    if is_coqui and "speaker" in data:
        raise _validation_error(f"'speaker' and latents in one body: send {SHAPES}")
    if not is_coqui and "text" not in data:
        raise _validation_error(f"neither body shape: send {SHAPES}")
    try:
        if is_coqui:
            return coqui.model_validate(data)
        return SeedTTSRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc


def request_voice(state: ServerState, body: CoquiTTSRequest) -> Voice:
    """The body's latents as a Voice for this request (400 if they do not fit the loaded model)."""
    data = {"gpt_cond_latent": body.gpt_cond_latent, "speaker_embedding": body.speaker_embedding}
    return voice_from_json(data, model_signature(state.tts))


def wav_header() -> bytes:
    """What Python's `wave` writes for 0 frames of 16-bit mono 24 kHz (RIFF and data sizes from 0 frames),
    which coqui's server sends before the raw chunks."""
    return wav_bytes(b"")


def wav_bytes(pcm: bytes) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm)
    return buffer.getvalue()


async def coqui_stream(state: ServerState, body: CoquiStreamingRequest) -> StreamingResponse:
    """Raw s16le mono 24 kHz chunks, after a 0-frame WAV header if `add_wav_header`; `audio/wav`."""
    req = SpeakRequest(body.text, body.language, request_voice(state, body), {}, body.stream_chunk_size)
    response = await streaming_response(state, req, parse_format("pcm", SAMPLE_RATE), "audio/wav")
    if body.add_wav_header:
        inner = response.body_iterator

        async def with_header() -> AsyncIterator[str | bytes | memoryview]:
            try:
                yield wav_header()
                async for data in inner:
                    yield data
            finally:
                await inner.aclose()  # type: ignore[attr-defined]  # an async generator: stops the synthesis

        response.body_iterator = with_header()
    return response


async def coqui_tts(state: ServerState, body: CoquiTTSRequest, request: Request) -> JSONResponse:
    """A JSON string: the base64 of a complete 24 kHz 16-bit mono WAV."""
    req = SpeakRequest(body.text, body.language, request_voice(state, body), {})
    whole = await whole_response(state, req, parse_format("pcm", SAMPLE_RATE), request)
    return JSONResponse(base64.b64encode(wav_bytes(bytes(whole.body))).decode("ascii"))


@router.post("/clone_speaker")
async def clone_speaker(
    state: State,
    wav_file: Annotated[UploadFile, File(description="a reference clip (wav, mp3, flac, ogg, ...)")],
) -> dict[str, Any]:
    """Latents from one clip, not stored: {"gpt_cond_latent": [[...]], "speaker_embedding": [...]}.
    Values are float32 (coqui rounds to float16), so feeding them back reproduces a stored clone."""
    tts = state.tts
    ((_, data),) = await read_clips([wav_file], state.settings.max_upload_bytes)
    voice = await state.synth.run(lambda: tts.clone_voice([data]))
    return await asyncio.to_thread(voice_to_json, voice)


def _studio_speakers(state: ServerState) -> bytes:
    tts = state.tts
    speakers = {name: voice_to_json(tts.studio_voice(name)) for name in tts.studio_voices}
    return json.dumps(speakers).encode()


@router.get("/studio_speakers")
async def studio_speakers(state: State) -> Response:
    """Every built-in voice's latents by name ({} if the model has none)."""
    state.tts  # noqa: B018  # 503 while loading, before the thread
    body = await asyncio.to_thread(_studio_speakers, state)
    return Response(body, media_type="application/json")


@router.get("/languages")
async def languages(state: State) -> list[str]:
    """The model's languages, as its config.json lists them (coqui's answer)."""
    return list(state.tts.languages)


__all__ = [
    "CoquiStreamingRequest",
    "CoquiTTSRequest",
    "coqui_stream",
    "coqui_tts",
    "parse_body",
    "router",
    "wav_header",
]

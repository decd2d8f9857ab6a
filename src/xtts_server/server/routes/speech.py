"""Shared response building: a synthesis as a whole file or as a chunked stream in any format."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from xtts_server.audio.formats import AudioFormat, StreamEncoder, encode_whole
from xtts_server.server import limits
from xtts_server.server.state import ServerState, SpeakRequest
from xtts_server.tts import AudioChunk


def _headers(first: AudioChunk, fmt: AudioFormat) -> dict[str, str]:
    return {"X-Language": first.language, "X-Sample-Rate": str(fmt.sample_rate)}


async def whole_response(
    state: ServerState, req: SpeakRequest, fmt: AudioFormat, request: Request
) -> Response:
    """Synthesize everything, then answer with one complete file."""
    first, rest = await limits.speak(state, req)  # limits, metrics, then state.speak
    parts = [first.audio]
    try:
        async for chunk in rest:
            parts.append(chunk.audio)
            if await request.is_disconnected():  # nobody will read the answer: stop the work
                break
    finally:
        await rest.aclose()
    # Off the event loop: a long text's MP3/AAC/Opus takes ~10 ms per second of audio to encode,
    # seconds for minutes of speech, which would stall every other response meanwhile.
    body = await asyncio.to_thread(encode_whole, np.concatenate(parts), fmt, first.sample_rate)
    return Response(body, media_type=fmt.media_type, headers=_headers(first, fmt))


async def streaming_response(
    state: ServerState, req: SpeakRequest, fmt: AudioFormat, media_type: str | None = None
) -> StreamingResponse:
    """A chunked response whose first bytes leave as soon as the first audio exists. Errors in the
    request surface before the response starts (the first chunk is awaited first)."""
    first, rest = await limits.speak(state, req)  # limits, metrics, then state.speak
    encoder = StreamEncoder(fmt, first.sample_rate)

    async def body() -> AsyncIterator[bytes]:
        finished = False
        try:
            data = encoder.encode(first.audio)
            if data:
                yield data
            async for chunk in rest:
                data = encoder.encode(chunk.audio)
                if data:
                    yield data
            tail = encoder.finish()
            finished = True
            if tail:
                yield tail
        finally:
            if not finished:
                encoder.close()
            await rest.aclose()  # a client that went away cancels the generation here

    return StreamingResponse(body(), media_type=media_type or fmt.media_type, headers=_headers(first, fmt))

"""Voices: clone from uploaded clips, list, show (latents on request), delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import JSONResponse

from xtts_server.errors import InvalidAudio, InvalidRequest
from xtts_server.server.deps import State
from xtts_server.server.errors import PayloadTooLarge
from xtts_server.voices.clips import ClipInfo, clip_seconds
from xtts_server.voices.names import validate_name

router = APIRouter(prefix="/v1/voices", tags=["voices"])

_READ_BLOCK = 1 << 20


async def read_clips(files: list[UploadFile], limit: int) -> list[tuple[str, bytes]]:
    """The uploads' bytes, refusing as soon as the total passes `limit` (also used by /clone_speaker)."""
    out, total = [], 0
    for i, upload in enumerate(files):
        parts = []
        while block := await upload.read(_READ_BLOCK):
            total += len(block)
            if total > limit:
                raise PayloadTooLarge(f"the clips exceed this server's upload limit of {limit} bytes")
            parts.append(block)
        data = b"".join(parts)
        if not data:
            raise InvalidAudio(f"clip {i + 1} ({upload.filename or 'unnamed'}) is empty")
        out.append((upload.filename or f"clip-{i + 1}", data))
    return out


@router.post("", status_code=201)
async def create_voice(
    state: State,
    files: Annotated[
        list[UploadFile], File(description="1 or more reference clips (wav, mp3, flac, ogg, ...)")
    ],
    # Not required by the schema: forms send an empty field as absent, and an empty name deserves
    # the name rule (400), not "field required".
    name: Annotated[str, Form(description="the new voice's name")] = "",
    overwrite: Annotated[bool, Form(description="replace a stored voice of that name")] = False,
) -> dict[str, Any]:
    """Clone a voice from 1..N clips and store it (it survives restarts)."""
    validate_name(name)  # before the expensive part
    limit = state.settings.max_clips
    if not files:
        raise InvalidRequest("send at least one clip in the 'files' field")
    if len(files) > limit:
        raise PayloadTooLarge(f"{len(files)} clips sent; this server accepts at most {limit} per voice")
    store, tts = state.voices, state.tts
    clips = await read_clips(files, state.settings.max_upload_bytes)
    voice = await state.synth.run(lambda: tts.clone_voice([data for _, data in clips]))
    infos = [ClipInfo(filename, clip_seconds(data)) for filename, data in clips]
    info = store.add(name, voice, source="cloned", clips_info=infos, overwrite=overwrite)
    return info.to_dict()


@router.get("")
async def list_voices(state: State) -> dict[str, Any]:
    return {"voices": [info.to_dict() for info in state.voices.list()]}


@router.get("/{name}")
async def get_voice(
    name: str,
    state: State,
    latents: Annotated[bool, Query(description="include gpt_cond_latent and speaker_embedding")] = False,
) -> dict[str, Any]:
    store = state.voices
    if latents:
        return store.export(name)
    return store.info(name).to_dict()


@router.delete("/{name}")
async def delete_voice(name: str, state: State) -> JSONResponse:
    info = state.voices.delete(name)
    return JSONResponse({"deleted": info.name})

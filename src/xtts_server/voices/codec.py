"""A voice as bytes on disk (safetensors, never pickle) and as JSON lists on the wire.

File format (one file per voice, `<slug>_<hash>.safetensors`):
  tensors   gpt_cond_latent   float32 [1, 32, width]
            speaker_embedding float32 [1, 512, 1]
  metadata  format = "xtts-server/voice", version = "1",
            voice  = JSON of VoiceInfo.to_record() (name, source, created, model, clips, origin)
Any safetensors reader can open it; the metadata travels inside the same file, so one rename
replaces tensors and record together.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError

from xtts_server.errors import InvalidRequest
from xtts_server.inference.voice import Voice
from xtts_server.voices.info import ModelSignature, VoiceInfo

FORMAT = "xtts-server/voice"
VERSION = "1"
TENSOR_NAMES = ("gpt_cond_latent", "speaker_embedding")
MAX_HEADER_BYTES = 1 << 20  # a voice's header is a few hundred bytes; a larger one is not ours
MAX_FILE_BYTES = 64 << 20  # a voice at width 1024 is ~130 KB


class CorruptVoiceFile(ValueError):
    """The bytes are not a voice file this version can read."""


def encode_voice(voice: Voice, info: VoiceInfo) -> bytes:
    tensors = {
        "gpt_cond_latent": voice.gpt_cond_latent.detach().to("cpu", torch.float32).contiguous(),
        "speaker_embedding": voice.speaker_embedding.detach().to("cpu", torch.float32).contiguous(),
    }
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "voice": json.dumps(info.to_record(), ensure_ascii=False),
    }
    return safetensors.torch.save(tensors, metadata=metadata)


def decode_voice(data: bytes) -> tuple[VoiceInfo, Voice]:
    """Parse a voice file; raises CorruptVoiceFile saying what is wrong."""
    if len(data) > MAX_FILE_BYTES:
        raise CorruptVoiceFile(f"{len(data)} bytes is far too large for a voice")
    if len(data) < 8:
        raise CorruptVoiceFile("the file is truncated (no safetensors header)")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > min(MAX_HEADER_BYTES, len(data) - 8):
        raise CorruptVoiceFile("the file is truncated or not a safetensors file (bad header length)")
    try:
        header = json.loads(data[8 : 8 + header_len])
        metadata = header.get("__metadata__") or {}
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise CorruptVoiceFile(f"the safetensors header is not valid JSON ({exc})") from exc
    if metadata.get("format") != FORMAT:
        raise CorruptVoiceFile(f"not an xtts-server voice file (format {metadata.get('format')!r})")
    if metadata.get("version") != VERSION:
        raise CorruptVoiceFile(
            f"voice file version {metadata.get('version')!r} is not supported by this version "
            f"(it reads version {VERSION}); it was probably written by a newer xtts-server"
        )
    try:
        info = VoiceInfo.from_record(json.loads(metadata.get("voice", "")))
    except (json.JSONDecodeError, ValueError) as exc:
        raise CorruptVoiceFile(f"the voice record is unreadable ({exc})") from exc
    try:
        tensors = safetensors.torch.load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CorruptVoiceFile(f"the tensors are unreadable ({exc})") from exc
    if sorted(tensors) != sorted(TENSOR_NAMES):
        raise CorruptVoiceFile(f"expected the tensors {list(TENSOR_NAMES)}, found {sorted(tensors)}")
    if any(not t.is_floating_point() for t in tensors.values()):
        raise CorruptVoiceFile("the voice tensors are not floating point")
    voice = Voice(
        gpt_cond_latent=tensors["gpt_cond_latent"].float(),
        speaker_embedding=tensors["speaker_embedding"].float(),
    )
    return info, voice


def incompatibility(voice: Voice, signature: ModelSignature | None) -> str | None:
    """Why these tensors cannot be used with the model (None if they can)."""
    latent, speaker = voice.gpt_cond_latent, voice.speaker_embedding
    if signature is not None:
        if tuple(latent.shape) != signature.latent_shape:
            return (
                f"gpt_cond_latent has shape {list(latent.shape)}, the model needs "
                f"{list(signature.latent_shape)} (made with a model of another width?)"
            )
        if tuple(speaker.shape) != signature.speaker_shape:
            return (
                f"speaker_embedding has shape {list(speaker.shape)}, the model needs "
                f"{list(signature.speaker_shape)}"
            )
    else:
        if latent.dim() != 3 or latent.shape[0] != 1 or latent.numel() == 0:
            return f"gpt_cond_latent must have shape [1, latents, width], got {list(latent.shape)}"
        if speaker.dim() != 3 or speaker.shape[0] != 1 or speaker.shape[2] != 1 or speaker.numel() == 0:
            return f"speaker_embedding must have shape [1, dim, 1], got {list(speaker.shape)}"
    if not (torch.isfinite(latent).all() and torch.isfinite(speaker).all()):
        return "the voice tensors contain NaN or infinite values"
    return None


def voice_to_json(voice: Voice) -> dict[str, Any]:
    """Latents as plain lists, in the layout of coqui's XTTS server (/clone_speaker, /studio_speakers):
    gpt_cond_latent [latents][width], speaker_embedding [dim]; float32 values."""
    return {
        "gpt_cond_latent": voice.gpt_cond_latent.detach()
        .float()
        .cpu()
        .reshape(voice.gpt_cond_latent.shape[-2], voice.gpt_cond_latent.shape[-1])
        .tolist(),
        "speaker_embedding": voice.speaker_embedding.detach().float().cpu().reshape(-1).tolist(),
    }


def voice_from_json(data: Any, signature: ModelSignature | None = None) -> Voice:
    """The inverse of `voice_to_json`; also takes the unsqueezed layouts ([1, 32, width], [1, 512, 1]).
    Raises InvalidRequest if the lists are malformed or do not fit the model."""
    if not isinstance(data, dict) or not all(k in data for k in TENSOR_NAMES):
        raise InvalidRequest(f"a voice as JSON needs the keys {list(TENSOR_NAMES)}")
    try:
        latent = torch.tensor(data["gpt_cond_latent"], dtype=torch.float32)
        speaker = torch.tensor(data["speaker_embedding"], dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InvalidRequest(f"the voice latents must be (nested) lists of numbers: {exc}") from exc
    if latent.dim() == 0 or speaker.dim() == 0 or not math.prod(latent.shape) or not math.prod(speaker.shape):
        raise InvalidRequest("the voice latents are empty")
    voice = Voice(
        gpt_cond_latent=latent.reshape(1, -1, latent.shape[-1]), speaker_embedding=speaker.reshape(1, -1, 1)
    )
    reason = incompatibility(voice, signature)
    if reason is not None:
        raise InvalidRequest(f"these latents cannot be used with the loaded model: {reason}")
    return voice

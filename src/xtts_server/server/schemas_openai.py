"""Request body of the OpenAI-compatible POST /v1/audio/speech.

OpenAI's fields are validated as OpenAI documents them; clients also send fields of their own
(other servers' extensions), so unknown fields are accepted and ignored. Our sampling knobs
(temperature, seed, max_new_tokens, ...) and `language` are accepted as extensions.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from xtts_server.server.schemas import GenerationFields

OPENAI_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")


class VoiceRef(BaseModel):
    """A voice object as newer OpenAI SDKs send it: {"id": "..."}."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)


class OpenAISpeechRequest(GenerationFields):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="any value (tts-1, tts-1-hd, gpt-4o-mini-tts, xtts-v2, ...)")
    input: str = Field(min_length=1, description="what to say")
    voice: str | VoiceRef = Field(
        description="an OpenAI voice name (mapped by the server) or one of our voices; or {'id': name}"
    )
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = Field(
        default="mp3", description="pcm = raw 24 kHz signed 16-bit little-endian mono, as OpenAI's"
    )
    instructions: str | None = Field(default=None, description="accepted and ignored (XTTS takes no prompt)")
    stream_format: Literal["audio", "sse"] = Field(
        default="audio", description="audio: the bytes, chunked; sse: base64 chunks as server-sent events"
    )
    language: str | None = Field(
        default=None, description="extension: a language code or 'auto' (default: setting openai_language)"
    )

    @field_validator("model")
    @classmethod
    def _model_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("model must not be empty")
        return value

    @property
    def voice_name(self) -> str:
        return self.voice.id if isinstance(self.voice, VoiceRef) else self.voice

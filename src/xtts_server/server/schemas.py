"""Request and response bodies of the native API and the seed's endpoints."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_TOKENS = 602  # the release's limit per sentence


class GenerationFields(BaseModel):
    """Sampling knobs; unset means config.json's default."""

    temperature: float | None = Field(default=None, ge=0.01, le=5, description="softmax temperature")
    top_k: int | None = Field(default=None, ge=0, le=1026, description="0 disables")
    top_p: float | None = Field(default=None, gt=0, le=1)
    repetition_penalty: float | None = Field(default=None, ge=0.01, le=100)
    length_penalty: float | None = Field(default=None, description="accepted for compatibility; no effect")
    speed: float = Field(default=1.0, ge=0.25, le=4.0, description="1.0 = the model's pace")
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1, description="same seed, same audio")
    max_new_tokens: int | None = Field(
        default=None, ge=1, le=MAX_TOKENS, description="audio tokens per sentence"
    )
    min_new_tokens: int = Field(
        default=0, ge=0, le=MAX_TOKENS, description="audio tokens before the model may stop (benchmarks)"
    )

    def options(self) -> dict[str, Any]:
        fields = ("temperature", "top_k", "top_p", "repetition_penalty", "length_penalty", "speed", "seed")
        out = {k: getattr(self, k) for k in fields}
        out["max_new_tokens"] = self.max_new_tokens
        if self.min_new_tokens:
            out["min_new_tokens"] = self.min_new_tokens
        return out


class TTSRequest(GenerationFields):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, description="what to say")
    language: str = Field(
        default="en", description="one of GET /v1/languages, a region form like en-US, or 'auto'"
    )
    voice: str | None = Field(default=None, description="a name from GET /v1/voices (default: the server's)")
    format: str = Field(
        default="wav", description="pcm, wav, mp3, opus, flac, aac, mulaw, alaw, mulaw_wav, alaw_wav"
    )
    sample_rate: int | None = Field(default=None, description="output rate; default depends on the format")
    stream: bool = Field(
        default=False, description="chunked response whose first bytes leave with the first audio"
    )
    stream_chunk_size: int = Field(default=20, ge=1, le=200, description="audio tokens per streamed chunk")


class SeedTTSRequest(BaseModel):
    """The seed server's body: {text, speaker, language}."""

    text: str = Field(min_length=1)
    speaker: str | None = None
    language: str = "en"


class LanguagesResponse(BaseModel):
    languages: list[str]


class HealthResponse(BaseModel):
    status: str


class ReadyResponse(BaseModel):
    status: str
    device: str | None = None
    voices: int | None = None
    in_flight: int | None = None

"""Server settings: command-line flags and XTTS_* environment variables (flags win)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# OpenAI's voice names -> studio voices of the release (distinct; female and male as OpenAI's sound).
# A name missing from the loaded model falls back to its first studio voice.
DEFAULT_OPENAI_VOICES: dict[str, str] = {
    "alloy": "Claribel Dervla",
    "ash": "Andrew Chipper",
    "ballad": "Dionisio Schuyler",
    "coral": "Daisy Studious",
    "echo": "Damien Black",
    "fable": "Viktor Menelaos",
    "nova": "Nova Hogarth",
    "onyx": "Craig Gutsy",
    "sage": "Sofia Hellen",
    "shimmer": "Gracie Wise",
    "verse": "Royston Min",
    "marin": "Ana Florence",
    "cedar": "Abrahan Mack",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="XTTS_", extra="ignore")

    # --- the model ---
    model_dir: Path | None = Field(
        default=None, description="released XTTS v2 directory; none = download coqui/XTTS-v2"
    )
    accept_license: bool = Field(
        default=False, description="accept the Coqui Public Model License to download"
    )
    device: str = Field(default="auto", description="cpu, cuda, cuda:N or auto")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        default="auto",
        description="auto = float16 on a GPU (closest to float32, BENCHMARKS.md), float32 on a CPU",
    )
    warmup: bool = Field(default=True, description="synthesize once at start-up before /ready says yes")
    engine: Literal["auto", "on", "off"] = Field(
        default="auto", description="the batching engine: auto = on a GPU; off = one worker thread per stream"
    )
    engine_slots: int = Field(
        default=128, ge=1, le=1024, description="streams the engine decodes together (KV cache rows)"
    )
    engine_fused_batches: int | None = Field(
        default=None,
        ge=0,
        le=1024,
        description="decode batches up to this size run the fused Triton kernels; "
        "default: 16 on a GPU in half precision with Triton; 0: off",
    )

    # --- network ---
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # --- voices ---
    voices_dir: Path = Field(default=Path("voices"), description="where cloned voices are stored")
    speakers_dir: Path | None = Field(
        default=None,
        description="folder of clips imported as voices at start-up (file per voice or folder per voice)",
    )
    default_voice: str | None = Field(default=None, description="voice used when a request names none")

    # --- OpenAI-compatible API ---
    openai_voices: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_OPENAI_VOICES),
        description="OpenAI voice name -> our voice (env XTTS_OPENAI_VOICES, JSON); replaces the default",
    )
    openai_language: str = Field(
        default="auto", description="language of POST /v1/audio/speech (OpenAI sends none): auto = detect"
    )

    # --- limits ---
    max_new_tokens: int = Field(
        default=602, ge=1, le=602, description="server-wide cap on audio tokens per sentence"
    )
    max_text_chars: int = Field(default=5000, ge=1, description="longest text one request may send")
    max_upload_bytes: int = Field(
        default=25 * 1024 * 1024, ge=1024, description="largest voice upload (all clips)"
    )
    max_clips: int = Field(default=10, ge=1, description="most clips per voice")
    max_concurrent: int = Field(default=4, ge=1, description="syntheses running at once")
    max_queued: int = Field(default=32, ge=0, description="requests waiting beyond those; more get 503")
    retry_after_s: int = Field(default=2, ge=1, description="Retry-After sent with 503")
    max_streams_per_key: int = Field(
        default=8, ge=1, description="syntheses one API key may have at once; more get 429 (with keys only)"
    )
    queue_timeout_s: float = Field(
        default=30.0, gt=0, description="most seconds a request waits for its first audio; then 503"
    )
    request_timeout_s: float = Field(
        default=600.0, gt=0, description="most seconds one synthesis (or one WebSocket sentence) may take"
    )
    body_timeout_s: float = Field(
        default=60.0, gt=0, description="most seconds a request body (an upload) may take to arrive; then 408"
    )
    ws_max_message_bytes: int = Field(
        default=1 << 20, ge=1024, description="largest WebSocket message accepted"
    )
    shutdown_timeout_s: float = Field(
        default=25.0, ge=0, description="on SIGTERM, how long running streams may finish before they are cut"
    )

    # --- security ---
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        default=(), description="accepted API keys (env XTTS_API_KEYS, comma-separated)"
    )
    api_key_file: Path | None = Field(default=None, description="file of API keys, one a line")
    no_auth: bool = Field(default=False, description="serve without keys on a non-loopback address")
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="origins allowed by CORS (env comma-separated; '*' = any); none = no CORS"
    )

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = Field(default="text", description="json: one JSON object a line")
    log_text: bool = Field(default=False, description="log the text of each request (off: never logged)")

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

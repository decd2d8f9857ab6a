"""The record kept with each voice, and what the store must know about the model the voices are for."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from xtts_server.voices.clips import ClipInfo

Source = Literal["cloned", "imported", "builtin"]
SOURCES: tuple[Source, ...] = ("cloned", "imported", "builtin")


def utc_now() -> str:
    """Now as UTC ISO-8601 to the millisecond, e.g. '2025-01-31T12:00:00.250Z' (sorts as text)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class VoiceInfo:
    name: str  # as the caller wrote it (NFC); lookups ignore case
    source: Source  # "cloned" through the API, "imported" from the speakers folder, or "builtin"
    created: str | None  # UTC ISO-8601; None for built-in voices
    model: str | None  # fingerprint of the model the latents were computed with (None: unknown)
    clips: tuple[ClipInfo, ...] = ()  # what it was cloned from, when known
    origin: str | None = None  # the importer's digest of the source clips; None for API voices

    @property
    def builtin(self) -> bool:
        return self.source == "builtin"

    @property
    def num_clips(self) -> int:
        return len(self.clips)

    @property
    def total_seconds(self) -> float | None:
        """Sum of the clips' lengths; None unless every clip's length is known."""
        if not self.clips or any(c.seconds is None for c in self.clips):
            return None
        return round(sum(c.seconds for c in self.clips if c.seconds is not None), 3)

    def to_dict(self) -> dict[str, Any]:
        """The public JSON view (what GET /v1/voices shows)."""
        return {
            "name": self.name,
            "source": self.source,
            "builtin": self.builtin,
            "created": self.created,
            "model": self.model,
            "num_clips": self.num_clips,
            "clips": [c.to_dict() for c in self.clips],
            "total_seconds": self.total_seconds,
        }

    def to_record(self) -> dict[str, Any]:
        """What is written to disk: the public view plus the importer's digest."""
        record = self.to_dict()
        del record["builtin"], record["num_clips"], record["total_seconds"]  # derived
        record["origin"] = self.origin
        return record

    @classmethod
    def from_record(cls, record: Any) -> VoiceInfo:
        """Parse what `to_record` wrote; raises ValueError on anything malformed."""
        if not isinstance(record, dict):
            raise ValueError("the voice record is not a JSON object")
        name, source, created = record.get("name"), record.get("source"), record.get("created")
        model, origin, clips = record.get("model"), record.get("origin"), record.get("clips", [])
        if not isinstance(name, str):
            raise ValueError("the voice record has no name")
        if source not in ("cloned", "imported"):
            raise ValueError(f"unknown voice source {source!r}")
        for key, value in (("created", created), ("model", model), ("origin", origin)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{key} must be a string, got {value!r}")
        if not isinstance(clips, list):
            raise ValueError("clips must be a list")
        return cls(
            name=name,
            source=source,
            created=created,
            model=model,
            clips=tuple(ClipInfo.from_dict(c) for c in clips),
            origin=origin,
        )


@dataclass(frozen=True)
class ModelSignature:
    """What a voice's tensors must look like to be used with the loaded model, and its name.

    Latents of another width cannot be used at all (refused at load). Latents of the same shape
    from a differently named model load with a warning: they work, but may not sound as intended.
    """

    fingerprint: str | None = None  # recorded in each voice; e.g. "xtts-v2 width=1024 md5=..."
    latent_shape: tuple[int, int, int] = (1, 32, 1024)  # gpt_cond_latent: [1, latents, gpt width]
    speaker_shape: tuple[int, int, int] = (1, 512, 1)  # speaker_embedding: [1, d_vector, 1]

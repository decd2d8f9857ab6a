"""xtts-server: a fast, dependable XTTS v2 text-to-speech engine and server for voice agents."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from xtts_server.errors import (
    Cancelled,
    DownloadError,
    InvalidAudio,
    InvalidRequest,
    InvalidText,
    LicenseNotAccepted,
    MissingExtra,
    ModelLoadError,
    UnsupportedLanguage,
    VoiceNotFound,
    XTTSError,
)

if TYPE_CHECKING:
    from xtts_server.inference.voice import Voice
    from xtts_server.tts import XTTS, AudioChunk, GenerationOptions, SynthesisResult

__version__ = "0.1.0"

# Exports that need torch, imported on first use (PEP 562) so that `import xtts_server.text`, the
# errors and the version stay light: name -> the module that defines it.
_LAZY = {
    "XTTS": "xtts_server.tts",
    "AudioChunk": "xtts_server.tts",
    "GenerationOptions": "xtts_server.tts",
    "SynthesisResult": "xtts_server.tts",
    "Voice": "xtts_server.inference.voice",
}

__all__ = [
    "XTTS",
    "AudioChunk",
    "Cancelled",
    "DownloadError",
    "GenerationOptions",
    "InvalidAudio",
    "InvalidRequest",
    "InvalidText",
    "LicenseNotAccepted",
    "MissingExtra",
    "ModelLoadError",
    "SynthesisResult",
    "UnsupportedLanguage",
    "Voice",
    "VoiceNotFound",
    "XTTSError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

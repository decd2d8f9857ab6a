"""xtts-server: a fast, dependable XTTS v2 text-to-speech engine and server for voice agents."""

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
from xtts_server.inference.voice import Voice
from xtts_server.tts import XTTS, AudioChunk, GenerationOptions, SynthesisResult

__version__ = "0.1.0"

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

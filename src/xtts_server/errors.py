"""Domain errors. Raised inside the package; the server maps them to the wire in one place.

Every error carries a message written for the person who sent the input: it says what was wrong
and, where there is one, what to do about it.
"""

from __future__ import annotations


class XTTSError(Exception):
    """Base of every error this package raises on purpose."""


class ModelLoadError(XTTSError):
    """A model directory or checkpoint cannot be used: missing file, unsafe pickle, bad tensor."""


class LicenseNotAccepted(XTTSError):
    """The Coqui Public Model License must be accepted before the released weights are downloaded."""


class DownloadError(XTTSError):
    """The released model could not be fetched (offline, hub unreachable, interrupted)."""


class MissingExtra(XTTSError, ImportError):
    """An optional dependency (a pip extra) is needed for this input and is not installed."""


class InvalidRequest(XTTSError, ValueError):
    """The caller's input is wrong; retrying the same input will fail the same way."""


class InvalidText(InvalidRequest):
    """Text that cannot be synthesized: empty, only whitespace, or too long for the model."""


class UnsupportedLanguage(InvalidRequest):
    """A language code the model does not speak."""


class InvalidAudio(InvalidRequest):
    """A reference clip that cannot be used: empty, corrupt, silent, too short or undecodable."""


class VoiceNotFound(XTTSError, KeyError):
    """No voice (cloned or built-in) has this name."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "voice not found"


class Cancelled(XTTSError):
    """The work was stopped on request (the client went away, or a barge-in cancelled it)."""


class EngineFull(XTTSError):
    """The batching engine holds as many streams as it can (decoding and waiting): retry later."""

"""Errors of the voice store (the domain errors it also raises live in `xtts_server.errors`)."""

from __future__ import annotations

from xtts_server.errors import InvalidRequest, XTTSError


class VoiceExists(InvalidRequest):
    """A voice with this name (compared case-insensitively) is already stored; HTTP 409."""


class VoiceReadOnly(InvalidRequest):
    """A built-in (studio) voice cannot be deleted or replaced; HTTP 403 (or 409)."""


class VoiceStorageError(XTTSError):
    """The voices directory could not be written (disk full, permissions); HTTP 500/507. The previous
    version of the voice, if any, is intact."""

"""Named voices that survive restarts: built-in studio voices (read-only) plus voices stored on disk.

Layout of the voices directory (one file per voice, so a broken file costs only that voice):

    <slug>_<hash>.safetensors        a voice: tensors + its record (see codec.py); any other
                                     *.safetensors voice file copied in by hand is loaded too
    .tmp-<random>.voice-part         a write in progress; removed at start-up if a crash left it
    <file>.unloadable-<UTC>          an unreadable file set aside when its name was reused
    <file>.duplicate-<UTC>           an older second file for one voice name, set aside at start-up

Writes go to a temp file in the same directory, are fsync'ed, renamed over the old file with
os.replace and the directory is fsync'ed: after a crash there is either the old voice or the new
one, never half of one. Files that cannot be read (corrupt, or for a model of another width) are
logged at each start and left where they are; nothing the user stored is ever deleted unasked.

Several processes may share a directory (replicas on shared storage) and each sees the others'
changes at once: a lookup checks its voice's file (one stat; a voice stored elsewhere is found by
its file name, which follows from its name), and a listing checks the directory; a changed file is
read again, unchanged ones never. A temp file is locked while it is written, so a process starting
up removes only those whose writer is gone. Threads: mutations hold a lock; reads work on an
immutable snapshot of the index, so `get` never waits on a write.
"""

from __future__ import annotations

import builtins
import contextlib
import difflib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from xtts_server.errors import InvalidRequest, VoiceNotFound
from xtts_server.inference.voice import Voice
from xtts_server.voices.clips import ClipInfo
from xtts_server.voices.codec import (
    CorruptVoiceFile,
    decode_voice,
    encode_voice,
    incompatibility,
    voice_to_json,
)
from xtts_server.voices.errors import VoiceExists, VoiceReadOnly, VoiceStorageError
from xtts_server.voices.info import ModelSignature, Source, VoiceInfo, utc_now
from xtts_server.voices.names import file_stem, name_key, validate_name

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; start-up removes every leftover temp file
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

SUFFIX = ".safetensors"
TEMP_PREFIX = ".tmp-"
TEMP_SUFFIX = ".voice-part"
UNLOADABLE_MARK = ".unloadable-"
DUPLICATE_MARK = ".duplicate-"

BuiltinVoices = Mapping[str, Voice] | Callable[[], Mapping[str, Voice]]
Stamp = tuple[int, int, int, int]  # (inode, size, mtime, ctime in ns): a changed stamp is a changed file
# A directory whose mtime is this close to the moment it was listed may change again within the same
# timestamp tick (coarse kernel clocks, NFS): such a listing is not trusted ("racy git").
RACY_S = 2.0


class _Entry:
    """One known voice. `voice` is the CPU copy (None for a built-in, fetched from its mapping)."""

    __slots__ = ("_lock", "_on_device", "info", "path", "stamp", "voice")

    def __init__(
        self, info: VoiceInfo, voice: Voice | None, path: Path | None, stamp: Stamp | None = None
    ) -> None:
        self.info = info
        self.voice = voice
        self.path = path
        self.stamp = stamp
        self._on_device: Voice | None = None
        self._lock = threading.Lock()

    def on_device(self, device: torch.device, builtin: Mapping[str, Voice]) -> Voice:
        cached = self._on_device
        if cached is not None:
            return cached
        with self._lock:  # one copy per entry even when many threads ask at once
            if self._on_device is None:
                voice = self.voice if self.voice is not None else builtin[self.info.name]
                self._on_device = voice.to(device)
            return self._on_device


class VoiceStore:
    """Cloned and imported voices persisted in `directory`, plus read-only built-in voices.

    `builtin`: the model's studio voices by name, or a function returning them (called once, here).
    `signature`: the loaded model's fingerprint and tensor shapes; stored voices that do not fit are
    refused at load with a logged error. `device`: where `get` puts the tensors (copied once, cached).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        builtin: BuiltinVoices | None = None,
        signature: ModelSignature | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.directory = Path(directory)
        self.signature = signature
        self.device = torch.device(device)
        self._listing: Stamp | None = None  # the directory's stamp when it was last read
        self._racy = True  # that listing may have missed a change made in the same tick
        self._unreadable: dict[Path, Stamp] = {}  # files that failed to load, not read again unchanged
        self._lock = threading.RLock()
        self._builtin: Mapping[str, Voice] = (builtin() if callable(builtin) else builtin) or {}
        # name key -> entry; replaced whole on each change, so readers need no lock
        self._entries: dict[str, _Entry] = {}
        self.skipped: dict[Path, str] = {}  # files found at start-up and not loaded, with the reason
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VoiceStorageError(
                f"cannot create the voices directory {str(self.directory)!r}: {exc}"
            ) from exc
        entries: dict[str, _Entry] = {}
        fingerprint = signature.fingerprint if signature else None
        for name in self._builtin:
            key = name_key(name)
            if key in entries:
                logger.warning(
                    "built-in voice %r has the same name as %r; only the first is used",
                    name,
                    entries[key].info.name,
                )
                continue
            entries[key] = _Entry(VoiceInfo(name, "builtin", None, fingerprint), None, None)
        self._entries = entries
        self._load_directory()

    # --- start-up ---------------------------------------------------------------------------------

    def _load_directory(self) -> None:
        self._scan(tidy=True)
        stored = sum(1 for e in self._entries.values() if not e.info.builtin)
        logger.info(
            "voices: %d stored in %s, %d built-in, %d files skipped",
            stored,
            self.directory,
            len(self._entries) - stored,
            len(self.skipped),
        )

    def _scan(self, *, tidy: bool) -> None:
        """Rebuild the index from the directory; a file whose stamp is unchanged keeps its entry (it
        is not read again). `tidy` (start-up only) also removes temp files whose writer is gone and
        sets older duplicates aside; a refresh changes nothing on disk."""
        self._listing = _stamp(self.directory)
        self._racy = self._listing is None or time.time() - self._listing[2] / 1e9 < RACY_S
        known = {e.path: e for e in self._entries.values() if e.path is not None}
        entries = {key: e for key, e in self._entries.items() if e.info.builtin}
        try:
            paths = sorted(self.directory.iterdir())
        except OSError as exc:
            raise VoiceStorageError(
                f"cannot list the voices directory {str(self.directory)!r}: {exc}"
            ) from exc
        for path in paths:
            if path.name.startswith(TEMP_PREFIX) and path.name.endswith(TEMP_SUFFIX):
                if tidy:
                    _remove_abandoned(path)
                continue
            if path.suffix != SUFFIX or path.name.startswith("."):
                continue
            entry = self._load_file(path, known.get(path))
            if entry is None:
                continue
            key = name_key(entry.info.name)
            other = entries.get(key)
            if other is not None and other.info.builtin:
                self._skip(
                    path, f"voice {entry.info.name!r} has the name of a built-in voice; the built-in is used"
                )
                continue
            if other is not None:
                # Two files for one name (copied in by hand): the newer wins; at start-up the older is
                # renamed so that it is not loaded again (a later delete must not bring it back) and kept.
                older, newer = sorted([other, entry], key=lambda e: e.info.created or "")
                if tidy:
                    try:
                        self._set_aside(
                            older.path, DUPLICATE_MARK, f"an older copy of voice {entry.info.name!r}"
                        )
                    except VoiceStorageError as exc:
                        self._skip(older.path, str(exc))
                entries[key] = newer
                continue
            entries[key] = entry
        self._entries = entries

    def _load_file(self, path: Path, known: _Entry | None) -> _Entry | None:
        stamp = _stamp(path)
        if stamp is None:  # gone since the listing
            return None
        if known is not None and known.stamp == stamp:
            return known
        if self._unreadable.get(path) == stamp:
            return None
        loaded = self._read(path)
        if loaded is None:
            self._unreadable[path] = stamp
            return None
        self.skipped.pop(path, None)
        self._unreadable.pop(path, None)
        return _Entry(*loaded, path, stamp)

    def refresh(self) -> dict[str, _Entry]:
        """Re-read the directory if it changed since it was last read (voices stored, replaced or
        deleted by another process sharing it; unchanged files are not read again); the index."""
        with self._lock:
            if self._racy or _stamp(self.directory) != self._listing:
                try:
                    self._scan(tidy=False)
                except VoiceStorageError as exc:
                    logger.warning("%s; keeping the voices known so far", exc)
            return self._entries

    def _reload(self, key: str, path: Path) -> _Entry | None:
        """Bring one file into the index again: stored, replaced or deleted by another process."""
        with self._lock:
            current = self._entries.get(key)
            known = current if current is not None and current.path == path else None
            loaded = self._load_file(path, known)
            if loaded is known:
                return current
            entries = dict(self._entries)
            if known is not None:
                del entries[key]
            other = entries.get(key)
            if loaded is not None and name_key(loaded.info.name) == key and other is None:
                entries[key] = loaded
            self._entries = entries
            return entries.get(key)

    def _read(self, path: Path) -> tuple[VoiceInfo, Voice] | None:
        try:
            info, voice = decode_voice(path.read_bytes())
            validate_name(info.name)
        except (OSError, CorruptVoiceFile, InvalidRequest) as exc:
            self._skip(path, f"unreadable voice file ({exc}); it is left in place")
            return None
        reason = incompatibility(voice, self.signature)
        if reason is not None:
            self._skip(
                path, f"voice {info.name!r} does not fit the loaded model: {reason}; it is left in place"
            )
            return None
        fingerprint = self.signature.fingerprint if self.signature else None
        if fingerprint and info.model and info.model != fingerprint:
            logger.warning(
                "voice %r (%s) was made with model %r, the loaded model is %r; using it anyway",
                info.name,
                path,
                info.model,
                fingerprint,
            )
        return info, voice

    def _skip(self, path: Path | None, reason: str) -> None:
        if path is None:
            return
        if self.skipped.get(path) != reason:  # once, not at every refresh
            logger.error("skipping %s: %s", path, reason)
        self.skipped[path] = reason

    # --- reading ----------------------------------------------------------------------------------

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._find(name) is not None

    def __len__(self) -> int:
        return len(self.refresh())

    def _find(self, name: str) -> _Entry | None:
        key = name_key(name)
        entry = self._entries.get(key)
        if entry is None:
            entry = self.refresh().get(key)  # copied in, or stored by another process
            if entry is None:
                # Its file name follows from its name: a file lookup sees it even where a shared
                # file system still caches the directory's old stamp.
                return self._reload(key, self.directory / (file_stem(key) + SUFFIX))
        if entry.path is not None and _stamp(entry.path) != entry.stamp:
            return self._reload(key, entry.path)  # replaced or deleted by another process
        return entry

    def _entry(self, name: str) -> _Entry:
        entry = self._find(name) if isinstance(name, str) else None
        if entry is None:
            raise VoiceNotFound(self._not_found_message(name))
        return entry

    def _not_found_message(self, name: object) -> str:
        names = sorted((e.info.name for e in self._entries.values()), key=str.casefold)
        if not names:
            return f"no voice named {name!r}; there are no voices yet: clone one first"
        close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        return f"no voice named {name!r}; {hint}known voices: {shown}"

    def get(self, name: str) -> Voice:
        """The voice's tensors on the store's device (cached after the first call)."""
        return self._entry(name).on_device(self.device, self._builtin)

    def info(self, name: str) -> VoiceInfo:
        return self._entry(name).info

    def list(self, *, builtin: bool | None = None) -> builtins.list[VoiceInfo]:
        """All voices sorted by name (case-insensitive); `builtin` True/False keeps only those."""
        infos = [e.info for e in self.refresh().values() if builtin is None or e.info.builtin == builtin]
        return sorted(infos, key=lambda i: (name_key(i.name), i.name))

    def export(self, name: str) -> dict[str, Any]:
        """Record and latents as plain JSON (latents in the layout of coqui's /clone_speaker)."""
        entry = self._entry(name)
        voice = entry.voice if entry.voice is not None else self._builtin[entry.info.name]
        return {**entry.info.to_dict(), **voice_to_json(voice)}

    # --- changes ----------------------------------------------------------------------------------

    def add(
        self,
        name: str,
        voice: Voice,
        *,
        source: Source = "cloned",
        clips_info: Sequence[ClipInfo] = (),
        overwrite: bool = False,
        origin: str | None = None,
    ) -> VoiceInfo:
        """Store a voice under `name`. Raises InvalidRequest (bad name or tensors), VoiceExists (the
        name is taken and not `overwrite`), VoiceReadOnly (a built-in's name), VoiceStorageError."""
        display = validate_name(name)
        if source not in ("cloned", "imported"):
            raise ValueError(f"source must be 'cloned' or 'imported', got {source!r}")
        reason = incompatibility(voice, self.signature)
        if reason is not None:
            raise InvalidRequest(f"voice {display!r} cannot be stored: {reason}")
        cpu_voice = Voice(
            voice.gpt_cond_latent.detach().to("cpu", torch.float32).clone(),
            voice.speaker_embedding.detach().to("cpu", torch.float32).clone(),
        )
        info = VoiceInfo(
            name=display,
            source=source,
            created=utc_now(),
            model=self.signature.fingerprint if self.signature else None,
            clips=tuple(clips_info),
            origin=origin,
        )
        data = encode_voice(cpu_voice, info)
        key = name_key(display)
        path = self.directory / (file_stem(key) + SUFFIX)
        with self._lock:
            existing = self._find(display)  # also a voice stored by another process just now
            if existing is not None and existing.info.builtin:
                raise VoiceReadOnly(
                    f"{existing.info.name!r} is a built-in voice and cannot be replaced; choose another name"
                )
            if existing is not None and not overwrite:
                raise VoiceExists(
                    f"a voice named {existing.info.name!r} already exists; delete it first "
                    f"or choose another name (names are case-insensitive)"
                )
            if path.exists() and (existing is None or existing.path != path):
                self._set_aside(path, UNLOADABLE_MARK, "an unloadable voice file holding this name")
            try:
                _write_atomic(self.directory, path, data)
                if existing is not None and existing.path is not None and existing.path != path:
                    existing.path.unlink(missing_ok=True)  # an older file name for the same voice
                    _fsync_directory(self.directory)
            except OSError as exc:
                raise VoiceStorageError(f"could not save voice {display!r}: {exc}") from exc
            self._entries = {**self._entries, key: _Entry(info, cpu_voice, path, _stamp(path))}
        logger.info("voice %r stored (%s, %d clips) in %s", display, source, len(info.clips), path.name)
        return info

    def delete(self, name: str) -> VoiceInfo:
        """Remove a stored voice; raises VoiceNotFound, VoiceReadOnly (built-in), VoiceStorageError."""
        with self._lock:
            entry = self._entry(name)
            if entry.info.builtin or entry.path is None:
                raise VoiceReadOnly(f"{entry.info.name!r} is a built-in voice and cannot be deleted")
            try:
                entry.path.unlink(missing_ok=True)  # unlink is atomic: the file is whole or gone
                _fsync_directory(self.directory)
            except OSError as exc:
                raise VoiceStorageError(f"could not delete voice {entry.info.name!r}: {exc}") from exc
            entries = dict(self._entries)
            del entries[name_key(entry.info.name)]
            self._entries = entries
        logger.info("voice %r deleted", entry.info.name)
        return entry.info

    def _set_aside(self, path: Path | None, mark: str, what: str) -> None:
        """Rename a file so that it is no longer loaded, keeping its data."""
        if path is None:
            return
        aside = path.with_name(path.name + mark + utc_now().replace(":", ""))
        try:
            os.replace(path, aside)
        except OSError as exc:
            raise VoiceStorageError(f"cannot move {what} ({path}) aside: {exc}") from exc
        logger.warning("moved %s (%s) aside to %s; it is no longer loaded", what, path, aside.name)
        self.skipped.pop(path, None)
        self.skipped[aside] = f"set aside: {what}"

    def names(self) -> Iterable[str]:
        return [i.name for i in self.list()]


def _write_atomic(directory: Path, path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers and crashes see the old file or the new one, whole."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
    try:
        if fcntl is not None:  # held until closed: a process starting up leaves this file alone
            fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    """Make a rename or unlink durable (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the rename itself is still atomic
    finally:
        os.close(fd)


def _stamp(path: Path) -> Stamp | None:
    """(inode, size, mtime, ctime in ns), or None if `path` is gone."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _remove_abandoned(path: Path) -> None:
    """Remove a temp file left by an interrupted write, unless its writer (this process or another
    sharing the directory) still holds its lock."""
    try:
        with path.open("rb") as file:
            if fcntl is not None:
                try:
                    fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return  # a write in progress
            path.unlink()
        logger.info("removed %s, left by an interrupted write", path)
    except OSError as exc:
        logger.warning("cannot remove the leftover temp file %s: %s", path, exc)

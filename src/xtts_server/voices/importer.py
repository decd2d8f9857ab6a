"""Voices from a folder of clips at start-up (the `speakers/` folder of the usual XTTS servers).

    speakers/alice.wav          -> voice "alice" from one clip
    speakers/bob/1.wav, 2.mp3   -> voice "bob" from every audio file directly in the sub-folder

A voice is cloned once and stored; at the next start it is cloned again only if its clips changed
(their names and contents are hashed into the record's `origin`). Clips that cannot be used are
logged and left out; a voice none of whose clips work is logged and not made (an older stored
version stays). Voices made through the API and built-ins are never replaced by a folder's clips,
and removing clips from the folder does not delete the stored voice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from xtts_server.errors import InvalidRequest, XTTSError
from xtts_server.inference.voice import Voice
from xtts_server.voices.clips import ClipInfo, clip_seconds
from xtts_server.voices.names import name_key, validate_name
from xtts_server.voices.store import VoiceStore

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = frozenset(
    {
        ".wav",
        ".mp3",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".m4a",
        ".mp4",
        ".aac",
        ".webm",
        ".aif",
        ".aiff",
        ".wma",
    }
)
Clone = Callable[[list[Path]], Voice]


@dataclass
class ImportReport:
    cloned: list[str] = field(default_factory=list)  # new or changed, cloned and stored now
    unchanged: list[str] = field(default_factory=list)  # already stored from the same clips
    failed: dict[str, str] = field(default_factory=dict)  # voice or clip path -> why
    skipped: dict[str, str] = field(default_factory=dict)  # entry -> why it was not considered


def _is_audio(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".")


def scan_folder(folder: Path, report: ImportReport | None = None) -> dict[str, tuple[str, list[Path]]]:
    """Voice key -> (name, clips) for a folder laid out as above, in sorted order."""
    report = report if report is not None else ImportReport()
    found: dict[str, tuple[str, list[Path]]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            name, clips = entry.name, sorted(p for p in entry.iterdir() if _is_audio(p))
            if not clips:
                report.skipped[str(entry)] = "a voice folder with no audio files"
                logger.warning(
                    "voice import: %s has no audio files (%s); skipped",
                    entry,
                    ", ".join(sorted(AUDIO_SUFFIXES)),
                )
                continue
        elif _is_audio(entry):
            name, clips = entry.stem, [entry]
        else:
            continue
        try:
            name = validate_name(name)
        except InvalidRequest as exc:
            report.skipped[str(entry)] = str(exc)
            logger.error("voice import: %s skipped: %s", entry, exc)
            continue
        key = name_key(name)
        if key in found:
            why = f"the voice {found[key][0]!r} is already defined by {found[key][1][0]}"
            report.skipped[str(entry)] = why
            logger.warning("voice import: %s skipped: %s (names are case-insensitive)", entry, why)
            continue
        found[key] = (name, clips)
    return found


def clips_digest(folder: Path, clips: list[Path]) -> str:
    """A hash of the clips' relative names and contents: equal exactly when re-cloning would give
    the same voice (copies and touched mtimes do not count as changes)."""
    digest = hashlib.sha256()
    for path in clips:
        digest.update(path.relative_to(folder).as_posix().encode("utf-8", "surrogateescape") + b"\0")
        inner = hashlib.sha256()
        with path.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                inner.update(block)
        digest.update(inner.digest())
    return "sha256:" + digest.hexdigest()


def import_folder(store: VoiceStore, folder: str | Path, clone: Clone) -> ImportReport:
    """Clone and store the voices of `folder` that are new or changed; log, never raise, on bad clips."""
    folder = Path(folder)
    report = ImportReport()
    if not folder.is_dir():
        logger.info("voice import: no folder %s; nothing to import", folder)
        return report
    for name, clips in scan_folder(folder, report).values():
        try:
            _import_voice(store, folder, name, clips, clone, report)
        except OSError as exc:  # a clip vanished or became unreadable while we read it
            report.failed[name] = str(exc)
            logger.error("voice import: %r failed: %s", name, exc)
    logger.info(
        "voice import from %s: %d cloned, %d unchanged, %d failed, %d skipped",
        folder,
        len(report.cloned),
        len(report.unchanged),
        len(report.failed),
        len(report.skipped),
    )
    return report


def _import_voice(
    store: VoiceStore, folder: Path, name: str, clips: list[Path], clone: Clone, report: ImportReport
) -> None:
    origin = clips_digest(folder, clips)
    if name in store:
        info = store.info(name)
        if info.source != "imported":
            why = (
                f"a {info.source} voice named {info.name!r} exists; the folder's clips are not imported "
                f"(delete that voice or rename {clips[0].relative_to(folder)} to import them)"
            )
            report.skipped[name] = why
            logger.warning("voice import: %s", why)
            return
        if info.origin == origin:
            report.unchanged.append(name)
            return
        logger.info("voice import: the clips of %r changed; cloning it again", name)

    voice, used = _clone_usable(name, clips, clone, folder, report)
    if voice is None:
        kept = " (the stored version is kept)" if name in store else ""
        report.failed.setdefault(name, "no usable clip")
        logger.error("voice import: voice %r not made: none of its clips could be used%s", name, kept)
        return
    clips_info = [ClipInfo(p.relative_to(folder).as_posix(), clip_seconds(p)) for p in used]
    try:
        store.add(name, voice, source="imported", clips_info=clips_info, overwrite=True, origin=origin)
    except XTTSError as exc:
        report.failed[name] = str(exc)
        logger.error("voice import: voice %r not stored: %s", name, exc)
        return
    report.cloned.append(name)


def _clone_usable(
    name: str, clips: list[Path], clone: Clone, folder: Path, report: ImportReport
) -> tuple[Voice | None, list[Path]]:
    """Clone from all clips; if that fails, find the clips that fail alone and clone from the rest."""
    try:
        return clone(clips), clips
    except XTTSError as exc:
        first_error = exc
    if len(clips) == 1:
        report.failed[str(clips[0].relative_to(folder))] = str(first_error)
        logger.error("voice import: clip %s of voice %r cannot be used: %s", clips[0], name, first_error)
        return None, []
    good = []
    for clip in clips:  # only on failure: the cloner names a clip by its index, not its file
        try:
            clone([clip])
            good.append(clip)
        except XTTSError as exc:
            report.failed[str(clip.relative_to(folder))] = str(exc)
            logger.error("voice import: clip %s of voice %r cannot be used: %s", clip, name, exc)
    if len(good) == len(clips):  # each clip works alone, not together
        report.failed[name] = str(first_error)
        logger.error("voice import: voice %r cannot be cloned from its clips: %s", name, first_error)
        return None, []
    if not good:
        return None, []
    try:
        return clone(good), good
    except XTTSError as exc:
        report.failed[name] = str(exc)
        logger.error("voice import: voice %r cannot be cloned from its usable clips: %s", name, exc)
        return None, []

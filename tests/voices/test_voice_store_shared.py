"""Several stores (processes, replicas) on one directory: each sees the others' changes."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

import pytest
from voice_helpers import SIGNATURE, make_voice, same_voice

from xtts_server.errors import VoiceNotFound
from xtts_server.voices import VoiceExists, VoiceStore
from xtts_server.voices.store import TEMP_PREFIX, TEMP_SUFFIX


def open_store(directory: Path) -> VoiceStore:
    return VoiceStore(directory, signature=SIGNATURE)


def test_a_voice_stored_elsewhere_is_found_at_once(tmp_path: Path) -> None:
    a, b = open_store(tmp_path), open_store(tmp_path)
    assert "alice" not in b
    a.add("Alice", make_voice(1))
    assert same_voice(b.get("alice"), make_voice(1))
    assert b.info("ALICE").name == "Alice" and [i.name for i in b.list()] == ["Alice"]


def test_replacements_and_deletes_elsewhere_are_seen_at_once(tmp_path: Path) -> None:
    a, b = open_store(tmp_path), open_store(tmp_path)
    a.add("alice", make_voice(1))
    a.add("bob", make_voice(2))
    assert same_voice(b.get("alice"), make_voice(1)) and len(b) == 2
    a.add("ALICE", make_voice(3), overwrite=True)  # same file name: replaced in place
    assert same_voice(b.get("alice"), make_voice(3)) and b.info("alice").name == "ALICE"
    assert [i.name for i in b.list()] == ["ALICE", "bob"]
    a.delete("bob")
    with pytest.raises(VoiceNotFound):
        b.get("bob")
    assert [i.name for i in b.list()] == ["ALICE"]
    a.delete("alice")
    assert b.list() == [] and "alice" not in b


def test_a_listing_sees_changes_made_within_one_timestamp_tick(tmp_path: Path) -> None:
    a, b = open_store(tmp_path), open_store(tmp_path)
    b.list()
    for i in range(20):  # faster than a coarse directory clock ticks
        a.add(f"v{i}", make_voice(i))
        assert len(b.list()) == i + 1


def test_unchanged_files_are_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = open_store(tmp_path), open_store(tmp_path)
    for i, name in enumerate(["alice", "bob", "carol"]):
        a.add(name, make_voice(i))
    assert len(b.list()) == 3
    reads: list[Path] = []
    read = VoiceStore._read
    monkeypatch.setattr(VoiceStore, "_read", lambda self, path: reads.append(path) or read(self, path))
    a.add("dave", make_voice(4))
    assert len(b.list()) == 4
    assert [p.name[:5] for p in reads] == ["dave_"]


def test_a_stale_store_does_not_clobber_a_voice_stored_elsewhere(tmp_path: Path) -> None:
    a, b = open_store(tmp_path), open_store(tmp_path)
    a.add("alice", make_voice(1))
    with pytest.raises(VoiceExists):
        b.add("alice", make_voice(2))
    assert len(list(tmp_path.iterdir())) == 1  # nothing set aside or rewritten
    assert same_voice(open_store(tmp_path).get("alice"), make_voice(1))
    b.add("alice", make_voice(2), overwrite=True)
    a.refresh()
    assert same_voice(a.get("alice"), make_voice(2))


def test_start_up_leaves_a_temp_file_that_is_being_written(tmp_path: Path) -> None:
    writing = tmp_path / f"{TEMP_PREFIX}busy{TEMP_SUFFIX}"
    fd = os.open(writing, os.O_CREAT | os.O_WRONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as _write_atomic holds it
        open_store(tmp_path)
        assert writing.exists()
    finally:
        os.close(fd)
    open_store(tmp_path)  # its writer is gone: an abandoned write
    assert not writing.exists()


def test_an_unreadable_file_is_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a, b = open_store(tmp_path), open_store(tmp_path)
    (tmp_path / "junk_01.safetensors").write_bytes(b"\x00" * 20)
    with caplog.at_level(logging.ERROR, logger="xtts_server.voices.store"):
        for i in range(3):
            a.add(f"v{i}", make_voice(i))  # the directory changes: each store reads it again
            assert len(b.list()) == i + 1
    assert len([r for r in caplog.records if "junk_01" in r.getMessage()]) == 2  # once per store
    assert set(b.skipped) == {tmp_path / "junk_01.safetensors"}

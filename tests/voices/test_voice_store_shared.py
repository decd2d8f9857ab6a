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

NEVER = 3600.0  # refresh_s: no periodic check within a test


def open_store(directory: Path, refresh_s: float) -> VoiceStore:
    return VoiceStore(directory, signature=SIGNATURE, refresh_s=refresh_s)


def test_a_voice_stored_elsewhere_is_found_at_once(tmp_path: Path) -> None:
    a, b = open_store(tmp_path, NEVER), open_store(tmp_path, NEVER)
    assert "alice" not in b
    a.add("Alice", make_voice(1))
    # no periodic check: the miss looks for the name's file
    assert same_voice(b.get("alice"), make_voice(1))
    assert b.info("ALICE").name == "Alice" and [i.name for i in b.list()] == ["Alice"]


def test_replacements_and_deletes_elsewhere_are_seen_at_the_next_check(tmp_path: Path) -> None:
    a, b = open_store(tmp_path, NEVER), open_store(tmp_path, 0.0)
    a.add("alice", make_voice(1))
    a.add("bob", make_voice(2))
    assert same_voice(b.get("alice"), make_voice(1)) and len(b) == 2
    a.add("alice", make_voice(3), overwrite=True)
    assert same_voice(b.get("alice"), make_voice(3))
    a.delete("bob")
    with pytest.raises(VoiceNotFound):
        b.get("bob")
    assert [i.name for i in b.list()] == ["alice"]


def test_between_checks_the_index_is_not_reread(tmp_path: Path) -> None:
    a, b = open_store(tmp_path, NEVER), open_store(tmp_path, NEVER)
    a.add("alice", make_voice(1))
    b.get("alice")
    a.delete("alice")
    assert "alice" in b  # stale until the next check (refresh_s)
    b.refresh()
    assert "alice" not in b


def test_unchanged_files_are_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = open_store(tmp_path, NEVER), open_store(tmp_path, 0.0)
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
    a, b = open_store(tmp_path, NEVER), open_store(tmp_path, NEVER)
    a.add("alice", make_voice(1))
    with pytest.raises(VoiceExists):
        b.add("alice", make_voice(2))
    assert len(list(tmp_path.iterdir())) == 1  # nothing set aside or rewritten
    assert same_voice(open_store(tmp_path, NEVER).get("alice"), make_voice(1))
    b.add("alice", make_voice(2), overwrite=True)
    a.refresh()
    assert same_voice(a.get("alice"), make_voice(2))


def test_start_up_leaves_a_temp_file_that_is_being_written(tmp_path: Path) -> None:
    writing = tmp_path / f"{TEMP_PREFIX}busy{TEMP_SUFFIX}"
    fd = os.open(writing, os.O_CREAT | os.O_WRONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as _write_atomic holds it
        open_store(tmp_path, NEVER)
        assert writing.exists()
    finally:
        os.close(fd)
    open_store(tmp_path, NEVER)  # its writer is gone: an abandoned write
    assert not writing.exists()


def test_an_unreadable_file_is_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a, b = open_store(tmp_path, NEVER), open_store(tmp_path, 0.0)
    (tmp_path / "junk_01.safetensors").write_bytes(b"\x00" * 20)
    with caplog.at_level(logging.ERROR, logger="xtts_server.voices.store"):
        for i in range(3):
            a.add(f"v{i}", make_voice(i))  # the directory changes: each store reads it again
            assert len(b.list()) == i + 1
    assert len([r for r in caplog.records if "junk_01" in r.getMessage()]) == 2  # once per store
    assert set(b.skipped) == {tmp_path / "junk_01.safetensors"}

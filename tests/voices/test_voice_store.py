"""VoiceStore: persistence, crash safety, corrupt files, built-ins, model checks, concurrency."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from voice_helpers import SIGNATURE, WIDTH, make_voice, same_voice

import xtts_server
from xtts_server.errors import InvalidRequest, VoiceNotFound
from xtts_server.voices import (
    ClipInfo,
    ModelSignature,
    VoiceExists,
    VoiceReadOnly,
    VoiceStorageError,
    VoiceStore,
    voice_from_json,
)
from xtts_server.voices.store import TEMP_PREFIX, TEMP_SUFFIX

FILE_RE = re.compile(r"[a-z0-9-]+_[0-9a-f]{32}\.safetensors")


def open_store(directory: Path, **kwargs: object) -> VoiceStore:
    kwargs.setdefault("signature", SIGNATURE)
    return VoiceStore(directory, **kwargs)  # type: ignore[arg-type]


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def temp_files(directory: Path) -> list[str]:
    return [n for n in files(directory) if n.startswith(TEMP_PREFIX)]


# --- persistence ------------------------------------------------------------------------------------


def test_round_trip_across_instances(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    info = store.add("Alice", make_voice(1), clips_info=[ClipInfo("a.wav", 2.5), ClipInfo("b.mp3", 1.25)])
    store.add("李雷", make_voice(2), source="imported", origin="sha256:abc")
    assert info.source == "cloned" and info.model == SIGNATURE.fingerprint
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", info.created or "")
    assert info.num_clips == 2 and info.total_seconds == 3.75

    again = open_store(tmp_path)
    assert same_voice(again.get("Alice"), make_voice(1))
    assert same_voice(again.get("李雷"), make_voice(2))
    assert again.info("alice") == info
    assert again.info("李雷").origin == "sha256:abc" and again.info("李雷").source == "imported"
    assert [i.name for i in again.list()] == ["Alice", "李雷"]
    assert all(FILE_RE.fullmatch(n) for n in files(tmp_path)), files(tmp_path)
    assert len(files(tmp_path)) == 2


def test_lookup_ignores_case_and_keeps_the_written_name(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.add("Alice", make_voice(1))
    assert same_voice(store.get("ALICE"), make_voice(1))
    assert "alice" in store and "bob" not in store and 5 not in store
    with pytest.raises(VoiceExists, match="'Alice' already exists"):
        store.add("aLiCe", make_voice(2))
    assert store.info("alice").name == "Alice"


def test_overwrite_replaces_in_place(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.add("alice", make_voice(1))
    first = store.get("alice")
    assert store.get("alice") is first  # cached device copy
    store.add("Alice", make_voice(2), overwrite=True)
    assert same_voice(store.get("alice"), make_voice(2))
    assert store.info("alice").name == "Alice"
    assert len(files(tmp_path)) == 1
    assert same_voice(open_store(tmp_path).get("alice"), make_voice(2))


def test_stored_voices_are_copies(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    voice = make_voice(1)
    store.add("alice", voice)
    voice.gpt_cond_latent.add_(1.0)  # the caller's tensor changes afterwards
    assert same_voice(store.get("alice"), make_voice(1))


def test_delete(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.add("alice", make_voice(1))
    store.add("bob", make_voice(2))
    deleted = store.delete("ALICE")
    assert deleted.name == "alice"
    assert "alice" not in store and len(files(tmp_path)) == 1
    with pytest.raises(VoiceNotFound):
        store.get("alice")
    with pytest.raises(VoiceNotFound):
        store.delete("alice")
    assert [i.name for i in open_store(tmp_path).list()] == ["bob"]


def test_not_found_names_known_voices(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    with pytest.raises(VoiceNotFound, match="no voices yet"):
        store.get("alice")
    for i in range(12):
        store.add(f"voice {i}", make_voice(i))
    store.add("alice", make_voice(99))
    with pytest.raises(VoiceNotFound) as info:
        store.get("alicia")
    message = str(info.value)
    assert "did you mean 'alice'" in message
    assert "and 5 more" in message
    assert isinstance(info.value, KeyError)


def test_export_is_plain_json_in_coqui_layout(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.add("alice", make_voice(1), clips_info=[ClipInfo("a.wav", 3.0)])
    exported = json.loads(json.dumps(store.export("alice")))
    assert exported["name"] == "alice" and exported["builtin"] is False and exported["total_seconds"] == 3.0
    assert len(exported["gpt_cond_latent"]) == 32 and len(exported["gpt_cond_latent"][0]) == WIDTH
    assert len(exported["speaker_embedding"]) == 512
    assert same_voice(voice_from_json(exported, SIGNATURE), make_voice(1))


def test_invalid_names_never_touch_the_disk(tmp_path: Path) -> None:
    store = open_store(tmp_path / "voices")
    for name in ("../escape", "..", "a/b", "/abs", "a\\..\\b", "", "a\x00", "x" * 65, ".env"):
        with pytest.raises(InvalidRequest, match="voice name"):
            store.add(name, make_voice(1))
    assert files(tmp_path) == ["voices"]
    assert files(tmp_path / "voices") == []


def test_add_refuses_tensors_that_do_not_fit(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    with pytest.raises(InvalidRequest, match=r"shape \[1, 32, 8\], the model needs \[1, 32, 16\]"):
        store.add("alice", make_voice(1, width=8))
    bad = make_voice(1)
    bad.gpt_cond_latent[0, 0, 0] = float("nan")
    with pytest.raises(InvalidRequest, match="NaN"):
        store.add("alice", bad)
    assert files(tmp_path) == []


# --- crash safety -----------------------------------------------------------------------------------


def test_failed_replace_keeps_the_old_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(tmp_path)
    store.add("alice", make_voice(1))
    (name,) = files(tmp_path)
    before = (tmp_path / name).read_bytes()

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(VoiceStorageError, match=r"could not save voice 'alice'.*No space left"):
        store.add("alice", make_voice(2), overwrite=True)
    with pytest.raises(VoiceStorageError):
        store.add("bob", make_voice(3))
    monkeypatch.undo()

    assert files(tmp_path) == [name]  # no temp file left, no half voice
    assert (tmp_path / name).read_bytes() == before
    assert same_voice(store.get("alice"), make_voice(1)) and "bob" not in store
    assert same_voice(open_store(tmp_path).get("alice"), make_voice(1))


def test_crash_mid_write_keeps_old_version_and_temp_is_cleaned(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.add("alice", make_voice(1))
    before = {n: (tmp_path / n).read_bytes() for n in files(tmp_path)}
    # A real crash: the process dies after the temp file is written, before the rename.
    child = textwrap.dedent(
        f"""
        import os, sys, torch
        from xtts_server.inference.voice import Voice
        from xtts_server.voices import ModelSignature, VoiceStore
        store = VoiceStore(sys.argv[1], signature=ModelSignature({SIGNATURE.fingerprint!r}, (1, 32, {WIDTH})))
        os.replace = lambda *args: os._exit(3)
        store.add("alice", Voice(torch.zeros(1, 32, {WIDTH}), torch.zeros(1, 512, 1)), overwrite=True)
        """
    )
    src = str(Path(xtts_server.__file__).parents[1])  # the child imports the same package as we do
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-c", child, str(tmp_path)], capture_output=True, timeout=120, env=env
    )
    assert result.returncode == 3, result.stderr.decode()
    assert len(temp_files(tmp_path)) == 1  # the interrupted write

    again = open_store(tmp_path)
    assert temp_files(tmp_path) == []
    assert {n: (tmp_path / n).read_bytes() for n in files(tmp_path)} == before
    assert same_voice(again.get("alice"), make_voice(1))


def test_leftover_temp_files_are_cleaned_and_others_kept(tmp_path: Path) -> None:
    open_store(tmp_path).add("alice", make_voice(1))
    (tmp_path / f"{TEMP_PREFIX}abc123{TEMP_SUFFIX}").write_bytes(b"half a voi")
    (tmp_path / "notes.txt").write_text("the operator's file")
    (tmp_path / ".tmp-not-ours").write_text("not ours either")
    store = open_store(tmp_path)
    assert same_voice(store.get("alice"), make_voice(1))
    assert temp_files(tmp_path) == [".tmp-not-ours"]
    assert "notes.txt" in files(tmp_path)


# --- unreadable and foreign files -------------------------------------------------------------------


def test_corrupt_files_are_skipped_logged_and_kept(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = open_store(tmp_path)
    store.add("alice", make_voice(1))
    store.add("bob", make_voice(2))
    bob_path = next(p for p in tmp_path.iterdir() if p.name.startswith("bob_"))
    truncated = bob_path.read_bytes()[:-100]
    bob_path.write_bytes(truncated)
    garbage = tmp_path / "junk_0123.safetensors"
    garbage.write_bytes(b"\x00\xff" * 50)
    pickled = tmp_path / "old.safetensors"
    pickled.write_bytes(b"\x80\x04\x95" + b"\x00" * 40)  # a pickle is never read

    with caplog.at_level(logging.ERROR, logger="xtts_server.voices.store"):
        again = open_store(tmp_path)
    assert [i.name for i in again.list()] == ["alice"]
    assert set(again.skipped) == {bob_path, garbage, pickled}
    assert all("left in place" in why for why in again.skipped.values())
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert str(bob_path) in logged and str(garbage) in logged
    assert bob_path.read_bytes() == truncated  # user data is never deleted
    assert garbage.exists() and pickled.exists()


def test_reusing_the_name_of_an_unreadable_voice_sets_the_old_file_aside(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.add("bob", make_voice(2))
    (path,) = tmp_path.iterdir()
    path.write_bytes(path.read_bytes()[:50])  # unreadable, and it holds bob's file name
    again = open_store(tmp_path)
    assert "bob" not in again
    again.add("bob", make_voice(3))
    names = files(tmp_path)
    assert path.name in names
    aside = [n for n in names if n.startswith(path.name + ".unloadable-")]
    assert len(aside) == 1
    assert len((tmp_path / aside[0]).read_bytes()) == 50  # the broken file, kept
    assert same_voice(open_store(tmp_path).get("bob"), make_voice(3))


def test_voice_files_copied_in_by_hand_are_loaded(tmp_path: Path) -> None:
    source = tmp_path / "a"
    open_store(source).add("alice", make_voice(1))
    open_store(tmp_path / "b").add("ALICE", make_voice(2))  # same name, written later
    target = tmp_path / "target"
    target.mkdir()
    (target / "from-a.safetensors").write_bytes(next(source.iterdir()).read_bytes())
    (target / "from-b.safetensors").write_bytes(next((tmp_path / "b").iterdir()).read_bytes())
    store = open_store(target)
    assert store.info("alice").name == "ALICE"  # the newer of two files for one name wins
    assert same_voice(store.get("alice"), make_voice(2))
    (aside,) = [n for n in files(target) if n.startswith("from-a.safetensors.duplicate-")]
    assert list(store.skipped) == [target / aside]
    store.delete("alice")
    assert files(target) == [aside]  # the older copy is kept for the operator...
    assert "alice" not in open_store(target)  # ...and does not come back after a delete


def test_voices_of_another_width_are_refused_at_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    open_store(tmp_path).add("alice", make_voice(1))
    wide = ModelSignature("xtts-v2 width=1024", (1, 32, 1024), (1, 512, 1))
    with caplog.at_level(logging.ERROR, logger="xtts_server.voices.store"):
        store = open_store(tmp_path, signature=wide)
    assert "alice" not in store
    assert "does not fit the loaded model" in caplog.text
    assert "[1, 32, 16], the model needs [1, 32, 1024]" in caplog.text
    assert len(files(tmp_path)) == 1  # kept for the model it belongs to
    assert same_voice(open_store(tmp_path).get("alice"), make_voice(1))


def test_voices_of_another_model_with_the_same_shape_load_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    open_store(tmp_path).add("alice", make_voice(1))
    other = ModelSignature("fine-tune", SIGNATURE.latent_shape, SIGNATURE.speaker_shape)
    with caplog.at_level(logging.WARNING, logger="xtts_server.voices.store"):
        store = open_store(tmp_path, signature=other)
    assert same_voice(store.get("alice"), make_voice(1))
    assert store.info("alice").model == SIGNATURE.fingerprint
    assert "was made with model 'test-model width=16'" in caplog.text


# --- built-in voices --------------------------------------------------------------------------------


def test_builtin_voices_are_listed_and_read_only(tmp_path: Path) -> None:
    studio = {"Claribel Dervla": make_voice(10), "Ana Florence": make_voice(11)}
    store = open_store(tmp_path, builtin=studio)
    store.add("alice", make_voice(1))
    assert [(i.name, i.builtin, i.source) for i in store.list()] == [
        ("alice", False, "cloned"),
        ("Ana Florence", True, "builtin"),
        ("Claribel Dervla", True, "builtin"),
    ]
    assert [i.name for i in store.list(builtin=False)] == ["alice"]
    assert same_voice(store.get("claribel dervla"), studio["Claribel Dervla"])
    assert store.info("Ana Florence").created is None
    with pytest.raises(VoiceReadOnly, match="built-in voice and cannot be deleted"):
        store.delete("Ana Florence")
    for overwrite in (False, True):
        with pytest.raises(VoiceReadOnly, match="cannot be replaced"):
            store.add("ANA FLORENCE", make_voice(2), overwrite=overwrite)
    assert store.export("Ana Florence")["builtin"] is True
    assert files(tmp_path) == [f for f in files(tmp_path) if f.startswith("alice_")]


def test_builtin_from_a_callable_and_stored_file_with_a_builtin_name(tmp_path: Path) -> None:
    open_store(tmp_path).add("Ana Florence", make_voice(1))  # stored before the model had it built in
    calls = []

    def studio() -> dict[str, object]:
        calls.append(1)
        return {"Ana Florence": make_voice(11)}

    store = open_store(tmp_path, builtin=studio)
    assert calls == [1]
    assert store.info("ana florence").builtin
    assert same_voice(store.get("Ana Florence"), make_voice(11))
    assert len(store.skipped) == 1 and len(files(tmp_path)) == 1


def test_tensors_are_put_on_the_store_device(tmp_path: Path) -> None:
    store = open_store(tmp_path, device="meta")
    store.add("alice", make_voice(1))
    voice = store.get("alice")
    assert voice.gpt_cond_latent.device.type == "meta"
    assert store.get("alice") is voice
    assert same_voice(voice_from_json(store.export("alice")), make_voice(1))  # export reads the CPU copy


# --- threads ----------------------------------------------------------------------------------------


def test_concurrent_adds_and_deletes(tmp_path: Path) -> None:
    store = open_store(tmp_path, builtin={"Studio": make_voice(50)})
    store.add("stable", make_voice(0))
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def own_names(worker: int) -> None:
        barrier.wait()
        for i in range(15):
            name = f"w{worker} v{i}"
            store.add(name, make_voice(worker * 100 + i))
            assert same_voice(store.get(name), make_voice(worker * 100 + i))
            assert same_voice(store.get("stable"), make_voice(0))
            if i % 2:
                store.delete(name)

    def contend(worker: int) -> None:
        barrier.wait()
        for i in range(15):
            with contextlib.suppress(VoiceExists):
                store.add(f"shared {i}", make_voice(1000 + worker))
            with contextlib.suppress(VoiceNotFound):
                store.delete(f"shared {i - 1}")

    def run(target: object, worker: int) -> None:
        try:
            target(worker)  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(own_names if w < 4 else contend, w)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

    expected_own = {f"w{w} v{i}" for w in range(4) for i in range(0, 15, 2)}
    names = {i.name for i in store.list(builtin=False)}
    assert expected_own | {"stable", "shared 14"} == names
    assert temp_files(tmp_path) == []
    assert len(files(tmp_path)) == len(names)
    again = open_store(tmp_path)
    assert {i.name for i in again.list(builtin=False)} == names
    assert again.skipped == {}


def test_one_winner_when_threads_add_the_same_name(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def add(worker: int) -> None:
        barrier.wait()
        try:
            store.add("Alice" if worker % 2 else "alice", make_voice(worker))
            outcomes.append(f"ok {worker}")
        except VoiceExists:
            outcomes.append("exists")

    threads = [threading.Thread(target=add, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o.startswith("ok")]
    assert len(winners) == 1 and outcomes.count("exists") == 7
    winner = int(winners[0].split()[1])
    assert same_voice(open_store(tmp_path).get("ALICE"), make_voice(winner))
    assert len(files(tmp_path)) == 1


def test_empty_store_in_a_new_nested_directory(tmp_path: Path) -> None:
    store = open_store(tmp_path / "a" / "b")
    assert store.list() == [] and len(store) == 0
    assert (tmp_path / "a" / "b").is_dir()


def test_a_directory_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(VoiceStorageError, match="cannot create the voices directory"):
        open_store(tmp_path / "file" / "voices")

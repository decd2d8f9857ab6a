"""Importing a folder of clips at start-up: file per voice, folder per voice, unchanged clips not
re-cloned, changed ones re-cloned, bad clips logged and left out."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from voice_helpers import SIGNATURE, WIDTH, same_voice

from xtts_server.errors import InvalidAudio
from xtts_server.inference.voice import Voice
from xtts_server.voices import VoiceStore, import_folder, open_store


def write_wav(path: Path, seconds: float, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    samples = (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32)
    sf.write(path, samples, 16000, format="WAV", subtype="PCM_16")  # WAV whatever the suffix
    return path


class FakeClone:
    """A voice determined by the clips' bytes; a file that is not RIFF/WAV is an InvalidAudio."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, clips: list[Path]) -> Voice:
        self.calls.append([p.name for p in clips])
        for i, clip in enumerate(clips):
            if not clip.read_bytes().startswith(b"RIFF"):
                raise InvalidAudio(f"reference clip {i + 1}: the audio data is corrupt")
        return expected_voice(clips)


def expected_voice(clips: list[Path]) -> Voice:
    seed = int.from_bytes(hashlib.sha256(b"".join(p.read_bytes() for p in clips)).digest()[:4], "little")
    gen = torch.Generator().manual_seed(seed)
    return Voice(torch.randn(1, 32, WIDTH, generator=gen), torch.randn(1, 512, 1, generator=gen))


@pytest.fixture
def speakers(tmp_path: Path) -> Path:
    folder = tmp_path / "speakers"
    write_wav(folder / "alice.wav", 1.5, 1)
    write_wav(folder / "bob" / "1.wav", 1.0, 2)
    write_wav(folder / "bob" / "2.wav", 0.5, 3)
    (folder / "bob" / "notes.txt").write_text("not audio")
    (folder / "README.md").write_text("put clips here")
    write_wav(folder / ".hidden.wav", 1.0, 4)
    (folder / "empty").mkdir()
    return folder


def store_at(tmp_path: Path) -> VoiceStore:
    return VoiceStore(tmp_path / "voices", signature=SIGNATURE)


def test_file_and_folder_per_voice(tmp_path: Path, speakers: Path) -> None:
    store, clone = store_at(tmp_path), FakeClone()
    report = import_folder(store, speakers, clone)
    assert sorted(report.cloned) == ["alice", "bob"]
    assert list(report.skipped) == [str(speakers / "empty")]
    assert sorted(clone.calls) == [["1.wav", "2.wav"], ["alice.wav"]]

    alice, bob = store.info("alice"), store.info("bob")
    assert alice.source == bob.source == "imported"
    assert [c.name for c in bob.clips] == ["bob/1.wav", "bob/2.wav"]
    assert bob.total_seconds == 1.5 and alice.total_seconds == 1.5
    assert bob.origin is not None and bob.origin.startswith("sha256:")
    assert same_voice(
        store.get("bob"), expected_voice([speakers / "bob" / "1.wav", speakers / "bob" / "2.wav"])
    )
    assert [i.name for i in store.list()] == ["alice", "bob"]


def test_unchanged_clips_are_not_cloned_again(tmp_path: Path, speakers: Path) -> None:
    import_folder(store_at(tmp_path), speakers, FakeClone())
    for path in speakers.rglob("*.wav"):
        os.utime(path, (1, 1))  # touched or copied: same contents
    clone = FakeClone()
    report = import_folder(store_at(tmp_path), speakers, clone)
    assert clone.calls == []
    assert sorted(report.unchanged) == ["alice", "bob"] and report.cloned == []


def test_changed_clips_are_cloned_again(tmp_path: Path, speakers: Path) -> None:
    store = store_at(tmp_path)
    import_folder(store, speakers, FakeClone())
    created = store.info("bob").created
    write_wav(speakers / "alice.wav", 2.0, 10)  # new contents
    write_wav(speakers / "bob" / "3.flac", 0.5, 11)  # a clip added
    clone = FakeClone()
    again = store_at(tmp_path)
    report = import_folder(again, speakers, clone)
    assert sorted(report.cloned) == ["alice", "bob"]
    assert same_voice(again.get("alice"), expected_voice([speakers / "alice.wav"]))
    assert again.info("alice").total_seconds == 2.0
    assert [c.name for c in again.info("bob").clips] == ["bob/1.wav", "bob/2.wav", "bob/3.flac"]
    assert again.info("bob").created != created
    assert len(list((tmp_path / "voices").iterdir())) == 2
    (speakers / "bob" / "3.flac").unlink()  # a clip removed is a change too
    assert import_folder(store_at(tmp_path), speakers, FakeClone()).cloned == ["bob"]


def test_bad_clips_are_logged_and_left_out(
    tmp_path: Path, speakers: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (speakers / "bob" / "3.mp3").write_bytes(b"ID3 this is not really audio")
    (speakers / "carol.wav").write_bytes(b"garbage")
    store = store_at(tmp_path)
    with caplog.at_level(logging.ERROR, logger="xtts_server.voices.importer"):
        report = import_folder(store, speakers, FakeClone())
    assert sorted(report.cloned) == ["alice", "bob"]
    assert set(report.failed) == {"bob/3.mp3", "carol.wav", "carol"}
    assert "corrupt" in report.failed["bob/3.mp3"]
    assert [c.name for c in store.info("bob").clips] == ["bob/1.wav", "bob/2.wav"]
    assert "carol" not in store
    assert str(speakers / "bob" / "3.mp3") in caplog.text and "'carol' not made" in caplog.text
    # The bad clip is part of the recorded digest: fixed, it triggers a re-import; unchanged, nothing.
    assert import_folder(store, speakers, FakeClone()).cloned == []
    write_wav(speakers / "bob" / "3.mp3", 0.5, 12)
    assert import_folder(store, speakers, FakeClone()).cloned == ["bob"]


def test_a_voice_whose_clips_break_keeps_its_stored_version(tmp_path: Path, speakers: Path) -> None:
    store = store_at(tmp_path)
    import_folder(store, speakers, FakeClone())
    before = store.get("alice")
    (speakers / "alice.wav").write_bytes(b"now broken")
    report = import_folder(store, speakers, FakeClone())
    assert "alice" in report.failed and report.cloned == []
    assert same_voice(store.get("alice"), before)


def test_api_and_builtin_voices_are_never_replaced(tmp_path: Path, speakers: Path) -> None:
    write_wav(speakers / "Ana Florence.wav", 1.0, 5)
    store = VoiceStore(tmp_path / "voices", signature=SIGNATURE, builtin={"Ana Florence": expected_voice([])})
    api_voice = expected_voice([speakers / "bob" / "2.wav"])
    store.add("Bob", api_voice)  # made through the API
    clone = FakeClone()
    report = import_folder(store, speakers, clone)
    assert report.cloned == ["alice"]
    assert "a cloned voice named 'Bob' exists" in report.skipped["bob"]
    assert "a builtin voice" in report.skipped["Ana Florence"]
    assert same_voice(store.get("bob"), api_voice)
    assert store.info("bob").source == "cloned"


def test_invalid_and_duplicate_names_are_skipped(tmp_path: Path, speakers: Path) -> None:
    write_wav(speakers / "Alice" / "x.wav", 1.0, 6)  # the same voice as alice.wav (case-insensitive)
    write_wav(speakers / "bad:name.wav", 1.0, 7)
    write_wav(speakers / "UPPER.WAV", 1.0, 8)
    report = import_folder(store_at(tmp_path), speakers, FakeClone())
    assert sorted(report.cloned) == ["Alice", "UPPER", "bob"]
    assert "already defined" in report.skipped[str(speakers / "alice.wav")]
    assert "invalid voice name" in report.skipped[str(speakers / "bad:name.wav")]


def test_missing_folder_is_not_an_error(tmp_path: Path) -> None:
    report = import_folder(store_at(tmp_path), tmp_path / "nowhere", FakeClone())
    assert report.cloned == report.unchanged == [] and report.failed == {}


def test_with_the_tiny_model(tiny_tts, tiny_voice, clip_paths: list[Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    speakers = tmp_path / "speakers"
    (speakers / "duo").mkdir(parents=True)
    for path in clip_paths:
        shutil.copy(path, speakers / "duo" / path.name)
    write_wav(speakers / "tiny.wav", 0.1, 9)  # too short for the cloner

    store = open_store(tiny_tts, tmp_path / "voices")
    report = import_folder(store, speakers, tiny_tts.clone_voice)
    assert report.cloned == ["duo"]
    assert "too short" in report.failed["tiny.wav"]
    assert {i.name for i in store.list(builtin=True)} == set(tiny_tts.studio_voices)

    reloaded = open_store(tiny_tts, tmp_path / "voices")
    assert same_voice(reloaded.get("duo"), tiny_voice)  # tiny_voice: the same clips, in the same order
    assert reloaded.info("duo").model == "xtts-v2 width=128"
    assert [c.name for c in reloaded.info("duo").clips] == [f"duo/{p.name}" for p in clip_paths]
    assert reloaded.info("duo").total_seconds == 8.5
    assert same_voice(reloaded.get("Ana Florence"), tiny_tts.studio_voice("Ana Florence"))

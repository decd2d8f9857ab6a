"""The command line: make-test-model and synth."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf

from xtts_server.cli import main


def test_make_test_model_writes_the_release_files(tmp_path: Path) -> None:
    assert main(["make-test-model", str(tmp_path / "m"), "--size", "tiny", "--seed", "3"]) == 0
    names = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert names == ["config.json", "model.pth", "speakers_xtts.pth", "vocab.json"]


def test_synth_with_studio_voice_and_clone(
    tiny_model_dir: Path, clip_paths: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "a.wav"
    args = ["synth", "Hello there.", "--model-dir", str(tiny_model_dir), "--device", "cpu", "-o", str(out)]
    assert main([*args, "--voice", "Ana Florence", "--seed", "1", "--max-new-tokens", "10"]) == 0
    audio, rate = sf.read(out)
    assert rate == 24000 and len(audio) > 0
    assert main([*args, "--ref", str(clip_paths[0]), "--greedy", "--max-new-tokens", "8"]) == 0


def test_synth_reports_errors_without_a_traceback(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    args = [
        "synth",
        "Hello.",
        "--model-dir",
        str(tiny_model_dir),
        "--device",
        "cpu",
        "-o",
        str(tmp_path / "x.wav"),
    ]
    assert main([*args, "--voice", "Nobody"]) == 2
    assert "error: no studio voice named 'Nobody'" in capsys.readouterr().err
    assert main([*args, "--voice", "Ana Florence", "--language", "xx"]) == 2
    assert main(["synth", "Hi.", "--model-dir", str(tmp_path / "none"), "--voice", "A", "-o", "x.wav"]) == 2

"""pipecat's own XTTSService against a live server on the tiny model.

pipecat-ai pins its own soundfile/soxr and pulls in numba and onnxruntime, so it lives in a venv of
its own, `.venv-pipecat/` (git-ignored), built once (~25 s with a package index) and reused while its
marker names the pinned release. scripts/compat/pipecat_xtts.py runs with that venv's python against
our server in this process. Without an index the test skips and says why, unless XTTS_TEST_REQUIRE
names "pipecat" (as .ci/run does): then it fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_helpers import uvicorn_thread

from xtts_server.server.app import create_app
from xtts_server.server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "compat" / "pipecat_xtts.py"
VENV = ROOT / ".venv-pipecat"
PIPECAT = "pipecat-ai==1.14.0"
TOKENS = 40


def required(name: str) -> bool:
    """XTTS_TEST_REQUIRE (comma-separated) names the optional parts that must not skip (CI)."""
    return name in os.environ.get("XTTS_TEST_REQUIRE", "").replace(" ", "").split(",")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One pytest process at a time builds the venv (others wait, then reuse it)."""
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_venv() -> str | None:
    """The venv's python with PIPECAT installed; None and pip's complaint if it could not be."""
    marker = VENV / "installed.txt"
    python = VENV / "bin" / "python"
    if python.exists() and marker.exists() and marker.read_text() == PIPECAT:
        return None
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=120)
    install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", PIPECAT]
    done = subprocess.run(install, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        return (done.stderr or done.stdout)[-1500:]
    marker.write_text(PIPECAT)
    return None


@pytest.fixture(scope="module")
def pipecat_python() -> Path:
    with locked(ROOT / ".venv-pipecat.lock"):
        failure = build_venv()
    if failure is not None:
        reason = f"could not pip install {PIPECAT} into {VENV} (is a package index reachable?):\n{failure}"
        if required("pipecat"):
            pytest.fail(reason)
        pytest.skip(reason)
    return VENV / "bin" / "python"


def run_pipecat(python: Path, url: str, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    done = subprocess.run([str(python), str(SCRIPT), url, *args], capture_output=True, text=True, timeout=180)
    lines = done.stdout.strip().splitlines()
    assert lines, f"the script printed nothing (exit {done.returncode}):\n{done.stderr[-3000:]}"
    return done.returncode, json.loads(lines[-1])


def test_pipecat_xtts_service(pipecat_python: Path, tiny_tts, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(voices_dir=tmp_path / "voices", warmup=False, max_new_tokens=TOKENS)
    with uvicorn_thread(create_app(settings, tts_model=tiny_tts)) as url:
        speakers = httpx.get(f"{url}/studio_speakers", timeout=10).json()

        status, result = run_pipecat(pipecat_python, url, "Ana Florence")
        assert status == 0 and result["errors"] == [], result
        # start() fetched GET /studio_speakers: every one of ours, latents and all (run_tts found its voice)
        assert result["studio_speakers"] == sorted(speakers) and "Ana Florence" in speakers
        assert result["frames"] >= 1
        assert result["sample_rates"] == [24000] and result["channels"] == [1]
        # POST /tts_stream answered s16le at 24 kHz: one sentence (pipecat strips the dots) of at most
        # TOKENS audio tokens, as long as the vocoder makes them (pipecat's 24 -> 24 kHz is a copy)
        frames = tiny_tts.model.hifigan_decoder.num_frames
        assert result["audio_bytes"] // 2 in {frames(n) * 256 for n in range(1, TOKENS + 1)}, result

        # a language XTTS does not speak: our 400 reaches pipecat as an ErrorFrame with our message
        status, result = run_pipecat(pipecat_python, url, "Ana Florence", "--language", "sv")
        assert status == 1 and result["audio_bytes"] == 0, result
        [error] = result["errors"]
        assert "status: 400" in error and "unsupported_language" in error and "sv" in error, error

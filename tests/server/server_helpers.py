"""Helpers for the server tests: an independent decoder (PyAV/FFmpeg), error-body checks, a real
uvicorn server in a thread, `xtts-server serve` in a subprocess, free ports and engine stand-ins
with controlled behaviour."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import uvicorn

import ray_helpers
from xtts_server.tts import AudioChunk

ENGINE_RATE = 24000

# Raw formats have no header: FFmpeg's demuxer for each, told the rate.
RAW_DEMUXERS = {"pcm": "s16le", "mulaw": "mulaw", "alaw": "alaw"}

# What each format decodes to: (FFmpeg codec, container), checked against the decoder's findings.
CODECS = {
    "pcm": ("pcm_s16le", "s16le"),
    "wav": ("pcm_s16le", "wav"),
    "mp3": ("mp3float", "mp3"),
    "opus": ("opus", "ogg"),
    "flac": ("flac", "flac"),
    "aac": ("aac", "aac"),
    "mulaw": ("pcm_mulaw", "mulaw"),
    "alaw": ("pcm_alaw", "alaw"),
    "mulaw_wav": ("pcm_mulaw", "wav"),
    "alaw_wav": ("pcm_alaw", "wav"),
}

CONTENT_TYPES = {
    "pcm": "audio/pcm; rate={rate}; channels=1; format=s16le",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg; codecs=opus",
    "flac": "audio/flac",
    "aac": "audio/aac",
    "mulaw": "audio/PCMU; rate=8000; channels=1",
    "alaw": "audio/PCMA; rate=8000; channels=1",
    "mulaw_wav": "audio/wav",
    "alaw_wav": "audio/wav",
}

DEFAULT_RATES = {
    "pcm": 24000,
    "wav": 24000,
    "mp3": 24000,
    "opus": 24000,
    "flac": 24000,
    "aac": 24000,
    "mulaw": 8000,
    "alaw": 8000,
    "mulaw_wav": 8000,
    "alaw_wav": 8000,
}


@dataclass(frozen=True)
class Decoded:
    samples: np.ndarray  # float32 [channels, N] in [-1, 1]
    sample_rate: int  # what the decoder reports
    channels: int
    codec: str
    container: str

    @property
    def length(self) -> int:
        return int(self.samples.shape[1])


def decode(data: bytes, fmt: str, rate: int | None = None) -> Decoded:
    """Decode a response body with FFmpeg (through PyAV), not with anything of ours. Raw formats
    need their rate (nothing in the bytes says it)."""
    kwargs: dict[str, Any] = {}
    if fmt in RAW_DEMUXERS:
        assert rate is not None, "raw audio needs its sample rate"
        kwargs = {"format": RAW_DEMUXERS[fmt], "options": {"sample_rate": str(rate), "ch_layout": "mono"}}
    with av.open(io.BytesIO(data), **kwargs) as container:
        stream = container.streams.audio[0]
        frames = list(container.decode(stream))
        assert frames, "no audio frames decoded"
        channels = frames[0].layout.nb_channels
        parts = []
        for frame in frames:
            array = frame.to_ndarray()
            # packed: [1, N * C] interleaved; planar: [C, N]
            parts.append(array.reshape(-1, channels).T if not frame.format.is_planar else array)
        samples = np.concatenate(parts, axis=1)
        if samples.dtype.kind == "i":  # integer formats (s16, s32) to [-1, 1)
            samples = samples / float(2 ** (8 * samples.dtype.itemsize - 1))
        codec, name = stream.codec_context.name, container.format.name
        return Decoded(samples.astype(np.float32), frames[0].sample_rate, channels, codec, name)


def opus_input_rate(data: bytes) -> int:
    """The input sample rate written in an Ogg Opus stream's OpusHead (RFC 7845, 5.1)."""
    at = data.find(b"OpusHead")
    assert at >= 0, "no OpusHead"
    (rate,) = struct.unpack_from("<I", data, at + 12)
    return int(rate)


def expected_length(samples_24k: int, rate: int) -> float:
    """Samples at `rate` for `samples_24k` engine samples."""
    return samples_24k * rate / ENGINE_RATE


def check_length(fmt: str, decoded: Decoded, samples_24k: int, rate: int, *, whole: bool) -> None:
    """The decoded length matches the engine's, within what the codec adds (priming and padding to
    whole frames; a whole MP3's Xing/LAME frame lets the decoder trim them)."""
    expected = expected_length(samples_24k, rate)
    n = decoded.length
    if fmt == "opus":  # decoders always play Opus at 48 kHz; pre-skip and end trimming are exact
        assert abs(n - samples_24k * 2) <= 8, (n, samples_24k * 2)
        return
    extra = n - expected
    if fmt in ("pcm", "wav", "flac", "mulaw", "alaw", "mulaw_wav", "alaw_wav"):
        assert abs(extra) <= 1, (fmt, n, expected)
    elif fmt == "mp3":
        frame = 1152 if rate >= 32000 else 576
        if whole:  # gapless info: LAME's delay and padding trimmed (to within one granule at 8 kHz)
            assert abs(extra) <= 64, (fmt, n, expected)
        else:  # bare frames: the encoder delay (576 + 529) and padding to whole frames stay
            assert 0 <= extra <= 1105 + 2 * frame, (fmt, n, expected)
    elif fmt == "aac":  # ADTS carries no priming info: 1024 priming samples, then whole frames
        assert 0 <= extra <= 2048, (fmt, n, expected)
    else:  # pragma: no cover
        raise AssertionError(fmt)


def assert_error(response: Any, status: int, code: str) -> dict[str, str]:
    """The response is our error JSON with this status and code; returns the error object."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message"}, body
    assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"], body
    if status in (429, 503):
        assert int(response.headers["retry-after"]) >= 1
    return error


def wait_ready(client: Any, timeout: float = 60.0) -> None:
    """Poll /ready until the app's background start-up has finished (an in-process client)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/ready").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"server not ready: {client.get('/ready').json()}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def uvicorn_thread(app: Any, timeout: float = 30.0, **options: Any) -> Iterator[str]:
    """Serve `app` with a real uvicorn in a thread (`options` for uvicorn.Config); yields its base URL
    once /ready says yes. With XTTS_TEST_RAY=1, the app's settings served by Ray replicas instead
    (tests/ray_helpers.py)."""
    if ray_helpers.ACTIVE is not None:
        yield ray_helpers.ACTIVE.serve_app(app, options)
        return
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "uvicorn did not become ready"
            time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        assert not thread.is_alive(), "uvicorn did not stop"


# --- `xtts-server serve` in a subprocess -------------------------------------------------------


START_TIMEOUT = 120.0  # import, load the tiny model, warm up (on a busy 2-core machine)
STOP_TIMEOUT = 30.0


class ServerProcess:
    def __init__(
        self,
        model_dir: Path,
        voices_dir: Path,
        log: Path,
        extra: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = [
            sys.executable,
            "-m",
            "xtts_server.cli",
            "serve",
            "--model-dir",
            str(model_dir),
            "--port",
            str(self.port),
            "--host",
            "127.0.0.1",
            "--voices-dir",
            str(voices_dir),
            "--device",
            "cpu",
            "--default-voice",
            "Ana Florence",
            *extra,
        ]
        environ = {k: v for k, v in os.environ.items() if not k.startswith("XTTS_")}
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env={**environ, **(env or {})}
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait_ready(self) -> float:
        started = time.monotonic()
        while True:
            assert self.process.poll() is None, f"the server exited:\n{self.output()}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return time.monotonic() - started
            assert time.monotonic() - started < START_TIMEOUT, f"not ready in time:\n{self.output()}"
            time.sleep(0.1)

    def terminate(self) -> None:
        """SIGTERM: the server must shut down gracefully and exit by itself within STOP_TIMEOUT.

        Uvicorn, once shut down, re-raises the signal it caught so that the exit status says
        "terminated by SIGTERM" (-15 here, 143 in a shell), which service managers count as a clean
        stop; 0 is fine too. Either way the log must show the whole shutdown and no traceback."""
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"no exit {STOP_TIMEOUT} s after SIGTERM:\n{self.output()}") from None
        log = self.output()
        assert status in (0, -signal.SIGTERM), (status, log)
        assert "Application shutdown complete" in log and "Finished server process" in log, log
        assert "Traceback" not in log, log

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@contextlib.contextmanager
def serve(
    model_dir: Path,
    voices_dir: Path,
    log: Path,
    extra: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Iterator[ServerProcess]:
    """`xtts-server serve` in a subprocess (`extra` flags, `env` added), ready; killed on exit."""
    server = ServerProcess(model_dir, voices_dir, log, extra, env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.kill()


class EngineProxy:
    """Stands for an `XTTS` (everything delegated to the real one) except `stream`, which
    subclasses replace to control what the server receives."""

    def __init__(self, tts: Any) -> None:
        self._tts = tts

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tts, name)


class GatedEngine(EngineProxy):
    """`stream` waits for `gate` before the real engine runs: a request held in flight at will."""

    def __init__(self, tts: Any) -> None:
        super().__init__(tts)
        self.gate = threading.Event()
        self.entered = threading.Semaphore(0)

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[AudioChunk]:
        self.entered.release()
        assert self.gate.wait(30), "the gate was never opened"
        yield from self._tts.stream(*args, **kwargs)


class SignalEngine(EngineProxy):
    """`stream` yields a given 24 kHz signal (in chunks) instead of speech: the route's audio path
    with a signal whose spectrum is known."""

    def __init__(self, tts: Any, signal: np.ndarray, chunk: int = 2400) -> None:
        super().__init__(tts)
        self.signal = signal.astype(np.float32)
        self.chunk = chunk

    def stream(self, text: str, language: str, voice: Any, **_: Any) -> Iterator[AudioChunk]:
        starts = range(0, len(self.signal), self.chunk)
        for i in starts:
            last = i + self.chunk >= len(self.signal)
            yield AudioChunk(self.signal[i : i + self.chunk], ENGINE_RATE, 0, text, last, language)

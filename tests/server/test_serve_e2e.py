"""End to end: `xtts-server serve` as a separate process on the tiny model, over real HTTP.

(a) a stream's first bytes arrive long before its generation ends; (b) four concurrent streams all
finish with the right audio; (c) a voice uploaded survives SIGTERM (a clean exit) and a restart.
About 20-25 s on 2 idle cores (two start-ups, ~270 tokens of generation), so not marked slow.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import numpy as np
from server_helpers import decode, serve


def timed_stream(url: str, body: dict) -> tuple[bytes, float, float, float, dict[str, str]]:
    """POST a streaming request; (body, time of the first byte, of the last, total, headers)."""
    started = time.monotonic()
    parts: list[bytes] = []
    first = last = 0.0
    with (
        httpx.Client(timeout=120) as http,
        http.stream("POST", f"{url}/v1/tts", json={**body, "stream": True}) as response,
    ):
        assert response.status_code == 200, response.read()[:300]
        headers = dict(response.headers)
        for data in response.iter_bytes():
            if data:
                now = time.monotonic() - started
                first = first or now
                last = now
                parts.append(data)
    return b"".join(parts), first, last, time.monotonic() - started, headers


def test_serve_end_to_end(tiny_model_dir: Path, tiny_tts, clip_paths: list[Path], tmp_path: Path) -> None:
    voices_dir = tmp_path / "voices"
    frames = tiny_tts.model.hifigan_decoder.num_frames

    with serve(tiny_model_dir, voices_dir, tmp_path / "first.log") as server:
        # (a) first bytes long before the end: 150 tokens, audio every 20
        tokens = 150
        body = {"text": "Hello there.", "format": "pcm", "seed": 0, "max_new_tokens": tokens}
        data, first, last, total, headers = timed_stream(server.url, body)
        assert headers["transfer-encoding"] == "chunked" and headers["x-language"] == "en"
        decoded = decode(data, "pcm", 24000)
        assert decoded.length in {frames(n) * 256 for n in range(1, tokens + 1)}
        print(
            f"\n(a) {decoded.length / 24000:.2f} s of audio: first byte {first:.2f} s, "
            f"last byte {last:.2f} s, total {total:.2f} s"
        )
        assert first < total / 2 and last - first > total / 3

        # (b) four concurrent streams, each with its own voice, seed and format
        jobs = [
            ("Ana Florence", 1, "pcm"),
            ("Claribel Dervla", 2, "wav"),
            ("Daisy Studious", 3, "flac"),
            ("Viktor Menelaos", 4, "pcm"),
        ]
        tokens = 30
        results: dict[int, tuple[bytes, float, float, float, dict[str, str]]] = {}
        errors: list[BaseException] = []

        def run(i: int, voice: str, seed: int, fmt: str) -> None:
            try:
                job = {"text": "Four at once.", "voice": voice, "seed": seed, "format": fmt}
                results[i] = timed_stream(server.url, {**job, "max_new_tokens": tokens})
            except BaseException as e:
                errors.append(e)

        started = time.monotonic()
        threads = [threading.Thread(target=run, args=(i, *job)) for i, job in enumerate(jobs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
        assert not errors, errors
        assert sorted(results) == [0, 1, 2, 3]
        print(f"(b) four concurrent streams of {tokens} tokens done in {time.monotonic() - started:.2f} s")
        for i, (voice, seed, fmt) in enumerate(jobs):
            data, first, last, total, headers = results[i]
            expected = tiny_tts.synthesize(
                "Four at once.", "en", tiny_tts.studio_voice(voice), seed=seed, max_new_tokens=tokens
            )
            got = decode(data, fmt, 24000)
            assert (got.sample_rate, got.channels) == (24000, 1)
            assert got.length == len(expected.audio), (voice, got.length, len(expected.audio))
            # the same audio as alone, in this process: nothing leaked between the concurrent requests
            reference = np.round(np.clip(expected.audio, -1, 1) * 32767) / 32768
            assert np.abs(got.samples[0] - reference).max() <= 1.5 / 32768, voice
            print(f"    {voice}: first byte {first:.2f} s, total {total:.2f} s")

        # (c) a voice uploaded now ...
        files = [("files", (p.name, p.read_bytes())) for p in clip_paths]
        created = httpx.post(f"{server.url}/v1/voices", data={"name": "Kept Voice"}, files=files, timeout=60)
        assert created.status_code == 201, created.text
        latents = httpx.get(f"{server.url}/v1/voices/Kept Voice?latents=true", timeout=10).json()
        stopped = time.monotonic()
        server.terminate()
        print(f"(c) exited {time.monotonic() - stopped:.2f} s after SIGTERM")

    # ... is there after a restart, and speaks
    with serve(tiny_model_dir, voices_dir, tmp_path / "second.log") as server:
        listed = httpx.get(f"{server.url}/v1/voices", timeout=10).json()["voices"]
        assert "Kept Voice" in [v["name"] for v in listed]
        assert httpx.get(f"{server.url}/v1/voices/kept voice?latents=true", timeout=10).json() == latents
        body = {"text": "Still here.", "voice": "Kept Voice", "format": "wav", "max_new_tokens": 8, "seed": 0}
        spoken = httpx.post(f"{server.url}/v1/tts", json=body, timeout=60)
        assert spoken.status_code == 200
        assert decode(spoken.content, "wav").length == frames(8) * 256
        server.terminate()

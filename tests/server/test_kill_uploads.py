"""kill -9 of `xtts-server serve` while voices are being uploaded, again and again: after each
restart every listed voice is whole (its latents load and it speaks), nothing is skipped as
corrupt, and no temp file is left."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import httpx
from server_helpers import serve

from xtts_server.voices.store import TEMP_PREFIX

ROUNDS = 4


def upload(url: str, name: str, files: list, outcomes: dict) -> None:
    try:
        response = httpx.post(
            f"{url}/v1/voices", data={"name": name, "overwrite": "true"}, files=files, timeout=60
        )
        outcomes[name] = response.status_code
    except httpx.TransportError as e:  # the server died under us
        outcomes[name] = type(e).__name__


def test_kill_9_during_uploads_never_leaves_a_broken_voice(
    tiny_model_dir: Path, clip_paths: list[Path], tmp_path: Path
) -> None:
    voices_dir = tmp_path / "voices"
    files = [("files", (p.name, p.read_bytes())) for p in clip_paths]
    rng = random.Random(7)
    stored: set[str] = set()
    killed_mid_upload = 0
    for round_ in range(ROUNDS + 1):
        with serve(tiny_model_dir, voices_dir, tmp_path / f"log{round_}") as server:
            # every voice that a finished upload stored is there and whole
            listed = httpx.get(f"{server.url}/v1/voices", timeout=10).json()["voices"]
            names = {v["name"] for v in listed if not v["builtin"]}
            assert stored <= names, (stored, names)
            for name in names:
                latents = httpx.get(f"{server.url}/v1/voices/{name}?latents=true", timeout=10).json()
                assert len(latents["gpt_cond_latent"]) == 32 and len(latents["speaker_embedding"]) == 512
                body = {"text": "Hi.", "voice": name, "max_new_tokens": 4, "format": "pcm"}
                assert httpx.post(f"{server.url}/v1/tts", json=body, timeout=60).status_code == 200
            assert "skipping" not in server.output(), server.output()
            assert not [p for p in voices_dir.iterdir() if p.name.startswith(TEMP_PREFIX)]
            if round_ == ROUNDS:
                break
            # a burst of uploads (new names and overwrites), killed at a random moment
            outcomes: dict = {}
            threads = [
                threading.Thread(
                    target=upload, args=(server.url, f"voice {rng.randrange(6)}", files, outcomes)
                )
                for _ in range(6)
            ]
            for thread in threads:
                thread.start()
            # after the first upload has finished, while the others are still in flight
            deadline = time.monotonic() + 60
            while not outcomes and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.3))
            server.process.kill()  # SIGKILL
            server.process.wait(10)
            for thread in threads:
                thread.join(30)
            stored |= {name for name, status in outcomes.items() if status == 201}
            killed_mid_upload += sum(1 for status in outcomes.values() if status != 201)
    print(f"\n{ROUNDS} kills; {killed_mid_upload} uploads cut short; {len(stored)} voices stored whole")
    assert killed_mid_upload > 0 and stored  # the kills landed during uploads, and some finished

"""The speakers folder is imported as voices at start-up (as the seed's speakers/ folder)."""

from __future__ import annotations

import shutil
from pathlib import Path


def test_speakers_folder_is_imported_at_start_up(make_client, clip_paths: list[Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "speakers"
    (folder / "bob").mkdir(parents=True)
    shutil.copy(clip_paths[1], folder / "alice.wav")  # one file per voice
    for clip in clip_paths:  # one sub-folder of clips per voice
        shutil.copy(clip, folder / "bob" / clip.name)
    client = make_client(speakers_dir=folder, warmup=True)
    voices = {v["name"]: v for v in client.get("/v1/voices").json()["voices"]}
    assert voices["alice"]["source"] == "imported" and voices["alice"]["num_clips"] == 1
    assert voices["bob"]["source"] == "imported" and voices["bob"]["num_clips"] == 2
    assert voices["Ana Florence"]["builtin"] is True
    speech = client.post("/v1/tts", json={"text": "Hi.", "voice": "bob", "max_new_tokens": 8})
    assert speech.status_code == 200 and speech.headers["content-type"] == "audio/wav"

"""The voices API: clone from 1 or several clips of mixed formats, list, show (with latents), use,
delete; a failed upload leaves nothing behind."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from fastapi.testclient import TestClient
from server_helpers import assert_error

sys.path.insert(0, str(Path(__file__).parents[1] / "parity"))
from clips import speech_like

SPEAK = {"text": "Hello.", "max_new_tokens": 8, "seed": 0, "format": "pcm"}


def encoded(fmt: str, rate: int, seconds: float, seed: int, channels: int = 1) -> bytes:
    """A speech-like clip encoded by libsndfile: WAV, FLAC, MP3 or Ogg Vorbis."""
    mono = speech_like(rate, seconds, seed)
    data = np.stack([mono, 0.5 * mono], axis=1) if channels == 2 else mono
    buffer = io.BytesIO()
    subtype = {"WAV": "PCM_16", "FLAC": "PCM_16", "MP3": "MPEG_LAYER_III", "OGG": "VORBIS"}[fmt]
    sf.write(buffer, data, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def mixed_clips() -> list[tuple[str, bytes]]:
    return [
        ("a.wav", encoded("WAV", 44100, 3.0, 1, channels=2)),
        ("b.flac", encoded("FLAC", 16000, 3.5, 2)),
        ("c.mp3", encoded("MP3", 24000, 3.0, 3)),
        ("d.ogg", encoded("OGG", 22050, 3.2, 4)),
    ]


def stored_files(voices_dir: Path) -> list[Path]:
    return sorted(p for p in voices_dir.iterdir() if not p.name.startswith("."))


def test_create_list_show_use_delete(
    make_client, tiny_tts, mixed_clips: list[tuple[str, bytes]], tmp_path: Path
) -> None:
    client = make_client(max_new_tokens=8)  # the seed route has no max_new_tokens of its own
    voices_dir = tmp_path / "voices"
    # one clip
    one = client.post("/v1/voices", data={"name": "Solo"}, files={"files": mixed_clips[0]})
    assert one.status_code == 201, one.text
    assert one.json()["name"] == "Solo" and one.json()["num_clips"] == 1
    # several clips, four formats (wav, flac, mp3, ogg)
    parts = [("files", clip) for clip in mixed_clips]
    created = client.post("/v1/voices", data={"name": "Mixed Choir"}, files=parts)
    assert created.status_code == 201, created.text
    info = created.json()
    assert info["name"] == "Mixed Choir" and info["source"] == "cloned" and info["builtin"] is False
    assert [c["name"] for c in info["clips"]] == ["a.wav", "b.flac", "c.mp3", "d.ogg"]
    seconds = [c["seconds"] for c in info["clips"]]
    assert seconds[:2] == pytest.approx([3.0, 3.5], abs=0.01) and seconds[2] == pytest.approx(3.0, abs=0.1)
    assert info["total_seconds"] == pytest.approx(sum(seconds))
    assert len(stored_files(voices_dir)) == 2

    listed = client.get("/v1/voices").json()["voices"]
    names = [v["name"] for v in listed]
    assert names == sorted(names, key=str.casefold)
    assert set(names) == {
        "Ana Florence",
        "Claribel Dervla",
        "Daisy Studious",
        "Viktor Menelaos",
        "Solo",
        "Mixed Choir",
    }
    assert next(v for v in listed if v["name"] == "Mixed Choir") == info

    shown = client.get("/v1/voices/mixed choir")  # case-insensitive
    assert shown.status_code == 200 and shown.json() == info
    assert "gpt_cond_latent" not in shown.json()

    with_latents = client.get("/v1/voices/Mixed Choir", params={"latents": "true"}).json()
    assert {k: with_latents[k] for k in info} == info
    latent = torch.tensor(with_latents["gpt_cond_latent"])
    speaker = torch.tensor(with_latents["speaker_embedding"])
    # the JSON holds the [1, 32, 128] and [1, 512, 1] tensors without their unit axes (coqui's layout)
    assert latent.shape == (32, 128) and speaker.shape == (512,)
    expected = tiny_tts.clone_voice([data for _, data in mixed_clips])
    assert expected.gpt_cond_latent.shape == (1, 32, 128) and expected.speaker_embedding.shape == (1, 512, 1)
    torch.testing.assert_close(
        latent.reshape(1, 32, 128), expected.gpt_cond_latent.float(), atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(
        speaker.reshape(1, 512, 1), expected.speaker_embedding.float(), atol=1e-5, rtol=1e-5
    )
    builtin = client.get("/v1/voices/Ana Florence?latents=true").json()
    assert builtin["builtin"] is True and np.array(builtin["gpt_cond_latent"]).shape == (32, 128)

    # the voice speaks, and differently from another voice with the same seed
    mine = client.post("/v1/tts", json={**SPEAK, "voice": "Mixed Choir"})
    other = client.post("/v1/tts", json={**SPEAK, "voice": "Solo"})
    assert mine.status_code == other.status_code == 200
    assert len(mine.content) > 0 and mine.content != other.content
    seed = client.post("/tts", json={"text": "Hello.", "speaker": "mixed choir"})  # seed route too
    assert seed.status_code == 200 and seed.content[:4] == b"RIFF"

    deleted = client.delete("/v1/voices/MIXED CHOIR")
    assert deleted.status_code == 200 and deleted.json() == {"deleted": "Mixed Choir"}
    assert_error(client.get("/v1/voices/Mixed Choir"), 404, "voice_not_found")
    assert_error(client.post("/v1/tts", json={**SPEAK, "voice": "Mixed Choir"}), 404, "voice_not_found")
    assert_error(client.delete("/v1/voices/Mixed Choir"), 404, "voice_not_found")
    assert len(stored_files(voices_dir)) == 1
    assert "Mixed Choir" not in [v["name"] for v in client.get("/v1/voices").json()["voices"]]
    assert client.get("/ready").json()["voices"] == 5


def test_voices_survive_a_restart(make_client, mixed_clips: list[tuple[str, bytes]]) -> None:
    first = make_client()
    info = first.post("/v1/voices", data={"name": "Kept"}, files={"files": mixed_clips[1]}).json()
    latents = first.get("/v1/voices/Kept?latents=true").json()
    first.__exit__(None, None, None)
    second = make_client()  # same voices_dir
    assert second.get("/v1/voices/kept").json() == info
    assert second.get("/v1/voices/Kept?latents=true").json() == latents
    assert second.post("/v1/tts", json={**SPEAK, "voice": "Kept"}).status_code == 200


@pytest.mark.parametrize("bad_position", [0, 2])
def test_one_bad_clip_among_good_ones_stores_nothing(
    client: TestClient, mixed_clips: list[tuple[str, bytes]], tmp_path: Path, bad_position: int
) -> None:
    parts = [("files", clip) for clip in mixed_clips[:2]]
    parts.insert(bad_position, ("files", ("bad.wav", b"RIFF....WAVEfmt garbage" * 10)))
    error = assert_error(
        client.post("/v1/voices", data={"name": "Partly"}, files=parts), 415, "invalid_audio"
    )
    assert str(bad_position + 1) in error["message"]  # says which clip
    assert_error(client.get("/v1/voices/Partly"), 404, "voice_not_found")
    assert stored_files(tmp_path / "voices") == []
    # the name is still free
    ok = client.post("/v1/voices", data={"name": "Partly"}, files={"files": mixed_clips[0]})
    assert ok.status_code == 201

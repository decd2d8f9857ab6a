"""The voice file format and the JSON layout: what is read, what is refused and why."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
import safetensors.torch
import soundfile as sf
import torch
from voice_helpers import SIGNATURE, WIDTH, make_voice, same_voice

from xtts_server.errors import InvalidRequest
from xtts_server.voices import ClipInfo, VoiceInfo, clip_seconds, voice_from_json, voice_to_json
from xtts_server.voices.codec import FORMAT, CorruptVoiceFile, decode_voice, encode_voice

INFO = VoiceInfo("Zoë", "cloned", "2025-01-01T00:00:00.000Z", "m", (ClipInfo("a.wav", 1.0),), None)


def test_round_trip_is_plain_safetensors() -> None:
    data = encode_voice(make_voice(1), INFO)
    info, voice = decode_voice(data)
    assert info == INFO and same_voice(voice, make_voice(1))
    tensors = safetensors.torch.load(data)  # any safetensors reader opens it
    assert set(tensors) == {"gpt_cond_latent", "speaker_embedding"}
    assert tensors["gpt_cond_latent"].dtype == torch.float32


def _with_metadata(metadata: dict[str, str], tensors: dict[str, torch.Tensor] | None = None) -> bytes:
    voice = make_voice(1)
    tensors = tensors or {
        "gpt_cond_latent": voice.gpt_cond_latent,
        "speaker_embedding": voice.speaker_embedding,
    }
    return safetensors.torch.save(tensors, metadata=metadata)


RECORD = json.dumps(INFO.to_record())


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "truncated"),
        (struct.pack("<Q", 1 << 40) + b"{}", "bad header length"),
        (struct.pack("<Q", 4) + b"\xff\xfe{}" + b"\x00" * 8, "not valid JSON"),
        (_with_metadata({"format": "other"}), "not an xtts-server voice file"),
        (_with_metadata({"format": FORMAT, "version": "2", "voice": RECORD}), "newer xtts-server"),
        (_with_metadata({"format": FORMAT, "version": "1", "voice": "{"}), "record is unreadable"),
        (_with_metadata({"format": FORMAT, "version": "1", "voice": json.dumps({"name": 3})}), "no name"),
        (
            _with_metadata({"format": FORMAT, "version": "1", "voice": RECORD}, {"x": torch.zeros(2)}),
            "expected the tensors",
        ),
        (
            _with_metadata(
                {"format": FORMAT, "version": "1", "voice": RECORD},
                {
                    "gpt_cond_latent": torch.zeros(1, 32, 4, dtype=torch.int32),
                    "speaker_embedding": torch.zeros(1),
                },
            ),
            "not floating point",
        ),
        (encode_voice(make_voice(1), INFO)[:-10], "tensors are unreadable"),
    ],
)
def test_corrupt_files_say_what_is_wrong(data: bytes, why: str) -> None:
    with pytest.raises(CorruptVoiceFile, match=why):
        decode_voice(data)


def test_half_precision_files_are_read_as_float32() -> None:
    voice = make_voice(1)
    data = _with_metadata(
        {"format": FORMAT, "version": "1", "voice": RECORD},
        {
            "gpt_cond_latent": voice.gpt_cond_latent.half(),
            "speaker_embedding": voice.speaker_embedding.half(),
        },
    )
    _, read = decode_voice(data)
    assert read.gpt_cond_latent.dtype == torch.float32
    assert torch.allclose(read.gpt_cond_latent, voice.gpt_cond_latent, atol=1e-2)


def test_json_layouts() -> None:
    voice = make_voice(3)
    data = voice_to_json(voice)
    assert np.array(data["gpt_cond_latent"]).shape == (32, WIDTH)
    assert np.array(data["speaker_embedding"]).shape == (512,)
    assert same_voice(voice_from_json(data, SIGNATURE), voice)
    unsqueezed = {
        "gpt_cond_latent": voice.gpt_cond_latent.tolist(),
        "speaker_embedding": voice.speaker_embedding.tolist(),
    }
    assert same_voice(voice_from_json(unsqueezed, SIGNATURE), voice)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ({"gpt_cond_latent": [[0.0]]}, "needs the keys"),
        ({"gpt_cond_latent": [[0.0], [1.0, 2.0]], "speaker_embedding": [0.0]}, "lists of numbers"),
        ({"gpt_cond_latent": "abc", "speaker_embedding": [0.0]}, "lists of numbers"),
        ({"gpt_cond_latent": [], "speaker_embedding": []}, "empty"),
        ({"gpt_cond_latent": [[0.0] * 8] * 32, "speaker_embedding": [0.0] * 512}, r"\[1, 32, 8\]"),
        ({"gpt_cond_latent": [[0.0] * WIDTH] * 32, "speaker_embedding": [0.0] * 256}, r"\[1, 256, 1\]"),
        ({"gpt_cond_latent": [[float("inf")] * WIDTH] * 32, "speaker_embedding": [0.0] * 512}, "infinite"),
    ],
)
def test_bad_json_voices_are_refused(data: object, why: str) -> None:
    with pytest.raises(InvalidRequest, match=why):
        voice_from_json(data, SIGNATURE)


def test_clip_seconds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(24000, dtype=np.float32), 16000, format="WAV")
    data = buffer.getvalue()
    path = tmp_path / "a.wav"
    path.write_bytes(data)
    assert clip_seconds(path) == 1.5
    assert clip_seconds(str(path)) == 1.5
    assert clip_seconds(data) == 1.5
    file = io.BytesIO(b"xx" + data)
    file.seek(2)
    assert clip_seconds(file) == 1.5 and file.tell() == 2
    assert clip_seconds(np.zeros(8000), sample_rate=16000) == 0.5
    assert clip_seconds(torch.zeros(2, 8000), sample_rate=16000) == 0.5
    assert clip_seconds(np.zeros(8000)) is None
    assert clip_seconds(b"not audio at all") is None
    assert clip_seconds(tmp_path / "missing.wav") is None

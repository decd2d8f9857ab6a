"""The public API: synthesis shapes, determinism, studio voices, and typed errors for bad input."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import soundfile as sf

from xtts_server import InvalidAudio, InvalidRequest, InvalidText, UnsupportedLanguage, VoiceNotFound


def _expected_samples(n_latents: int) -> int:
    return 256 * math.floor(math.floor(n_latents * 4.0) * 24000 / 22050)


def test_synthesize_returns_24khz_audio_of_the_decoded_length(tiny_tts, tiny_voice) -> None:  # type: ignore[no-untyped-def]
    out = tiny_tts.synthesize("Hello there.", "en", tiny_voice, seed=1, min_new_tokens=12, max_new_tokens=12)
    assert out.sample_rate == 24000 and out.audio.dtype == np.float32
    assert len(out.codes) == 1 and len(out.codes[0]) == 12
    assert all(0 <= c < 1024 for c in out.codes[0])
    assert out.audio.shape == (_expected_samples(12),)
    assert np.all(np.abs(out.audio) <= 1.0) and np.any(out.audio != 0)


def test_seed_makes_sampling_repeatable(tiny_tts, tiny_voice) -> None:  # type: ignore[no-untyped-def]
    a = tiny_tts.synthesize("Hello there.", "en", tiny_voice, seed=3, max_new_tokens=15)
    b = tiny_tts.synthesize("Hello there.", "en", tiny_voice, seed=3, max_new_tokens=15)
    c = tiny_tts.synthesize("Hello there.", "en", tiny_voice, seed=4, max_new_tokens=15)
    assert a.codes == b.codes and np.array_equal(a.audio, b.audio)
    assert a.codes != c.codes


def test_tokenize_adds_language_and_spaces(tiny_tts) -> None:  # type: ignore[no-untyped-def]
    ids = tiny_tts.tokenize("Hello there.", "en-US")
    assert ids[0] == 259  # [en]
    assert 2 in ids  # [SPACE]
    assert ids == tiny_tts.tokenize("  hello THERE.  ", "en")


def test_studio_voice(tiny_tts) -> None:  # type: ignore[no-untyped-def]
    voice = tiny_tts.studio_voice("Ana Florence")
    assert voice.gpt_cond_latent.shape == (1, 32, 128) and voice.speaker_embedding.shape == (1, 512, 1)
    with pytest.raises(VoiceNotFound, match="Ana Florence"):
        tiny_tts.studio_voice("Nobody")


def test_clone_voice_shapes_and_inputs(tiny_tts, clip_paths) -> None:  # type: ignore[no-untyped-def]
    from_path = tiny_tts.clone_voice(clip_paths[1])
    assert from_path.gpt_cond_latent.shape == (1, 32, 128)
    assert from_path.speaker_embedding.shape == (1, 512, 1)
    from_bytes = tiny_tts.clone_voice(clip_paths[1].read_bytes())
    audio, rate = sf.read(clip_paths[1], dtype="float32")
    from_array = tiny_tts.clone_voice(audio, sample_rate=rate)
    for other in (from_bytes, from_array):
        np.testing.assert_allclose(other.gpt_cond_latent, from_path.gpt_cond_latent, atol=1e-6)
        np.testing.assert_allclose(other.speaker_embedding, from_path.speaker_embedding, atol=1e-6)


def _wav_bytes(samples: np.ndarray, rate: int = 22050) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("clip", "message"),
    [
        (b"", "empty"),
        (b"RIFF\x00\x00garbage that is not audio", "decode|corrupt|not"),
        (_wav_bytes(np.zeros(22050 * 2, dtype=np.float32)), "silent"),
        (_wav_bytes(0.5 * np.sin(np.arange(2000) / 5).astype(np.float32)), "too short"),
    ],
    ids=["empty", "corrupt", "silent", "too-short"],
)
def test_bad_clips_raise_invalid_audio(tiny_tts, clip: bytes, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidAudio, match=message):
        tiny_tts.clone_voice(clip)


def test_no_clips(tiny_tts) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidAudio, match="at least one"):
        tiny_tts.clone_voice([])


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text(tiny_tts, tiny_voice, text: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidText, match="empty"):
        tiny_tts.synthesize(text, "en", tiny_voice)
    with pytest.raises(InvalidText, match="empty"):
        next(tiny_tts.stream(text, "en", tiny_voice))


def test_unknown_language(tiny_tts, tiny_voice) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnsupportedLanguage, match="xx"):
        tiny_tts.synthesize("Hello.", "xx", tiny_voice)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_new_tokens": 0},
        {"max_new_tokens": 10_000},
        {"min_new_tokens": 50, "max_new_tokens": 10},
        {"temperature": 0.0},
        {"top_p": 1.5},
        {"top_k": -1},
        {"speed": 0.0},
        {"repetition_penalty": 0.0},
    ],
)
def test_bad_generation_options(tiny_tts, tiny_voice, kwargs: dict) -> None:  # type: ignore[no-untyped-def,type-arg]
    with pytest.raises(InvalidRequest):
        tiny_tts.synthesize("Hello.", "en", tiny_voice, **kwargs)


def test_long_text_is_split_into_sentences(tiny_tts, tiny_voice) -> None:  # type: ignore[no-untyped-def]
    text = " ".join(["This sentence is here to make the text longer than the English limit."] * 5)
    assert len(text) > 250
    sentences = tiny_tts.sentences(text, "en")
    assert len(sentences) > 1 and all(len(s) <= 250 for s in sentences)
    chunks = list(tiny_tts.stream(text, "en", tiny_voice, seed=0, max_new_tokens=5, stream_chunk_size=20))
    assert sorted({c.sentence for c in chunks}) == list(range(len(sentences)))
    out = tiny_tts.synthesize(text, "en", tiny_voice, seed=0, max_new_tokens=5)
    assert len(out.codes) == len(sentences)


def test_cancel_stops_generation_at_the_next_step(tiny_tts, tiny_voice) -> None:  # type: ignore[no-untyped-def]
    import threading

    from xtts_server import Cancelled

    cancel = threading.Event()
    stream = tiny_tts.stream(
        "Hello there.", "en", tiny_voice, cancel=cancel, seed=0, min_new_tokens=200, max_new_tokens=200
    )
    first = next(stream)
    assert len(first.audio) > 0
    cancel.set()
    with pytest.raises(Cancelled):
        next(stream)
    cancel_now = threading.Event()
    cancel_now.set()
    with pytest.raises(Cancelled):
        tiny_tts.synthesize("Hello there.", "en", tiny_voice, cancel=cancel_now)


def test_half_precision_load_keeps_cloning_in_float32(tiny_model_dir, clip_paths) -> None:  # type: ignore[no-untyped-def]
    import torch

    from xtts_server import XTTS

    tts = XTTS.load(tiny_model_dir, device="cpu", dtype=torch.bfloat16)
    assert tts.model.gpt.transformer.h[0].attn.c_attn.weight.dtype == torch.bfloat16
    assert tts.model.gpt.conditioning_encoder.init.weight.dtype == torch.float32
    voice = tts.clone_voice(clip_paths[0])
    assert voice.gpt_cond_latent.dtype == torch.float32
    out = tts.synthesize("Hello there.", "en", voice, seed=0, max_new_tokens=6)
    assert out.audio.dtype == np.float32 and len(out.audio) > 0 and np.isfinite(out.audio).all()
    chunks = list(tts.stream("Hello there.", "en", voice, seed=0, max_new_tokens=6))
    assert sum(len(c.audio) for c in chunks) == len(out.audio)

"""Hypothesis on the front ends a request reaches before the model: text (language, sentences,
tokens, the first steps of synthesis) and audio (clips of any bytes, WAV headers of any shape).
Whatever comes in, the answer is a result or one of our errors (a 4xx on the wire), never another
exception (a 500)."""

from __future__ import annotations

import os
import struct
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xtts_server.errors import XTTSError
from xtts_server.server.errors import classify
from xtts_server.text import LANGUAGES
from xtts_server.voices.clips import clip_seconds


def fuzz(examples: int) -> settings:
    """Deterministic in CI (a failure reproduces); FUZZ_SCALE=20 for a longer, random hunt."""
    scale = int(os.environ.get("FUZZ_SCALE", "1"))
    return settings(
        max_examples=examples * scale,
        deadline=None,
        database=None,
        derandomize=scale == 1,
        suppress_health_check=list(HealthCheck),
    )


# Every code point, lone surrogates included (JSON can carry them: "\ud800"), weighted towards the
# characters that break front ends: controls, format marks, combining marks, digits, punctuation.
ANY_CHAR = st.characters(codec=None, exclude_categories=())
NASTY = st.sampled_from(
    list("\x00\x1b\u202e\u200b\ufeff\u0301\u0300.!?;:,…。！？-–—'\"()[]0123456789%$€@#&\n\t ")
)
TEXT = st.text(st.one_of(ANY_CHAR, NASTY, st.sampled_from(list("abcxyzéßжйمن你好こんにちは"))), max_size=300)
LANGUAGE = st.sampled_from([*LANGUAGES, "auto", "en-US", "xx", "", "\ud800"])


def refused_as_4xx(error: BaseException) -> bool:
    status, _ = classify(error)
    return isinstance(error, XTTSError) and 400 <= status < 500


@fuzz(150)
@given(text=TEXT, language=LANGUAGE)
def test_text_front_end(tiny_tts: Any, text: str, language: str) -> None:
    try:
        sentences = tiny_tts.sentences(text, language)
        ids = [tiny_tts.tokenize(s, language) for s in sentences]
    except Exception as e:
        assert refused_as_4xx(e), repr(e)
        return
    assert all(isinstance(i, int) for row in ids for i in row)


@fuzz(40)
@given(text=TEXT, language=st.sampled_from(["en", "auto", "fr", "ja", "zh-cn", "ar"]))
def test_synthesis_starts_or_refuses(tiny_tts: Any, text: str, language: str) -> None:
    """Through to the model's first audio (2 tokens a sentence, first sentence only)."""
    voice = tiny_tts.studio_voice("Ana Florence")
    try:
        chunk = next(iter(tiny_tts.stream(text, language, voice, max_new_tokens=2, seed=0)))
    except Exception as e:
        assert refused_as_4xx(e), repr(e)
        return
    assert np.isfinite(chunk.audio).all()


def wav(channels: int, rate: int, bits: int, fmt: int, payload: bytes, declared: int | None) -> bytes:
    """A RIFF/WAVE file with any header values (many impossible) and any payload."""
    block = max(channels * bits // 8, 0) & 0xFFFF
    fmt_chunk = struct.pack("<HHIIHH", fmt, channels, rate, (rate * block) & 0xFFFFFFFF, block, bits)
    size = len(payload) if declared is None else declared
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt_chunk + b"data" + struct.pack("<I", size) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


CLIP = st.one_of(
    st.binary(max_size=4096),
    st.builds(
        wav,
        channels=st.integers(0, 65535) | st.sampled_from([1, 2]),
        rate=st.integers(0, 2**32 - 1) | st.sampled_from([8000, 22050, 24000, 48000]),
        bits=st.sampled_from([0, 1, 8, 16, 24, 32, 64, 65535]),
        fmt=st.sampled_from([0, 1, 3, 6, 7, 0xFFFE, 0x55, 12345]),
        payload=st.binary(max_size=48000),
        declared=st.none() | st.integers(0, 2**32 - 1),
    ),
    st.builds(
        lambda head, tail: head + tail, st.sampled_from([b"ID3", b"OggS", b"fLaC", b"\xff\xfb"]), st.binary()
    ),
)


@fuzz(120)
@given(data=CLIP)
def test_audio_front_end(tiny_tts: Any, data: bytes) -> None:
    seconds = clip_seconds(data)  # never raises: None when it cannot tell
    assert seconds is None or seconds >= 0
    try:
        voice = tiny_tts.clone_voice([data])
    except Exception as e:
        assert refused_as_4xx(e), repr(e)
        return
    assert np.isfinite(voice.gpt_cond_latent.numpy()).all()

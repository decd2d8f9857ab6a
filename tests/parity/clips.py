"""Deterministic reference clips for cloning tests: voiced-speech-like signals, written as 16-bit WAV
(lossless, so every decoder reads the same samples)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

# (file name, sample rate, channels, seconds, seed)
CLIPS = (
    ("clip_a_44k_stereo.wav", 44100, 2, 3.5, 1),
    ("clip_b_16k_mono.wav", 16000, 1, 5.0, 2),
)


def speech_like(sample_rate: int, seconds: float, seed: int) -> np.ndarray:
    """Harmonics of a gliding pitch with syllable-like amplitude bursts and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    f0 = 110 + 40 * np.sin(2 * np.pi * 0.7 * t) + rng.uniform(0, 30)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 3.1 * t + rng.uniform(0, 6)), 0, None) ** 0.5
    audio = 0.25 * voiced * envelope + 0.01 * rng.standard_normal(t.shape)
    return (audio / np.abs(audio).max() * 0.8).astype(np.float32)


def write_clips(directory: Path) -> list[Path]:
    paths = []
    for name, rate, channels, seconds, seed in CLIPS:
        mono = speech_like(rate, seconds, seed)
        data = np.stack([mono, 0.6 * mono[::-1].copy()], axis=1) if channels == 2 else mono
        path = directory / name
        sf.write(path, data, rate, subtype="PCM_16")
        paths.append(path)
    return paths

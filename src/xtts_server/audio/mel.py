"""Mel spectrograms, numerically equal to torchaudio's `MelSpectrogram` (which the reference uses).

Two front ends use this:
- the GPT conditioning ("cloning") mel: 22050 Hz, n_fft 2048, window 1024 (Hann), hop 256, 80 bands
  from 0 to 8000 Hz with Slaney area normalisation, then log(clamp(1e-5)) -> `cloning_mel`;
- the speaker encoder's mel (16 kHz, Hamming, 64 bands), built from `MelSpectrogram` below; its
  window and filterbank are buffers with the same names as in the released checkpoint.

`MelSpectrogram` keeps torchaudio's sub-module layout (`spectrogram.window`, `mel_scale.fb`) so a
state_dict written by the reference loads as is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Literal

import torch
from torch import nn

CLONING_SAMPLE_RATE = 22050
CLONING_N_FFT = 2048
CLONING_WIN_LENGTH = 1024
CLONING_HOP_LENGTH = 256
CLONING_N_MELS = 80
CLONING_F_MAX = 8000.0
CLONING_LOG_FLOOR = 1e-5  # the reference clamps the power mel here before the log


def _hz_to_mel_htk(freq: float) -> float:
    return 2595.0 * math.log10(1.0 + freq / 700.0)


def _mel_to_hz_htk(mels: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)


def melscale_fbanks(
    n_freqs: int,
    f_min: float,
    f_max: float,
    n_mels: int,
    sample_rate: int,
    norm: Literal["slaney"] | None = None,
) -> torch.Tensor:
    """Triangular HTK-mel filterbank [n_freqs, n_mels] (librosa/torchaudio layout).

    Computed in float32 with the same operations as torchaudio's `melscale_fbanks(mel_scale="htk")`,
    so the buffers equal the ones stored in the release bit for bit.
    """
    if norm not in (None, "slaney"):
        raise ValueError(f"norm must be None or 'slaney', got {norm!r}")
    bin_freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float32)  # [F]
    band_mels = torch.linspace(_hz_to_mel_htk(f_min), _hz_to_mel_htk(f_max), n_mels + 2, dtype=torch.float32)
    edges = _mel_to_hz_htk(band_mels)  # [M + 2] lower edge, centre, upper edge of each band
    spacing = edges[1:] - edges[:-1]  # [M + 1]
    offsets = edges[None, :] - bin_freqs[:, None]  # [F, M + 2]
    rising = (-1.0 * offsets[:, :-2]) / spacing[:-1]  # [F, M]
    falling = offsets[:, 2:] / spacing[1:]  # [F, M]
    fb = torch.max(torch.zeros(1), torch.min(rising, falling))
    if norm == "slaney":
        fb *= (2.0 / (edges[2 : n_mels + 2] - edges[:n_mels]))[None, :]  # equal area per band
    return fb


class Spectrogram(nn.Module):
    """|STFT|^power [..., n_fft // 2 + 1, frames]; centred frames, reflect padding (torch.stft's)."""

    window: torch.Tensor

    def __init__(
        self, n_fft: int, win_length: int, hop_length: int, window: torch.Tensor, power: float = 2.0
    ):
        super().__init__()
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.power = power
        self.register_buffer("window", window)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        shape = wav.shape
        spec = torch.stft(
            wav.reshape(-1, shape[-1]),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )  # [B, F, frames]
        spec = spec.reshape(*shape[:-1], *spec.shape[-2:])
        return spec.abs().pow(self.power)


class MelScale(nn.Module):
    """Project a power spectrogram [..., F, T] onto mel bands [..., M, T] with the buffer `fb` [F, M]."""

    fb: torch.Tensor

    def __init__(self, fb: torch.Tensor):
        super().__init__()
        self.register_buffer("fb", fb)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        # same contraction as torchaudio (time-major matmul), for equal rounding
        return torch.matmul(spec.transpose(-1, -2), self.fb).transpose(-1, -2)


class MelSpectrogram(nn.Module):
    """Power mel spectrogram, wav [..., N] -> [..., n_mels, N // hop + 1]."""

    def __init__(
        self,
        *,
        sample_rate: int,
        n_fft: int,
        win_length: int,
        hop_length: int,
        n_mels: int,
        f_min: float = 0.0,
        f_max: float | None = None,
        norm: Literal["slaney"] | None = None,
        window_fn: Callable[[int], torch.Tensor] = torch.hann_window,
    ):
        super().__init__()
        f_max = float(sample_rate // 2) if f_max is None else f_max  # torchaudio's default
        self.spectrogram = Spectrogram(n_fft, win_length, hop_length, window_fn(win_length))
        self.mel_scale = MelScale(melscale_fbanks(n_fft // 2 + 1, f_min, f_max, n_mels, sample_rate, norm))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.mel_scale(self.spectrogram(wav))


@lru_cache(maxsize=8)
def _cloning_mel_module(device: torch.device) -> MelSpectrogram:
    module = MelSpectrogram(
        sample_rate=CLONING_SAMPLE_RATE,
        n_fft=CLONING_N_FFT,
        win_length=CLONING_WIN_LENGTH,
        hop_length=CLONING_HOP_LENGTH,
        n_mels=CLONING_N_MELS,
        f_max=CLONING_F_MAX,
        norm="slaney",
    )
    return module.to(device)


def cloning_mel(wav: torch.Tensor) -> torch.Tensor:
    """Log mel of 22050 Hz audio for the GPT conditioning encoder, before the `mel_stats` division.

    wav: [B, N] or [N] float32 in [-1, 1] -> [B, 80, N // 256 + 1] (or [80, frames]).
    The filterbank and window are built once per device.
    """
    if wav.dtype != torch.float32:
        raise TypeError(f"cloning_mel expects float32 audio, got {wav.dtype}")
    mel = _cloning_mel_module(wav.device)(wav)
    return torch.log(torch.clamp(mel, min=CLONING_LOG_FLOOR))

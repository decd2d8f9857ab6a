"""Band-limited resampling, numerically equal to `torchaudio.functional.resample` with its defaults.

Why not soxr (or any better resampler): the reference computes the voice latents from audio that
torchaudio resampled (source rate -> 22050 Hz, then 22050 -> 16000 Hz for the speaker encoder). A
different filter shifts every sample a little, and the conditioning latents and speaker embedding of
a cloned voice would no longer equal the reference's. So we build the same windowed-sinc filter
(Hann window, 6 zero crossings, roll-off 0.99) in the same dtype and apply it the same way.

The filter for orig -> new (both divided by their gcd) has one row per output phase (`new` rows) and
`2 * width + orig` taps; output sample `q * new + j` is row `j` dotted with the padded input starting
at `q * orig`. For awkward rate pairs (a gcd of 1, e.g. 44101 Hz) that dense filter would take
gigabytes, so above `_DENSE_LIMIT` elements we evaluate only the `2 * width + 1` taps of each row
that are not clamped to zero (the others are below 1e-20) and gather the input for them.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

LOWPASS_FILTER_WIDTH = 6  # zero crossings of the sinc kept on each side (torchaudio's default)
ROLLOFF = 0.99  # cut-off as a fraction of the lower Nyquist frequency (torchaudio's default)

_DENSE_LIMIT = 1 << 22  # filter elements (new * taps) above which the banded path is used
_GATHER_LIMIT = 1 << 22  # elements gathered at once by the banded path


def resample(wav: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Resample `wav` [..., N] from `orig_sr` to `new_sr` Hz along its last axis.

    Returns [..., ceil(N * new_sr / orig_sr)] in the input's dtype and device; the input itself when
    the rates are equal (as torchaudio does).
    """
    if not wav.is_floating_point():
        raise TypeError(f"resample needs a floating-point waveform, got {wav.dtype}")
    if int(orig_sr) != orig_sr or int(new_sr) != new_sr or orig_sr <= 0 or new_sr <= 0:
        raise ValueError(f"sample rates must be positive integers, got {orig_sr} and {new_sr}")
    orig_sr, new_sr = int(orig_sr), int(new_sr)
    if orig_sr == new_sr:
        return wav
    gcd = math.gcd(orig_sr, new_sr)
    orig, new = orig_sr // gcd, new_sr // gcd
    width = _filter_width(orig, new)
    if new * (2 * width + orig) <= _DENSE_LIMIT:
        return _resample_dense(wav, orig, new)
    return _resample_banded(wav, orig, new)


def _filter_width(orig: int, new: int) -> int:
    """Half-length of the filter in input samples (beyond one period of `orig` taps)."""
    return math.ceil(LOWPASS_FILTER_WIDTH * orig / (min(orig, new) * ROLLOFF))


def _output_length(length: int, orig: int, new: int) -> int:
    # torchaudio rounds new * length / orig to float32 before the ceil; for long inputs that can
    # differ from the exact ceil by one sample, and we want the same length as the reference.
    return int(torch.ceil(torch.tensor(new * length / orig, dtype=torch.float32)).item())


def _sinc_hann(time: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    """Filter values at `time` = (tap offset / orig - phase / new), in input-sample units."""
    cutoff = min(orig, new) * ROLLOFF
    lw = LOWPASS_FILTER_WIDTH
    t = (time * cutoff).clamp_(-lw, lw)  # zero crossings from the centre, clamped at the window edge
    window = torch.cos(t * math.pi / lw / 2) ** 2
    t = t * math.pi
    kernel = torch.where(t == 0, torch.ones_like(t), t.sin() / t)
    return kernel * (window * (cutoff / orig))  # same product order as torchaudio, for equal bits


@lru_cache(maxsize=32)
def _dense_kernel(orig: int, new: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The full polyphase filter [new, 1, 2 * width + orig], computed in `dtype` like torchaudio."""
    width = _filter_width(orig, new)
    taps = torch.arange(-width, width + orig, dtype=dtype, device=device)[None, None] / orig
    phases = torch.arange(0, -new, -1, dtype=dtype, device=device)[:, None, None] / new
    return _sinc_hann(phases + taps, orig, new)  # [new, 1, taps]


def _resample_dense(wav: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    width = _filter_width(orig, new)
    kernel = _dense_kernel(orig, new, wav.dtype, wav.device)
    shape = wav.shape
    flat = wav.reshape(-1, shape[-1])  # [B, N]
    padded = F.pad(flat, (width, width + orig))
    out = F.conv1d(padded[:, None], kernel, stride=orig)  # [B, new, Q]
    out = out.transpose(1, 2).reshape(flat.shape[0], -1)  # [B, Q * new]
    out = out[:, : _output_length(shape[-1], orig, new)]
    return out.reshape(*shape[:-1], out.shape[-1])


@lru_cache(maxsize=8)
def _banded_kernel(
    orig: int, new: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per phase j: the first tap `start[j]` [new] and the taps [new, 2 * width + 1] from there."""
    width = _filter_width(orig, new)
    band = 2 * width + 1
    # Row j is non-zero only where |tap - width - orig * j / new| < width: taps in
    # [floor(orig * j / new), floor(orig * j / new) + 2 * width].
    start = torch.div(torch.arange(new, device=device) * orig, new, rounding_mode="floor")  # [new]
    taps = start[:, None] + torch.arange(band, device=device)  # [new, band]
    phases = torch.arange(0, -new, -1, dtype=dtype, device=device)[:, None] / new
    kernel = _sinc_hann(phases + (taps - width).to(dtype) / orig, orig, new)
    return start, kernel


def _resample_banded(wav: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    width = _filter_width(orig, new)
    start, kernel = _banded_kernel(orig, new, wav.dtype, wav.device)
    band = kernel.shape[1]
    shape = wav.shape
    flat = wav.reshape(-1, shape[-1])  # [B, N]
    padded = F.pad(flat, (width, width + orig))
    frames = padded.unfold(-1, 2 * width + orig, orig)  # [B, Q, taps], a view
    index = start[:, None] + torch.arange(band, device=wav.device)  # [new, band]
    step = max(1, _GATHER_LIMIT // (new * band))
    chunks = [
        torch.einsum("bqjk,jk->bqj", frames[:, q : q + step, index], kernel)  # [B, q, new]
        for q in range(0, frames.shape[1], step)
    ]
    out = torch.cat(chunks, dim=1).reshape(flat.shape[0], -1)  # [B, Q * new]
    out = out[:, : _output_length(shape[-1], orig, new)]
    return out.reshape(*shape[:-1], out.shape[-1])

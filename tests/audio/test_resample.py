"""Resampling equals torchaudio.functional.resample (golden outputs recorded from torchaudio 2.9)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from xtts_server.audio import resample as resample_module
from xtts_server.audio.resample import resample

GOLDEN = Path(__file__).resolve().parents[1] / "parity" / "golden"


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    return dict(np.load(GOLDEN / "audio_resample.npz"))


def reduced(orig: int, new: int) -> tuple[int, int]:
    gcd = math.gcd(orig, new)
    return orig // gcd, new // gcd


@pytest.mark.parity
def test_matches_torchaudio_for_every_rate_pair(golden: dict[str, np.ndarray]) -> None:
    for i, (orig, new) in enumerate(golden["pairs"].tolist()):
        out = resample(torch.from_numpy(golden[f"in_{i}"]), orig, new)
        expected = golden[f"out_{i}"]
        assert out.shape == expected.shape, (orig, new)
        np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-6, err_msg=f"{orig} -> {new}")


@pytest.mark.parity
def test_banded_path_matches_torchaudio(golden: dict[str, np.ndarray]) -> None:
    """The path taken for rate pairs whose dense filter would be huge, checked on every pair."""
    for i, (orig, new) in enumerate(golden["pairs"].tolist()):
        out = resample_module._resample_banded(torch.from_numpy(golden[f"in_{i}"]), *reduced(orig, new))
        np.testing.assert_allclose(
            out.numpy(), golden[f"out_{i}"], rtol=0, atol=1e-6, err_msg=f"{orig} -> {new}"
        )


@pytest.mark.parity
def test_float64_input_stays_float64(golden: dict[str, np.ndarray]) -> None:
    out = resample(torch.from_numpy(golden["in_f64"]), 44100, 16000)
    assert out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), golden["out_f64"], rtol=0, atol=1e-12)


def test_gcd_one_rate_uses_bounded_memory() -> None:
    """44101 Hz has gcd 1 with 22050: the dense filter would be 22050 x 44127 floats (3.9 GB)."""
    wav = torch.sin(torch.arange(44101) * 0.05)[None]  # 1 s of a 351 Hz tone
    out = resample(wav, 44101, 22050)
    assert out.shape == (1, 22050)
    t = torch.arange(22050) * (44101 / 22050)
    np.testing.assert_allclose(out[0, 100:-100].numpy(), torch.sin(t * 0.05)[100:-100].numpy(), atol=2e-3)


def test_batched_leading_dims_and_equal_rates() -> None:
    wav = torch.randn(2, 3, 1000)
    out = resample(wav, 48000, 22050)
    assert out.shape == (2, 3, math.ceil(1000 * 22050 / 48000))
    torch.testing.assert_close(out[1, 2], resample(wav[1, 2], 48000, 22050))
    assert resample(wav, 16000, 16000) is wav


def test_output_length_follows_torchaudio_float32_rounding() -> None:
    assert resample_module._output_length(1_000_001, 320, 147) == math.ceil(147 * 1_000_001 / 320)
    # torchaudio takes ceil(new * length / orig) of a float32: 16777217 rounds to 16777216 first
    assert resample_module._output_length(16_777_217, 1, 1) == 16_777_216


def test_kernel_is_cached() -> None:
    wav = torch.randn(1, 500)
    resample(wav, 22050, 16000)
    before = resample_module._dense_kernel.cache_info().hits
    resample(wav, 22050, 16000)
    assert resample_module._dense_kernel.cache_info().hits == before + 1


def test_rejects_bad_input() -> None:
    with pytest.raises(TypeError, match="floating-point"):
        resample(torch.zeros(10, dtype=torch.int16), 16000, 22050)
    with pytest.raises(ValueError, match="positive integers"):
        resample(torch.zeros(10), 0, 22050)
    with pytest.raises(ValueError, match="positive integers"):
        resample(torch.zeros(10), 44100.5, 22050)  # type: ignore[arg-type]

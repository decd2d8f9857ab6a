"""Mel spectrograms equal torchaudio's (golden outputs recorded from the reference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from xtts_server.audio.mel import MelSpectrogram, cloning_mel, melscale_fbanks

GOLDEN = Path(__file__).resolve().parents[1] / "parity" / "golden"


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    return dict(np.load(GOLDEN / "audio_mel.npz"))


@pytest.mark.parity
def test_cloning_mel_matches_reference(golden: dict[str, np.ndarray]) -> None:
    for i in range(2):
        wav = torch.from_numpy(golden[f"wav_{i}"])  # [1, N] at 22050 Hz
        mel = cloning_mel(wav)
        expected = golden[f"mel_{i}"]
        assert mel.shape == expected.shape == (1, 80, wav.shape[-1] // 256 + 1)
        np.testing.assert_allclose(mel.numpy(), expected, rtol=1e-5, atol=1e-5)
    # the silent stretch in clip 1 hits the 1e-5 floor
    assert np.isclose(golden["mel_1"].min(), np.log(1e-5), atol=1e-6)


@pytest.mark.parity
def test_cloning_filterbank_matches_reference(golden: dict[str, np.ndarray]) -> None:
    fb = melscale_fbanks(1025, 0.0, 8000.0, 80, 22050, "slaney")
    assert fb.shape == (1025, 80)
    np.testing.assert_allclose(fb.sum(dim=0).numpy(), golden["cloning_fb_sum"], rtol=1e-6)
    np.testing.assert_array_equal(fb[::16].numpy(), golden["cloning_fb_rows"])


def test_cloning_mel_shapes_and_dtype() -> None:
    wav = torch.randn(3, 5000) * 0.1
    assert cloning_mel(wav).shape == (3, 80, 5000 // 256 + 1)
    assert cloning_mel(wav[0]).shape == (80, 5000 // 256 + 1)
    torch.testing.assert_close(cloning_mel(wav)[1], cloning_mel(wav[1]))
    with pytest.raises(TypeError, match="float32"):
        cloning_mel(wav.double())


def test_mel_spectrogram_buffers_and_power() -> None:
    mel = MelSpectrogram(sample_rate=16000, n_fft=512, win_length=400, hop_length=160, n_mels=64)
    assert set(mel.state_dict()) == {"spectrogram.window", "mel_scale.fb"}
    assert mel.mel_scale.fb.shape == (257, 64)
    # a 1 kHz tone puts its energy in the bands around 1 kHz
    t = torch.arange(16000) / 16000
    spec = mel(torch.sin(2 * torch.pi * 1000 * t))
    peak_band = int(spec.mean(dim=-1).argmax())
    centre_hz = 700 * (10 ** (np.linspace(0, 2595 * np.log10(1 + 8000 / 700), 66)[peak_band + 1] / 2595) - 1)
    assert 850 < centre_hz < 1150
    with pytest.raises(ValueError, match="norm"):
        melscale_fbanks(257, 0.0, 8000.0, 64, 16000, "htk")  # type: ignore[arg-type]

"""Speaker encoder: same keys, buffers and outputs as the reference's ResNetSpeakerEncoder (golden)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from seeded_weights import seeded_weights

from xtts_server.model.speaker_encoder import SpeakerEncoder, SpeakerEncoderArgs

GOLDEN = Path(__file__).resolve().parents[1] / "parity" / "golden"
FRONT_END_BUFFERS = {
    "filter": "torch_spec.0.filter",
    "window": "torch_spec.1.spectrogram.window",
    "fb": "torch_spec.1.mel_scale.fb",
}


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    return dict(np.load(GOLDEN / "audio_speaker_encoder.npz"))


@pytest.fixture(scope="module")
def encoder(golden: dict[str, np.ndarray]) -> SpeakerEncoder:
    shapes = {k: tuple(v) for k, v in json.loads(str(golden["shapes"])).items()}
    random_shapes = {k: v for k, v in shapes.items() if not k.startswith("torch_spec.")}
    weights = seeded_weights(random_shapes, int(golden["seed"]))
    model = SpeakerEncoder()
    missing, unexpected = model.load_state_dict(
        {k: torch.from_numpy(v) for k, v in weights.items()}, strict=False
    )
    assert not unexpected
    assert all(k.startswith("torch_spec.") or k.endswith("num_batches_tracked") for k in missing)
    return model


@pytest.mark.parity
def test_state_dict_keys_and_shapes_are_the_release_ones(golden: dict[str, np.ndarray]) -> None:
    release = {k: tuple(v) for k, v in json.loads(str(golden["shapes"])).items()}
    ours = {k: tuple(v.shape) for k, v in SpeakerEncoder().state_dict().items()}
    assert ours == release
    assert sum(math.prod(s) for s in ours.values()) == 8_054_147


@pytest.mark.parity
def test_front_end_buffers_equal_the_reference(golden: dict[str, np.ndarray]) -> None:
    state = SpeakerEncoder().state_dict()
    for name, key in FRONT_END_BUFFERS.items():
        np.testing.assert_array_equal(state[key].numpy(), golden[name])


@pytest.mark.parity
def test_features_match_reference(encoder: SpeakerEncoder, golden: dict[str, np.ndarray]) -> None:
    with torch.no_grad():
        features = encoder.features(torch.from_numpy(golden["wav"][:1]))
    np.testing.assert_allclose(features.numpy(), golden["features0"], rtol=0, atol=1e-5)


@pytest.mark.parity
def test_embeddings_match_reference(encoder: SpeakerEncoder, golden: dict[str, np.ndarray]) -> None:
    wav = torch.from_numpy(golden["wav"])  # [2, 24000] at 16 kHz
    with torch.no_grad():
        emb = encoder(wav, l2_norm=True)
        raw = encoder(wav, l2_norm=False)
        emb_3d = encoder(wav[:, None], l2_norm=True)  # [B, 1, N] is accepted too
    np.testing.assert_allclose(emb.numpy(), golden["emb"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(raw.numpy(), golden["emb_raw"], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(emb_3d, emb)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))
    assert wav.shape == (2, 24000)  # the input is not modified in place (the reference squeezes it)


def test_batch_items_are_independent(encoder: SpeakerEncoder, golden: dict[str, np.ndarray]) -> None:
    wav = torch.from_numpy(golden["wav"])
    with torch.no_grad():
        together = encoder(wav)
        alone = encoder(wav[1:])
    torch.testing.assert_close(together[1:], alone, rtol=0, atol=1e-6)


def test_starts_in_eval_mode_and_validates_args() -> None:
    assert not SpeakerEncoder().training
    with pytest.raises(ValueError, match="one entry per stage"):
        SpeakerEncoder(SpeakerEncoderArgs(layers=(1, 1)))

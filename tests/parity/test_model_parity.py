"""Parity with the reference implementation (coqui-tts 0.28.0), through golden outputs it recorded on
the same random checkpoints (scripts/parity/make_model_golden.py): token ids, the cloned voice, greedy
codes at repetition penalty 1.0 and 5.0, and the whole-synthesis waveform."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from parity_cases import SENTENCES, TOKENS, state_fingerprint

from xtts_server import XTTS
from xtts_server.inference.voice import Voice

GOLDEN = Path(__file__).parent / "golden"
# XTTS_TEST_DEVICE=cuda runs the same comparisons on a GPU, in float32 without TF32:
#   XTTS_TEST_DEVICE=cuda python -m pytest tests/parity   (README: the GPU suites)
DEVICE = os.environ.get("XTTS_TEST_DEVICE", "cpu")

pytestmark = pytest.mark.parity


def _golden(size: str) -> dict[str, np.ndarray]:
    path = GOLDEN / f"model_{size}.npz"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run scripts/parity/make_model_golden.py {size} in the oracle venv")
    with np.load(path) as data:
        return dict(data)


@pytest.fixture(scope="module", params=["tiny", pytest.param("full", marks=pytest.mark.slow)])
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    size = request.param
    golden = _golden(size)
    if size == "tiny":
        model_dir = request.getfixturevalue("tiny_model_dir")
    else:
        from xtts_server.random_model import make_test_model

        model_dir = make_test_model(tmp_path_factory.mktemp("full"), "full", seed=0)
    fingerprint = state_fingerprint(model_dir / "model.pth")
    assert fingerprint == str(golden["fingerprint"]), (
        "make-test-model no longer makes the weights the golden outputs were recorded on "
        "(random generator or init changed): re-run scripts/parity/make_model_golden.py"
    )
    if DEVICE != "cpu":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    tts = XTTS.load(model_dir, device=DEVICE, dtype=torch.float32)
    return size, golden, tts


def test_token_ids(case) -> None:  # type: ignore[no-untyped-def]
    _, golden, tts = case
    for i, sentence in enumerate(SENTENCES):
        assert tts.tokenize(sentence, "en") == golden[f"ids_{i}"].tolist()


def test_cloned_voice(case, clip_paths) -> None:  # type: ignore[no-untyped-def]
    _, golden, tts = case
    voice = tts.clone_voice(clip_paths)
    np.testing.assert_allclose(
        voice.gpt_cond_latent.cpu().numpy(), golden["gpt_cond_latent"], atol=1e-4, rtol=0
    )
    np.testing.assert_allclose(
        voice.speaker_embedding.cpu().numpy(), golden["speaker_embedding"], atol=1e-4, rtol=0
    )
    one = tts.clone_voice(clip_paths[0])
    np.testing.assert_allclose(
        one.gpt_cond_latent.cpu().numpy(), golden["one_clip_gpt_cond_latent"], atol=1e-4, rtol=0
    )
    np.testing.assert_allclose(
        one.speaker_embedding.cpu().numpy(), golden["one_clip_speaker_embedding"], atol=1e-4, rtol=0
    )


def _reference_voice(golden: dict[str, np.ndarray]) -> Voice:
    # Decode from the reference's own voice so code/audio parity does not hinge on cloning tolerance.
    return Voice(torch.from_numpy(golden["gpt_cond_latent"]), torch.from_numpy(golden["speaker_embedding"]))


@pytest.mark.parametrize("penalty", [1.0, 5.0])
def test_greedy_codes(case, penalty: float) -> None:  # type: ignore[no-untyped-def]
    size, golden, tts = case
    lo, hi = TOKENS[size]
    voice = _reference_voice(golden)
    for i, sentence in enumerate(SENTENCES):
        want = golden[f"codes_{i}_rp{penalty:g}"].tolist()
        out = tts.synthesize(
            sentence,
            "en",
            voice,
            do_sample=False,
            repetition_penalty=penalty,
            min_new_tokens=lo,
            max_new_tokens=hi,
        )
        stop = tts.config.args.gpt_stop_audio_token
        got = out.codes[0] + ([stop] if want[-1] == stop else [])
        assert got == want, f"sentence {i}"


def test_whole_synthesis_waveform(case) -> None:  # type: ignore[no-untyped-def]
    size, golden, tts = case
    lo, hi = TOKENS[size]
    voice = _reference_voice(golden)
    for i, sentence in enumerate(SENTENCES):
        out = tts.synthesize(
            sentence,
            "en",
            voice,
            do_sample=False,
            repetition_penalty=5.0,
            min_new_tokens=lo,
            max_new_tokens=hi,
        )
        want = golden[f"wav_{i}"]
        assert out.audio.shape == want.shape
        assert np.max(np.abs(out.audio - want)) <= 1e-3, f"sentence {i}"

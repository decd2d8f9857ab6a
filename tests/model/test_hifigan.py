"""HiFi-GAN decoder: equal to the reference's HifiDecoder (golden outputs), and exact when windowed."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from seeded_weights import seeded_weights

from xtts_server.model.hifigan import HifiDecoder, HifiDecoderArgs, receptive_field

GOLDEN = Path(__file__).resolve().parents[1] / "parity" / "golden"
WN_G, WN_V = ".parametrizations.weight.original0", ".parametrizations.weight.original1"


def fold_weight_norm(state: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Reference weight-norm pairs (g = original0, v = original1) -> plain `.weight`, as the loader does."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(WN_G):
            base = key[: -len(WN_G)]
            v = torch.from_numpy(state[base + WN_V])
            out[base + ".weight"] = torch._weight_norm(v, torch.from_numpy(value), 0)
        elif not key.endswith(WN_V):
            out[key] = torch.from_numpy(value)
    return out


def assert_close(actual: torch.Tensor, expected: np.ndarray, atol: float = 1e-5) -> None:
    assert tuple(actual.shape) == expected.shape
    err = (actual - torch.from_numpy(expected)).abs().max().item()
    assert err <= atol, f"max abs error {err:.3g} > {atol:g}"


@pytest.fixture(scope="module")
def tiny_golden() -> dict[str, np.ndarray]:
    return dict(np.load(GOLDEN / "audio_hifigan_tiny.npz"))


@pytest.fixture(scope="module")
def full_golden() -> dict[str, np.ndarray]:
    return dict(np.load(GOLDEN / "audio_hifigan_full.npz"))


def tiny_decoder(golden: dict[str, np.ndarray]) -> HifiDecoder:
    decoder = HifiDecoder(HifiDecoderArgs(**json.loads(str(golden["config"]))))
    weights = {k.removeprefix("w."): v for k, v in golden.items() if k.startswith("w.")}
    decoder.waveform_decoder.load_state_dict(fold_weight_norm(weights))
    return decoder


@pytest.mark.parity
def test_state_dict_keys_are_the_release_keys_with_weight_norm_folded(
    full_golden: dict[str, np.ndarray],
) -> None:
    release = {f"waveform_decoder.{k}": tuple(v) for k, v in json.loads(str(full_golden["shapes"])).items()}
    folded = {k.replace(WN_V, ".weight"): v for k, v in release.items() if not k.endswith(WN_G)}
    ours = {k: tuple(v.shape) for k, v in HifiDecoder().state_dict().items()}
    assert ours == folded
    assert "waveform_decoder.conv_post.bias" not in ours


@pytest.mark.parity
def test_tiny_decoder_matches_reference(tiny_golden: dict[str, np.ndarray]) -> None:
    decoder = tiny_decoder(tiny_golden)
    with torch.no_grad():
        z = decoder.upsample_latents(torch.from_numpy(tiny_golden["latents_b2"]))
        assert_close(z, tiny_golden["z_b2"], atol=1e-6)
        for batch in ("b2", "b1"):  # b1 takes the reference's unbatched-conv path
            wav = decoder(
                torch.from_numpy(tiny_golden[f"latents_{batch}"]), torch.from_numpy(tiny_golden[f"g_{batch}"])
            )
            assert_close(wav, tiny_golden[f"out_{batch}"])


@pytest.mark.parity
def test_release_size_decoder_matches_reference(full_golden: dict[str, np.ndarray]) -> None:
    shapes = {k: tuple(v) for k, v in json.loads(str(full_golden["shapes"])).items()}
    decoder = HifiDecoder()
    decoder.waveform_decoder.load_state_dict(
        fold_weight_norm(seeded_weights(shapes, int(full_golden["seed"])))
    )
    latents, g = torch.from_numpy(full_golden["latents"]), torch.from_numpy(full_golden["g"])
    with torch.no_grad():
        wav = decoder(latents, g)
        assert_close(wav, full_golden["out"])
        assert_close(decoder(latents, g[:, :, 0]), full_golden["out"])  # g may also be [B, D]
    assert wav.shape[-1] == 256 * math.floor(4 * latents.shape[1] * 24000 / 22050)


def test_release_receptive_field() -> None:
    args = HifiDecoderArgs()
    assert receptive_field(args) == (13, 13)
    assert HifiDecoder(args).receptive_field == (13, 13)
    assert HifiDecoder(args).hop_length == 256
    assert HifiDecoder(args).interpolation_scales == (4.0, 24000 / 22050)


def test_receptive_field_grows_with_kernels() -> None:
    small = receptive_field(HifiDecoderArgs(resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1,),)))
    assert small.left < 13 and small.right < 13


def narrow_decoder(dtype: torch.dtype = torch.float32) -> HifiDecoder:
    """Release kernels, strides and dilations (so the release receptive field) at 1/16 of the width."""
    torch.manual_seed(0)
    decoder = HifiDecoder(HifiDecoderArgs(decoder_input_dim=24, upsample_initial_channel=32, d_vector_dim=8))
    with torch.no_grad():
        for p in decoder.parameters():
            p.normal_(0.0, 1.0 / math.sqrt(p[0].numel()) if p.dim() > 1 else 0.05)
    return decoder.to(dtype)


def test_window_decode_equals_full_decode() -> None:
    decoder = narrow_decoder()
    z, g = torch.randn(1, 24, 60), torch.randn(1, 8, 1)
    hop = decoder.hop_length
    with torch.no_grad():
        full = decoder.generate(z, g)
        assert 0.05 < full.std() < 0.7  # not saturated by tanh, so differences would show
        for start, end in ((0, 5), (20, 27), (30, 31), (50, 60), (0, 60)):
            window = decoder.generate_range(z, g, start, end)
            torch.testing.assert_close(window, full[..., start * hop : end * hop], rtol=0, atol=1e-5)


def test_receptive_field_is_exact() -> None:
    """In float64 the release context reproduces the centre to rounding error, and one frame less
    on either side does not: the numbers are neither too small nor padded."""
    decoder = narrow_decoder(torch.float64)
    z, g = torch.randn(1, 24, 60, dtype=torch.float64), torch.randn(1, 8, 1, dtype=torch.float64)
    left, right = decoder.receptive_field
    hop, start, end = decoder.hop_length, 25, 30

    def centre(context_left: int, context_right: int) -> torch.Tensor:
        wav = decoder.generate(z[..., start - context_left : end + context_right], g)
        return wav[..., context_left * hop : (context_left + end - start) * hop]

    with torch.no_grad():
        full = decoder.generate(z, g)[..., start * hop : end * hop]
        assert (centre(left, right) - full).abs().max() < 1e-12
        assert (centre(left - 1, right) - full).abs().max() > 1e-10
        assert (centre(left, right - 1) - full).abs().max() > 1e-10


@pytest.mark.parametrize("length_scale", [1.0, 1.25, 1 / 1.5, 20.0])
def test_num_frames_and_final_frames(length_scale: float) -> None:
    decoder = HifiDecoder(HifiDecoderArgs(decoder_input_dim=4, upsample_initial_channel=16, d_vector_dim=2))
    latents = torch.randn(1, 48, 4)
    full = decoder.upsample_latents(latents, length_scale)
    for t in range(2, 40):  # the last one still 8 latents short of the end
        z = decoder.upsample_latents(latents[:, :t], length_scale)
        assert z.shape[-1] == decoder.num_frames(t, length_scale)
        final = decoder.final_frames(t, length_scale)
        if final == 0:  # F.interpolate's equal-size shortcut: these lengths are not on the final grid
            assert t <= 4
            continue
        assert final < z.shape[-1]
        torch.testing.assert_close(z[..., :final], full[..., :final], rtol=0, atol=0)
        assert not torch.equal(z[..., final], full[..., final])  # the next frame does change
    if length_scale == 1.0:
        assert [decoder.final_frames(t) for t in (1, 2)] == [0, 0]
        assert {decoder.num_frames(t) - decoder.final_frames(t) for t in range(3, 700)} == {2, 3}
        assert decoder.num_frames(40) == math.floor(4 * 40 * 24000 / 22050)


def test_length_scale_is_the_reference_speed_interpolation() -> None:
    decoder = narrow_decoder()
    latents, g = torch.randn(1, 9, 24), torch.randn(1, 8, 1)
    slowed = torch.nn.functional.interpolate(latents.transpose(1, 2), scale_factor=1.25, mode="linear")
    with torch.no_grad():
        torch.testing.assert_close(decoder(latents, g, length_scale=1.25), decoder(slowed.transpose(1, 2), g))


@pytest.mark.parametrize("length_scale", [1.0, 1 / 1.3])
def test_incremental_decode_with_public_pieces_equals_full_decode(length_scale: float) -> None:
    """The streaming recipe: re-interpolate all latents so far (cheap), decode only frames that are
    final and have their right context final, and the rest at the end; the joined audio is the
    whole-utterance decode."""
    decoder = narrow_decoder()
    latents, g = torch.randn(1, 31, 24), torch.randn(1, 8, 1)
    right = decoder.receptive_field.right
    pieces, done, t = [], 0, 0
    with torch.no_grad():
        full = decoder(latents, g, length_scale)
        for step in (1, 3, 2, 4, 1, 5, 2, 6, 3, 4):
            t += step
            end = decoder.final_frames(t, length_scale) - right
            if end > done:
                z = decoder.upsample_latents(latents[:, :t], length_scale)
                pieces.append(decoder.generate_range(z, g, done, end))
                done = end
        assert t == latents.shape[1]
        z = decoder.upsample_latents(latents, length_scale)
        pieces.append(decoder.generate_range(z, g, done, z.shape[-1]))
    streamed = torch.cat(pieces, dim=-1)
    assert streamed.shape == full.shape
    torch.testing.assert_close(streamed, full, rtol=0, atol=1e-5)


def test_invalid_args_are_refused() -> None:
    with pytest.raises(ValueError, match="same length"):
        HifiDecoder(HifiDecoderArgs(upsample_rates=(8, 8, 2)))
    with pytest.raises(ValueError, match="odd"):
        HifiDecoder(HifiDecoderArgs(resblock_kernel_sizes=(3, 7, 10)))
    with pytest.raises(ValueError, match="outside"):
        narrow_decoder().generate_range(torch.zeros(1, 24, 10), torch.zeros(1, 8, 1), 5, 11)


@pytest.mark.parametrize("masked", [False, True])
def test_channels_last_path_equals_the_1d_path(masked: bool) -> None:
    """The GPU layout ([B, C, 1, L] channels-last 2-d convolutions) computes the same function,
    also with per-row lengths, and follows in-place weight changes."""
    decoder = narrow_decoder()
    gen = decoder.waveform_decoder
    z, g = torch.randn(3, 24, 40), torch.randn(3, 8, 1)
    lengths = torch.tensor([40, 31, 17]) if masked else None
    with torch.no_grad():
        gen.channels_last = False
        want = decoder.generate(z, g, lengths)
        gen.channels_last = True
        got = decoder.generate(z, g, lengths)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        assert got.shape == want.shape == (3, 1, 40 * decoder.hop_length)
        gen.conv_pre.weight.mul_(0.5)  # a cached 2-d weight must not go stale
        gen.channels_last = False
        want = decoder.generate(z, g, lengths)
        gen.channels_last = True
        torch.testing.assert_close(decoder.generate(z, g, lengths), want, rtol=1e-5, atol=1e-5)


def test_parallel_blocks_are_chosen_for_small_batches_on_cuda(
    tiny_tts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xtts_server.model import hifigan

    gen = tiny_tts.model.hifigan_decoder.waveform_decoder
    assert gen.parallel_blocks(1, cuda=True) and gen.parallel_blocks(hifigan.PARALLEL_MAX_BATCH, cuda=True)
    assert not gen.parallel_blocks(hifigan.PARALLEL_MAX_BATCH + 1, cuda=True)  # a batch fills the GPU
    assert not gen.parallel_blocks(1, cuda=False)  # streams exist on CUDA only
    monkeypatch.setattr(hifigan, "PARALLEL_BLOCKS", False)
    assert not gen.parallel_blocks(1, cuda=True)  # the module's switch
    monkeypatch.setattr(gen, "parallel", True)
    assert gen.parallel_blocks(1, cuda=True)  # an explicit setting wins

"""Streaming: chunks join into whole synthesis, and the vocoder's work per chunk stays bounded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xtts_server.inference.vocoder_stream import LinearStage, StreamingVocoder, window_frames


@pytest.mark.parametrize("scale", [4.0, 24000 / 22050, 1 / 1.3, 1 / 0.7])
@pytest.mark.parametrize("n", [1, 2, 7, 20, 101])
def test_linear_stage_equals_interpolate(scale: float, n: int) -> None:
    # Equal up to float32 rounding: ATen's vectorised kernel may fuse multiply-adds.
    x = torch.randn(3, n, generator=torch.Generator().manual_seed(n))
    stage = LinearStage(scale)
    if stage.out_len(n) == 0:
        return  # F.interpolate refuses an empty output
    want = F.interpolate(x[None], scale_factor=scale, mode="linear", align_corners=False)[0]
    assert stage.out_len(n) == want.shape[1]
    got = stage.compute(x, 0, 0, want.shape[1], n)
    torch.testing.assert_close(got, want, atol=3e-5, rtol=1e-5)
    # any sub-range, from just the inputs it reads
    start, end = want.shape[1] // 3, max(want.shape[1] // 3 + 1, 2 * want.shape[1] // 3)
    lo, hi = stage.source_range(start, end, n)
    torch.testing.assert_close(
        stage.compute(x[:, lo:hi], lo, start, end, n), want[:, start:end], atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("scale", [4.0, 24000 / 22050, 1 / 1.3])
def test_final_frames_do_not_change_when_more_input_comes(scale: float) -> None:
    stage = LinearStage(scale)
    x = torch.randn(2, 60)
    full = F.interpolate(x[None], scale_factor=scale, mode="linear")[0]
    for n in range(2, 60):
        final = stage.final_count(n, n, at_end=False)
        part = F.interpolate(x[None, :, :n], scale_factor=scale, mode="linear")[0]
        assert 0 <= final <= part.shape[1]
        torch.testing.assert_close(part[:, :final], full[:, :final])


def _snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    noise = reference - test
    return float(10 * np.log10(np.sum(reference**2) / max(np.sum(noise**2), 1e-30)))


@pytest.mark.parametrize(("tokens", "speed"), [(100, 1.0), (100, 1.25), (86, 1.0), (3, 1.0)])
def test_stream_matches_whole_synthesis(tiny_tts, tiny_voice, tokens: int, speed: float) -> None:  # type: ignore[no-untyped-def]
    kwargs = {"seed": 7, "min_new_tokens": tokens, "max_new_tokens": tokens, "speed": speed}
    text = "This is a test of the real-time text-to-speech synthesis system."
    whole = tiny_tts.synthesize(text, "en", tiny_voice, **kwargs)
    assert len(whole.codes[0]) == tokens
    chunks = list(tiny_tts.stream(text, "en", tiny_voice, stream_chunk_size=20, **kwargs))
    assert chunks[-1].is_last and not any(c.is_last for c in chunks[:-1])
    assert len(chunks) >= tokens // 20  # audio arrives during generation, not only at the end
    joined = np.concatenate([c.audio for c in chunks])
    assert joined.shape == whole.audio.shape
    assert _snr_db(whole.audio, joined) >= 30.0
    # in fact the joins are sample-exact up to float rounding
    assert np.max(np.abs(whole.audio - joined)) < 1e-4


def test_vocoder_window_is_bounded_as_the_utterance_grows(tiny_tts) -> None:  # type: ignore[no-untyped-def]
    decoder = tiny_tts.model.hifigan_decoder
    g = torch.randn(1, 512, 1)
    vocoder = StreamingVocoder(decoder, g)
    dim = tiny_tts.config.args.gpt_n_model_channels
    windows = []
    for _ in range(30):  # 600 latents, 20 at a time
        vocoder.push(torch.randn(20, dim))
        windows.append(vocoder.last_window)
    left, right = decoder.receptive_field
    per_chunk = int(np.ceil(20 * 4 * 24000 / 22050)) + 2
    assert max(windows[1:]) <= per_chunk + left + right
    assert max(windows[10:]) == max(windows[1:10])  # does not grow with the utterance


def test_windows_of_different_speeds_are_assembled_together_exactly(tiny_tts) -> None:  # type: ignore[no-untyped-def]
    """window_frames on a batch of plans (with and without a speed stage) gives each plan's frames
    as planning it alone does, to the bit."""
    decoder = tiny_tts.model.hifigan_decoder
    g = torch.zeros(1, 512, 1)
    latents = [torch.randn(n, 16) for n in (47, 60, 33)]
    plans = []
    for speed, x in zip((1.0, 1.3, 0.7), latents, strict=True):
        v = StreamingVocoder(decoder, g, speed=speed)
        v.plan_window(20, at_end=False)  # a later window: it starts past the left context
        plans.append(v.plan_window(len(x), at_end=True))
    assert len({len(p.stages) for p in plans}) == 2
    together = window_frames(
        plans, torch.cat([x[slice(*p.latents)] for p, x in zip(plans, latents, strict=True)])
    )
    alone = [window_frames([p], x[slice(*p.latents)]) for p, x in zip(plans, latents, strict=True)]
    assert torch.equal(together, torch.cat(alone))
    assert together.shape[0] == sum(p.frames for p in plans)

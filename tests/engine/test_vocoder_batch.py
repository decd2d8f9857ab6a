"""Vocoder windows as fixed-shape index arrays (`engine.vocoder_batch`): the frames built from the
packed arrays equal the unbatched path's bit for bit, whatever the mix of speeds and window sizes
in a batch; padding is zero; what does not fit is refused (and then runs outside the graphs)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from xtts_server.engine.vocoder_batch import MAX_SPEED, WindowBatch, level_caps
from xtts_server.inference.vocoder_stream import StreamingVocoder, WindowPlan, window_frames


def _plans(decoder: Any, speed: float, total: int, chunk: int) -> list[WindowPlan]:
    """Every window of one stream of `total` latents, planned every `chunk` latents."""
    vocoder = StreamingVocoder(decoder, torch.zeros(1, 512, 1), speed=speed)
    plans = []
    for n in [*range(chunk, total, chunk), total]:
        plan = vocoder.plan_window(n, at_end=n == total)
        if plan is not None:
            plans.append(plan)
    return plans


def _layout(decoder: Any, b: int, f: int) -> WindowBatch:
    return WindowBatch(b, f, level_caps(f, decoder.interpolation_scales))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_packed_frames_equal_the_unbatched_windows(tiny_tts: Any, dtype: torch.dtype) -> None:
    decoder = tiny_tts.model.hifigan_decoder
    gen = torch.Generator().manual_seed(0)
    hist = torch.randn(6, 120, 16, generator=gen).to(dtype)  # [rows, positions, C]; row 5: scratch
    # Three streams of different speeds (the copy stage in front of speed 1), windows of each.
    streams = [(1, 1.0), (3, 1.7), (4, 0.6)]
    windows = [(p, row) for row, speed in streams for p in _plans(decoder, speed, 100, 20)]
    f = 256
    layout = _layout(decoder, 16, f)
    assert all(layout.fits(p) for p, _ in windows)
    batch = windows[:11]
    ints = np.zeros(layout.int_size, dtype=np.int64)
    floats = np.zeros(layout.float_size, dtype=np.float32)
    layout.pack([p for p, _ in batch], [r for _, r in batch], 5, ints, floats)
    frames = layout.frames(hist, torch.from_numpy(ints), torch.from_numpy(floats))  # [b, f, C]
    assert frames.shape == (16, f, 16) and frames.dtype == dtype
    for j, (plan, row) in enumerate(batch):
        alone = window_frames([plan], hist[row, plan.latents[0] : plan.latents[1]])
        assert torch.equal(frames[j, : plan.frames], alone)
        assert not frames[j, plan.frames :].any()  # zero past the window's frames
    assert not frames[len(batch) :].any()  # padding windows
    speakers, lengths = layout.speakers(torch.from_numpy(ints)), layout.lengths(torch.from_numpy(ints))
    assert speakers.tolist() == [r for _, r in batch] + [5] * (16 - len(batch))
    assert lengths.tolist() == [p.frames for p, _ in batch] + [f] * (16 - len(batch))


def test_windows_that_do_not_fit_are_refused(tiny_tts: Any) -> None:
    decoder = tiny_tts.model.hifigan_decoder
    small = _layout(decoder, 1, 64)
    big = _plans(decoder, 1.0, 100, 50)[0]
    assert 64 < big.frames <= 256 and not small.fits(big)
    assert _layout(decoder, 1, 256).fits(big)
    # Faster than MAX_SPEED: more latents per frame than the layout holds.
    fast = _plans(decoder, MAX_SPEED * 3, 400, 200)[0]
    layout = _layout(decoder, 1, 256)
    assert fast.frames <= 256 and not layout.fits(fast)


HALF, FULL = torch.float16, torch.float32


@pytest.mark.parametrize(("dtype", "out_dtype"), [(HALF, HALF), (HALF, FULL), (FULL, FULL)])
def test_the_fused_stages_build_the_same_frames(
    tiny_tts: Any, dtype: torch.dtype, out_dtype: torch.dtype
) -> None:
    # engine.fused_frames: a Triton kernel per interpolation stage (compiled on a GPU, else in
    # Triton's interpreter), written transposed into the generator's input (wider than the
    # bucket, as the runner's is), equals the torch stages' frames copied there, bit for bit.
    from ray_helpers import import_triton

    fused_frames = import_triton("xtts_server.engine.fused_frames")
    decoder = tiny_tts.model.hifigan_decoder
    gen = torch.Generator().manual_seed(1)
    hist = torch.randn(6, 120, 16, generator=gen).to(dtype)
    streams = [(1, 1.0), (3, 1.7), (4, 0.6)]
    windows = [(p, row) for row, speed in streams for p in _plans(decoder, speed, 100, 20)]
    layout = _layout(decoder, 8, 128)
    batch = [w for w in windows if layout.fits(w[0])][:6]
    ints = np.zeros(layout.int_size, dtype=np.int64)
    floats = np.zeros(layout.float_size, dtype=np.float32)
    layout.pack([p for p, _ in batch], [r for _, r in batch], 5, ints, floats)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # (compiled on a GPU)
    hist, ints_t, floats_t = (
        hist.to(device),
        torch.from_numpy(ints).to(device),
        torch.from_numpy(floats).to(device),
    )
    want = layout.frames(hist, ints_t, floats_t).transpose(1, 2).to(out_dtype)  # [b, C, f]
    out = torch.full((8, 16, 256), float("nan"), dtype=out_dtype, device=device)[:, :, :128]
    fused_frames.frames_into(layout, hist, ints_t, floats_t, out)
    assert torch.equal(out, want)
    assert any(len(p.stages) == layout.depth for p, _ in batch)  # (a speed stage among them)

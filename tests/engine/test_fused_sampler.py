"""The one-kernel sampler against `sampler.choose_codes` (interpreted on the CPU, compiled on a GPU)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from engine_helpers import TEXTS, run_all
from ray_helpers import import_triton
from xtts_server.engine import Engine, EngineConfig
from xtts_server.engine.sampler import RowParams, choose_codes

fused_sampler = import_triton("xtts_server.engine.fused_sampler")

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
VOCAB, STOP = 1026, 1025


def _rows(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, RowParams]:
    """n rows of continuous random logits (no ties), with every mix of parameters."""
    g = torch.Generator().manual_seed(n)
    logits = (torch.randn(n, VOCAB, generator=g) * 3).to(DEVICE)
    seen = (torch.rand(n, VOCAB, generator=g) < 0.05).to(DEVICE)
    step = torch.randint(0, 40, (n,), generator=g).to(DEVICE)
    p = RowParams(n, DEVICE)
    pick = lambda *values: torch.tensor(values, device=DEVICE)[torch.arange(n, device=DEVICE) % len(values)]  # noqa: E731
    p.temperature.copy_(pick(0.75, 1.0, 0.3, 2.0, 0.01))
    p.top_k.copy_(pick(50, 0, 1, 3, 2000, 7, 50))
    p.top_p.copy_(pick(0.85, 1.0, 0.2, 0.999, 0.5, 0.01))
    p.repetition_penalty.copy_(pick(5.0, 1.0, 2.0, 0.5))
    p.do_sample.copy_(torch.arange(n, device=DEVICE) % 5 != 0)  # every fifth row greedy
    p.seed.copy_(torch.randint(0, 2**32, (n,), generator=g).to(DEVICE))
    p.min_new.copy_(pick(0, 100))
    logits[::3, STOP] = 20.0  # the stop code the favourite in some rows: barred where step < min_new
    return logits, seen, step, p


def test_codes_equal_the_torch_sampler() -> None:
    logits, seen, step, p = _rows(96)
    with torch.inference_mode():
        want = choose_codes(logits, seen, step, p, STOP)
        got = fused_sampler.choose_codes(logits, seen, step, p, STOP)
    assert torch.equal(got, want), (got != want).nonzero()
    # Not a trivial agreement: draws differ from the argmax, and the stop bar bites.
    assert (want != logits.argmax(-1)).sum() > 20
    favourite = logits.argmax(-1) == STOP
    assert (want[favourite & (step < p.min_new)] != STOP).all() and (want == STOP).any()


def test_parameters_may_be_strided_views_and_the_mask_a_broadcast_row() -> None:
    # The admission's first code: the newcomers' parameters straight from the packed admission
    # buffers (columns of a [n, 3] float and a [n, 4] int array: RowParams.of) and one repetition
    # mask shared by every row (stride 0).
    logits, seen, step, p = _rows(24)
    floats = torch.stack([p.temperature, p.top_p, p.repetition_penalty], dim=1)  # [n, 3]
    ints = torch.stack([p.top_k, p.seed, p.min_new, p.do_sample.long()], dim=1)  # [n, 4]
    strided = RowParams.of((floats[:, 0], ints[:, 0], floats[:, 1], floats[:, 2], ints[:, 3] != 0, ints[:, 1],
                            ints[:, 2]))  # fmt: skip
    assert strided.temperature.stride(0) == 3 and strided.seed.stride(0) == 4
    shared = seen[0].expand(24, -1)
    with torch.inference_mode():
        want = choose_codes(logits, shared.clone(), step, p, STOP)
        assert torch.equal(fused_sampler.choose_codes(logits, shared, step, strided, STOP), want)


def test_half_precision_logits_are_read_as_float32() -> None:
    logits, seen, step, p = _rows(16)
    logits = logits.half()
    with torch.inference_mode():
        want = choose_codes(logits.float(), seen, step, p, STOP)
        assert torch.equal(fused_sampler.choose_codes(logits, seen, step, p, STOP), want)


def test_choose_and_advance_does_the_steps_bookkeeping() -> None:
    n, dim, max_new = 8, 24, 30
    logits, seen, step, p = _rows(n)
    step[0] = max_new  # a row at the end: the history index and step stay clamped
    pos = torch.arange(n, device=DEVICE) * 10
    pos[1] = 99  # at the last position: stays there
    latent = torch.randn(n, dim, device=DEVICE).half()
    hist = torch.zeros(n + 2, max_new + 1, dim, device=DEVICE).half()  # more rows than the batch
    codes = torch.full((n + 2,), -1, dtype=torch.long, device=DEVICE)
    with torch.inference_mode():
        want = choose_codes(logits, seen, step, p, STOP)
        want_seen = seen.clone()
        want_seen[torch.arange(n, device=DEVICE), want] = True
        want_hist = hist.clone()
        want_hist[torch.arange(n, device=DEVICE), step.clamp(max=max_new)] = latent
        want_step, want_pos = (step + 1).clamp(max=max_new), (pos + 1).clamp(max=99)
        fused_sampler.choose_and_advance(
            logits, latent, seen=seen, step=step, pos=pos, codes=codes[:n], hist=hist, params=p,
            stop_token=STOP, max_new=max_new, last_pos=99,
        )  # fmt: skip
    assert torch.equal(codes[:n], want) and (codes[n:] == -1).all()
    assert torch.equal(seen, want_seen)
    assert torch.equal(hist, want_hist)
    assert torch.equal(step, want_step) and torch.equal(pos, want_pos)


@pytest.mark.skipif(DEVICE.type == "cuda", reason="the CPU engine (interpreted); tests/gpu covers the GPU")
def test_engine_with_the_fused_sampler_draws_the_same_codes(tiny_tts: Any) -> None:
    # End to end through the runner (prefill's first code, every decode step's bookkeeping, padded
    # rows): sampled streams with seeds give the codes and audio of the torch sampler's engine.
    specs = [
        dict(text=t, seed=7 + i, max_new_tokens=12, stream_chunk_size=4) for i, t in enumerate(TEXTS[:3])
    ]
    results = []
    for fused in (False, True):
        engine = Engine(tiny_tts.model, DEVICE, EngineConfig(slots=4, buckets=True, fused_sampler=fused))
        assert engine.runner.config.fused_sampler is fused
        engine.start()
        try:
            results.append(run_all(engine, tiny_tts, specs))
        finally:
            engine.stop()
    for (want_audio, want_codes), (audio, codes) in zip(*results, strict=True):
        assert codes == want_codes and len(codes) > 1
        # (vocoder windows batch differently from run to run: the same audio to rounding)
        np.testing.assert_allclose(audio, want_audio, atol=1e-5)

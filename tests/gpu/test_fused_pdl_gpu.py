"""The fused decode step launched with programmatic dependent launch (each kernel starting while the
previous one runs) gives the same bits as the same kernels launched one after the other: a kernel
reading its predecessor's output before waiting for it would show here as a difference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def half_gpt(tiny_model_dir: Path) -> Any:
    from xtts_server import XTTS

    return XTTS.load(tiny_model_dir, device="cuda", dtype=torch.float16).model.gpt


def test_pdl_step_equals_the_same_kernels_without_pdl(half_gpt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from xtts_server.model import fused_decode

    device = torch.device("cuda")
    if torch.cuda.get_device_capability(device) < (9, 0):
        pytest.skip("programmatic dependent launch needs a Hopper GPU or later")
    gpt = half_gpt
    c = gpt.args.gpt_n_model_channels
    # One BLOCK_K tile a program (the weights loaded before the wait), the MLP out split in 4.
    table = {(3 * c, c): (32, c, 4, 1, 1), (c, c): (16, c, 4, 1, 1), (4 * c, c): (32, c, 4, 1, 1),
             (c, 4 * c): (32, c, 4, 1, 4), (gpt.mel_head.weight.shape[0], c): (16, c, 4, 1, 1)}  # fmt: skip
    monkeypatch.setattr(fused_decode, "_CONFIGS", table)
    monkeypatch.setattr(fused_decode, "_PDL_CONFIGS", table)
    rows, seq = 16, 300
    cache = gpt.new_cache(rows, seq, torch.float16, device)
    gen = torch.Generator(device="cuda").manual_seed(0)
    max_step = gpt.args.mel_positions - 1

    def step(b: int) -> tuple[torch.Tensor, ...]:
        latent, logits = fused_decode.decode_step(gpt, codes[:b], steps[:b], pos[:b], cache.kv, max_step)
        return latent, logits, cache.kv.clone()

    with torch.inference_mode():
        for trial in range(6):
            b = (1, 5, 16)[trial % 3]
            cache.kv.normal_(generator=gen)
            kv0 = cache.kv.clone()
            codes = torch.randint(0, 1024, (rows,), device=device, generator=gen)
            steps = torch.randint(1, 200, (rows,), device=device, generator=gen)
            pos = torch.randint(0, seq - 1, (rows,), device=device, generator=gen)
            outs = {}
            for pdl in (False, True):
                monkeypatch.setattr(fused_decode, "PDL", pdl)
                cache.kv.copy_(kv0)
                eager = step(b)
                graph = torch.cuda.CUDAGraph()
                step(b)  # compile outside the capture
                with torch.cuda.graph(graph):
                    static = fused_decode.decode_step(gpt, codes[:b], steps[:b], pos[:b], cache.kv, max_step)
                for _ in range(5):  # replays: a race would differ from one to the next
                    cache.kv.copy_(kv0)
                    graph.replay()
                    torch.cuda.synchronize()
                    assert torch.equal(static[0], eager[0]) and torch.equal(static[1], eager[1]), (pdl, b)
                    assert torch.equal(cache.kv, eager[2]), (pdl, b)  # the new keys and values
                outs[pdl] = eager
            for without, with_pdl in zip(outs[False], outs[True], strict=True):
                assert torch.equal(without, with_pdl), b

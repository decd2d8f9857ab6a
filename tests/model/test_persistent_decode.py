"""The one-kernel decode step (model/persistent_decode.py) against the five-kernel step and the
unfused model code. Without a GPU it runs in Triton's interpreter (one program, so every barrier
passes at once); tests/gpu runs it with a program on every multiprocessor."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ray_helpers import import_triton

persistent_decode = import_triton("xtts_server.model.persistent_decode")
fused_decode = import_triton("xtts_server.model.fused_decode")

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
TOLERANCE = {torch.float32: 1e-5, torch.float16: 2e-3}


def _gpt(model_dir: Path, dtype: torch.dtype):  # type: ignore[no-untyped-def]
    from xtts_server import XTTS

    return XTTS.load(model_dir, device=DEVICE, dtype=dtype).model.gpt


def _state(gpt, dtype: torch.dtype, rows: int):  # type: ignore[no-untyped-def]
    """A cache of random keys and values, and rows at different positions (one past the audio
    position table, which the step clamps)."""
    torch.manual_seed(3)
    cache = gpt.new_cache(rows, 80, dtype, DEVICE)
    cache.kv.normal_()
    codes = torch.tensor([3, 500, 1024, 7, 9][:rows], device=DEVICE)
    step = torch.tensor([1, 7, gpt.args.mel_positions + 5, 0, 30][:rows], device=DEVICE)
    pos = torch.tensor([5, 41, 70, 0, 64][:rows], device=DEVICE)  # 0 and 64: chunk edges
    return cache, codes, step, pos


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_one_kernel_equals_the_five_kernel_step_bit_for_bit(tiny_model_dir: Path, dtype: torch.dtype) -> None:
    # Bit for bit, so that a stream's codes do not depend on which of the two steps served it.
    gpt = _gpt(tiny_model_dir, dtype)
    cache, codes, step, pos = _state(gpt, dtype, rows=5)
    max_step = gpt.args.mel_positions - 1
    other = gpt.new_cache(5, 80, dtype, DEVICE)
    other.kv.copy_(cache.kv)
    with torch.inference_mode():
        want_latent, want_logits = fused_decode.decode_step(gpt, codes, step, pos, cache.kv, max_step)
        decoder = persistent_decode.PersistentDecoder(gpt, DEVICE)
        latent, logits = decoder.step(codes, step, pos, other.kv, max_step)
    assert torch.equal(latent, want_latent)
    assert torch.equal(logits, want_logits)
    assert torch.equal(other.kv, cache.kv)  # the same keys and values written, nothing else touched
    # Barrier counters are zero between launches but the last (zeroed at the next launch's start),
    # and every split and attention counter is back at zero.
    assert not decoder.barriers[:-1].any() and not decoder.counters.any()


def test_one_kernel_step_equals_the_unfused_model(tiny_model_dir: Path) -> None:
    dtype = torch.float32
    gpt = _gpt(tiny_model_dir, dtype)
    cache, codes, step, pos = _state(gpt, dtype, rows=3)
    max_step = gpt.args.mel_positions - 1
    other = gpt.new_cache(3, 80, dtype, DEVICE)
    other.kv.copy_(cache.kv)
    with torch.inference_mode():
        emb = gpt.audio_embedding(codes[:, None], step.clamp(max=max_step)[:, None])
        want_latent = gpt.latents(gpt.decode(emb, pos, cache, 80))
        want_logits = gpt.logits(want_latent)
        decoder = persistent_decode.PersistentDecoder(gpt, DEVICE)
        latent, logits = decoder.step(codes, step, pos, other.kv, max_step)
    for got, want in ((latent, want_latent), (logits, want_logits), (other.kv, cache.kv)):
        err = (got - want).abs().max().item()
        assert err <= TOLERANCE[dtype] * max(want.abs().max().item(), 1.0), err


def test_a_row_alone_equals_the_row_among_others(tiny_model_dir: Path) -> None:
    gpt = _gpt(tiny_model_dir, torch.float16)
    cache, codes, step, pos = _state(gpt, torch.float16, rows=3)
    decoder = persistent_decode.PersistentDecoder(gpt, DEVICE)
    alone = gpt.new_cache(3, 80, torch.float16, DEVICE)
    alone.kv[:, :, 0] = cache.kv[:, :, 2]  # row 2's cache in row 0
    with torch.inference_mode():
        _, together = decoder.step(codes, step, pos, cache.kv, 600)
        together = together.clone()  # (the decoder's scratch)
        _, single = decoder.step(codes[2:], step[2:], pos[2:], alone.kv, 600)
    assert torch.equal(single[0], together[2])


def test_layer_weights_become_slices_of_one_tensor(tiny_model_dir: Path) -> None:
    gpt = _gpt(tiny_model_dir, torch.float32)
    before = [b.mlp.c_fc.weight.detach().clone() for b in gpt.blocks]
    first = persistent_decode.PersistentDecoder(gpt, DEVICE)
    fc = first.w[8]  # [L, 4C, C]
    assert fc.shape == (len(gpt.blocks), *before[0].shape)
    for i, block in enumerate(gpt.blocks):
        assert block.mlp.c_fc.weight.data_ptr() == fc[i].data_ptr()  # the model reads the same memory
        assert torch.equal(block.mlp.c_fc.weight, before[i])
    second = persistent_decode.PersistentDecoder(gpt, DEVICE)  # a second engine on the same model
    assert second.w[8].data_ptr() == fc.data_ptr()  # a view: no second copy

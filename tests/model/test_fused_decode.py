"""The fused Triton decode step against the unfused model code. Without a GPU the kernels run in
Triton's interpreter (tests/conftest.py sets TRITON_INTERPRET=1): the same kernel code, on numpy."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from engine_helpers import TEXTS, run_all
from ray_helpers import import_triton
from xtts_server.engine import Engine, EngineConfig

fused_decode = import_triton("xtts_server.model.fused_decode")

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
# float32 must agree to rounding; float16 within its precision (the kernels round where the
# unfused code does, but accumulate in another order).
TOLERANCE = {torch.float32: 1e-5, torch.float16: 2e-3}


def _close(got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype) -> None:
    scale = want.float().abs().max().item()
    err = (got.float() - want.float()).abs().max().item()
    assert err <= TOLERANCE[dtype] * max(scale, 1.0), (err, scale)


def _layers(k: int, n: int, dtype: torch.dtype) -> tuple[torch.nn.Linear, torch.nn.LayerNorm]:
    torch.manual_seed(k * 7 + n)
    linear = torch.nn.Linear(k, n).to(DEVICE, dtype)
    norm = torch.nn.LayerNorm(k).to(DEVICE, dtype)
    with torch.no_grad():
        norm.weight.normal_(1.0, 0.2)
        norm.bias.normal_(0.0, 0.2)
    return linear, norm


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("m", [1, 3, 17])  # 17: two row tiles
def test_linear_with_layer_norm_gelu_and_residual(dtype: torch.dtype, m: int) -> None:
    k, n = 200, 72  # neither a multiple of the block sizes: masked edges in K and N
    linear, norm = _layers(k, n, dtype)
    x = (torch.randn(m, k, device=DEVICE) * 3 + 1).to(dtype)  # a mean and scale for LN to remove
    res = torch.randn(m, n, device=DEVICE).to(dtype)
    with torch.inference_mode():
        _close(fused_decode.linear(x, linear), linear(x), dtype)
        _close(fused_decode.linear(x, linear, norm=norm), linear(norm(x)), dtype)
        want = F.gelu(linear(norm(x)), approximate="tanh")
        _close(fused_decode.linear(x, linear, norm=norm, gelu=True), want, dtype)
        _close(fused_decode.linear(x, linear, residual=res), res + linear(x), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_linear_after_two_layer_norms_stores_their_output(dtype: torch.dtype) -> None:
    # The head of the step: mel_head(final_norm(ln_f(x))), the doubly normalised rows kept too.
    k, n = 200, 72
    linear, norm = _layers(k, n, dtype)
    _, norm2 = _layers(k, n + 1, dtype)  # (another seed)
    x = (torch.randn(3, k, device=DEVICE) * 3 + 1).to(dtype)
    normed = torch.empty_like(x)
    with torch.inference_mode():
        got = fused_decode.linear(x, linear, norm=norm, norm2=norm2, norm_out=normed)
        want = norm2(norm(x))
        _close(normed, want, dtype)
        _close(got, linear(want), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_linear_that_embeds_its_rows_first(dtype: torch.dtype) -> None:
    # The step's first linear: rows = code embedding + position embedding (position clamped),
    # stored for the residual, then LayerNorm and the linear; 17 rows: two row tiles.
    k, n = 200, 72
    linear, norm = _layers(k, n, dtype)
    torch.manual_seed(1)
    table = torch.nn.Embedding(50, k).to(DEVICE, dtype)
    pos_table = torch.nn.Embedding(30, k).to(DEVICE, dtype)
    codes = torch.randint(0, 50, (17,), device=DEVICE)
    step = torch.randint(0, 40, (17,), device=DEVICE)  # some past the last position: clamped to 29
    x = torch.full((17, k), float("nan"), device=DEVICE, dtype=dtype)
    with torch.inference_mode():
        got = fused_decode.linear(x, linear, norm=norm, embed=(table, pos_table, codes, step, 29))
        want_x = table(codes) + pos_table(step.clamp(max=29))
        assert torch.equal(x, want_x)  # rounded as the unfused add
        _close(got, linear(norm(want_x)), dtype)


@pytest.mark.parametrize("split", [2, 3])
def test_split_k_equals_one_pass(monkeypatch: pytest.MonkeyPatch, split: int) -> None:
    # K in `split` ranges summed by the last program of each tile; 7 rows, masked edges in N and K.
    k, n = 200, 72
    linear, norm = _layers(k, n, torch.float16)
    x = (torch.randn(7, k, device=DEVICE) * 3 + 1).to(torch.float16)
    res = torch.randn(7, n, device=DEVICE).to(torch.float16)
    for table in (fused_decode._CONFIGS, fused_decode._PDL_CONFIGS):  # (a GPU with PDL reads the second)
        monkeypatch.setitem(table, (n, k), (16, 32, 4, 2, split))
    with torch.inference_mode():
        got = fused_decode.linear(x, linear, norm=norm, gelu=True)
        _close(got, F.gelu(linear(norm(x)), approximate="tanh"), torch.float16)
        _close(fused_decode.linear(x, linear, residual=res), res + linear(x), torch.float16)
        assert torch.equal(fused_decode.linear(x, linear, norm=norm, gelu=True), got)  # deterministic
        assert torch.equal(fused_decode.linear(x[2:3], linear, norm=norm, gelu=True)[0], got[2])
    assert not fused_decode._TILE_COUNTERS[x.device].any()  # counters left at zero


def test_rows_do_not_depend_on_the_batch() -> None:
    # Batch invariance: a row alone and the same row among others give the same bits.
    linear, norm = _layers(96, 160, torch.float16)
    x = torch.randn(20, 96, device=DEVICE).to(torch.float16)
    with torch.inference_mode():
        together = fused_decode.linear(x, linear, norm=norm, gelu=True)
        for i in (0, 5, 19):
            alone = fused_decode.linear(x[i : i + 1], linear, norm=norm, gelu=True)
            assert torch.equal(alone[0], together[i])


def _layer_norm_linears(
    x: torch.Tensor, linear: Any, norm: Any, norm2: Any, embed: Any
) -> list[torch.Tensor]:
    """Every LayerNorm form of the fused linear on x: GELU; two norms (and their stored output);
    rows embedded first (and stored)."""
    normed, rows = torch.empty_like(x), torch.empty_like(x)
    return [
        fused_decode.linear(x, linear, norm=norm, gelu=True),
        fused_decode.linear(x, linear, norm=norm, norm2=norm2, norm_out=normed),
        normed,
        fused_decode.linear(rows, linear, norm=norm, embed=embed),
        rows,
    ]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("m", [1, 17])
def test_layer_norm_from_the_rows_in_hand_gives_the_same_bits(
    monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype, m: int
) -> None:
    # ROW_TILE: a program holding the whole row normalises the rows it took the statistics from
    # instead of loading them again; K = 200 in a 256-wide tile (masked columns).
    k, n = 200, 72
    linear, norm = _layers(k, n, dtype)
    _, norm2 = _layers(k, n + 1, dtype)
    torch.manual_seed(2)
    x = (torch.randn(m, k, device=DEVICE) * 3 + 1).to(dtype)
    table, pos_table = (
        torch.nn.Embedding(50, k).to(DEVICE, dtype),
        torch.nn.Embedding(30, k).to(DEVICE, dtype),
    )
    embed = (
        table,
        pos_table,
        torch.randint(0, 50, (m,), device=DEVICE),
        torch.randint(0, 40, (m,), device=DEVICE),
        29,
    )
    launched: list[bool] = []
    kernel = fused_decode._linear_kernel

    class Spy:  # records each launch's ROW_TILE
        def __getitem__(self, grid: Any) -> Any:
            def launch(*a: Any, **kw: Any) -> Any:
                launched.append(kw["ROW_TILE"])
                return kernel[grid](*a, **kw)

            return launch

    monkeypatch.setattr(fused_decode, "_linear_kernel", Spy())
    with torch.inference_mode():
        reused = _layer_norm_linears(x, linear, norm, norm2, embed)
        monkeypatch.setattr(fused_decode, "ROW_TILE", False)
        loaded = _layer_norm_linears(x, linear, norm, norm2, embed)
    assert launched == [True] * 3 + [False] * 3
    for got, want in zip(reused, loaded, strict=True):
        assert torch.equal(got, want)
    _close(reused[0], F.gelu(linear(norm(x)), approximate="tanh"), dtype)


@pytest.mark.parametrize("chains", [2, 4])
def test_independent_mma_chains_agree_and_keep_rows_apart(
    monkeypatch: pytest.MonkeyPatch, chains: int
) -> None:
    # MMA_CHAINS: a K tile as `chains` independent products summed in a fixed order. Within
    # rounding of one chain; a row alone and among others still give the same bits; with split K.
    k, n = 200, 72
    linear, norm = _layers(k, n, torch.float16)
    x = (torch.randn(20, k, device=DEVICE) * 3 + 1).to(torch.float16)
    res = torch.randn(20, n, device=DEVICE).to(torch.float16)
    with torch.inference_mode():
        one = fused_decode.linear(x, linear, norm=norm, gelu=True)
        monkeypatch.setattr(fused_decode, "MMA_CHAINS", chains)
        got = fused_decode.linear(x, linear, norm=norm, gelu=True)
        _close(got, one, torch.float16)
        _close(got, F.gelu(linear(norm(x)), approximate="tanh"), torch.float16)
        for i in (0, 5, 19):
            assert torch.equal(fused_decode.linear(x[i : i + 1], linear, norm=norm, gelu=True)[0], got[i])
        for table in (fused_decode._CONFIGS, fused_decode._PDL_CONFIGS):
            monkeypatch.setitem(table, (n, k), (16, 64, 4, 2, 2))  # two K ranges of a 64-wide tile
        split = fused_decode.linear(x, linear, residual=res)
        _close(split, res + linear(x), torch.float16)
        assert torch.equal(fused_decode.linear(x[3:4], linear, residual=res[3:4])[0], split[3])


def _eager_attend(qkv: torch.Tensor, kv: torch.Tensor, pos: torch.Tensor, heads: int) -> torch.Tensor:
    """The unfused reference: write each row's key and value, then masked attention over the row."""
    b, c3 = qkv.shape
    c = c3 // 3
    split = qkv.view(b, 3, heads, c // heads)
    rows = torch.arange(b, device=qkv.device)
    kv[:, rows, :, pos] = split[:, 1:]
    s = int(pos.max()) + 1
    visible = torch.arange(s, device=qkv.device) <= pos[:, None]
    bias = torch.zeros(visible.shape, dtype=qkv.dtype, device=qkv.device).masked_fill(~visible, -math.inf)
    q = split[:, 0, :, None]  # [B, H, 1, D]
    y = F.scaled_dot_product_attention(q, kv[0, :b, :, :s], kv[1, :b, :, :s], bias[:, None, None])
    return y.reshape(b, c)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_attention_writes_the_new_token_and_attends_to_its_row(dtype: torch.dtype) -> None:
    heads, d, rows, seq = 4, 32, 5, 300
    torch.manual_seed(1)
    kv = torch.randn(2, rows, heads, seq, d, device=DEVICE).to(dtype)
    qkv = torch.randn(4, 3 * heads * d, device=DEVICE).to(dtype)
    # 0: nothing cached yet; 63/64/65: around a block edge; 250: several blocks
    pos = torch.tensor([0, 64, 250, 65], device=DEVICE)
    want_kv = kv.clone()
    with torch.inference_mode():
        want = _eager_attend(qkv, want_kv, pos, heads)
        got = fused_decode.attend(qkv, kv, pos, heads)
    _close(got, want, dtype)
    assert torch.equal(kv, want_kv)  # the same writes, and nothing else touched (row 4 included)
    assert not fused_decode._COUNTERS[qkv.device].any()  # chunk counters left at zero for the next call


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_decode_step_equals_the_unfused_step(tiny_model_dir: Any, dtype: torch.dtype) -> None:
    # From codes to latents and logits: embedding, blocks, both final norms and the head.
    from xtts_server import XTTS

    gpt = XTTS.load(tiny_model_dir, device=DEVICE, dtype=dtype).model.gpt
    torch.manual_seed(2)
    cache = gpt.new_cache(4, 80, dtype, DEVICE)
    cache.kv.normal_()
    fused_cache = gpt.new_cache(4, 80, dtype, DEVICE)
    fused_cache.kv.copy_(cache.kv)
    max_step = gpt.args.mel_positions - 1
    codes = torch.tensor([3, 500, 1024], device=DEVICE)
    step = torch.tensor([1, 30, max_step + 4], device=DEVICE)  # the last past the table: clamped
    pos = torch.tensor([5, 41, 70], device=DEVICE)
    with torch.inference_mode():
        emb = gpt.audio_embedding(codes[:, None], step.clamp(max=max_step)[:, None])
        want_latent = gpt.latents(gpt.decode(emb, pos, cache, 72))
        want_logits = gpt.logits(want_latent)
        latent, logits = fused_decode.decode_step(gpt, codes, step, pos, fused_cache.kv, max_step)
    _close(latent, want_latent, dtype)
    _close(logits, want_logits, dtype)
    _close(fused_cache.kv, cache.kv, dtype)


@pytest.mark.skipif(DEVICE.type == "cuda", reason="the CPU engine (interpreted); tests/gpu covers the GPU")
def test_engine_with_the_fused_step_equals_the_simple_path(tiny_tts: Any) -> None:
    # The runner's fused buckets end to end (padded shapes, rows past the live ones, the one graph
    # key for every attention length), greedy, against the single-stream path: three streams, then
    # one alone.
    engine = Engine(tiny_tts.model, DEVICE, EngineConfig(slots=4, buckets=True, fused_batches=4))
    assert engine.runner.config.fused_batches == 4 and engine.runner.config.fused_prefill
    engine.start()
    try:
        specs = [dict(text=t, do_sample=False, max_new_tokens=8, stream_chunk_size=4) for t in TEXTS[:3]]
        results = run_all(engine, tiny_tts, specs)
        results += run_all(engine, tiny_tts, specs[1:2])
    finally:
        engine.stop()
    voice = tiny_tts.studio_voice(tiny_tts.studio_voices[0])
    for spec, (_, codes) in zip([*specs, specs[1]], results, strict=True):
        ref = tiny_tts.synthesize(spec["text"], "en", voice, do_sample=False, max_new_tokens=8)
        assert list(codes) == ref.codes[0]

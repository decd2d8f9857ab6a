"""The batching engine on a GPU: graphs equal eager, batched equals unbatched, no leaks under churn."""

from __future__ import annotations

import gc
import queue
import random
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from engine_helpers import TEXTS, collect, make, prefill_matches_the_unfused_prefill, run_all
from xtts_server.errors import EngineFull

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def gpu_tts(tiny_model_dir: Path) -> Any:
    from xtts_server import XTTS

    return XTTS.load(tiny_model_dir, device="cuda", dtype=torch.float32)


@pytest.fixture(scope="module")
def half_tts(tiny_model_dir: Path) -> Any:
    # float16: decode batches up to 16 run the fused Triton step by default.
    from xtts_server import XTTS

    return XTTS.load(tiny_model_dir, device="cuda", dtype=torch.float16)


@pytest.fixture(params=["float32", "float16"])
def any_tts(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("gpu_tts" if request.param == "float32" else "half_tts")


def make_engine(tts: Any, slots: int, graphs: bool = True) -> Any:
    from xtts_server.engine import Engine, EngineConfig

    engine = Engine(tts.model, torch.device("cuda"), EngineConfig(slots=slots, cuda_graphs=graphs))
    engine.start()
    return engine


def test_graph_replay_equals_eager_for_every_decode_bucket(any_tts: Any) -> None:
    engine = make_engine(any_tts, slots=32)
    runner = engine.runner
    half = runner.dtype == torch.float16
    assert runner.config.fused_batches == (16 if half else 0)  # float16: buckets 1-16 fused, 24, 32 not
    try:
        gen = torch.Generator(device="cuda").manual_seed(0)
        for b in runner.config.decode_batches:
            for s in runner.config.attend_buckets:
                # A plausible state: random codes and cache, positions below the attention length.
                runner.cache.kv.normal_(generator=gen)
                runner.codes.random_(0, 1000, generator=gen)
                runner.step.random_(1, 50, generator=gen)
                runner.pos.copy_(torch.randint(0, s, runner.pos.shape, device="cuda", generator=gen))
                state = [t.clone() for t in runner._row_tensors] + [
                    runner.cache.kv.clone(),
                ]
                eager = runner._decode_fn(b, s)().clone()
                eager_hist = runner.hist.clone()
                for t, saved in zip([*runner._row_tensors, runner.cache.kv], state, strict=True):
                    t.copy_(saved)
                replay = runner.decode(b, s)[:b].clone()
                torch.cuda.synchronize()
                assert torch.equal(replay, eager), (b, s)
                if b <= runner.config.fused_batches:  # the same Triton kernels: the same bits
                    assert torch.equal(runner.hist, eager_hist), (b, s)
                else:  # cuBLAS may take another algorithm inside a graph: one half-precision ulp
                    tol = 1e-2 if half else 1e-5
                    torch.testing.assert_close(runner.hist, eager_hist, rtol=tol, atol=tol)
    finally:
        engine.stop()


def test_batched_equals_unbatched_and_greedy_equals_simple_path(any_tts: Any) -> None:
    engine = make_engine(any_tts, slots=8)
    half = engine.runner.dtype == torch.float16
    try:
        specs = [dict(text=t, seed=i, max_new_tokens=70, stream_chunk_size=9) for i, t in enumerate(TEXTS)]
        together = run_all(engine, any_tts, specs)
        alone = [run_all(engine, any_tts, [spec])[0] for spec in specs]
        for (a_wav, a_codes), (t_wav, t_codes) in zip(alone, together, strict=True):
            assert a_codes == t_codes
            # Batched vocoder windows may take other conv algorithms (cuDNN TF32 in float32).
            np.testing.assert_allclose(a_wav, t_wav, atol=2e-2 if half else 2e-3)
        if half:
            return  # the simple path is the unfused model code: equal codes are not promised
        greedy = run_all(engine, any_tts, [dict(text=TEXTS[1], do_sample=False, max_new_tokens=70)])[0]
        voice = any_tts.studio_voice(any_tts.studio_voices[0])
        simple = any_tts.synthesize(TEXTS[1], "en", voice, do_sample=False, max_new_tokens=70)
        assert list(greedy[1]) == simple.codes[0]
        np.testing.assert_allclose(greedy[0], simple.audio, atol=1e-3)
    finally:
        engine.stop()


def test_thousand_requests_with_random_cancels_leak_nothing(any_tts: Any) -> None:
    engine = make_engine(any_tts, slots=32)
    rng = random.Random(0)
    try:
        run_all(engine, any_tts, [dict(text=TEXTS[0], max_new_tokens=20)])  # warm allocator
        gc.collect()
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        finished = threading.Semaphore(0)
        outcomes = {"done": 0, "cancelled": 0}

        def sink(out: Any) -> None:
            if out.done:
                outcomes["done"] += 1
                finished.release()

        pending = []
        for i in range(1000):
            while engine.active + engine.queued >= engine.capacity - 1:
                threading.Event().wait(0.001)
            req = make(any_tts, TEXTS[i % 4], sink, seed=i, max_new_tokens=rng.randint(5, 60))
            while True:
                try:
                    engine.submit(req)
                    break
                except EngineFull:  # backpressure: wait for a row, as a server's client would
                    threading.Event().wait(0.01)
            pending.append(req)
            if rng.random() < 0.3:
                victim = rng.choice(pending)
                if not victim.finished:
                    victim.cancel()
                    outcomes["cancelled"] += 1
        deadline = threading.Event()
        for _ in range(600):
            if engine.active == 0 and engine.queued == 0:
                break
            deadline.wait(0.1)
        assert engine.active == 0 and engine.queued == 0
        assert outcomes["done"] + outcomes["cancelled"] >= 1000
        pending.clear()
        gc.collect()
        torch.cuda.synchronize()
        growth = torch.cuda.memory_allocated() - before
        assert growth < 16 * 2**20, f"{growth / 2**20:.1f} MiB more allocated after 1000 requests"
        assert engine.dead is None
    finally:
        engine.stop()


def test_fused_prefill_equals_the_unfused_prefill(any_tts: Any) -> None:
    # On the GPU the MLP's GELU is the GEMM's epilogue (cuBLASLt), which the CPU suite cannot run.
    pytest.importorskip("triton")
    prefill_matches_the_unfused_prefill(any_tts.model.gpt)


def test_later_windows_on_a_green_context_give_the_same_streams(
    half_tts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # runner.LATER_WINDOW_SMS: a stream's later windows run on a stream of 16 multiprocessors,
    # serialised with the first windows' stream (they share the graphs' memory pool).
    from xtts_server.engine import runner as runner_module
    from xtts_server.engine.green_context import green_stream

    probe, how = green_stream(16, torch.device("cuda"))
    if probe is None:
        pytest.skip(f"no green contexts here: {how}")
    specs = [dict(text=t, seed=i, max_new_tokens=70, stream_chunk_size=9) for i, t in enumerate(TEXTS)]
    engine = make_engine(half_tts, slots=8)
    try:
        plain = run_all(engine, half_tts, specs)
    finally:
        engine.stop()
    monkeypatch.setattr(runner_module, "LATER_WINDOW_SMS", 16)
    engine = make_engine(half_tts, slots=8)
    try:
        assert engine.runner.voc_later is not None
        confined = run_all(engine, half_tts, specs)
    finally:
        engine.stop()
    for (p_wav, p_codes), (c_wav, c_codes) in zip(plain, confined, strict=True):
        assert p_codes == c_codes
        # (each engine captures its own graphs: cuDNN may time other algorithms)
        np.testing.assert_allclose(p_wav, c_wav, atol=2e-2)


@pytest.mark.parametrize("queued", [True, False])
def test_first_windows_alone_give_the_same_streams(
    half_tts: Any, monkeypatch: pytest.MonkeyPatch, queued: bool
) -> None:
    # engine.FIRST_AUDIO_ALONE: no decode step runs beside the first windows, the next steps
    # queued behind their vocoder batch on the GPU (queued) or held by the host. Streams started
    # together (the same batches as without it, on the same engine and graphs: the same bits),
    # then one joining streams that already speak (nothing is held for it; other batches, so
    # the vocoder's output within half precision).
    from xtts_server.engine import engine as engine_module

    specs = [dict(text=t, seed=i, max_new_tokens=60, stream_chunk_size=9) for i, t in enumerate(TEXTS)]
    engine = make_engine(half_tts, slots=8)
    try:
        plain = run_all(engine, half_tts, specs)
        monkeypatch.setattr(engine_module, "FIRST_AUDIO_ALONE", True)
        monkeypatch.setattr(engine_module, "FIRST_AUDIO_QUEUED", queued)
        alone = run_all(engine, half_tts, specs)
        early: queue.Queue[Any] = queue.Queue()
        engine.submit(make(half_tts, sink=early.put, **specs[0]))
        time.sleep(0.01)  # (most likely speaking by then: a tiny model decodes 60 codes in ~30 ms)
        rest = run_all(engine, half_tts, specs[1:])  # (submitted while the first still runs)
        late = [collect(early), *rest]
    finally:
        engine.stop()
    for (p_wav, p_codes), (a_wav, a_codes), (l_wav, l_codes) in zip(plain, alone, late, strict=True):
        assert p_codes == a_codes == l_codes
        np.testing.assert_array_equal(p_wav, a_wav)
        np.testing.assert_allclose(p_wav, l_wav, atol=2e-2)

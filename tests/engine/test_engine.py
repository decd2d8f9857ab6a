"""The batching engine on the CPU (no graphs): the same answers as the simple path, batched equals
unbatched, rows reused after finish and cancel, bounded admission, bad requests refused."""

from __future__ import annotations

import ctypes
import queue
import sys
import threading
from typing import Any

import numpy as np
import pytest
import torch

from engine_helpers import TEXTS, make, run_all
from xtts_server.engine import Engine, EngineConfig
from xtts_server.errors import EngineFull, InvalidText


@pytest.fixture(params=[False, True], ids=["exact", "padded"])
def engine(request: pytest.FixtureRequest, tiny_tts: Any) -> Any:
    # "padded" runs the GPU's bucketed shapes eagerly: padding rows and positions must not leak.
    eng = Engine(
        tiny_tts.model, torch.device("cpu"), EngineConfig(slots=4, max_waiting=4, buckets=request.param)
    )
    eng.start()
    yield eng
    eng.stop()


def test_greedy_streams_equal_the_simple_path(engine: Any, tiny_tts: Any) -> None:
    voice = tiny_tts.studio_voice(tiny_tts.studio_voices[0])
    specs = [
        dict(text=t, do_sample=False, max_new_tokens=30 + 9 * i, stream_chunk_size=7)
        for i, t in enumerate(TEXTS)
    ]
    for spec, (audio, codes) in zip(specs, run_all(engine, tiny_tts, specs), strict=True):
        ref = tiny_tts.synthesize(
            spec["text"], "en", voice, do_sample=False, max_new_tokens=spec["max_new_tokens"]
        )
        assert list(codes) == ref.codes[0]
        np.testing.assert_allclose(audio, ref.audio, atol=1e-5)


def test_speeds_mixed_in_one_vocoder_batch_equal_the_simple_path(engine: Any, tiny_tts: Any) -> None:
    # Speed adds an interpolation stage: windows with and without it share a vocoder batch (3.0:
    # past vocoder_batch.MAX_SPEED, its windows run alone).
    voice = tiny_tts.studio_voice(tiny_tts.studio_voices[0])
    specs = [dict(text=TEXTS[1], do_sample=False, max_new_tokens=40, stream_chunk_size=10, speed=s)
             for s in (1.0, 1.25, 0.8, 3.0)]  # fmt: skip
    for spec, (audio, codes) in zip(specs, run_all(engine, tiny_tts, specs), strict=True):
        ref = tiny_tts.synthesize(
            TEXTS[1], "en", voice, do_sample=False, max_new_tokens=40, speed=spec["speed"]
        )
        assert list(codes) == ref.codes[0]
        np.testing.assert_allclose(audio, ref.audio, atol=1e-5)


def test_the_loop_reports_its_host_time_by_phase(engine: Any, tiny_tts: Any) -> None:
    run_all(engine, tiny_tts, [dict(text=TEXTS[0], do_sample=False, max_new_tokens=25, stream_chunk_size=5)])
    phases = dict(engine.phase_s)
    assert set(phases) == {"schedule", "admit", "execute", "wait", "collect", "window", "vocode"}
    assert all(v >= 0 for v in phases.values())
    assert phases["vocode"] > 0 and phases["collect"] > 0 and phases["admit"] > 0


def test_sampled_streams_do_not_depend_on_their_batch(engine: Any, tiny_tts: Any) -> None:
    # Different lengths: rows finish at different steps and the last rows move into the holes.
    specs = [
        dict(text=t, seed=7 + i, max_new_tokens=20 + 11 * i, stream_chunk_size=5) for i, t in enumerate(TEXTS)
    ]
    together = run_all(engine, tiny_tts, specs)
    alone = [run_all(engine, tiny_tts, [spec])[0] for spec in specs]
    for (a_audio, a_codes), (t_audio, t_codes) in zip(alone, together, strict=True):
        assert a_codes == t_codes
        np.testing.assert_allclose(a_audio, t_audio, atol=1e-5)
    # A seed reproduces a stream; another seed gives another one.
    again = run_all(engine, tiny_tts, [specs[1]])[0]
    other = run_all(engine, tiny_tts, [dict(specs[1], seed=99)])[0]
    assert again[1] == together[1][1] and other[1] != together[1][1]


def test_sampling_parameters_are_per_row(engine: Any, tiny_tts: Any) -> None:
    specs = [
        dict(text=TEXTS[0], seed=1, max_new_tokens=40),
        dict(text=TEXTS[0], do_sample=False, max_new_tokens=40),
        dict(text=TEXTS[0], seed=1, max_new_tokens=40, min_new_tokens=40),
    ]
    sampled, greedy, forced = run_all(engine, tiny_tts, specs)
    assert run_all(engine, tiny_tts, [specs[1]])[0][1] == greedy[1]
    assert len(forced[1]) == 40  # min_new_tokens forbids the stop code
    assert sampled[1] != greedy[1]


def test_chunks_arrive_as_generated_and_join_to_the_whole(engine: Any, tiny_tts: Any) -> None:
    q: queue.Queue[Any] = queue.Queue()
    engine.submit(make(tiny_tts, TEXTS[1], q.put, do_sample=False, max_new_tokens=60, stream_chunk_size=10))
    outs = []
    while not (outs and outs[-1].done):
        outs.append(q.get(timeout=60))
    assert sum(1 for o in outs if o.audio.size) >= 4  # streamed, not all at the end
    assert len(outs[-1].codes) == 60


def test_cancel_frees_the_row_and_stops_output(engine: Any, tiny_tts: Any) -> None:
    got: list[Any] = []
    first = threading.Event()

    def sink(out: Any) -> None:
        got.append(out)
        first.set()

    victim = engine.submit(
        make(tiny_tts, TEXTS[1], sink, max_new_tokens=400, min_new_tokens=400, stream_chunk_size=4)
    )
    assert first.wait(60)
    victim.cancel()
    for _ in range(200):
        if engine.active == 0:
            break
        threading.Event().wait(0.05)
    assert engine.active == 0
    n = len(got)
    threading.Event().wait(0.3)
    assert len(got) == n and not any(o.done for o in got)
    # The freed row serves the next request correctly.
    audio, codes = run_all(engine, tiny_tts, [dict(text=TEXTS[0], do_sample=False, max_new_tokens=25)])[0]
    assert len(codes) == 25 and audio.size > 0


@pytest.mark.parametrize("lookahead", [1, 3])
def test_any_lookahead_decodes_the_same_streams(tiny_tts: Any, lookahead: int) -> None:
    # Steps queued 1 or 3 deep before their codes are read: the same codes and audio as the simple
    # path, streams stepped past their stop included.
    eng = Engine(tiny_tts.model, torch.device("cpu"), EngineConfig(slots=4, lookahead=lookahead))
    eng.start()
    try:
        specs = [dict(text=t, do_sample=False, max_new_tokens=12, stream_chunk_size=5) for t in TEXTS[:3]]
        results = run_all(eng, tiny_tts, specs)
    finally:
        eng.stop()
    voice = tiny_tts.studio_voice(tiny_tts.studio_voices[0])
    for spec, (audio, codes) in zip(specs, results, strict=True):
        ref = tiny_tts.synthesize(spec["text"], "en", voice, do_sample=False, max_new_tokens=12)
        assert list(codes) == ref.codes[0]
        np.testing.assert_allclose(audio, ref.audio, atol=1e-5)
    with pytest.raises(ValueError, match="lookahead"):
        Engine(tiny_tts.model, torch.device("cpu"), EngineConfig(slots=2, lookahead=0))


def test_a_stop_drops_the_windows_queued_past_it(tiny_tts: Any) -> None:
    # Windows are queued when the step that completes them is launched, before its codes are read;
    # a stream that stops first drops them. Random tiny weights never choose the stop code, so the
    # engine is told (host side only) that one of the greedy codes is it: the stream then stops at
    # that code, with chunk boundaries on it and on the lookahead steps past it, and its audio must
    # equal the same stream cut there by max_new_tokens (no dropped window delivered, none missing).
    eng = Engine(tiny_tts.model, torch.device("cpu"), EngineConfig(slots=2, lookahead=2))
    eng.start()
    try:
        spec = dict(text=TEXTS[1], do_sample=False, max_new_tokens=40, stream_chunk_size=9)
        _, codes = run_all(eng, tiny_tts, [spec])[0]
        k = next(i for i in range(12, 40) if codes[i] not in codes[:i])  # its first occurrence
        n = k + 1  # the stream stops at its n-th code
        ref_audio, ref_codes = run_all(eng, tiny_tts, [dict(spec, max_new_tokens=n)])[0]
        assert ref_codes == codes[:n]
        eng.stop_code = codes[k]
        for chunk in (n - 1, n, n + 1, n + 2, 4):
            audio, got = run_all(eng, tiny_tts, [dict(spec, stream_chunk_size=chunk)])[0]
            assert got == codes[:k], chunk  # (the stop code is not returned)
            np.testing.assert_allclose(audio, ref_audio, atol=1e-5, err_msg=f"chunk {chunk}")
    finally:
        eng.stop()


def test_no_step_is_launched_past_the_last_allowed_code(tiny_tts: Any) -> None:
    # The prefill chooses the first code and each step one more (with the latent of the code
    # before it), so n codes take n - 1 steps. The host knows max_new_tokens without reading any
    # code: the `lookahead` steps it would otherwise queue past the end would only run beside the
    # stream's last window. (Random tiny weights never choose the stop code.)
    eng = Engine(tiny_tts.model, torch.device("cpu"), EngineConfig(slots=2, lookahead=2))
    eng.start()
    try:
        for n, chunk in ((12, 5), (12, 12), (1, 4)):
            before = eng.steps
            audio, codes = run_all(eng, tiny_tts, [dict(text=TEXTS[0], do_sample=False, max_new_tokens=n,
                                                         stream_chunk_size=chunk)])[0]  # fmt: skip
            assert len(codes) == n and audio.size > 0
            assert eng.steps - before == max(n - 1, 1), (n, chunk)  # (the first code is read with a step)
    finally:
        eng.stop()


@pytest.mark.parametrize("mode", ["off", "held", "queued"])
def test_a_first_window_runs_alone_while_no_stream_speaks(
    tiny_tts: Any, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # First audio first: no decode step runs beside a stream's first window until its audio is
    # out. Held: the host launches none (the first audio comes after chunk - 1 steps). Queued:
    # the host launches the next steps as usual (`lookahead` more before the window is read), each
    # behind the window's vocoder batch on the GPU (`Runner.decode_after`). Off: none of that. The
    # stream is the same in every mode.
    from xtts_server.engine import engine as engine_module

    monkeypatch.setattr(engine_module, "FIRST_AUDIO_ALONE", mode != "off")
    monkeypatch.setattr(engine_module, "FIRST_AUDIO_QUEUED", mode == "queued")
    eng = Engine(tiny_tts.model, torch.device("cpu"), EngineConfig(slots=2, lookahead=2))
    steps_at_first_audio: list[int] = []
    parts: list[np.ndarray] = []
    done = threading.Event()
    codes: list[tuple[int, ...]] = []
    jobs: list[Any] = []  # vocoder batches, in launch order
    behind: list[tuple[int, Any]] = []  # (steps launched before, the batch) of each decode_after
    launch, after = eng.runner.vocode_launch, eng.runner.decode_after

    def record_launch(windows: Any, first: bool = True) -> Any:
        jobs.append(launch(windows, first=first))
        return jobs[-1]

    def record_after(job: Any) -> None:
        behind.append((eng.steps, job))
        after(job)

    monkeypatch.setattr(eng.runner, "vocode_launch", record_launch)
    monkeypatch.setattr(eng.runner, "decode_after", record_after)

    def sink(out: Any) -> None:
        assert out.error is None
        if out.audio.size and not steps_at_first_audio:
            steps_at_first_audio.append(eng.steps)
        parts.append(out.audio)
        if out.done:
            codes.append(out.codes)
            done.set()

    eng.start()
    try:
        eng.submit(make(tiny_tts, TEXTS[0], sink, do_sample=False, max_new_tokens=24, stream_chunk_size=8))
        assert done.wait(120)
    finally:
        eng.stop()
    # The first window needs 8 codes: the prefill's and 7 steps'.
    assert steps_at_first_audio == [7 if mode == "held" else 9]
    # Queued: steps 8 and 9, launched before the window's codes were read, wait for its batch.
    assert behind == ([(7, jobs[0]), (8, jobs[0])] if mode == "queued" else [])
    ref = tiny_tts.synthesize(TEXTS[0], "en", tiny_tts.studio_voice(tiny_tts.studio_voices[0]),
                              do_sample=False, max_new_tokens=24)  # fmt: skip
    assert list(codes[0]) == ref.codes[0]
    np.testing.assert_allclose(np.concatenate(parts), ref.audio, atol=1e-5)


def test_the_runner_is_told_which_vocoder_batches_hold_a_first_window(
    tiny_tts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stream's first window carries its first audio: with `runner.LATER_WINDOW_SMS` only the
    # other batches may run on the confined stream.
    eng = Engine(tiny_tts.model, torch.device("cpu"), EngineConfig(slots=2))
    flags: list[bool] = []
    launch = eng.runner.vocode_launch

    def record(windows: Any, first: bool = True) -> Any:
        flags.append(first)
        return launch(windows, first=first)

    monkeypatch.setattr(eng.runner, "vocode_launch", record)
    eng.start()
    try:
        run_all(eng, tiny_tts, [dict(text=TEXTS[0], do_sample=False, max_new_tokens=24, stream_chunk_size=8)])
    finally:
        eng.stop()
    assert flags == [True, False, False]  # codes 1-8, 9-16, then the end


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timer slack is Linux's")
def test_the_engine_thread_polls_with_a_small_timer_slack(tiny_tts: Any) -> None:
    # Between polls of a step and a vocoder batch the loop sleeps 50 us; with Linux's default
    # timer slack (50 us) such a sleep takes ~100 us. Callbacks run on the engine thread.
    from xtts_server.engine import engine as engine_module

    slack: list[int] = []
    done = threading.Event()

    def sink(out: Any) -> None:
        if not slack:
            slack.append(ctypes.CDLL(None).prctl(30, 0, 0, 0, 0))  # PR_GET_TIMERSLACK
        if out.done:
            done.set()

    eng = Engine(tiny_tts.model, torch.device("cpu"), EngineConfig(slots=2))
    eng.start()
    try:
        eng.submit(make(tiny_tts, TEXTS[0], sink, max_new_tokens=4))
        assert done.wait(60)
    finally:
        eng.stop()
    assert slack == [engine_module.TIMER_SLACK_NS]
    assert ctypes.CDLL(None).prctl(30, 0, 0, 0, 0) != engine_module.TIMER_SLACK_NS  # (this thread's own)


def test_admission_is_bounded(tiny_tts: Any) -> None:
    eng = Engine(tiny_tts.model, torch.device("cpu"), EngineConfig(slots=2, max_waiting=1))  # not started
    for _ in range(3):
        eng.submit(make(tiny_tts, TEXTS[0], lambda out: None, max_new_tokens=5))
    with pytest.raises(EngineFull, match="full"):
        eng.submit(make(tiny_tts, TEXTS[0], lambda out: None, max_new_tokens=5))


def test_bad_requests_are_refused_at_submit(tiny_tts: Any) -> None:
    eng = Engine(tiny_tts.model, torch.device("cpu"), EngineConfig(slots=2, max_text_tokens=10))
    with pytest.raises(InvalidText, match="too long"):
        eng.submit(make(tiny_tts, "word " * 50, lambda out: None))
    with pytest.raises(ValueError, match="max_new_tokens"):
        eng.submit(make(tiny_tts, TEXTS[0], lambda out: None, max_new_tokens=10_000))


def test_a_failing_callback_does_not_stop_the_engine(engine: Any, tiny_tts: Any) -> None:
    def broken(out: Any) -> None:
        raise RuntimeError("consumer bug")

    engine.submit(make(tiny_tts, TEXTS[0], broken, max_new_tokens=20, stream_chunk_size=5))
    _, codes = run_all(engine, tiny_tts, [dict(text=TEXTS[2], do_sample=False, max_new_tokens=15)])[0]
    assert len(codes) == 15 and engine.dead is None


@pytest.mark.parametrize("stage", ["vocode_launch", "vocode_collect"])
def test_a_failing_vocoder_batch_fails_its_streams_once_and_the_engine_goes_on(
    engine: Any, tiny_tts: Any, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    real = getattr(engine.runner, stage)
    calls = [0]

    def flaky(*a: Any, **kw: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("vocoder broke")
        return real(*a, **kw)

    monkeypatch.setattr(engine.runner, stage, flaky)
    q: queue.Queue[Any] = queue.Queue()
    engine.submit(make(tiny_tts, TEXTS[0], q.put, max_new_tokens=30, min_new_tokens=30, stream_chunk_size=5))
    outs = []
    while not (outs and outs[-1].done):
        outs.append(q.get(timeout=120))
    assert isinstance(outs[-1].error, Exception) and "decoding audio" in str(outs[-1].error)
    assert not any(o.done for o in outs[:-1])
    # Exactly one end: nothing more arrives for it (its row is reused by the next request).
    audio, codes = run_all(engine, tiny_tts, [dict(text=TEXTS[1], max_new_tokens=20, min_new_tokens=20)])[0]
    assert len(codes) == 20 and audio.size > 0
    assert q.empty() and engine.dead is None


def test_vocoder_uploads_go_ahead_of_the_wait_for_the_latents(
    tiny_tts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The vocoder stream waits for the decode steps once, after a batch's index upload and before
    # the first read of the latents (the batch's generator run); later batches do not wait again.
    from xtts_server.engine.runner import VocodeJob
    from xtts_server.inference.vocoder_stream import StreamingVocoder

    eng = Engine(tiny_tts.model, torch.device("cpu"), EngineConfig(slots=2, buckets=True))  # not started
    runner = eng.runner
    decoder = tiny_tts.model.hifigan_decoder
    # First windows of two streams, in different length buckets (96 and 192 frames).
    short = StreamingVocoder(decoder, torch.zeros(1, 512, 1)).plan_window(20, at_end=False)
    long = StreamingVocoder(decoder, torch.zeros(1, 512, 1)).plan_window(40, at_end=False)
    assert short is not None and long is not None
    events: list[str] = []
    for name in ("_voc_upload", "_call"):
        real = getattr(runner, name)
        monkeypatch.setattr(
            runner, name, lambda *a, _real=real, _name=name, **kw: (events.append(_name), _real(*a, **kw))[1]
        )

    class Stream:  # the current stream, as far as the wait goes
        def wait_stream(self, other: Any) -> None:
            events.append(f"wait for {other}")

    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: Stream())
    runner._vocode_launch([(short, 0), (long, 0)], VocodeJob([None, None], [], None), "decode")  # type: ignore[arg-type]
    assert events == ["_voc_upload", "wait for decode", "_call", "_voc_upload", "_call"]


def test_vocoder_batch_buckets_stop_at_the_slots() -> None:
    # A launch holds at most one window a stream: a bucket past the slots would be captured and
    # never used, and the largest bucket must still hold one window of every stream.
    from xtts_server.engine.runner import RunnerConfig

    for slots, buckets in [(1, (1,)), (3, (1, 2, 3)), (16, (1, 2, 4, 8, 16)), (24, (1, 2, 4, 8, 16, 24)),
                           (64, (1, 2, 4, 8, 16, 32)), (256, (1, 2, 4, 8, 16, 32))]:  # fmt: skip
        assert RunnerConfig.default(slots, 605, 437, cuda_graphs=True).vocoder_batches == buckets, slots

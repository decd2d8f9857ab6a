"""Engine-level benchmark (issue 6): the standard workload through the batching engine, at several
concurrencies, on random full-size weights.

    python bench/engine_bench.py --model-dir /tmp/full --dtype float16 --concurrency 1,16,64,256

TTFA is from `Engine.submit` to the first audio delivered to the request's callback (host memory);
total is to the end of the stream. Concurrency c means c requests submitted together; every stream
speaks the workload sentence with 86 forced tokens, chunk 20, the studio voice. Also times one decode
step (graph replay) per batch bucket, and reports GPU memory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from workload import (
    CHUNK,
    LANGUAGE,
    SAMPLE_RATE,
    STUDIO_VOICE,
    TEXT,
    TOKENS,
    apply_settings,
    current_settings,
)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def run_batch(engine: Any, tts: Any, voice: Any, c: int, seed: int) -> dict[str, Any]:
    from xtts_server.engine import EngineRequest
    from xtts_server.inference.sampling import SamplingParams

    ids = tts.tokenize(TEXT, LANGUAGE)
    d = tts.config.defaults
    params = SamplingParams(d.temperature, d.top_k, d.top_p, d.repetition_penalty)
    done = threading.Event()
    stats: list[dict[str, float]] = [{} for _ in range(c)]
    remaining = [c]
    lock = threading.Lock()

    def callback(i: int, started: list[float]):  # type: ignore[no-untyped-def]
        samples = [0]

        def on(out: Any) -> None:
            now = time.perf_counter()
            if out.error is not None:
                stats[i]["error"] = 1.0
            if out.audio.size and "ttfa_s" not in stats[i]:
                stats[i]["ttfa_s"] = now - started[0]
            samples[0] += out.audio.size
            if out.done:
                stats[i]["total_s"] = now - started[0]
                stats[i]["audio_s"] = samples[0] / SAMPLE_RATE
                with lock:
                    remaining[0] -= 1
                    if remaining[0] == 0:
                        done.set()

        return on

    reqs = []
    for i in range(c):
        started = [0.0]
        req = EngineRequest(
            ids, voice.gpt_cond_latent, voice.speaker_embedding, params, callback(i, started),
            seed=seed + i, max_new_tokens=TOKENS, min_new_tokens=TOKENS, stream_chunk_size=CHUNK,
        )  # fmt: skip
        reqs.append((req, started))
    steps0 = engine.steps
    phase0 = dict(engine.phase_s)
    wall0 = time.perf_counter()
    for req, started in reqs:
        started[0] = time.perf_counter()
        engine.submit(req)
    if not done.wait(600):
        raise TimeoutError(f"c={c}: {remaining[0]} streams unfinished")
    wall = time.perf_counter() - wall0
    ttfa = [s["ttfa_s"] for s in stats]
    total = [s["total_s"] for s in stats]
    rtf = [s["total_s"] / s["audio_s"] for s in stats]
    audio = sum(s["audio_s"] for s in stats)
    return {
        "concurrency": c,
        "errors": int(sum(s.get("error", 0) for s in stats)),
        "ttfa_ms_p50": pct(ttfa, 50) * 1e3,
        "ttfa_ms_p95": pct(ttfa, 95) * 1e3,
        "ttfa_ms_p99": pct(ttfa, 99) * 1e3,
        "total_ms_p50": pct(total, 50) * 1e3,
        "total_ms_p95": pct(total, 95) * 1e3,
        "rtf_p50": pct(rtf, 50),
        "rtf_p95": pct(rtf, 95),
        "audio_s_per_stream": audio / c,
        "audio_s_per_wall_s": audio / wall,
        "wall_s": wall,
        "decode_steps": engine.steps - steps0,
        # the engine loop's host time by phase over this batch (Engine.phase_s)
        "phase_ms": {k: round((v - phase0.get(k, 0.0)) * 1e3, 1) for k, v in engine.phase_s.items()},
    }


def step_times(engine: Any, attend: int) -> list[dict[str, float]]:
    """Graph replay time of one decode step per batch bucket (state is garbage: timing only); also
    with what the engine queues between two steps (the codes' copy to pinned host memory and an
    event), which the GPU runs between the graphs."""
    runner = engine.runner
    host = torch.zeros(engine.config.slots, dtype=torch.long, pin_memory=True)
    out = []
    for b in runner.config.decode_batches:
        row = {"batch": b}
        for name, copy in (("step_ms", False), ("step_ms_with_copy", True)):
            torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(30):
                code = runner.decode(b, attend)
                if copy:
                    host[:b].copy_(code[:b], non_blocking=True)
                    torch.cuda.Event().record()
            torch.cuda.synchronize()
            row[name] = (time.perf_counter() - t) / 30 * 1e3
        row["tokens_per_s"] = b / row["step_ms"] * 1e3
        out.append(row)
    runner.reset()
    return out


def prefill_times(engine: Any, prompt: int) -> list[dict[str, float]]:
    """Graph replay time of one admission (prefill) of 1, 4 and 16 prompts of `prompt` positions
    (its length bucket), whichever of them are captured (state is garbage: timing only)."""
    runner = engine.runner
    p = next(x for x in runner.config.prompt_buckets if x >= prompt)
    out = []
    for b in (1, 4, 16):
        if runner.graphs is None or ("prefill", b, p) not in runner.graphs.graphs:
            continue
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(20):
            runner.graphs.run(("prefill", b, p))
        torch.cuda.synchronize()
        out.append({"prompts": b, "positions": p, "ms": (time.perf_counter() - t) / 20 * 1e3})
    runner.reset()
    return out


def vocoder_times(engine: Any) -> list[dict[str, float]]:
    """Graph replay time of one batch of vocoder windows (128 frames = about 1.4 s of audio each)."""
    runner = engine.runner
    out = []
    for b in runner.config.vocoder_batches:
        key = ("vocoder", b, 128)
        # Valid index arrays for the graph to read: a batch of padding windows on the scratch row.
        runner._voc_upload(runner.voc_layouts[(b, 128)], [], [])
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(10):
            runner.voc_graphs.run(key)
        torch.cuda.synchronize()
        ms = (time.perf_counter() - t) / 10 * 1e3
        out.append({"windows": b, "ms": ms, "audio_s_per_s": b * 128 * 256 / 24000 / ms * 1e3})
    # A first window of the standard workload (20 latents: 87 frames, bucket 96), alone.
    runner._voc_upload(runner.voc_layouts[(1, 96)], [], [])
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(10):
        runner.voc_graphs.run(("vocoder", 1, 96))
    torch.cuda.synchronize()
    out.append({"windows": 1, "frames": 96, "ms": (time.perf_counter() - t) / 10 * 1e3})
    return out


def request_path(engine: Any, tts: Any, voice: Any, runs: int) -> dict[str, Any]:
    """Where a c = 1 request's time goes, without the profiler (which slows the host): timing
    events on the decode stream around the prefill and after every decode step, and on the
    vocoder stream around every window batch, against the host clock at the submit. Medians over
    `runs` requests, in ms:
    - host_before_prefill: submit to the prefill's call (engine thread wake-up, scheduling);
    - prefill: on the GPU, with its uploads; steps_to_first_window: from its end to the end of the
      step that completes the first window; first_window_wait: from there to that window's start
      (0 unless the vocoder stream was busy); first_window: its graph;
    - ttfa_rest: TTFA less all of the above (the prefill's launch, the hand-out of the audio);
    - step_in_stream: the mean step from the prefill's end to the last step's end, windows beside
      them included (compare with the graph replay alone: what the windows cost the steps);
    - last_window_after_steps: from the last step's end to the last window's end;
    - total_rest: the total less host_before_prefill and the GPU span from the prefill's start to
      the last window's end."""
    E, R = type(engine), type(engine.runner)
    submit, prefill, decode, call = E.submit, R.prefill, R.decode, R._call
    marks: dict[str, Any] = {}

    def event() -> torch.cuda.Event:
        e = torch.cuda.Event(enable_timing=True)
        e.record()  # on the current stream
        return e

    def on_submit(self: Any, *a: Any, **kw: Any) -> Any:
        marks.setdefault("submit", time.perf_counter())
        return submit(self, *a, **kw)

    def on_prefill(self: Any, *a: Any, **kw: Any) -> Any:
        first = "prefill" not in marks
        if first:
            marks["prefill"] = time.perf_counter()
            marks["prefill_start"] = event()  # the decode stream is idle at c = 1: starts at once
        out = prefill(self, *a, **kw)
        if first:
            marks["prefill_end"] = event()
        return out

    def on_decode(self: Any, *a: Any, **kw: Any) -> Any:
        out = decode(self, *a, **kw)
        marks.setdefault("steps", []).append(event())
        return out

    def on_call(self: Any, key: tuple[Any, ...], *a: Any, **kw: Any) -> Any:
        if not str(key[0]).startswith("vocoder"):
            return call(self, key, *a, **kw)
        start = event()  # (on the vocoder's stream, after its wait for the steps)
        out = call(self, key, *a, **kw)
        marks.setdefault("windows", []).append((len(marks.get("steps", [])), start, event()))
        return out

    rows: list[dict[str, float]] = []
    E.submit, R.prefill, R.decode, R._call = on_submit, on_prefill, on_decode, on_call
    try:
        for i in range(runs):
            marks.clear()
            r = run_batch(engine, tts, voice, 1, seed=40 + i)
            torch.cuda.synchronize()
            steps, windows = marks["steps"], marks["windows"]
            begin, prefilled = marks["prefill_start"], marks["prefill_end"]
            after, w_start, w_end = windows[0]  # the first window, queued after `after` steps
            before = (marks["prefill"] - marks["submit"]) * 1e3
            row = {
                "ttfa": r["ttfa_ms_p50"],
                "total": r["total_ms_p50"],
                "host_before_prefill": before,
                "prefill": begin.elapsed_time(prefilled),
                "steps_to_first_window": prefilled.elapsed_time(steps[after - 1]),
                "first_window_wait": steps[after - 1].elapsed_time(w_start),
                "first_window": w_start.elapsed_time(w_end),
                "ttfa_rest": r["ttfa_ms_p50"] - before - begin.elapsed_time(w_end),
                "steps": len(steps),
                "step_in_stream": prefilled.elapsed_time(steps[-1]) / len(steps),
                "windows": len(windows),
                "last_window_after_steps": steps[-1].elapsed_time(windows[-1][2]),
                "total_rest": r["total_ms_p50"] - before - begin.elapsed_time(windows[-1][2]),
            }
            rows.append(row)
    finally:
        E.submit, R.prefill, R.decode, R._call = submit, prefill, decode, call
    return {k: round(statistics.median(r[k] for r in rows), 4) for k in rows[0]}


def runtime_variants(
    engine: Any, tts: Any, voice: Any, variants: list[str], rounds: int, path_runs: int
) -> list[dict[str, Any]]:
    """c = 1 under settings the running engine reads as it goes, on one engine (no capture per
    variant): each variant is `--set`-style pairs separated by spaces, "" the defaults. Rounds
    interleave the variants (one request each), so that slow drift of the machine spreads over
    all of them. `runner.LATER_WINDOW_SMS` takes effect here by giving the runner its green
    stream (the runner makes it only at start-up); other names must be read by the engine as it
    runs (`engine.FIRST_AUDIO_ALONE`). Then `path_runs` requests of each, split (request_path)."""
    from xtts_server.engine import runner as runner_mod
    from xtts_server.engine.green_context import green_stream

    runner = engine.runner
    first_stream = runner.voc_later
    streams: dict[int, Any] = {}

    def apply(variant: str) -> None:
        apply_settings(defaults + variant.split())  # (back to the defaults first)
        sms = runner_mod.LATER_WINDOW_SMS
        if sms and sms not in streams:
            streams[sms], how = green_stream(sms, torch.device("cuda"))
            print(json.dumps({"green_stream": sms, "how": how}), flush=True)
        runner.voc_later = streams.get(sms) if sms else first_stream

    defaults = current_settings({pair.partition("=")[0] for v in variants for pair in v.split()})
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    try:
        for i in range(rounds):
            for v in variants:
                apply(v)
                runs[v].append(run_batch(engine, tts, voice, 1, seed=100 + i))
        out = []
        for v in variants:
            rs = runs[v]
            row: dict[str, Any] = {"variant": v or "defaults", "runs": len(rs)}
            for key in ("ttfa_ms_p50", "total_ms_p50"):
                values = [r[key] for r in rs]
                row[key] = statistics.median(values)
                row[key.replace("p50", "min")] = min(values)
                row[key.replace("p50", "max")] = max(values)
            row["decode_steps"] = statistics.median(r["decode_steps"] for r in rs)
            if path_runs:
                apply(v)
                try:
                    row["path_ms"] = request_path(engine, tts, voice, path_runs)
                except Exception as e:
                    row["path_ms"] = {"error": repr(e)}
            out.append(row)
            print(json.dumps(row), flush=True)
        return out
    finally:
        apply("")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/full-seed0"))
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--vocoder-dtype", help="default: --dtype")
    parser.add_argument("--slots", type=int, default=256)
    parser.add_argument("--concurrency", default="1,16,64,256")
    parser.add_argument("--runs", type=int, default=10, help="repeats at c=1")
    parser.add_argument("--path-runs", type=int, default=0,
                        help="c = 1 requests split by timing events (request_path)")  # fmt: skip
    parser.add_argument("--variants", action="append", default=[], metavar="'MODULE.NAME=VALUE ...'",
                        help="c = 1 under settings read as it runs (runtime_variants)")  # fmt: skip
    parser.add_argument("--out", type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="MODULE.NAME=VALUE",
                        help="a kernel setting (workload.apply_settings), repeatable")  # fmt: skip
    args = parser.parse_args()
    settings = apply_settings(args.set)
    from xtts_server import XTTS
    from xtts_server.engine import Engine, EngineConfig
    from xtts_server.random_model import make_test_model

    if not (args.model_dir / "model.pth").is_file():
        make_test_model(args.model_dir, "full", seed=0)
    tts = XTTS.load(args.model_dir, device="cuda", dtype=getattr(torch, args.dtype))
    if args.vocoder_dtype:
        tts.model.hifigan_decoder.to(getattr(torch, args.vocoder_dtype))
    voice = tts.studio_voice(STUDIO_VOICE)
    base = torch.cuda.memory_allocated()
    engine = Engine(tts.model, torch.device("cuda"), EngineConfig(slots=args.slots))
    t = time.perf_counter()
    engine.start()
    capture_s = time.perf_counter() - t
    engine_mem = torch.cuda.memory_allocated() - base
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "dtype": args.dtype,
        "vocoder_dtype": args.vocoder_dtype or args.dtype,
        "slots": args.slots,
        "tokens": TOKENS,
        "chunk": CHUNK,
        "weights": "random, full size (make-test-model --size full --seed 0)",
        "settings": settings,
        "graphs": len(engine.runner.graphs.graphs) if engine.runner.graphs else 0,
        "capture_s": capture_s,
        "model_gb": base / 1e9,
        "engine_state_gb": engine_mem / 1e9,
        "engine_state_mb_per_slot": engine_mem / args.slots / 1e6,
    }
    print(json.dumps(report), flush=True)
    report["step_times_attend_256"] = step_times(engine, 200)
    print(json.dumps(report["step_times_attend_256"]), flush=True)
    report["vocoder_times_128_frames"] = vocoder_times(engine)
    print(json.dumps(report["vocoder_times_128_frames"]), flush=True)
    run_batch(engine, tts, voice, 1, seed=0)  # warm-up (and real admission inputs for prefill_times)
    report["prefill_times"] = prefill_times(
        engine, tts.model.gpt.args.cond_latents + len(tts.tokenize(TEXT, LANGUAGE)) + 3
    )
    print(json.dumps(report["prefill_times"]), flush=True)
    singles = [run_batch(engine, tts, voice, 1, seed=i) for i in range(args.runs)]
    report["c1"] = {
        key: statistics.median(r[key] for r in singles)
        for key in ("ttfa_ms_p50", "total_ms_p50", "rtf_p50", "decode_steps")
    }
    report["c1"]["ttfa_ms_min"] = min(r["ttfa_ms_p50"] for r in singles)
    report["c1"]["ttfa_ms_max"] = max(r["ttfa_ms_p50"] for r in singles)
    report["c1"]["phase_ms"] = singles[-1]["phase_ms"]
    print(json.dumps({"c1": report["c1"]}), flush=True)
    if args.path_runs:
        try:  # (a failure here must not cost the load runs)
            report["c1_path_ms"] = request_path(engine, tts, voice, args.path_runs)
        except Exception as e:
            report["c1_path_ms"] = {"error": repr(e)}
        print(json.dumps({"c1_path_ms": report["c1_path_ms"]}), flush=True)
    if args.variants:
        report["c1_variants"] = runtime_variants(
            engine, tts, voice, ["", *args.variants], args.runs, args.path_runs
        )
    report["load"] = []
    for c in (int(x) for x in args.concurrency.split(",")):
        if c > engine.capacity:
            continue
        torch.cuda.reset_peak_memory_stats()
        r = run_batch(engine, tts, voice, c, seed=1000)
        r["peak_gpu_gb"] = torch.cuda.max_memory_allocated() / 1e9
        report["load"].append(r)
        print(json.dumps(r), flush=True)
    engine.stop()
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

"""Where one stream's time goes in the engine at c = 1 (issue 6): host time of each engine and runner
call (timers wrapped around them), any call that makes the host wait for the GPU (torch's sync debug
mode, with the Python stack that made it), the engine thread's heaviest torch ops and CUDA API calls
(torch.profiler), how busy the GPU was between the request's first and last kernel, and the first
audio's path split into host and GPU time without the profiler (timing events). Random
full-size weights, the standard workload; run on the GPU machine.

    python3 bench/engine_profile.py --model-dir /tmp/full --out /tmp/out/profile.json
"""

from __future__ import annotations

import argparse
import collections
import functools
import itertools
import json
import statistics
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import torch
from engine_bench import request_path, run_batch
from workload import STUDIO_VOICE, apply_settings, full_model_on_gpu


def wrap_timers(targets: list[tuple[Any, str]], totals: dict[str, list[float]]) -> None:
    """Replace each (owner, method) with a version that adds its host time to totals[name]."""
    for owner, name in targets:
        fn = getattr(owner, name)
        label = f"{owner.__name__}.{name}"

        @functools.wraps(fn)
        def timed(*a: Any, _fn: Any = fn, _label: str = label, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return _fn(*a, **kw)
            finally:
                totals[_label].append(time.perf_counter() - t)

        setattr(owner, name, timed)


def _marked(fn: Any, label: str) -> Any:
    """fn inside a profiler range named label (so host moments line up with the GPU's)."""

    @functools.wraps(fn)
    def inner(*a: Any, **kw: Any) -> Any:
        with torch.profiler.record_function(label):
            return fn(*a, **kw)

    return inner


def timeline(prof: Any) -> dict[str, Any]:
    """One request's GPU timeline, from its submit (ms): per CUDA stream, runs of kernels with no
    gap over 20 us, each with the decode steps it ends (the sampler kernel ends a step); the host
    moments each output reached the callback; and the idle gaps in the first audio's path."""
    events = prof.events()
    submit = min(e.time_range.start for e in events if e.name == "mark.submit")
    delivered = sorted((e.time_range.end - submit) / 1e3 for e in events if e.name == "mark._deliver")
    kernels = sorted(
        (e for e in events if e.device_type == torch.autograd.DeviceType.CUDA),
        key=lambda e: e.time_range.start,
    )
    streams: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
    for k in kernels:
        start, end = (k.time_range.start - submit) / 1e3, (k.time_range.end - submit) / 1e3
        runs = streams[int(getattr(k, "device_resource_id", 0) or 0)]
        if runs and start - runs[-1]["end_ms"] <= 0.02:
            runs[-1]["end_ms"] = max(runs[-1]["end_ms"], end)
        else:
            runs.append({"start_ms": start, "end_ms": end, "kernels": 0, "steps": 0, "first": k.name[:40]})
        runs[-1]["kernels"] += 1
        runs[-1]["steps"] += "choose" in k.name
    step_ends = sorted((k.time_range.end - submit) / 1e3 for k in kernels if "choose" in k.name)
    rounded = {
        str(s): [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in runs]
        for s, runs in streams.items()
    }
    return {
        "first_kernel_ms": (kernels[0].time_range.start - submit) / 1e3 if kernels else None,
        "step_ends_ms": [round(t, 3) for t in step_ends[:25]],
        "step_ms_median": statistics.median(b - a for a, b in itertools.pairwise(step_ends[1:]))
        if len(step_ends) > 3
        else None,
        "delivered_ms": [round(t, 3) for t in delivered],
        "runs": rounded,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/full"))
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--no-vocoder-stream", action="store_true", help="vocoder on the decode stream")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="MODULE.NAME=VALUE",
                        help="a kernel setting (workload.apply_settings), repeatable")  # fmt: skip
    args = parser.parse_args()
    settings = apply_settings(args.set)
    from torch.profiler import ProfilerActivity, profile

    from xtts_server.engine import Engine, EngineConfig
    from xtts_server.engine import engine as engine_mod
    from xtts_server.engine import runner as runner_mod
    from xtts_server.inference import vocoder_stream

    tts = full_model_on_gpu(args.model_dir, args.dtype)
    voice = tts.studio_voice(STUDIO_VOICE)
    engine = Engine(
        tts.model,
        torch.device("cuda"),
        EngineConfig(slots=args.slots, vocoder_stream=not args.no_vocoder_stream),
    )
    engine.start()
    for i in range(3):
        run_batch(engine, tts, voice, 1, seed=i)  # warm-up (allocator, pinned host blocks)
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    report.update(dtype=args.dtype, slots=args.slots, weights="random, full size", settings=settings)
    report["vocoder_stream"] = engine.runner.voc_stream is not None

    # 1. Host time per call, over 5 requests (ms per request).
    totals: dict[str, list[float]] = collections.defaultdict(list)
    E, R = engine_mod.Engine, runner_mod.Runner
    wrap_timers(
        [(E, "_schedule"), (E, "_admit"), (R, "_voc_upload"),
         (E, "_execute"), (E, "_update"), (E, "_due_window"), (E, "_wait"), (E, "_vocode_launch"),
         (E, "_collect"),
         (E, "_deliver"), (R, "prefill"), (R, "decode"), (R, "vocode_launch"), (R, "vocode_collect"),
         (R, "_window_frames"), (runner_mod._Graphs, "run"),
         (vocoder_stream.StreamingVocoder, "__init__")],
        totals,
    )  # fmt: skip
    runs = [run_batch(engine, tts, voice, 1, seed=10 + i) for i in range(5)]
    report["ttfa_ms"] = [r["ttfa_ms_p50"] for r in runs]
    report["total_ms"] = [r["total_ms_p50"] for r in runs]
    report["host_ms_per_request"] = {
        k: {"calls": len(v) / 5, "ms": sum(v) / 5 * 1e3, "max_ms": max(v) * 1e3}
        for k, v in sorted(totals.items(), key=lambda kv: -sum(kv[1]))
    }
    print(json.dumps(report), flush=True)
    try:  # (not yet run on a GPU: a failure here must not cost the rest of the profile)
        report["first_audio_path_ms"] = request_path(engine, tts, voice, 5)
    except Exception as e:
        report["first_audio_path_ms"] = {"error": repr(e)}
    print(json.dumps(report["first_audio_path_ms"]), flush=True)

    # 2. Calls that wait for the GPU, with their stacks.
    syncs: list[dict[str, Any]] = []
    shown = warnings.showwarning

    def record(
        message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
    ) -> None:
        stack = [
            f"{f.filename.split('/src/')[-1]}:{f.lineno} {f.name}" for f in traceback.extract_stack()[:-1]
        ]
        syncs.append({"message": str(message)[:200], "stack": stack[-8:]})

    warnings.showwarning = record
    warnings.simplefilter("always")
    torch.cuda.set_sync_debug_mode("warn")
    try:
        run_batch(engine, tts, voice, 1, seed=20)
    finally:
        torch.cuda.set_sync_debug_mode("default")
        warnings.showwarning = shown
    by_site = collections.Counter(" <- ".join(s["stack"][-4:][::-1]) for s in syncs)
    report["gpu_waits"] = [{"count": n, "site": site} for site, n in by_site.most_common(20)]
    print(json.dumps(report["gpu_waits"], indent=1), flush=True)

    # 3. torch.profiler over one request: heaviest CPU ops, CUDA API calls, GPU busy share.
    marked = [(E, "submit"), (E, "_deliver")]
    for owner, name in marked:
        setattr(owner, name, _marked(getattr(owner, name), f"mark.{name}"))
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        run_batch(engine, tts, voice, 1, seed=30)
        torch.cuda.synchronize()
    report["timeline"] = timeline(prof)
    print(json.dumps(report["timeline"]), flush=True)
    averages = prof.key_averages()
    ops = sorted(averages, key=lambda e: -e.self_cpu_time_total)
    report["top_cpu_ops"] = [
        {"name": e.key[:80], "count": e.count, "self_cpu_ms": e.self_cpu_time_total / 1e3} for e in ops[:30]
    ]
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    if kernels:
        start = min(e.time_range.start for e in kernels)
        end = max(e.time_range.end for e in kernels)
        busy = sum(e.time_range.end - e.time_range.start for e in kernels)
        report["gpu"] = {"kernels": len(kernels), "span_ms": (end - start) / 1e3, "busy_ms": busy / 1e3}
    for row in report["top_cpu_ops"]:
        print(f"  {row['count']:6d} {row['self_cpu_ms']:8.2f} ms  {row['name']}")
    print(json.dumps(report.get("gpu")), flush=True)
    engine.stop()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

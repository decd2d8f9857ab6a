"""What a vocoder window costs the decode steps it runs beside, at batch 1 (issue 6), and whether
confining the vocoder to fewer multiprocessors (a CUDA green context) lowers that cost.

Why: at c = 1 the standard workload's total (60.8 ms on an H100, session 15) is about 2.8 ms over
the GPU time of its prefill, 85 steps and last window run one after another: the windows queued
beside the steps seem to slow them by nearly their own length. Replaying the engine's own graphs
(a batch-1 decode step, a one-window vocoder batch) on two streams measures it directly:

- the steps alone, and the window alone;
- K steps with the window queued behind the first of them on the engine's vocoder stream (priority
  -1), as the engine runs a chunk's window: what the K steps take more than alone is the window's
  cost to the decode stream, and the window's own time beside them is its latency;
- the same with the window on a stream of a green context of N multiprocessors, for each --sms N
  (if this torch and driver have green contexts; else the reason is reported).

    python3 bench/window_interference.py --model-dir /tmp/full --sms 8,16,32,64 --out $OUT/wi.json

State is garbage (timing only). Times are CUDA-event spans, medians of --repeats.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
from pathlib import Path
from typing import Any

import torch
from workload import apply_settings


def span(start: torch.cuda.Event, end: torch.cuda.Event) -> float:
    return float(start.elapsed_time(end))


def measure(runner: Any, steps: int, voc: torch.cuda.Stream | None, frames: int) -> tuple[float, float]:
    """K steps on the current stream, with (voc given) one window on `voc` queued behind the first
    step -> (the K steps' span, the window's span from the end of the first step), in ms."""
    decode = torch.cuda.current_stream()
    t0, first, t1 = (torch.cuda.Event(enable_timing=True) for _ in range(3))
    w1 = torch.cuda.Event(enable_timing=True)
    t0.record(decode)
    runner.decode(1, runner.config.attend_buckets[-1])
    first.record(decode)
    if voc is not None:
        voc.wait_event(first)
        with torch.cuda.stream(voc):
            runner.voc_graphs.run(("vocoder", 1, frames))
            w1.record(voc)
    for _ in range(steps - 1):
        runner.decode(1, runner.config.attend_buckets[-1])
    t1.record(decode)
    torch.cuda.synchronize()
    return span(t0, t1), (span(first, w1) if voc is not None else 0.0)


def window_alone(runner: Any, voc: torch.cuda.Stream, frames: int) -> float:
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with torch.cuda.stream(voc):
        a.record(voc)
        runner.voc_graphs.run(("vocoder", 1, frames))
        b.record(voc)
    torch.cuda.synchronize()
    return span(a, b)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/full"))
    parser.add_argument("--steps", type=int, default=6, help="decode steps per measurement")
    parser.add_argument("--frames", type=int, default=96, help="the window's frame bucket")
    parser.add_argument("--sms", default="8,16,32,64", help="green-context sizes to try")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="MODULE.NAME=VALUE")
    args = parser.parse_args()
    settings = apply_settings(args.set)
    from xtts_server import XTTS
    from xtts_server.engine import Engine, EngineConfig
    from xtts_server.engine.green_context import green_stream
    from xtts_server.random_model import make_test_model

    if not (args.model_dir / "model.pth").is_file():
        make_test_model(args.model_dir, "full", seed=0)
    tts = XTTS.load(args.model_dir, device="cuda", dtype=torch.float16)
    # The engine's runner, with only the two graphs measured here captured (seconds, not the
    # start-up's minute and a half); its loop is never started.
    runner = Engine(tts.model, torch.device("cuda"), EngineConfig(slots=16)).runner
    assert runner.graphs is not None and runner.voc_stream is not None and runner.voc_graphs is not None
    gc.collect()
    torch.cuda.synchronize()
    torch.backends.cudnn.benchmark = True  # (as `Runner.capture`: cuDNN times the vocoder's shapes)
    gc.disable()
    # Valid index arrays for the window's graph to read: padding windows on the scratch row.
    runner._voc_upload(runner.voc_layouts[(1, args.frames)], [], [])
    runner.voc_graphs.capture(("vocoder", 1, args.frames), runner._vocoder_fn(1, args.frames))
    attend = runner.config.attend_buckets[-1]  # (the fused step's one graph)
    runner.graphs.capture(("decode", 1, attend), runner._decode_fn(1, attend))
    gc.enable()
    runner.reset()
    streams: dict[str, torch.cuda.Stream | None] = {"alone": None}
    streams["vocoder stream (priority -1)"] = runner.voc_stream
    notes = {}
    for n in (int(x) for x in args.sms.split(",") if x):
        stream, how = green_stream(n, torch.device("cuda"))
        notes[f"green context, {n} SMs"] = how
        if stream is not None:
            streams[f"green context, {n} SMs"] = stream
    with torch.inference_mode():
        for _ in range(3):  # warm-up
            for voc in streams.values():
                measure(runner, args.steps, voc, args.frames)
        rows = []
        for name, voc in streams.items():
            spans = [measure(runner, args.steps, voc, args.frames) for _ in range(args.repeats)]
            row: dict[str, Any] = {"variant": name, "steps_ms": statistics.median(s for s, _ in spans)}
            if voc is not None:
                row["window_beside_ms"] = statistics.median(w for _, w in spans)
                row["window_alone_ms"] = statistics.median(
                    window_alone(runner, voc, args.frames) for _ in range(args.repeats)
                )
            rows.append(row)
    alone = rows[0]["steps_ms"]
    for row in rows[1:]:
        row["cost_to_steps_ms"] = row["steps_ms"] - alone
    report = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "dtype": "float16",
        "weights": "random, full size (make-test-model --size full --seed 0)",
        "settings": settings,
        "steps": args.steps,
        "frames": args.frames,
        "repeats": args.repeats,
        "green_contexts": notes,
        "rows": rows,
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()

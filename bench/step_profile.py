"""Where a decode step's time goes: kernel-level profile and graph replay time of one step, eager
model code (optionally against the same code through torch.compile), and the vocoder in its 1-d
layout against channels-last. Random full-size weights; run on the GPU machine.

    python3 bench/step_profile.py --model-dir /tmp/full --dtype float16 --out /tmp/out/step.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch


def replay_ms(graph: torch.cuda.CUDAGraph, n: int = 100) -> float:
    graph.replay()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        graph.replay()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / n * 1e3


def kernel_table(fn: Any, top: int = 15) -> dict[str, Any]:
    """Kernels of one call of fn: count, summed device time, the heaviest by name."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    events = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    total_us = sum(e.device_time for e in events)
    by_name: dict[str, list[float]] = {}
    for e in events:
        by_name.setdefault(e.name[:90], []).append(e.device_time)
    heavy = sorted(by_name.items(), key=lambda kv: -sum(kv[1]))[:top]
    return {
        "kernels": len(events),
        "kernel_us": total_us,
        "top": [{"name": k, "count": len(v), "us": sum(v)} for k, v in heavy],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/full"))
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--batches", default="1,64,256")
    parser.add_argument("--attend", type=int, default=256)
    parser.add_argument("--compile", default="", help="torch.compile modes to try, comma-separated")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from xtts_server import XTTS
    from xtts_server.engine.runner import Runner, RunnerConfig
    from xtts_server.random_model import make_test_model

    if not (args.model_dir / "model.pth").is_file():
        make_test_model(args.model_dir, "full", seed=0)
    tts = XTTS.load(args.model_dir, device="cuda", dtype=getattr(torch, args.dtype))
    batches = [int(b) for b in args.batches.split(",")]
    config = RunnerConfig.default(max(batches), 602, 32 + 402 + 3, cuda_graphs=True)
    runner = Runner(tts.model, config, torch.device("cuda"))
    assert runner.graphs is not None
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                              "dtype": args.dtype, "attend": args.attend, "variants": []}  # fmt: skip
    gpt = tts.model.gpt
    eager_decode = gpt.decode
    variants: list[tuple[str, Any]] = [("eager", eager_decode)]
    for mode in filter(None, args.compile.split(",")):
        variants.append((f"compile-{mode}", torch.compile(eager_decode, mode=mode, fullgraph=True)))
    with torch.inference_mode():
        for name, decode in variants:
            gpt.decode = decode  # type: ignore[method-assign]
            for b in batches:
                fn = runner._decode_fn(b, args.attend)
                t = time.perf_counter()
                fn()  # compiles, for a compiled variant
                torch.cuda.synchronize()
                first_s = time.perf_counter() - t
                table = kernel_table(fn)
                key = (name, b, args.attend)
                runner.graphs.capture(key, fn)
                ms = replay_ms(runner.graphs.graphs[key][0])
                row = {"variant": name, "batch": b, "step_ms": ms, "first_call_s": first_s, **table}
                report["variants"].append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "top"}), flush=True)
                for k in table["top"][:8]:
                    print(f"    {k['count']:4d} {k['us']:9.1f} us  {k['name']}")
        gpt.decode = eager_decode  # type: ignore[method-assign]
        # The vocoder: windows of 96 and 128 frames, eager, in the 1-d layout and channels-last.
        generator = tts.model.hifigan_decoder.waveform_decoder
        report["vocoder"] = []
        for layout, search, fused in ((True, True, False), (True, True, True)):
            generator.channels_last = layout
            generator.fused = fused
            torch.backends.cudnn.benchmark = search
            for b, f in ((1, 96), (32, 96), (32, 128)):
                fn = runner._vocoder_fn(b, f)
                for _ in range(3):
                    fn()
                torch.cuda.synchronize()
                t = time.perf_counter()
                for _ in range(10):
                    fn()
                torch.cuda.synchronize()
                ms = (time.perf_counter() - t) / 10 * 1e3
                row = {"channels_last": layout, "cudnn_benchmark": search, "fused": fused, "windows": b,
                       "frames": f, "ms": ms, "audio_s_per_s": b * f * 256 / 24000 / ms * 1e3}  # fmt: skip
                report["vocoder"].append(row)
                print(json.dumps(row), flush=True)
            table = kernel_table(runner._vocoder_fn(32, 128), top=10)
            report[f"vocoder_kernels_32x128_channels_last_{layout}_search_{search}_fused_{fused}"] = table
            print(json.dumps({k: v for k, v in table.items() if k != "top"}), flush=True)
            for k in table["top"][:6]:
                print(f"    {k['count']:4d} {k['us']:9.1f} us  {k['name']}")
        generator.channels_last = None
        generator.fused = None
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

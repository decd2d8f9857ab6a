"""The fused Triton decode step (model/fused_decode.py) on a GPU: each linear's block configurations
timed against cuBLAS (LayerNorm and epilogue as separate kernels), the attention kernel against
the unfused write + SDPA, and whole decode steps, fused against unfused, by batch size, all as
CUDA-graph replays. Random full-size weights; run on the GPU machine.

    python3 bench/fused_kernels.py --model-dir /tmp/full --out /tmp/out/fused.json
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F


def graphed_us(fn: Callable[[], object], calls: int = 30, replays: int = 50) -> float:
    """Microseconds per call of fn, from a CUDA graph of `calls` calls (no launch gaps but the
    graph's own, as in the engine)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(replays):
        graph.replay()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / replays / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/full"))
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--batches", default="1,2,4,8,16,32,64")
    parser.add_argument("--attend", type=int, default=256)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from step_profile import kernel_table

    from xtts_server import XTTS
    from xtts_server.engine.runner import Runner, RunnerConfig
    from xtts_server.model import fused_decode
    from xtts_server.random_model import make_test_model

    if not (args.model_dir / "model.pth").is_file():
        make_test_model(args.model_dir, "full", seed=0)
    dtype = getattr(torch, args.dtype)
    tts = XTTS.load(args.model_dir, device="cuda", dtype=dtype)
    gpt = tts.model.gpt
    block = gpt.blocks[0]
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                              "dtype": args.dtype, "linears": [], "attention": [], "steps": []}  # fmt: skip
    dim = gpt.args.gpt_n_model_channels
    with torch.inference_mode():
        # --- each linear, every candidate configuration, at 1 and 16 rows --------------------------
        ln_1, ln_2, attn, mlp = block.ln_1, block.ln_2, block.attn, block.mlp

        def gelu_fc(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
            return F.gelu(mlp.c_fc(ln_2(x)), approximate="tanh")

        cases: list[tuple[str, torch.nn.Linear, dict[str, Any], Callable[..., torch.Tensor]]] = [
            ("c_attn+ln", attn.c_attn, dict(norm=ln_1), lambda x, r: attn.c_attn(ln_1(x))),
            ("attn.c_proj+res", attn.c_proj, dict(residual=True), lambda x, r: r + attn.c_proj(x)),
            ("c_fc+ln+gelu", mlp.c_fc, dict(norm=ln_2, gelu=True), gelu_fc),
            ("mlp.c_proj+res", mlp.c_proj, dict(residual=True), lambda x, r: r + mlp.c_proj(x)),
        ]
        best: dict[tuple[int, int], tuple[float, tuple[int, int, int, int]]] = {}
        for name, layer, kw, eager in cases:
            n, k = layer.weight.shape
            for m in (1, 16):
                x = torch.randn(m, k, device="cuda", dtype=dtype)
                r = torch.randn(m, n, device="cuda", dtype=dtype)
                kwargs = {**kw, "residual": r} if kw.get("residual") else kw
                row: dict[str, Any] = {
                    "linear": name,
                    "n": n,
                    "k": k,
                    "rows": m,
                    "cublas_us": graphed_us(functools.partial(eager, x, r)),
                    "weight_read_us_at_4.8TB/s": n * k * 2 / 4.8e12 * 1e6,
                    "configs": [],
                }
                for cfg in itertools.product((16, 32, 64), (64, 128, 256), (4,), (3, 4)):
                    fused_decode._CONFIGS[(n, k)] = cfg
                    try:
                        us = graphed_us(functools.partial(fused_decode.linear, x, layer, **kwargs))
                    except Exception as e:  # a configuration the compiler refuses (resources)
                        row["configs"].append({"config": cfg, "error": str(e)[:200]})
                        continue
                    row["configs"].append({"config": cfg, "us": us})
                    if m == 1 and us < best.get((n, k), (1e9,))[0]:
                        best[(n, k)] = (us, cfg)
                fused_decode._CONFIGS.pop((n, k), None)
                timed = [c for c in row["configs"] if "us" in c]
                row["best"] = min(timed, key=lambda c: c["us"])
                report["linears"].append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "configs"}), flush=True)
        # Rows of 16 use the configuration chosen at one row (batch invariance): report it there.
        report["chosen"] = {f"{n}x{k}": {"config": cfg, "us_1_row": us} for (n, k), (us, cfg) in best.items()}
        for (n, k), (_, cfg) in best.items():
            fused_decode._CONFIGS[(n, k)] = cfg
        print(json.dumps(report["chosen"]), flush=True)

        # --- attention: the fused kernel against the unfused write + SDPA -----------------------------
        heads = gpt.args.gpt_n_heads
        for b, p in ((1, 150), (1, 600), (16, 150), (64, 150)):
            cache = gpt.new_cache(b, 1039, dtype, torch.device("cuda"))
            kv = cache.kv[0]
            qkv = torch.randn(b, 3 * dim, device="cuda", dtype=dtype)
            pos = torch.full((b,), p, device="cuda")
            s = 256 if p < 256 else 768
            visible = torch.arange(s, device="cuda") <= pos[:, None]
            bias = torch.zeros(visible.shape, dtype=dtype, device="cuda").masked_fill(~visible, float("-inf"))
            x1 = torch.randn(b, 1, dim, device="cuda", dtype=dtype)
            rows = torch.arange(b, device="cuda")
            unfused = functools.partial(attn.decode, x1, kv, rows, pos, bias[:, None, None])
            row = {
                "batch": b,
                "position": p,
                "fused_us": graphed_us(functools.partial(fused_decode.attend, qkv, kv, pos, heads)),
                "unfused_us_with_qkv_and_proj": graphed_us(unfused),
            }
            report["attention"].append(row)
            print(json.dumps(row), flush=True)
            del cache

        # --- whole decode steps ------------------------------------------------------------------------
        batches = [int(b) for b in args.batches.split(",")]
        config = RunnerConfig.default(max(batches), 602, 32 + 402 + 3, cuda_graphs=True,
                                      fused_batches=max(batches))  # fmt: skip
        runner = Runner(tts.model, config, torch.device("cuda"))
        assert runner.graphs is not None
        runner.pos.fill_(args.attend - 1)
        for b in batches:
            for fused in (False, True):
                runner.config = dataclasses.replace(config, fused_batches=b if fused else 0)
                fn = runner._decode_fn(b, args.attend)
                table = kernel_table(fn)
                runner.pos.fill_(args.attend - 1)
                key = ("decode", b, args.attend, fused)
                runner.graphs.capture(key, fn)
                graph = runner.graphs.graphs[key][0]
                graph.replay()
                torch.cuda.synchronize()
                t = time.perf_counter()
                for _ in range(100):
                    runner.pos.fill_(args.attend - 1)  # stay at one length (a tiny kernel, same in both)
                    graph.replay()
                torch.cuda.synchronize()
                ms = (time.perf_counter() - t) / 100 * 1e3
                row = {"batch": b, "fused": fused, "step_ms": ms, **table}
                report["steps"].append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "top"}), flush=True)
                if b == 1:
                    for kt in table["top"][:8]:
                        print(f"    {kt['count']:4d} {kt['us']:9.1f} us  {kt['name']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

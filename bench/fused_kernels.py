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
    parser.add_argument("--sweep-linears", action="store_true", help="time every linear configuration")
    parser.add_argument("--steps-only", action="store_true", help="skip the linears' and attention's tables")
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
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                              "dtype": args.dtype, "linears": [], "attention": [], "steps": []}  # fmt: skip
    dim = gpt.args.gpt_n_model_channels
    with torch.inference_mode():
        # --- each linear, every candidate configuration ---------------------------------------------
        # Each timed call runs the linear of all 30 layers in turn: their weights do not fit in L2
        # together, as in a real step (one layer's alone would be served from L2).
        blocks = gpt.blocks

        def gelu_fc(blk: Any, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
            return F.gelu(blk.mlp.c_fc(blk.ln_2(x)), approximate="tanh")

        cases: list[tuple[str, Callable[[Any], torch.nn.Linear], Callable[[Any], dict[str, Any]], Callable[..., torch.Tensor]]] = [  # noqa: E501
            ("c_attn+ln", lambda blk: blk.attn.c_attn, lambda blk: dict(norm=blk.ln_1),
             lambda blk, x, r: blk.attn.c_attn(blk.ln_1(x))),
            ("attn.c_proj+res", lambda blk: blk.attn.c_proj, lambda blk: dict(residual=True),
             lambda blk, x, r: r + blk.attn.c_proj(x)),
            ("c_fc+ln+gelu", lambda blk: blk.mlp.c_fc, lambda blk: dict(norm=blk.ln_2, gelu=True), gelu_fc),
            ("mlp.c_proj+res", lambda blk: blk.mlp.c_proj, lambda blk: dict(residual=True),
             lambda blk, x, r: r + blk.mlp.c_proj(x)),
        ]  # fmt: skip

        def all_layers(layer_of: Any, kw_of: Any, x: torch.Tensor, r: torch.Tensor) -> None:
            for blk in blocks:
                kw = kw_of(blk)
                if kw.get("residual"):
                    kw = {**kw, "residual": r}
                fused_decode.linear(x, layer_of(blk), **kw)

        def all_eager(eager: Any, x: torch.Tensor, r: torch.Tensor) -> None:
            for blk in blocks:
                eager(blk, x, r)

        configs = (
            []
            if not args.sweep_linears
            else [
                (bn, bk, 4, 2 if bk == 1024 else 3, split)
                for bn in (16, 32)
                for bk in (256, 512, 1024)
                for split in (1, 2, 4)
            ]
        )
        best: dict[tuple[int, int], tuple[float, tuple[int, int, int, int, int]]] = {}
        # The table the linears use here: with programmatic dependent launch (Hopper) or without.
        table = (
            fused_decode._PDL_CONFIGS if fused_decode._pdl(torch.device("cuda")) else fused_decode._CONFIGS
        )
        layers = len(blocks)
        for name, layer_of, kw_of, eager in [] if args.steps_only else cases:
            n, k = layer_of(blocks[0]).weight.shape
            x = torch.randn(1, k, device="cuda", dtype=dtype)
            r = torch.randn(1, n, device="cuda", dtype=dtype)
            row: dict[str, Any] = {
                "linear": name,
                "n": n,
                "k": k,
                "cublas_us": graphed_us(functools.partial(all_eager, eager, x, r), calls=1) / layers,
                "weight_read_us_at_4.8TB/s": n * k * 2 / 4.8e12 * 1e6,
                "configs": [],
            }
            best[(n, k)] = (1e9, table.get((n, k), fused_decode._DEFAULT_CONFIG))
            for cfg in configs:
                table[(n, k)] = cfg
                try:
                    us = graphed_us(functools.partial(all_layers, layer_of, kw_of, x, r), calls=1) / layers
                except Exception as e:  # a configuration the compiler refuses (resources)
                    row["configs"].append({"config": cfg, "error": str(e)[:200]})
                    continue
                row["configs"].append({"config": cfg, "us": us})
                if us < best.get((n, k), (1e9,))[0]:
                    best[(n, k)] = (us, cfg)
            table[(n, k)] = best[(n, k)][1]
            # The same configuration serves every batch size (batch invariance): time it at 16 rows.
            x16 = torch.randn(16, k, device="cuda", dtype=dtype)
            r16 = torch.randn(16, n, device="cuda", dtype=dtype)
            us_1 = graphed_us(functools.partial(all_layers, layer_of, kw_of, x, r), calls=1) / layers
            row["best"] = {"config": best[(n, k)][1], "us": us_1,
                           "us_16_rows": graphed_us(functools.partial(all_layers, layer_of, kw_of, x16, r16), calls=1) / layers,  # noqa: E501
                           "cublas_us_16_rows": graphed_us(functools.partial(all_eager, eager, x16, r16), calls=1) / layers}  # fmt: skip # noqa: E501
            report["linears"].append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "configs"}), flush=True)
        report["chosen"] = {f"{n}x{k}": cfg for (n, k), (_, cfg) in best.items()}
        print(json.dumps(report["chosen"]), flush=True)

        # --- attention: the fused kernel against the unfused write + SDPA -----------------------------
        heads = gpt.args.gpt_n_heads
        attn = blocks[0].attn
        attend_best: dict[tuple[int, int], tuple[float, tuple[int, int]]] = {}
        for b, p in (
            [] if args.steps_only else ((1, 150), (1, 255), (1, 600), (16, 150), (32, 150), (64, 150))
        ):
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
                "unfused_us_with_qkv_and_proj": graphed_us(unfused),
                "fused_us": {},
            }
            for acfg in itertools.product((32, 64, 128, 256), (2, 4)):
                fused_decode.ATTEND_CONFIG = acfg
                us = graphed_us(functools.partial(fused_decode.attend, qkv, kv, pos, heads))
                row["fused_us"][str(acfg)] = us
                attend_best[(b, p)] = min(attend_best.get((b, p), (1e9, acfg)), (us, acfg))
            report["attention"].append(row)
            print(json.dumps(row), flush=True)
            del cache
        if attend_best:
            fused_decode.ATTEND_CONFIG = attend_best[(1, 150)][1]  # the standard workload's length
        report["attend_chosen"] = fused_decode.ATTEND_CONFIG
        print("attention config", fused_decode.ATTEND_CONFIG, flush=True)

        # --- the sampler: torch's ~100 kernels against the one kernel ---------------------------------
        from xtts_server.engine import fused_sampler
        from xtts_server.engine.sampler import RowParams, choose_codes

        report["sampler"] = []
        for b in (1, 16, 64):
            params = RowParams(b, torch.device("cuda"))
            params.temperature.fill_(0.75)
            params.top_k.fill_(50)
            params.top_p.fill_(0.85)
            params.repetition_penalty.fill_(5.0)
            params.do_sample.fill_(True)
            logits = torch.randn(b, 1026, device="cuda") * 3
            seen = torch.rand(b, 1026, device="cuda") < 0.05
            step = torch.full((b,), 10, device="cuda")
            row = {"batch": b}
            for name, choose in (("torch_us", choose_codes), ("fused_us", fused_sampler.choose_codes)):
                row[name] = graphed_us(functools.partial(choose, logits, seen, step, params, 1025))
            report["sampler"].append(row)
            print(json.dumps(row), flush=True)

        # --- whole decode steps ------------------------------------------------------------------------
        # unfused: the model's modules (cuBLAS, SDPA) and the torch sampler; fused: + the fused
        # blocks and head; +sampler: + the one-kernel sampler.
        variants = {
            "unfused": (False, False),
            "fused": (True, False),
            "fused+sampler": (True, True),
        }
        batches = [int(b) for b in args.batches.split(",")]
        config = RunnerConfig.default(max(batches), 602, 32 + 402 + 3, cuda_graphs=True,
                                      fused_batches=max(batches))  # fmt: skip
        runner = Runner(tts.model, config, torch.device("cuda"))
        assert runner.graphs is not None
        runner.pos.fill_(args.attend - 1)
        for b in batches:
            for variant, (fused, sampler) in variants.items():
                runner.config = dataclasses.replace(
                    config, fused_batches=b if fused else 0, fused_sampler=sampler
                )
                fn = runner._decode_fn(b, args.attend)
                table = kernel_table(fn)
                runner.pos.fill_(args.attend - 1)
                key = ("decode", b, args.attend, variant)
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
                row = {"batch": b, "variant": variant, "step_ms": ms, **table}
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

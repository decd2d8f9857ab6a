"""How fast can our GPT decode step go once it is a CUDA graph? (a probe for issue 6's engine)

    python bench/gpu_graph_probe.py [--dtype bfloat16] [--batches 1,8,32,128]

Captures one decode step of `model.gpt` (embedding, 30 blocks over a static KV cache, final norm,
audio head) for several batch sizes, checks that a replay equals the eager step, and times replays.
Uses the model code unchanged: static shapes come from attending over the whole cache with a mask.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def probe(gpt, b: int, seq: int, dtype: torch.dtype) -> dict[str, float]:  # type: ignore[no-untyped-def]
    dev = torch.device("cuda")
    cache = gpt.new_cache(b, seq, dtype, dev)
    gen = torch.Generator(device=dev).manual_seed(0)
    cache.k.normal_(generator=gen)
    cache.v.normal_(generator=gen)
    rows = torch.arange(b, device=dev)
    code = torch.randint(0, 1024, (b, 1), device=dev, generator=gen)
    apos = torch.randint(1, 300, (b, 1), device=dev, generator=gen)
    pos = apos + 75  # a prompt of 75 positions before the codes

    def step() -> torch.Tensor:
        emb = gpt.audio_embedding(code, apos)
        hidden = gpt(emb, pos, cache, rows)  # attends over the whole (masked) cache: static shapes
        return gpt.logits(gpt.latents(hidden[:, -1])).float()

    def timed(fn, n: int) -> float:  # type: ignore[no-untyped-def]
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(n):
            fn()
        torch.cuda.synchronize()
        return (time.perf_counter() - t) / n * 1000

    with torch.inference_mode():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                eager = step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = step()
        graph.replay()
        torch.cuda.synchronize()
        max_diff = (out - eager).abs().max().item()
        eager_ms = timed(step, 20)
        graph_ms = timed(graph.replay, 50)
    return {
        "batch": b,
        "eager_ms": eager_ms,
        "graph_ms": graph_ms,
        "replay_vs_eager_max_abs": max_diff,
        "tokens_per_s": b / graph_ms * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/full-seed0"))
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--batches", default="1,8,32,128")
    parser.add_argument("--seq", type=int, default=768, help="cache positions per row")
    args = parser.parse_args()
    from xtts_server.model.loader import load_model_dir
    from xtts_server.random_model import make_test_model

    if not (args.model_dir / "model.pth").is_file():
        make_test_model(args.model_dir, "full", seed=0)
    dtype = getattr(torch, args.dtype)
    gpt = load_model_dir(args.model_dir, "cuda", dtype).model.gpt
    results = []
    for batch in (int(x) for x in args.batches.split(",")):
        results.append(probe(gpt, batch, args.seq, dtype))
        print(json.dumps(results[-1]), flush=True)
        torch.cuda.empty_cache()
    print(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "dtype": args.dtype,
                      "seq": args.seq, "results": results}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()

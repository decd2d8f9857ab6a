"""The prefill of one prompt (and of a few) on a GPU: the library's GEMMs (`GPT.prefill`) against
the fused linears in tall row tiles (`fused_decode.prefill`) with several block tables, as CUDA-graph
replays. Random full-size weights; run on the GPU machine.

    python3 bench/prefill_sweep.py --model-dir /tmp/full --out /tmp/out/prefill.json

A table is (BLOCK_N, BLOCK_K, warps, stages, SPLIT_K) for every linear of a block; the first is the
code's own `_PREFILL_CONFIGS`. The fastest that beats the library for a prompt is the candidate for
`EngineConfig.fused_prefill` (the engine's prefill also places keys and values and chooses a code,
the same for both, so only this part differs).
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import torch
from fused_kernels import graphed_us
from workload import full_model_on_gpu

SHAPES = ((3072, 1024), (4096, 1024), (1024, 1024), (1024, 4096))  # qkv, MLP in, out projection, MLP out
# Candidate tables: per shape (BLOCK_N, BLOCK_K, warps, stages, SPLIT_K); None = the code's own.
CANDIDATES: dict[str, dict[tuple[int, int], tuple[int, int, int, int, int]] | None] = {
    "default": None,
    "n32_k128": {s: (32, 128, 4, 3, 1 if s[0] > 1024 else 4) for s in SHAPES},
    "n64_k64": {s: (64, 64, 4, 3, 2 if s[0] > 1024 else 8) for s in SHAPES},
    "n32_k64_w8": {s: (32, 64, 8, 3, 1 if s[0] > 1024 else 4) for s in SHAPES},
    "n16_k64": {s: (16, 64, 4, 3, 1 if s[0] > 1024 else 2) for s in SHAPES},
    "n32_k64_s4": {s: (32, 64, 4, 4, 1 if s[0] > 1024 else 4) for s in SHAPES},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/full"))
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--shapes", default="1x64,1x96,4x64", help="prompts x positions")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from xtts_server.model import fused_decode

    tts = full_model_on_gpu(args.model_dir, args.dtype)
    gpt = tts.model.gpt
    own = dict(fused_decode._PREFILL_CONFIGS)
    rows: list[dict[str, object]] = []
    for shape in args.shapes.split(","):
        b, p = (int(v) for v in shape.split("x"))
        emb = torch.randn(b, p, gpt.args.gpt_n_model_channels, device="cuda").to(getattr(torch, args.dtype))
        with torch.inference_mode():
            row: dict[str, object] = {
                "prompts": b,
                "positions": p,
                "library_us": graphed_us(functools.partial(gpt.prefill, emb), 3, 20),
            }
            for name, table in CANDIDATES.items():
                fused_decode._PREFILL_CONFIGS.clear()
                fused_decode._PREFILL_CONFIGS.update(own if table is None else table)
                try:
                    row[f"{name}_us"] = graphed_us(functools.partial(fused_decode.prefill, gpt, emb), 3, 20)
                except Exception as e:  # a table that does not compile or fit: say so, go on
                    row[f"{name}_us"] = f"failed: {type(e).__name__}: {e}"[:200]
        fused_decode._PREFILL_CONFIGS.clear()
        fused_decode._PREFILL_CONFIGS.update(own)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.out:
        report = {"device": torch.cuda.get_device_name(), "dtype": args.dtype, "rows": rows}
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

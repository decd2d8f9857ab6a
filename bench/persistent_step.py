"""The one-kernel decode step (model/persistent_decode.py) against the five-kernels-a-layer step
(model/fused_decode.decode_step), both from codes to logits, as CUDA-graph replays by batch size,
with a check that they agree bit for bit; `--sweep` times other tiles and pipelining depths for the
one-kernel step (which then no longer matches the five-kernel step's bits). Random full-size
weights; GPU only.

    python3 bench/persistent_step.py --model-dir /tmp/full --out /tmp/out/persistent.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from fused_kernels import graphed_us

# Tiles (BLOCK_N, BLOCK_K, SPLIT_K) and depths tried by --sweep, one field at a time.
CANDIDATES: dict[str, list[Any]] = {
    "qkv": [(16, 1024, 1), (32, 512, 2)],
    "proj": [(16, 512, 2), (16, 1024, 1)],
    "fc": [(16, 1024, 1), (64, 1024, 1)],
    "mlp": [(16, 1024, 2), (32, 1024, 4)],
    "head": [(16, 512, 1), (16, 512, 2)],
    "stages": [1, 3],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/full"))
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--batches", default="1,2,4,8,16")
    parser.add_argument("--position", type=int, default=150, help="each row's cache position")
    parser.add_argument("--sweep", action="store_true", help="other tiles for the one-kernel step, batch 1")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from xtts_server import XTTS
    from xtts_server.model import fused_decode
    from xtts_server.model.persistent_decode import PersistentDecoder, StepConfig
    from xtts_server.random_model import make_test_model

    if not (args.model_dir / "model.pth").is_file():
        make_test_model(args.model_dir, "full", seed=0)
    dtype = getattr(torch, args.dtype)
    gpt = XTTS.load(args.model_dir, device="cuda", dtype=dtype).model.gpt
    dev = torch.device("cuda")
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                              "dtype": args.dtype, "position": args.position}  # fmt: skip
    report.update(steps=[], sweep=[])
    rows = 16
    cache = gpt.new_cache(rows, 1024, dtype, dev)
    torch.manual_seed(0)
    cache.kv.normal_()
    codes = torch.randint(0, 1024, (rows,), device=dev)
    step = torch.full((rows,), 20, device=dev)
    pos = torch.full((rows,), args.position, device=dev)
    max_step = gpt.args.mel_positions - 1

    def five(b: int) -> tuple[torch.Tensor, torch.Tensor]:
        return fused_decode.decode_step(gpt, codes[:b], step[:b], pos[:b], cache.kv, max_step)  # type: ignore[no-any-return]

    def one(dec: PersistentDecoder, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        return dec.step(codes[:b], step[:b], pos[:b], cache.kv, max_step)  # type: ignore[no-any-return]

    with torch.inference_mode():
        decoder = PersistentDecoder(gpt, dev)
        report["tiles"] = decoder.tiles
        for b in (int(x) for x in args.batches.split(",")):
            want = [t.clone() for t in five(b)]
            got = [t.clone() for t in one(decoder, b)]
            row = {
                "batch": b,
                "five_kernels_ms": graphed_us(lambda b=b: five(b)) / 1e3,  # type: ignore[misc]
                "one_kernel_ms": graphed_us(lambda b=b: one(decoder, b)) / 1e3,  # type: ignore[misc]
                "bit_equal": all(torch.equal(g, w) for g, w in zip(got, want, strict=True)),
            }
            print(row, flush=True)
            report["steps"].append(row)
        if args.sweep:
            for field, values in CANDIDATES.items():
                for value in values:
                    cfg = dataclasses.replace(StepConfig(), **{field: value})
                    try:
                        ms = graphed_us(lambda cfg=cfg: one(PersistentDecoder(gpt, dev, cfg), 1)) / 1e3  # type: ignore[misc]
                    except Exception as exc:  # (a tile too large for shared memory)
                        print(cfg, "failed:", str(exc)[:200], flush=True)
                        continue
                    entry = {"config": dataclasses.asdict(cfg), "b1_ms": ms}
                    print(entry, flush=True)
                    report["sweep"].append(entry)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

"""The fused decode step with and without programmatic dependent launch (PDL), and PDL's block
configurations: whole steps (fused blocks, head and sampler, as the engine's graphs run them) timed
as CUDA-graph replays, and each variant's latents and logits against the same configuration without
PDL (bit for bit: a race would show as a difference). Random full-size weights; run on the GPU.

    python3 bench/pdl_step.py --model-dir /tmp/full --out /tmp/out/pdl.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch
from workload import full_model_on_gpu

# Variants: name -> (PDL, {(N, K): (BLOCK_N, BLOCK_K, warps, stages, SPLIT_K)}) overriding the
# module's table. A BLOCK_K covering a program's whole K range lets PDL prefetch the weight tile.
ONE_TILE = {
    (3072, 1024): (32, 1024, 4, 1, 1),
    (1024, 1024): (16, 1024, 4, 1, 1),
    (4096, 1024): (32, 1024, 4, 1, 1),
    (1024, 4096): (32, 1024, 4, 1, 4),
    (1026, 1024): (16, 1024, 4, 1, 1),
}


def _with(
    table: dict[tuple[int, int], tuple[int, ...]], **change: Any
) -> dict[tuple[int, int], tuple[int, ...]]:
    out = {}
    for shape, (bn, bk, w, st, sp) in table.items():
        cfg = dict(bn=bn, bk=bk, w=w, st=st, sp=sp)
        cfg.update({k: v(shape, cfg[k]) if callable(v) else v for k, v in change.items()})
        out[shape] = (cfg["bn"], cfg["bk"], cfg["w"], cfg["st"], cfg["sp"])
    return out


# Module settings a variant may change (restored after it): (module, name) -> value.
SETTINGS = {
    ("fused_decode", "ATTEND_CONFIG"),
    ("fused_decode", "ROW_TILE"),
    ("fused_decode", "MMA_CHAINS"),
    ("fused_sampler", "SEARCH"),
    ("fused_sampler", "PDL"),
}


def settings_variants(pdl: dict[Any, Any]) -> dict[str, tuple[bool, dict[Any, Any], dict[str, Any]]]:
    """Session 10's: the attention's chunk, the sampler's search width and PDL (the variants that
    released the next kernel at a program's start ran at 9f5da2e); session 16's below. Each
    around the module's defaults (`pdl_configs`, run first)."""
    d, smp = "fused_decode.", "fused_sampler."
    return {
        "sampler_binary_no_pdl": (True, pdl, {smp + "SEARCH": (2, 4), smp + "PDL": False}),
        "sampler_binary": (True, pdl, {smp + "SEARCH": (2, 4)}),
        "sampler_ways4": (True, pdl, {smp + "SEARCH": (4, 4)}),
        "sampler_ways8": (True, pdl, {smp + "SEARCH": (8, 4)}),
        "sampler_ways16_8w": (True, pdl, {smp + "SEARCH": (16, 8)}),
        "sampler_ways16_no_pdl": (True, pdl, {smp + "PDL": False}),
        "attend_128x4": (True, pdl, {d + "ATTEND_CONFIG": (128, 4)}),
        "attend_256x4": (True, pdl, {d + "ATTEND_CONFIG": (256, 4)}),
        "attend_256x8": (True, pdl, {d + "ATTEND_CONFIG": (256, 8)}),
        "attend_64x4": (True, pdl, {d + "ATTEND_CONFIG": (64, 4)}),
        # Session 16's: LayerNorm linears that load their rows again after the statistics (as
        # before), and each K tile's product in 2 or 4 independent MMA chains.
        "row_tile_off": (True, pdl, {d + "ROW_TILE": False}),
        "chains2": (True, pdl, {d + "MMA_CHAINS": 2}),
        "chains4": (True, pdl, {d + "MMA_CHAINS": 4}),
    }


def variants(
    plain: dict[Any, Any], pdl: dict[Any, Any]
) -> dict[str, tuple[bool, dict[Any, Any]] | tuple[bool, dict[Any, Any], dict[str, Any]]]:
    """plain: the module's table without PDL; pdl: its table with PDL."""
    return {
        "pdl_configs": (True, pdl),  # (first: the settings variants compare with it)
        **settings_variants(pdl),
        "no_pdl": (False, plain),
        "pdl_plain_configs": (True, plain),
        "no_pdl_one_tile": (False, ONE_TILE),
        "pdl_one_tile_4w": (True, ONE_TILE),
        "pdl_one_tile_8w": (True, _with(ONE_TILE, w=8)),
        "pdl_one_tile_bn16_4w": (True, _with(ONE_TILE, bn=16)),
        "pdl_one_tile_bn16_8w": (True, _with(ONE_TILE, bn=16, w=8)),
        "pdl_mlp_out_split8": (True, {**ONE_TILE, (1024, 4096): (32, 512, 4, 1, 8)}),
        "pdl_mlp_out_split8_bn16": (True, {**_with(ONE_TILE, bn=16), (1024, 4096): (16, 512, 4, 1, 8)}),
        # Around the module's PDL table:
        "no_pdl_pdl_configs": (False, pdl),
        "pdl_proj_split2": (True, {**pdl, (1024, 1024): (16, 512, 4, 1, 2)}),
        "pdl_qkv_fc_split2": (
            True,
            {**pdl, (3072, 1024): (32, 512, 4, 1, 2), (4096, 1024): (32, 512, 4, 1, 2)},
        ),
        "pdl_mlp_out_split16": (True, {**pdl, (1024, 4096): (32, 256, 4, 1, 16)}),
        "pdl_mlp_out_bn16_split8": (True, {**pdl, (1024, 4096): (16, 512, 4, 1, 8)}),
        "pdl_all_split2": (
            True,
            {
                **pdl,
                (1024, 1024): (16, 512, 4, 1, 2),
                (3072, 1024): (32, 512, 4, 1, 2),
                (4096, 1024): (32, 512, 4, 1, 2),
            },
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/full"))
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--position", type=int, default=120, help="each row's position (attention length)")
    parser.add_argument("--only", default="", help="comma-separated variant names")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from xtts_server.engine import fused_sampler
    from xtts_server.engine.runner import Runner, RunnerConfig
    from xtts_server.model import fused_decode

    modules = {"fused_decode": fused_decode, "fused_sampler": fused_sampler}
    defaults = {f"{m}.{n}": getattr(modules[m], n) for m, n in SETTINGS}

    tts = full_model_on_gpu(args.model_dir, args.dtype)
    gpt = tts.model.gpt
    batches = [int(b) for b in args.batches.split(",")]
    config = RunnerConfig.default(32, 602, 32 + 402 + 3, cuda_graphs=True, fused_batches=max(batches),
                                  fused_sampler=True)  # fmt: skip
    runner = Runner(tts.model, config, torch.device("cuda"))
    assert runner.graphs is not None
    gen = torch.Generator(device="cuda").manual_seed(0)
    runner.cache.kv.normal_(generator=gen)
    runner.codes.random_(0, 1000, generator=gen)
    runner.step.random_(1, 50, generator=gen)
    state = [t.clone() for t in runner._row_tensors]
    current = dict(fused_decode._CONFIGS)
    chosen = variants(current, dict(fused_decode._PDL_CONFIGS))
    if args.only:
        chosen = {k: v for k, v in chosen.items() if k in args.only.split(",")}
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "triton": __import__("triton").__version__,
        "dtype": args.dtype,
        "position": args.position,
        "weights": "random, full size",
        "steps": [],
    }
    reference: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}  # (batch, configs)
    first: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # batch -> pdl_configs' outputs
    with torch.inference_mode():
        for name, (pdl, table, *more) in chosen.items():
            changed = more[0] if more else {}
            for key_, value in {**defaults, **changed}.items():
                m, n = key_.split(".")
                setattr(modules[m], n, value)
            fused_decode.PDL = pdl
            tables = fused_decode._PDL_CONFIGS if pdl else fused_decode._CONFIGS
            tables.clear()
            tables.update(table)
            for b in batches:
                configs = {f"{n}x{k}": list(c) for (n, k), c in table.items()}
                row: dict[str, Any] = {"variant": name, "pdl": pdl, "batch": b, "configs": configs,
                                       "settings": {k: repr(v) for k, v in changed.items()}}  # fmt: skip
                try:
                    # Outputs: latents and logits of one step from a fixed state, eagerly and graphed.
                    def once(b: int = b) -> tuple[torch.Tensor, torch.Tensor]:
                        for t, saved in zip(runner._row_tensors, state, strict=True):
                            t.copy_(saved)
                        runner.pos.fill_(args.position)
                        return fused_decode.decode_step(
                            gpt, runner.codes[:b], runner.step[:b], runner.pos[:b], runner.cache.kv,
                            gpt.args.mel_positions - 1,
                        )  # fmt: skip

                    eager = [t.clone() for t in once()]
                    key = ("pdl-outputs", b, name)
                    runner.graphs.capture(key, once)
                    diffs = []
                    for _ in range(20):  # replays: a race would differ from run to run
                        lat, logits = runner.graphs.run(key)  # type: ignore[misc]
                        diffs.append(max((lat.float() - eager[0].float()).abs().max().item(),
                                         (logits.float() - eager[1].float()).abs().max().item()))  # fmt: skip
                    row["graph_vs_eager_max_diff"] = max(diffs)
                    # Bits: the same configuration without PDL (run first: variants are ordered
                    # so), and the module's current one without PDL (the default before).
                    same = (b, repr(sorted(table.items())))
                    if not pdl:
                        reference.setdefault(same, (eager[0], eager[1]))
                    elif same in reference:
                        ref = reference[same]
                        row["vs_same_configs_without_pdl_max_diff"] = max(
                            (eager[0].float() - ref[0].float()).abs().max().item(),
                            (eager[1].float() - ref[1].float()).abs().max().item(),
                        )
                    if name == "pdl_configs":
                        first[b] = (eager[0], eager[1])
                    elif changed and b in first:  # (the attention's chunk changes rounding only)
                        row["vs_pdl_configs_max_diff"] = max(
                            (eager[0].float() - first[b][0].float()).abs().max().item(),
                            (eager[1].float() - first[b][1].float()).abs().max().item(),
                        )
                    base = reference.get((b, repr(sorted(current.items()))))
                    if base is not None:
                        row["vs_no_pdl_max_diff"] = (eager[1].float() - base[1].float()).abs().max().item()
                    # Timing: the engine's whole step (blocks, head, one-kernel sampler) as a graph.
                    runner.config = dataclasses.replace(config, fused_batches=max(batches))
                    fn = runner._decode_fn(b, config.attend_buckets[-1])
                    tkey = ("pdl-step", b, name)
                    runner.pos.fill_(args.position)
                    runner.graphs.capture(tkey, fn)
                    graph = runner.graphs.graphs[tkey][0]
                    times = []
                    for _ in range(5):
                        torch.cuda.synchronize()
                        t = time.perf_counter()
                        for _ in range(100):
                            runner.pos.fill_(args.position)
                            graph.replay()
                        torch.cuda.synchronize()
                        times.append((time.perf_counter() - t) / 100 * 1e3)
                    row["step_ms"] = min(times)
                    row["step_ms_runs"] = times
                except Exception as e:  # a configuration the compiler refuses (resources)
                    row["error"] = f"{type(e).__name__}: {str(e)[:300]}"
                report["steps"].append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "configs"}), flush=True)
    fused_decode.PDL = None
    for key_, value in defaults.items():
        m, n = key_.split(".")
        setattr(modules[m], n, value)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

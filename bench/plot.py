"""Plots for BENCHMARKS.md: TTFA and throughput against concurrency, one curve per results file
(engine_bench.py or http_load.py output; needs matplotlib: pip install '.[bench]').

python bench/plot.py --out bench/engine-load-h200-fused.png \
    "bench/results-h200-engine-fp16-fused.json=engine, fused kernels" \
    "bench/results-h200-engine-fp16.json=engine, before"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Load rows, with an engine result's c = 1 runs as the first point."""
    if "c1" not in result:
        return list(result["load"])
    c1 = result["c1"]
    single = {"concurrency": 1, "ttfa_ms_p50": c1["ttfa_ms_p50"], "ttfa_ms_p95": c1["ttfa_ms_p50"],
              "audio_s_per_wall_s": 3.989 / c1["total_ms_p50"] * 1e3}  # fmt: skip
    return [single, *(r for r in result["load"] if r["concurrency"] != 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", nargs="+", help="PATH=label")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    first: dict[str, Any] = {}
    for spec in args.results:
        path, _, label = spec.partition("=")
        result = json.loads(Path(path).read_text())
        first = first or result
        rows = _rows(result)
        c = [r["concurrency"] for r in rows]
        a.plot(c, [r["ttfa_ms_p50"] for r in rows], "o-", label=f"{label or path} p50")
        a.plot(c, [r["ttfa_ms_p95"] for r in rows], "x--", label=f"{label or path} p95")
        b.plot(c, [r["audio_s_per_wall_s"] for r in rows], "o-", label=label or path)
    for ax in (a, b):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent streams (started together)")
        ax.grid(alpha=0.3)
        ax.legend()
    a.set_ylabel("time to first audio (ms)")
    b.set_ylabel("audio seconds per wall second")
    fig.suptitle(f"{first['device']}, {first['dtype']}, random full-size weights, 86 tokens, chunk 20")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(args.out)


if __name__ == "__main__":
    main()

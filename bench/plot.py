"""Plots for BENCHMARKS.md from the engine and HTTP results (needs matplotlib: pip install '.[bench]').

python bench/plot.py bench/results-h200-engine-fp16.json bench/results-h200-http-fp16.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main() -> None:
    engine = json.loads(Path(sys.argv[1]).read_text())
    http = json.loads(Path(sys.argv[2]).read_text())
    out = Path(sys.argv[1]).parent
    c1 = engine["c1"]
    single = {"concurrency": 1, "ttfa_ms_p50": c1["ttfa_ms_p50"], "ttfa_ms_p95": c1["ttfa_ms_p50"],
              "audio_s_per_wall_s": 3.989 / c1["total_ms_p50"] * 1e3}  # fmt: skip
    e_load = [single, *engine["load"]]
    h_load = http["load"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for rows, label in ((e_load, "engine"), (h_load, "HTTP (loopback)")):
        c = [r["concurrency"] for r in rows]
        a.plot(c, [r["ttfa_ms_p50"] for r in rows], "o-", label=f"{label} p50")
        a.plot(c, [r["ttfa_ms_p95"] for r in rows], "x--", label=f"{label} p95")
        b.plot(c, [r["audio_s_per_wall_s"] for r in rows], "o-", label=label)
    for ax in (a, b):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent streams (started together)")
        ax.grid(alpha=0.3)
        ax.legend()
    a.set_ylabel("time to first audio (ms)")
    b.set_ylabel("audio seconds per wall second")
    fig.suptitle(f"{engine['device']}, {engine['dtype']}, random full-size weights, 86 tokens, chunk 20")
    fig.tight_layout()
    gpu = engine["device"].split()[1].lower()  # "NVIDIA H200" -> h200
    path = out / f"engine-load-{gpu}.png"
    fig.savefig(path, dpi=110)
    print(path)


if __name__ == "__main__":
    main()

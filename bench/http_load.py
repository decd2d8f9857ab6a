"""HTTP-level load benchmark (issue 6): a real server on loopback, real streaming clients.

    python bench/http_load.py --model-dir /tmp/full --concurrency 1,16,64 --runs 10

Starts `xtts-server serve` as a subprocess (the engine on the GPU), waits for /ready, then streams
POST /v1/tts (raw 24 kHz PCM, the standard workload: 86 forced tokens, chunk 20, studio voice) with
httpx. TTFA is from sending the request to the first audio byte read by the client; total is to
the last byte. Concurrency c = c clients started together.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from workload import CHUNK, SAMPLE_RATE, STUDIO_VOICE, TEXT, TOKENS


def body(seed: int) -> dict[str, Any]:
    return {
        "text": TEXT,
        "language": "en",
        "voice": STUDIO_VOICE,
        "format": "pcm",
        "stream": True,
        "stream_chunk_size": CHUNK,
        "min_new_tokens": TOKENS,
        "max_new_tokens": TOKENS,
        "seed": seed,
    }


async def one(client: httpx.AsyncClient, url: str, seed: int) -> dict[str, float]:
    started = time.perf_counter()
    first = None
    size = 0
    async with client.stream("POST", url + "/v1/tts", json=body(seed)) as r:
        if r.status_code != 200:
            await r.aread()
            return {"status": float(r.status_code)}
        async for chunk in r.aiter_raw():
            if chunk and first is None:
                first = time.perf_counter() - started
            size += len(chunk)
    total = time.perf_counter() - started
    audio = size / 2 / SAMPLE_RATE
    return {
        "status": 200.0,
        "ttfa_s": first or total,
        "total_s": total,
        "audio_s": audio,
        "rtf": total / audio,
    }


async def batch(url: str, c: int, seed: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=c + 4, max_keepalive_connections=c + 4)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        started = time.perf_counter()
        results = await asyncio.gather(*(one(client, url, seed + i) for i in range(c)))
        wall = time.perf_counter() - started
    ok = [r for r in results if r["status"] == 200]

    def p(key: str, q: float) -> float:
        return float(np.percentile([r[key] for r in ok], q)) if ok else float("nan")

    return {
        "concurrency": c,
        "ok": len(ok),
        "errors": c - len(ok),
        "ttfa_ms_p50": p("ttfa_s", 50) * 1e3,
        "ttfa_ms_p95": p("ttfa_s", 95) * 1e3,
        "ttfa_ms_p99": p("ttfa_s", 99) * 1e3,
        "total_ms_p50": p("total_s", 50) * 1e3,
        "rtf_p95": p("rtf", 95),
        "audio_s_per_wall_s": sum(r["audio_s"] for r in ok) / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/full"))
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--slots", type=int, default=128)
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    url = f"http://127.0.0.1:{args.port}"
    if not (args.model_dir / "model.pth").is_file():
        from xtts_server.random_model import make_test_model

        make_test_model(args.model_dir, "full", seed=0)
    env = dict(os.environ, XTTS_LOG_LEVEL="warning")
    cmd = [
        sys.executable,
        "-c",
        "import sys; from xtts_server.cli import main; sys.exit(main())",
        "serve",
        "--model-dir",
        str(args.model_dir),
        "--port",
        str(args.port),
        "--engine-slots",
        str(args.slots),
        "--max-queued",
        "512",
        "--voices-dir",
        "/tmp/bench-voices",
    ]
    server = subprocess.Popen(cmd, env=env)
    try:
        started = time.perf_counter()
        while True:
            try:
                ready = httpx.get(url + "/ready", timeout=2)
                if ready.status_code == 200:
                    break
                if "failed" in ready.text:  # start-up failed: the server stays up to say so
                    raise SystemExit(f"the server did not start: {ready.text}")
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.perf_counter() - started > 300:
                raise SystemExit("the server did not become ready")
            time.sleep(0.5)
        report: dict[str, Any] = {
            "ready_s": time.perf_counter() - started,
            "slots": args.slots,
            "tokens": TOKENS,
            "chunk": CHUNK,
            "endpoint": "POST /v1/tts, format pcm, stream",
        }
        asyncio.run(batch(url, 1, 0))  # warm-up
        singles = [asyncio.run(batch(url, 1, i)) for i in range(args.runs)]
        ttfa = sorted(r["ttfa_ms_p50"] for r in singles)
        report["c1"] = {
            "ttfa_ms_p50": float(np.median(ttfa)),
            "ttfa_ms_min": ttfa[0],
            "ttfa_ms_max": ttfa[-1],
            "total_ms_p50": float(np.median([r["total_ms_p50"] for r in singles])),
        }
        print(json.dumps(report), flush=True)
        report["load"] = []
        for c in (int(x) for x in args.concurrency.split(",")):
            r = asyncio.run(batch(url, c, 1000))
            report["load"].append(r)
            print(json.dumps(r), flush=True)
        if args.out:
            args.out.write_text(json.dumps(report, indent=1))
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()

"""The server's own share of a streamed request: `POST /v1/tts` against a stand-in engine that hands
back five chunks at once, so what is timed is HTTP parsing, validation, admission, the hand-over
between threads, encoding and sending. Runs anywhere (tiny random model on the CPU).

    python bench/http_overhead.py --out bench/results-http-overhead-cpu-2core.json

The server runs in a child process (`--serve`); the client measures time to the first audio byte,
one request at a time (c = 1) and in bursts of c started together.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from workload import CHUNK, STUDIO_VOICE, TEXT, TOKENS

PORT = 8179


def serve(model_dir: Path) -> None:
    """The real app and engine object, whose submit answers at once from another thread."""
    import numpy as np
    import uvicorn

    from xtts_server import XTTS
    from xtts_server.engine import engine as engine_module
    from xtts_server.server.app import create_app
    from xtts_server.server.settings import Settings

    def submit(self: Any, req: Any) -> Any:
        def deliver() -> None:
            for i in range(5):
                last = i == 4
                audio = np.zeros(5120, np.float32)  # 20 codes of audio
                req.on_output(engine_module.AudioOut(audio, done=last, codes=(1,) * last))

        threading.Thread(target=deliver).start()
        return req

    engine_module.Engine.submit = submit  # type: ignore[method-assign]
    tts = XTTS.load(model_dir, device="cpu")
    settings = Settings(
        engine="on", engine_slots=128, max_queued=512, warmup=False, voices_dir=Path(tempfile.mkdtemp())
    )
    uvicorn.run(create_app(settings, tts_model=tts), port=PORT, log_level="warning")


async def one(client: httpx.AsyncClient, seed: int) -> float:
    body = {"text": TEXT, "language": "en", "voice": STUDIO_VOICE, "format": "pcm", "stream": True,
            "stream_chunk_size": CHUNK, "max_new_tokens": TOKENS, "seed": seed}  # fmt: skip
    started = time.perf_counter()
    async with client.stream("POST", f"http://127.0.0.1:{PORT}/v1/tts", json=body) as r:
        async for chunk in r.aiter_raw():
            if chunk:
                return (time.perf_counter() - started) * 1e3
    raise RuntimeError("no audio")


async def measure(runs: int, bursts: list[int]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=512)) as client:
        for _ in range(600):
            try:
                if (await client.get(f"http://127.0.0.1:{PORT}/ready")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
        for i in range(5):  # warm-up
            await one(client, i)
        single = sorted([await one(client, i) for i in range(runs)])
        report: dict[str, Any] = {
            "c1_ttfa_ms_median": statistics.median(single),
            "c1_ttfa_ms_p10": single[len(single) // 10],
            "c1_ttfa_ms_p90": single[len(single) * 9 // 10],
            "bursts": [],
        }
        for c in bursts:
            ttfa: list[float] = []
            for _ in range(5):
                ttfa += await asyncio.gather(*[one(client, i) for i in range(c)])
            ttfa.sort()
            report["bursts"].append({"concurrency": c, "ttfa_ms_median": statistics.median(ttfa),
                                     "ttfa_ms_p95": ttfa[int(len(ttfa) * 0.95)]})  # fmt: skip
        return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/xtts-tiny"))
    parser.add_argument("--runs", type=int, default=200, help="sequential requests at c=1")
    parser.add_argument("--bursts", default="16,64")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.serve:
        serve(args.model_dir)
        return
    if not (args.model_dir / "model.pth").is_file():
        from xtts_server.random_model import make_test_model

        make_test_model(args.model_dir, "tiny", seed=0)
    cmd = [sys.executable, __file__, "--serve", "--model-dir", str(args.model_dir)]
    server = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    try:
        report = asyncio.run(measure(args.runs, [int(c) for c in args.bursts.split(",")]))
    finally:
        server.terminate()
        server.wait(30)
    print(json.dumps(report))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

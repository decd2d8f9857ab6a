"""What Ray Serve's proxy adds to time to first audio (issue 8): the same server, direct and behind Ray.

    python bench/ray_proxy.py --model-dir /tmp/tiny --runs 30 --out bench/results-ray-proxy-cpu.json

Direct: `xtts-server serve` as a subprocess. Through Ray: a local Ray cluster, one replica of the
same settings (`xtts_server.distributed.deployment.build_app`), Serve's proxy on loopback. Both run
torch with one thread. Requests alternate between the two (so drift hits both alike), one at a time:
the standard streamed request of http_load.py (TTFA = request sent to first audio byte), and GET
/health (the bare hop: no model work). Reports medians and the median of paired differences.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from http_load import batch
from workload import CHUNK, TOKENS


def wait_ready(url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise SystemExit(f"{url} did not become ready in {timeout:.0f} s")


def health_ms(client: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    assert client.get(url + "/health").status_code == 200
    return (time.perf_counter() - started) * 1e3


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": statistics.median(ordered),
        "p90": ordered[int(0.9 * (len(ordered) - 1))],
        "min": ordered[0],
        "max": ordered[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--direct-port", type=int, default=8131)
    parser.add_argument("--ray-port", type=int, default=8132)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import ray
    from ray import serve

    from xtts_server.distributed.deployment import build_app
    from xtts_server.distributed.options import APP_NAME, RaySettings
    from xtts_server.server.settings import Settings

    voices = Path(tempfile.mkdtemp(prefix="bench-ray-voices-"))
    fields: dict[str, Any] = {"model_dir": args.model_dir, "device": "cpu", "voices_dir": voices}
    env = dict(os.environ, OMP_NUM_THREADS="1", XTTS_LOG_LEVEL="warning")
    direct_cmd = [sys.executable, "-m", "xtts_server.cli", "serve", "--port", str(args.direct_port)]
    direct_cmd += ["--model-dir", str(args.model_dir), "--device", "cpu", "--voices-dir", str(voices)]
    direct = subprocess.Popen(direct_cmd, env=env)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    try:
        direct_url, ray_url = f"http://127.0.0.1:{args.direct_port}", f"http://127.0.0.1:{args.ray_port}"
        serve.start(http_options={"host": "127.0.0.1", "port": args.ray_port})
        options = RaySettings(replicas=1, torch_threads=1, cpus_per_replica=1)
        serve.run(
            build_app(Settings(**fields, log_level="warning"), options), name=APP_NAME, route_prefix="/"
        )
        wait_ready(direct_url)
        wait_ready(ray_url)
        urls = {"direct": direct_url, "ray": ray_url}
        ttfa: dict[str, list[float]] = {"direct": [], "ray": []}
        health: dict[str, list[float]] = {"direct": [], "ray": []}
        for url in urls.values():  # warm-up
            asyncio.run(batch(url, 1, 0))
        with httpx.Client(timeout=30) as client:
            for i in range(args.runs):
                for name, url in urls.items():
                    result = asyncio.run(batch(url, 1, i))
                    assert result["ok"] == 1, result
                    ttfa[name].append(result["ttfa_ms_p50"])
                    health[name].append(health_ms(client, url))
        report = {
            "runs": args.runs,
            "tokens": TOKENS,
            "chunk": CHUNK,
            "endpoint": "POST /v1/tts, format pcm, stream; GET /health",
            "torch_threads": 1,
            "ttfa_ms": {name: summary(values) for name, values in ttfa.items()},
            "health_ms": {name: summary(values) for name, values in health.items()},
            "added_ttfa_ms": summary([r - d for r, d in zip(ttfa["ray"], ttfa["direct"], strict=True)]),
            "added_health_ms": summary([r - d for r, d in zip(health["ray"], health["direct"], strict=True)]),
        }
        print(json.dumps(report, indent=1))
        if args.out:
            args.out.write_text(json.dumps(report, indent=1) + "\n")
    finally:
        serve.shutdown()
        ray.shutdown()
        direct.terminate()  # a draining shutdown: over within shutdown_timeout_s
        direct.wait(60)


if __name__ == "__main__":
    main()

"""A bounded load test against `xtts-server serve` on loopback (tiny model): 2000 requests from 40
concurrent clients (the server admits 2 running + 6 queued, and 5 streams per key); a tenth of them
give up before their answer, and every third one served is hung up on mid-stream. Every request is
served or refused with 503/429 (with Retry-After), none gets a 500; afterwards no stream is left
active and the server's memory has not grown past a bound. About 30 s of load on 2 cores."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path

import httpx
from server_helpers import serve

REQUESTS = 2000
CONCURRENCY = 40
DISCONNECT = 0.2
KEYS = ("load-key-a-0123456789abcdef", "load-key-b-0123456789abcdef")
RSS_GROWTH_BOUND_MB = 150  # after the first 200 requests (allocator and caches warm)

BODIES = [
    (
        "/v1/tts",
        {"text": "Hello there, how are you?", "stream": True, "format": "pcm", "stream_chunk_size": 2},
    ),
    ("/v1/tts", {"text": "A whole file.", "format": "wav"}),
    (
        "/v1/audio/speech",
        {"input": "Hi there.", "model": "tts-1", "voice": "alloy", "response_format": "pcm"},
    ),
    ("/tts_stream", {"text": "The seed's stream.", "speaker": "Ana Florence"}),
]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def one(http: httpx.AsyncClient, url: str, i: int, rng: random.Random) -> str:
    """One client's request: read it all, or hang up mid-stream, or give up before the answer."""
    if rng.random() < DISCONNECT / 2:
        try:
            return await asyncio.wait_for(request(http, url, i, rng), rng.uniform(0.05, 0.5))
        except asyncio.TimeoutError:
            return "gave up"  # the connection is closed while the request waits or streams
    try:
        return await request(http, url, i, rng)
    except httpx.TransportError as e:  # reported with the outcomes: the server dropped a request
        return f"{type(e).__name__} on {BODIES[i % len(BODIES)][0]}"


SERVED: list[int] = []  # 200s so far: every third one is hung up on mid-stream


async def request(http: httpx.AsyncClient, url: str, i: int, rng: random.Random) -> str:
    path, body = BODIES[i % len(BODIES)]
    headers = {"Authorization": f"Bearer {KEYS[i % 2]}"}
    async with http.stream("POST", url + path, json=body, headers=headers) as response:
        status = response.status_code
        if status in (429, 503):
            assert int(response.headers["retry-after"]) >= 1
            error = (await response.aread()).decode()
            assert '"code":"' in error, error
            await asyncio.sleep(rng.uniform(0.05, 0.3))  # a short back-off (Retry-After would be seconds)
            return str(status)
        assert status == 200, (status, (await response.aread())[:300])
        SERVED.append(i)
        hang_up = len(SERVED) % 3 == 0
        received = 0
        async for data in response.aiter_bytes():
            received += len(data)
            if hang_up:
                return "hung up"  # leaving the block closes the connection mid-stream
        assert received > 0
        return "200"


async def run_load(url: str, pid: int) -> tuple[Counter[str], float, float, float]:
    rng = random.Random(0)
    outcomes: Counter[str] = Counter()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(REQUESTS):
        queue.put_nowait(i)
    warm_rss = 0.0
    # A connection per request: reusing pooled keep-alive connections races the server closing idle
    # ones (HTTP/1.1 has no way to tell), a client-side ReadError that is no fault of the server's.
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:

        async def worker() -> None:
            nonlocal warm_rss
            while not queue.empty():
                i = queue.get_nowait()
                outcomes[await one(http, url, i, rng)] += 1
                if i == 200:
                    warm_rss = rss_mb(pid)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        seconds = time.monotonic() - started
    return outcomes, seconds, warm_rss, rss_mb(pid)


def metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {KEYS[0]}"}, timeout=10).text
    (line,) = [x for x in text.splitlines() if x.startswith(name + " ")]
    return float(line.split()[1])


def test_load_with_disconnects(tiny_model_dir: Path, tmp_path: Path) -> None:
    flags = [
        "--max-concurrent",
        "2",
        "--max-queued",
        "6",
        "--max-streams-per-key",
        "5",
        "--max-new-tokens",
        "6",
        "--log-level",
        "warning",
    ]
    env = {"XTTS_API_KEYS": ",".join(KEYS)}
    with serve(tiny_model_dir, tmp_path / "voices", tmp_path / "log", flags, env) as server:
        pid = server.process.pid
        outcomes, seconds, warm_rss, end_rss = asyncio.run(run_load(server.url, pid))
        deadline = time.monotonic() + 20
        while metric(server.url, "xtts_active_streams") or metric(server.url, "xtts_queue_depth"):
            assert time.monotonic() < deadline, "streams still active after the load"
            time.sleep(0.1)
        log = server.output()
        assert httpx.get(f"{server.url}/ready", timeout=10).json()["in_flight"] == 0
    print(
        f"\n{REQUESTS} requests, {CONCURRENCY} clients, {seconds:.1f} s ({REQUESTS / seconds:.0f}/s): "
        f"{dict(outcomes)}; server RSS {warm_rss:.0f} MB after 200 requests, {end_rss:.0f} MB at the end"
    )
    assert sum(outcomes.values()) == REQUESTS
    assert set(outcomes) <= {"200", "hung up", "gave up", "503", "429"}, outcomes
    assert outcomes["200"] > 0 and outcomes["hung up"] > 0 and outcomes["503"] > 0 and outcomes["429"] > 0
    assert end_rss - warm_rss < RSS_GROWTH_BOUND_MB, (warm_rss, end_rss)
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    assert KEYS[0] not in log and KEYS[1] not in log

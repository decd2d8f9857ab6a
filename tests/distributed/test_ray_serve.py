"""The app on a local Ray cluster: two replicas of the tiny model behind Ray's proxy.

Each replica admits one synthesis (max_concurrent=1, max_queued=0), so Ray's routing is forced to
show itself: a second stream must go to the other replica, a third waits in Ray's queue, a fourth
is refused. About a minute on 2 cores (cluster start, one deployment, a replica replaced).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from server_helpers import decode

from xtts_server.inference.voice import Voice
from xtts_server.voices.codec import voice_from_json
from xtts_server.voices.engine import model_signature

SETTINGS = {"default_voice": "Ana Florence", "max_concurrent": 1, "max_queued": 0, "retry_after_s": 3}
# A stream that keeps its replica busy for seconds. Seeded: with seed 0 the tiny random model
# speaks all 400 codes (about 10 s on a CPU); unseeded, a random seed could end it after a few
# codes and free its replica while a test counts on it being busy.
LONG = {
    "text": "Hello there.",
    "stream": True,
    "format": "pcm",
    "max_new_tokens": 400,
    "stream_chunk_size": 2,
    "seed": 0,
}


@pytest.fixture(scope="module")
def url(ray_serve) -> str:  # type: ignore[no-untyped-def]
    from xtts_server.server.settings import Settings

    ray_serve.clear_voices()
    return ray_serve.deploy(Settings(**SETTINGS), max_queued_requests=1)  # type: ignore[no-any-return]


@contextlib.contextmanager
def open_stream(url: str, body: dict[str, Any] = LONG) -> Iterator[tuple[str, Iterator[bytes]]]:
    """A streaming request held open after its first bytes: (replica, the rest of the body)."""
    with httpx.Client(timeout=120) as http, http.stream("POST", f"{url}/v1/tts", json=body) as response:
        assert response.status_code == 200, response.read()[:300]
        chunks = response.iter_bytes()
        assert next(chunks)
        yield response.headers["x-replica"], chunks


def speak(url: str, **body: Any) -> httpx.Response:
    job = {"text": "Still here.", "format": "wav", "seed": 0, "max_new_tokens": 8, **body}
    return httpx.post(f"{url}/v1/tts", json=job, timeout=120)


def replica_of(response: httpx.Response) -> str:
    replica = response.headers["x-replica"]
    assert replica.startswith("xtts#XTTS#"), replica
    return replica


def test_concurrent_streams_land_on_different_replicas(url: str, tiny_tts) -> None:  # type: ignore[no-untyped-def]
    with open_stream(url) as (first, _), open_stream(url) as (second, _):
        assert first != second  # each replica takes one; Ray sent the second where there was room
    # and whole streams through the proxy carry the engine's audio, sample for sample
    body = {"text": "Hello there.", "stream": True, "format": "pcm", "seed": 0, "max_new_tokens": 30}
    streamed = httpx.post(f"{url}/v1/tts", json=body, timeout=120)
    assert streamed.headers["transfer-encoding"] == "chunked"
    expected = tiny_tts.synthesize(
        "Hello there.", "en", tiny_tts.studio_voice("Ana Florence"), seed=0, max_new_tokens=30
    ).audio
    got = decode(streamed.content, "pcm", 24000).samples[0]
    assert len(got) == len(expected)
    assert np.abs(got - np.round(np.clip(expected, -1, 1) * 32767) / 32768).max() <= 1.5 / 32768


def test_websocket_through_the_proxy_names_its_replica(url: str) -> None:
    from websockets.sync.client import connect

    with connect(url.replace("http", "ws", 1) + "/v1/tts/ws") as ws:
        assert ws.response is not None
        assert ws.response.headers["x-replica"].startswith("xtts#XTTS#")
        ws.send(json.dumps({"type": "config", "max_new_tokens": 8, "seed": 0}))
        assert json.loads(ws.recv(timeout=60)) == {"type": "ready"}
        ws.send(json.dumps({"type": "text", "context_id": "c", "text": "Hi there."}))
        ws.send(json.dumps({"type": "close", "context_id": "c"}))
        kinds = []
        while not kinds or kinds[-1] != "done":
            message = ws.recv(timeout=60)
            if isinstance(message, str):
                kinds.append(json.loads(message)["type"])
        assert kinds == ["started", "chunk", "done"]


def test_overload_is_503_with_retry_after(url: str) -> None:
    with open_stream(url), open_stream(url):  # both replicas busy
        queued: list[httpx.Response] = []
        waiter = threading.Thread(target=lambda: queued.append(speak(url)))
        waiter.start()  # waits in Ray's queue (max_queued_requests=1) ...
        time.sleep(2.0)  # (ample for it to get there, even on a busy machine)
        refused = speak(url)  # ... so this one is turned away, as the single server would
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "3"  # the server's retry_after_s
        assert "backpressure" in refused.text
    waiter.join(60)
    assert [r.status_code for r in queued] == [200]  # served once a replica was free


def test_a_voice_uploaded_through_one_replica_speaks_on_the_other(
    url: str, tiny_tts, clip_paths: list[Path]
) -> None:  # type: ignore[no-untyped-def]
    files = [("files", (p.name, p.read_bytes())) for p in clip_paths]
    created = httpx.post(f"{url}/v1/voices", data={"name": "Shared Voice"}, files=files, timeout=120)
    assert created.status_code == 201, created.text
    uploader = replica_of(created)
    latents = httpx.get(f"{url}/v1/voices/Shared Voice?latents=true", timeout=30).json()
    voice: Voice = voice_from_json(latents, model_signature(tiny_tts))
    with contextlib.ExitStack() as holds:
        # make the uploader busy, so that only the other replica has room for the next request
        first_stack = contextlib.ExitStack()
        first, _ = first_stack.enter_context(open_stream(url))
        if first != uploader:
            second, _ = holds.enter_context(open_stream(url))
            assert second == uploader
            first_stack.close()
        spoken = speak(url, voice="shared voice")
        first_stack.close()
    assert spoken.status_code == 200, spoken.text
    assert replica_of(spoken) != uploader
    expected = tiny_tts.synthesize("Still here.", "en", voice, seed=0, max_new_tokens=8).audio
    got = decode(spoken.content, "wav").samples[0]
    assert len(got) == len(expected)
    assert np.abs(got - np.round(np.clip(expected, -1, 1) * 32767) / 32768).max() <= 1.5 / 32768


def kill(replica: str) -> None:
    import ray

    ray.kill(ray.get_actor(f"SERVE_REPLICA::{replica}", namespace="serve"), no_restart=True)


def served_without(url: str, victim: str, voice: str) -> set[str]:
    """Requests go on being served, never by `victim`, until a replacement serves one too."""
    seen: set[str] = set()
    deadline = time.monotonic() + 90
    while len(seen) < 2:
        assert time.monotonic() < deadline, f"no replacement for {victim} within 90 s; served by {seen}"
        response = speak(url, voice=voice)
        assert response.status_code == 200, response.text
        seen.add(replica_of(response))
        assert victim not in seen
        time.sleep(0.2)
    return seen


def test_killing_a_replica_mid_stream(url: str, clip_paths: list[Path]) -> None:
    files = [("files", (p.name, p.read_bytes())) for p in clip_paths[:1]]
    created = httpx.post(f"{url}/v1/voices", data={"name": "Survivor"}, files=files, timeout=120)
    assert created.status_code == 201, created.text
    with pytest.raises(httpx.RemoteProtocolError), open_stream(url) as (victim, rest):
        kill(victim)
        for _ in rest:  # the stream breaks off: no clean end for a cut stream
            pass
    # the other replica goes on serving meanwhile, and Ray starts a replacement, which has the voice
    served_without(url, victim, "Survivor")
    listed: dict[str, bool] = {}
    for _ in range(30):
        response = httpx.get(f"{url}/v1/voices", timeout=30)
        listed[replica_of(response)] = "Survivor" in [v["name"] for v in response.json()["voices"]]
        if len(listed) == 2:
            break
    assert listed and all(listed.values()) and victim not in listed, listed


def test_killing_a_replica_mid_websocket(url: str) -> None:
    from websockets.exceptions import ConnectionClosedError
    from websockets.sync.client import connect

    with connect(url.replace("http", "ws", 1) + "/v1/tts/ws") as ws:
        assert ws.response is not None
        victim = ws.response.headers["x-replica"]
        ws.send(json.dumps({"type": "config", "max_new_tokens": 400, "stream_chunk_size": 2}))
        assert json.loads(ws.recv(timeout=60)) == {"type": "ready"}
        ws.send(json.dumps({"type": "text", "context_id": "c", "text": "A long sentence goes on."}))
        ws.send(json.dumps({"type": "flush", "context_id": "c"}))
        while not isinstance(ws.recv(timeout=60), bytes):  # the first audio
            pass
        kill(victim)
        with pytest.raises(ConnectionClosedError):  # an abnormal close, not a clean end
            while True:
                ws.recv(timeout=60)
    served_without(url, victim, "Ana Florence")


def test_ongoing_requests_scale_the_deployment_up(ray_serve) -> None:  # type: ignore[no-untyped-def]
    """One replica of capacity 1, autoscaled up to two with a target of 1 ongoing request: a stream
    held open and a request queued behind it bring up the second replica, which serves that one."""
    from ray import serve

    from xtts_server.distributed.options import APP_NAME, DEPLOYMENT_NAME
    from xtts_server.server.settings import Settings

    fast = {"upscale_delay_s": 0, "metrics_interval_s": 0.5, "look_back_period_s": 2}
    options = {"replicas": 1, "max_replicas": 2, "target_utilization": 1.0, "autoscaling": fast}
    url = ray_serve.deploy(Settings(**SETTINGS), max_queued_requests=4, **options)

    def running() -> int:
        deployment = serve.status().applications[APP_NAME].deployments[DEPLOYMENT_NAME]
        return int(deployment.replica_states.get("RUNNING", 0))

    assert running() == 1
    queued: list[httpx.Response] = []
    with open_stream(url) as (first, _):
        waiter = threading.Thread(target=lambda: queued.append(speak(url)))
        waiter.start()
        deadline = time.monotonic() + 90
        while running() < 2:
            assert time.monotonic() < deadline, "no second replica within 90 s"
            time.sleep(0.5)
        waiter.join(60)
    [response] = queued
    assert response.status_code == 200, response.text
    assert replica_of(response) != first  # served by the new replica while the first was busy


def test_deleting_the_application_lets_streams_finish(ray_serve, tiny_tts) -> None:  # type: ignore[no-untyped-def]
    """What `xtts-server serve --ray` does on SIGTERM: the replicas drain, a stream in flight ends whole."""
    from ray import serve

    from xtts_server.distributed.options import APP_NAME
    from xtts_server.server.settings import Settings

    url = ray_serve.deploy(Settings(**SETTINGS))
    body = {"text": "Hello there.", "stream": True, "format": "pcm", "seed": 0, "max_new_tokens": 120}
    with httpx.Client(timeout=120) as http, http.stream("POST", f"{url}/v1/tts", json=body) as response:
        chunks = response.iter_bytes()
        data = next(chunks)
        deleting = threading.Thread(target=serve.delete, args=(APP_NAME,))
        deleting.start()
        data += b"".join(chunks)  # no RemoteProtocolError: the stream was not cut
    deleting.join(60)
    ray_serve.forget()
    frames = tiny_tts.model.hifigan_decoder.num_frames
    assert len(data) // 2 in {frames(n) * 256 for n in range(100, 121)}
    assert httpx.get(f"{url}/ready", timeout=10).status_code == 404  # and no replica takes new requests

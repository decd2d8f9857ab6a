"""What a replica adds around the app, and the options Ray gets, checked without a Ray cluster."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from xtts_server.cli import main
from xtts_server.distributed.asgi import ReadyGate, ReplicaHeader, not_ready
from xtts_server.distributed.capacity import replica_capacity, replica_settings
from xtts_server.distributed.options import RaySettings, deployment_options
from xtts_server.server.app import create_app
from xtts_server.server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def replica_app(settings: Settings, **kwargs: object):  # type: ignore[no-untyped-def]
    """The app as XTTSReplica builds it."""
    app = create_app(settings, **kwargs)  # type: ignore[arg-type]
    app.add_middleware(ReplicaHeader, replica="xtts#XTTS#abc123")
    app.add_middleware(ReadyGate)
    return app


# --- capacity and options ------------------------------------------------------------------------


def test_capacity_is_what_the_server_admits() -> None:
    settings = Settings(device="cpu", max_concurrent=3, max_queued=5, engine_slots=64)
    assert replica_capacity(settings) == 8  # worker threads + queue
    inside = replica_settings(settings)
    assert (inside.max_concurrent, inside.max_queued) == (3, 13)  # headroom: Ray refuses first
    assert inside.model_dump(exclude={"max_queued"}) == settings.model_dump(exclude={"max_queued"})
    # the batching engine (on, or auto on the replica's GPU): its slots + queue
    assert replica_capacity(Settings(device="cuda", engine_slots=64, max_queued=5)) == 69
    assert replica_capacity(Settings(engine="on", device="cpu", engine_slots=64, max_queued=5)) == 69
    assert replica_capacity(Settings(engine="off", max_concurrent=3, max_queued=5)) == 8


def test_fixed_replicas() -> None:
    settings = Settings(engine_slots=2, max_queued=2, retry_after_s=4, shutdown_timeout_s=10)
    options = deployment_options(settings, RaySettings(replicas=3))
    assert options == {
        "num_replicas": 3,
        "max_ongoing_requests": 4,
        "max_queued_requests": 4,
        "backpressure_config": {"status_code": 503, "retry_after_s": 4},
        "ray_actor_options": {"num_cpus": 1.0, "num_gpus": 1.0},
        "health_check_period_s": 10.0,
        "health_check_timeout_s": 30.0,
        "graceful_shutdown_timeout_s": 15.0,
    }
    on_cpu = deployment_options(Settings(device="cpu"), RaySettings(max_queued_requests=-1))
    assert on_cpu["ray_actor_options"]["num_gpus"] == 0 and on_cpu["max_queued_requests"] == -1


def test_autoscaling_on_ongoing_requests() -> None:
    settings = Settings(engine_slots=4, max_queued=4)
    ray = RaySettings(replicas=2, max_replicas=8, target_utilization=0.5, autoscaling={"upscale_delay_s": 5})
    options = deployment_options(settings, ray)
    assert "num_replicas" not in options
    assert options["autoscaling_config"] == {
        "min_replicas": 2,
        "initial_replicas": 2,
        "max_replicas": 8,
        "target_ongoing_requests": 4,
        "upscale_delay_s": 5,
    }


def test_ray_settings_from_the_environment_and_their_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XTTS_RAY_REPLICAS", "3")
    monkeypatch.setenv("XTTS_RAY_GPUS_PER_REPLICA", "0.5")
    monkeypatch.setenv("XTTS_RAY_AUTOSCALING", '{"downscale_delay_s": 120}')
    ray = RaySettings()
    assert (ray.replicas, ray.gpus_per_replica, ray.autoscaling) == (3, 0.5, {"downscale_delay_s": 120})
    with pytest.raises(ValidationError, match=r"max_replicas \(2\) is below replicas \(3\)"):
        RaySettings(max_replicas=2)


def test_cli_ray_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--replicas", "2"]) == 2
    assert "replicas need --ray" in capsys.readouterr().err
    assert main(["serve", "--ray", "--replicas", "3", "--max-replicas", "2"]) == 2
    assert "max_replicas (2) is below replicas (3)" in capsys.readouterr().err
    # an open cluster on the network is refused before Ray starts
    assert main(["serve", "--ray", "--host", "0.0.0.0", "--device", "cpu"]) == 2
    assert "refusing to listen on 0.0.0.0 without API keys" in capsys.readouterr().err


# --- the ASGI parts ------------------------------------------------------------------------------


def test_every_response_and_websocket_names_the_replica(tiny_tts, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(voices_dir=tmp_path, warmup=False, default_voice="Ana Florence")
    with TestClient(replica_app(settings, tts_model=tiny_tts)) as client:
        assert client.get("/health").headers["x-replica"] == "xtts#XTTS#abc123"
        assert client.get("/v1/voices/nobody").headers["x-replica"] == "xtts#XTTS#abc123"  # errors too
        with client.websocket_connect("/v1/tts/ws") as ws:
            assert (b"x-replica", b"xtts#XTTS#abc123") in (ws.extra_headers or [])


def test_start_up_waits_for_the_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    settings = Settings(model_dir=tiny_model_dir, device="cpu", voices_dir=tmp_path, warmup=True)
    app = replica_app(settings)
    with TestClient(app) as client:  # the lifespan's start-up returned only once /ready says yes
        assert client.get("/ready").status_code == 200
        assert asyncio.run(not_ready(app)) is None


def test_a_model_that_fails_to_load_fails_the_start_up(tmp_path: Path) -> None:
    from uvicorn.config import Config
    from uvicorn.lifespan.on import LifespanOn

    app = replica_app(Settings(model_dir=tmp_path / "missing", device="cpu", voices_dir=tmp_path))

    async def start() -> LifespanOn:
        lifespan = LifespanOn(Config(app, lifespan="on"))  # what Ray's replica runs
        await asyncio.wait_for(lifespan.startup(), 60)
        return lifespan

    lifespan = asyncio.run(start())
    assert lifespan.should_exit  # Ray: "ASGI lifespan startup failed", the replica is retried
    assert "missing" in str(asyncio.run(not_ready(app)))  # /ready's reason: the health check's


def test_request_ids_leave_room_for_rays_own(caplog: pytest.LogCaptureFixture) -> None:
    """Ray's replicas log with extra={"request_id": ...}; with our record factory installed that
    raised "Attempt to overwrite 'request_id'" after every request (and cut draining short)."""
    from xtts_server.server.logs import install_request_ids, request_id_var

    install_request_ids()
    log = logging.getLogger("ray.serve")
    with caplog.at_level(logging.INFO, logger="ray.serve"):
        log.info("Ray's own", extra={"request_id": "ray-1"})
        token = request_id_var.set("ours")
        log.info("ours")
        request_id_var.reset(token)
    assert [r.request_id for r in caplog.records] == ["ray-1", "ours"]  # type: ignore[attr-defined]


# --- the single server never imports Ray --------------------------------------------------------


def test_the_single_server_never_imports_ray(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Every module but distributed.deployment imported, an app started and a request served,
    with `import ray` made to fail: nothing needed it."""
    child = textwrap.dedent(
        f"""
        import importlib, pkgutil, sys
        from importlib.abc import MetaPathFinder

        class NoRay(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "ray" or name.startswith("ray."):
                    raise ImportError(f"the single server imported {{name}}")
                return None

        sys.meta_path.insert(0, NoRay())
        import xtts_server
        for module in pkgutil.walk_packages(xtts_server.__path__, "xtts_server."):
            if module.name != "xtts_server.distributed.deployment":
                importlib.import_module(module.name)
        from fastapi.testclient import TestClient
        from xtts_server.server.app import create_app
        from xtts_server.server.settings import Settings
        settings = Settings(model_dir={str(tiny_model_dir)!r}, device="cpu", voices_dir={str(tmp_path)!r})
        with TestClient(create_app(settings)) as client:
            import time
            while client.get("/ready").status_code != 200:
                time.sleep(0.1)
            body = {{"text": "Hi.", "voice": "Ana Florence", "max_new_tokens": 4}}
            assert client.post("/v1/tts", json=body).status_code == 200
        assert not [m for m in sys.modules if m == "ray" or m.startswith("ray.")]
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("XTTS_")}
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]

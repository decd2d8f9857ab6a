"""The README's WebSocket example client runs against a live server and writes audio."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest
from server_helpers import uvicorn_thread

from xtts_server.server.app import create_app
from xtts_server.server.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ws_client.py"


def test_example_client(tiny_tts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("ws_client", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.chdir(tmp_path)
    settings = Settings(voices_dir=tmp_path / "voices", warmup=False, max_new_tokens=8)
    with uvicorn_thread(create_app(settings, tts_model=tiny_tts)) as url:
        asyncio.run(asyncio.wait_for(module.main(url.replace("http://", "ws://") + "/v1/tts/ws"), 60))
    audio = (tmp_path / "out.pcm").read_bytes()
    assert len(audio) > 0 and len(audio) % 2 == 0

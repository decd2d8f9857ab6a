"""API keys: with keys set, nothing but /health and /ready answers without one, on every HTTP route
and the WebSocket; an open server must be asked for; keys never reach the logs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from server_helpers import assert_error
from starlette.websockets import WebSocketDisconnect

from xtts_server.server.app import create_app
from xtts_server.server.auth import InsecureConfig, is_loopback, key_id, load_keys
from xtts_server.server.settings import Settings

KEY = "k3y-0123456789abcdef-SECRET"
OTHER = "another-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
FILLERS = {"name": "Ana Florence", "model_id": "tts-1"}


def http_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, path) of every HTTP route: those in the OpenAPI schema and the schema's own."""
    schema = client.get("/openapi.json", headers=AUTH).json()
    out = [("GET", path) for path in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")]
    for path, operations in schema["paths"].items():
        for key, value in FILLERS.items():
            path = path.replace("{" + key + "}", value)
        out += [(method.upper(), path) for method in operations]
    return out


@pytest.fixture
def keyed(make_client) -> TestClient:  # type: ignore[no-untyped-def]
    client: TestClient = make_client(api_keys=[KEY, OTHER], default_voice="Ana Florence")  # /ready is open
    return client


def test_every_http_route_needs_a_key(keyed: TestClient) -> None:
    routes = http_routes(keyed)
    paths = {p for _, p in routes}
    assert {"/v1/tts", "/v1/voices", "/metrics", "/openapi.json", "/docs", "/v1/audio/speech"} <= paths
    assert len(routes) >= 20
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}):
            response = keyed.request(method, path, headers=headers)
            if path in ("/health", "/ready"):
                assert response.status_code == 200, (method, path)
                continue
            error = assert_error(response, 401, "unauthorized")
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert "Authorization: Bearer" in error["message"], error
            assert KEY not in response.text
        if path not in ("/health", "/ready"):
            response = keyed.request(method, path, headers=AUTH)
            assert response.status_code != 401, (method, path, response.text[:200])
    # unknown routes too: a client without a key learns nothing, not even what exists
    assert_error(keyed.get("/no/such/route"), 401, "unauthorized")
    assert_error(keyed.get("/no/such/route", headers=AUTH), 404, "not_found")


def test_keys_work_for_synthesis_and_the_scheme_is_case_insensitive(keyed: TestClient) -> None:
    body = {"text": "Hello.", "max_new_tokens": 4, "format": "wav"}
    for header in (f"Bearer {KEY}", f"bearer {OTHER}", f"BEARER   {KEY}  "):
        response = keyed.post("/v1/tts", json=body, headers={"Authorization": header})
        assert response.status_code == 200 and response.content[:4] == b"RIFF"


def test_websocket_needs_a_key(keyed: TestClient) -> None:
    config = {"type": "config", "voice": "Ana Florence", "max_new_tokens": 4}
    # the header
    with keyed.websocket_connect("/v1/tts/ws", headers=AUTH) as ws:
        ws.send_json(config)
        assert ws.receive_json() == {"type": "ready"}
    # a wrong header: refused at the handshake
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        keyed.websocket_connect("/v1/tts/ws", headers={"Authorization": "Bearer nope"}),
    ):
        pass
    assert refused.value.code == 1008
    # no header: the first message must be an auth message
    with keyed.websocket_connect("/v1/tts/ws") as ws:
        ws.send_json({"type": "auth", "api_key": OTHER})
        ws.send_json(config)
        assert ws.receive_json() == {"type": "ready"}
    for first in (config, {"type": "auth", "api_key": "nope"}, {"type": "auth"}):
        with keyed.websocket_connect("/v1/tts/ws") as ws:
            ws.send_json(first)
            event = ws.receive_json()
            assert event["type"] == "error" and event["code"] == "unauthorized", event
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 1008
    with keyed.websocket_connect("/v1/tts/ws") as ws:
        ws.send_bytes(b"\x00" * 10)
        assert ws.receive_json()["code"] == "unauthorized"


def test_open_server_refused_on_a_network_address(tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.com"):
        with pytest.raises(InsecureConfig, match="--no-auth"):
            create_app(Settings(host=host, voices_dir=voices))
        create_app(Settings(host=host, voices_dir=voices, no_auth=True))  # asked for: allowed
        create_app(Settings(host=host, voices_dir=voices, api_keys=[KEY]))
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert is_loopback(host)
        create_app(Settings(host=host, voices_dir=voices))
    with pytest.raises(InsecureConfig, match="choose one"):
        create_app(Settings(host="0.0.0.0", voices_dir=voices, api_keys=[KEY], no_auth=True))


def test_the_cli_refuses_to_serve_openly(tiny_model_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XTTS_")}
    command = [sys.executable, "-m", "xtts_server.cli", "serve", "--model-dir", str(tiny_model_dir)]
    result = subprocess.run(
        [*command, "--host", "0.0.0.0", "--port", "9"], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 2, result.stderr
    assert "refusing to listen on 0.0.0.0 without API keys" in result.stderr


def test_key_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"# the team's keys\n\n{KEY}\n  {OTHER}  \n{KEY}\n")
    monkeypatch.setenv("XTTS_API_KEYS", f"env-key-0123456789ab, {OTHER},")
    assert load_keys(Settings(api_key_file=keys)) == ("env-key-0123456789ab", OTHER, KEY)
    keys.write_text("# nothing but a comment\n")
    with pytest.raises(InsecureConfig, match="holds no key"):
        load_keys(Settings(api_key_file=keys))
    with pytest.raises(InsecureConfig, match="cannot read"):
        load_keys(Settings(api_key_file=tmp_path / "missing"))
    monkeypatch.setenv("XTTS_API_KEYS", "two words")
    with pytest.raises(InsecureConfig, match="one token"):
        load_keys(Settings())
    assert KEY not in repr(Settings(api_keys=[KEY]))


def test_keys_are_never_logged(make_client, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.DEBUG):
        client = make_client(api_keys=[KEY], default_voice="Ana Florence")
        client.post("/v1/tts", json={"text": "Hi.", "max_new_tokens": 4}, headers=AUTH)
        client.get("/v1/voices", headers={"Authorization": f"Bearer {KEY}x"})
        with client.websocket_connect("/v1/tts/ws") as ws:
            ws.send_json({"type": "auth", "api_key": KEY + "y"})
            ws.receive_json()
    logged = "\n".join(f"{r.getMessage()} {json.dumps(r.__dict__, default=str)}" for r in caplog.records)
    assert key_id(KEY) in logged  # the caller is known by its key id ...
    assert KEY not in logged  # ... and by nothing of the key


def test_cors(make_client) -> None:  # type: ignore[no-untyped-def]
    origin = "https://app.example"
    client = make_client(api_keys=[KEY], cors_origins=[origin], default_voice="Ana Florence")
    preflight = client.options(
        "/v1/tts",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200  # a preflight carries no key
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    refused = client.get("/v1/voices", headers={"Origin": origin})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == origin
    other = client.get("/v1/voices", headers={"Origin": "https://evil.example", **AUTH})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
    # without --cors-origin no CORS headers at all, and a preflight is just an unauthenticated request
    plain = make_client(api_keys=[KEY])
    assert plain.options("/v1/tts", headers={"Origin": origin}).status_code == 401

"""WebSocket /v1/tts/ws: incremental text in, audio out, on the tiny model."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi.testclient import TestClient

CONFIG = {"type": "config", "voice": "Ana Florence", "language": "en", "seed": 0, "max_new_tokens": 12}


def receive(ws: Any) -> tuple[dict[str, Any], bytes | None]:
    """The next event; a chunk event comes with its binary frame."""
    event = json.loads(ws.receive_text())
    data = None
    if event["type"] == "chunk":
        data = ws.receive_bytes()
        assert len(data) == event["bytes"]
    return event, data


def until(ws: Any, kind: str, context_id: str | None = None) -> list[tuple[dict[str, Any], bytes | None]]:
    got = []
    while True:
        event, data = receive(ws)
        got.append((event, data))
        if event["type"] == kind and (context_id is None or event.get("context_id") == context_id):
            return got


def configure(ws: Any, **fields: object) -> None:
    ws.send_text(json.dumps({**CONFIG, **fields}))
    assert receive(ws)[0] == {"type": "ready"}


def test_first_audio_before_the_last_word(client: TestClient) -> None:
    with client.websocket_connect("/v1/tts/ws") as ws:
        configure(ws)
        for word in ["Hello", "there.", "How"]:
            ws.send_text(json.dumps({"type": "text", "context_id": "c1", "text": word + " "}))
        events = until(ws, "chunk")
        assert events[0][0] == {"type": "started", "context_id": "c1", "text": "Hello there."}
        first = events[-1]
        assert first[0]["sentence"] == 0 and first[1]
        for word in ["are", "you?"]:
            ws.send_text(json.dumps({"type": "text", "context_id": "c1", "text": word + " "}))
        ws.send_text(json.dumps({"type": "close", "context_id": "c1"}))
        rest = until(ws, "done", "c1")
        started = [e["text"] for e, _ in rest if e["type"] == "started"]
        assert started == ["How are you?"]
        sentences = {e["sentence"] for e, _ in rest if e["type"] == "chunk"}
        assert sentences == {1}
        pcm = first[1] + b"".join(d for _, d in rest if d)
        assert len(pcm) % 2 == 0 and len(pcm) > 0


def test_flush_releases_the_remainder(client: TestClient) -> None:
    with client.websocket_connect("/v1/tts/ws") as ws:
        configure(ws)
        ws.send_text(json.dumps({"type": "text", "context_id": "a", "text": "no full stop yet"}))
        ws.send_text(json.dumps({"type": "flush", "context_id": "a"}))
        events = until(ws, "chunk")
        assert events[0][0] == {"type": "started", "context_id": "a", "text": "no full stop yet"}
        ws.send_text(json.dumps({"type": "close", "context_id": "a"}))
        until(ws, "done", "a")


def test_two_contexts_on_one_connection(client: TestClient) -> None:
    with client.websocket_connect("/v1/tts/ws") as ws:
        configure(ws, format="wav")
        for cid, text in [("x", "First one."), ("y", "Second one."), ("x", " More."), ("y", " Again.")]:
            ws.send_text(json.dumps({"type": "text", "context_id": cid, "text": text}))
        for cid in ("x", "y"):
            ws.send_text(json.dumps({"type": "close", "context_id": cid}))
        done: set[str] = set()
        audio: dict[str, bytes] = {"x": b"", "y": b""}
        started: dict[str, list[str]] = {"x": [], "y": []}
        while done != {"x", "y"}:
            event, data = receive(ws)
            if event["type"] == "done":
                done.add(event["context_id"])
            elif event["type"] == "started":
                started[event["context_id"]].append(event["text"])
            elif data:
                audio[event["context_id"]] += data
        assert started == {"x": ["First one.", "More."], "y": ["Second one.", "Again."]}
        for data in audio.values():  # one encoder per context: one WAV header each
            assert data[:4] == b"RIFF" and data.count(b"RIFF") == 1


def test_cancel_frees_the_slot_and_the_context_id(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(default_voice="Ana Florence", max_new_tokens=400)
    state = client.app.state.server  # type: ignore[attr-defined]
    with client.websocket_connect("/v1/tts/ws") as ws:
        configure(ws, max_new_tokens=400, stream_chunk_size=2)
        text = "This is a long sentence that goes on and on. " * 3
        ws.send_text(json.dumps({"type": "text", "context_id": "c", "text": text}))
        until(ws, "chunk")
        ws.send_text(json.dumps({"type": "cancel", "context_id": "c"}))
        after = until(ws, "cancelled", "c")
        assert not [e for e, _ in after if e["type"] in ("started", "done")]
        deadline = time.monotonic() + 5
        while state.synth.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        assert state.synth.in_flight == 0
        # the connection and the context id are usable again
        ws.send_text(json.dumps({"type": "text", "context_id": "c", "text": "Short."}))
        ws.send_text(json.dumps({"type": "close", "context_id": "c"}))
        events = until(ws, "done", "c")
        assert [e["text"] for e, _ in events if e["type"] == "started"] == ["Short."]


def test_bad_messages_are_errors_and_the_socket_stays(client: TestClient) -> None:
    with client.websocket_connect("/v1/tts/ws") as ws:
        ws.send_text(json.dumps({"type": "text", "context_id": "c", "text": "Hi."}))
        assert receive(ws)[0]["code"] == "invalid_request"  # no config yet
        ws.send_text(json.dumps({"type": "config", "voice": "nobody"}))
        assert receive(ws)[0]["code"] == "voice_not_found"
        ws.send_text(json.dumps({"type": "config", "format": "nope"}))
        assert receive(ws)[0]["code"] == "invalid_request"
        ws.send_text(json.dumps({"type": "config", "temperature": -1}))
        assert receive(ws)[0]["code"] == "invalid_request"
        configure(ws)
        ws.send_text("{not json")
        event = receive(ws)[0]
        assert event["type"] == "error" and event["code"] == "invalid_request"
        ws.send_text(json.dumps({"type": "shout", "context_id": "c"}))
        assert "unknown message type" in receive(ws)[0]["message"]
        ws.send_text(json.dumps({"type": "text", "text": "Hi."}))
        assert "context_id" in receive(ws)[0]["message"]
        ws.send_bytes(b"\x00")
        assert receive(ws)[0]["type"] == "error"
        ws.send_text(json.dumps({"type": "text", "context_id": "c", "text": "Still here."}))
        ws.send_text(json.dumps({"type": "close", "context_id": "c"}))
        until(ws, "done", "c")


def test_fast_writer_hits_the_bound(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(default_voice="Ana Florence", max_text_chars=200)
    with client.websocket_connect("/v1/tts/ws") as ws:
        configure(ws, max_new_tokens=200)
        for _ in range(100):
            ws.send_text(json.dumps({"type": "text", "context_id": "c", "text": "A few more words. "}))
        codes = set()
        while "payload_too_large" not in codes:
            event, _ = receive(ws)
            if event["type"] == "error":
                codes.add(event["code"])
                assert event["context_id"] == "c"
        ws.send_text(json.dumps({"type": "cancel", "context_id": "c"}))
        until(ws, "cancelled", "c")


def test_disconnect_stops_the_generation(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(default_voice="Ana Florence", max_new_tokens=400)
    state = client.app.state.server  # type: ignore[attr-defined]
    with client.websocket_connect("/v1/tts/ws") as ws:
        configure(ws, max_new_tokens=400, stream_chunk_size=2)
        text = "This is a long sentence that goes on and on. " * 3
        for cid in ("a", "b"):
            ws.send_text(json.dumps({"type": "text", "context_id": cid, "text": text}))
        until(ws, "chunk")
    deadline = time.monotonic() + 5
    while state.synth.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state.synth.in_flight == 0


def test_real_uvicorn_with_the_websockets_client(tiny_tts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The docs' example client, against uvicorn (which needs the websockets package for this)."""
    import asyncio

    from server_helpers import uvicorn_thread
    from websockets.asyncio.client import connect

    from xtts_server.server.app import create_app
    from xtts_server.server.settings import Settings

    settings = Settings(voices_dir=tmp_path / "voices", warmup=False, default_voice="Ana Florence")

    async def speak(url: str) -> tuple[list[str], bytes]:
        events: list[str] = []
        pcm = b""
        async with connect(url) as ws:
            await ws.send(json.dumps({**CONFIG, "format": "pcm"}))
            assert json.loads(await ws.recv())["type"] == "ready"
            for word in ["Hello", "there.", "How", "are", "you?"]:
                await ws.send(json.dumps({"type": "text", "context_id": "c1", "text": word + " "}))
            await ws.send(json.dumps({"type": "close", "context_id": "c1"}))
            while True:
                event = json.loads(await ws.recv())
                events.append(event["type"])
                if event["type"] == "chunk":
                    pcm += await ws.recv()  # type: ignore[operator]
                elif event["type"] in ("done", "error"):
                    return events, pcm

    with uvicorn_thread(create_app(settings, tts_model=tiny_tts)) as url:
        events, pcm = asyncio.run(speak(url.replace("http", "ws") + "/v1/tts/ws"))
    assert events[0] == "started" and events[-1] == "done" and events.count("started") == 2
    assert len(pcm) > 0 and len(pcm) % 2 == 0


def test_a_failing_sentence_is_an_error_event_and_the_context_goes_on(make_client, tiny_tts) -> None:  # type: ignore[no-untyped-def]
    import numpy as np
    from server_helpers import EngineProxy

    from xtts_server.tts import AudioChunk

    class FailsOnBoom(EngineProxy):
        def stream(self, text: str, language: str, voice: Any, **options: Any) -> Any:
            yield AudioChunk(np.full(2400, 0.1, np.float32), 24000, 0, text, False, language)
            if "Boom" in text:
                raise RuntimeError("secret detail of a bug")

    client = make_client(tts_model=FailsOnBoom(tiny_tts), default_voice="Ana Florence")
    with client.websocket_connect("/v1/tts/ws") as ws:
        configure(ws)
        ws.send_text(json.dumps({"type": "text", "context_id": "c", "text": "Boom now. Fine after."}))
        ws.send_text(json.dumps({"type": "close", "context_id": "c"}))
        events = [e for e, _ in until(ws, "done", "c")]
        errors = [e for e in events if e["type"] == "error"]
        assert errors == [
            {"type": "error", "code": "internal_error", "message": "internal server error", "context_id": "c"}
        ]
        assert [e["text"] for e in events if e["type"] == "started"] == ["Boom now.", "Fine after."]
        assert [e["sentence"] for e in events if e["type"] == "chunk"] == [0, 1]


def test_cancel_stops_within_one_chunk(make_client, tiny_tts) -> None:  # type: ignore[no-untyped-def]
    """An engine paced at one chunk per 200 ms: after a cancel at most the chunk in progress is
    sent, and the engine is asked for no more."""
    import threading

    import numpy as np
    from server_helpers import EngineProxy

    from xtts_server.tts import AudioChunk

    produced: list[float] = []

    class Paced(EngineProxy):
        def stream(self, text: str, language: str, voice: Any, **options: Any) -> Any:
            cancel: threading.Event = options["cancel"]
            for _ in range(200):
                if cancel.wait(0.2):
                    return
                produced.append(time.monotonic())
                yield AudioChunk(np.full(1200, 0.1, np.float32), 24000, 0, text, False, language)

    client = make_client(tts_model=Paced(tiny_tts), default_voice="Ana Florence")
    with client.websocket_connect("/v1/tts/ws") as ws:
        configure(ws)
        ws.send_text(json.dumps({"type": "text", "context_id": "c", "text": "Go on and on. And on."}))
        until(ws, "chunk")
        ws.send_text(json.dumps({"type": "cancel", "context_id": "c"}))
        after = until(ws, "cancelled", "c")
        assert len([e for e, _ in after if e["type"] == "chunk"]) <= 1
        assert [e["type"] for e, _ in after if e["type"] != "chunk"] == ["cancelled"]
        count = len(produced)
        time.sleep(0.3)
        assert len(produced) == count <= 3

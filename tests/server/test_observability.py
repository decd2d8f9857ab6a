"""Observability: /metrics counts what happened, request ids reach the client and every log line,
the text of a request is logged only when asked."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from xtts_server.server import metrics
from xtts_server.server.logs import JsonFormatter, request_id_var

FAST = {"max_new_tokens": 4, "seed": 0}


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_errors_and_audio(client: TestClient) -> None:
    before = scrape(client)
    assert client.post("/v1/tts", json={"text": "Hello.", **FAST}).status_code == 200
    with client.stream("POST", "/v1/tts", json={"text": "Hello.", "stream": True, **FAST}) as r:
        r.read()
    assert client.post("/v1/tts", json={"text": "Hi.", "voice": "nobody", **FAST}).status_code == 404
    assert client.get("/no/such/path").status_code == 404
    with client.websocket_connect("/v1/tts/ws") as ws:
        ws.send_json({"type": "config", "voice": "Ana Florence", **FAST})
        ws.send_json({"type": "text", "context_id": "a", "text": "Hi there. "})
        ws.send_json({"type": "close", "context_id": "a"})
        while not (m := ws.receive()).get("text") or json.loads(m["text"])["type"] != "done":
            pass
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("xtts_http_requests_total", route="/v1/tts", method="POST", code="200") == 2
    assert delta("xtts_http_requests_total", route="/v1/tts", method="POST", code="404") == 1
    assert delta("xtts_http_requests_total", route="unmatched", method="GET", code="404") == 1
    assert delta("xtts_http_requests_total", route="/v1/tts/ws", method="WEBSOCKET", code="101") == 1
    assert delta("xtts_http_request_duration_seconds_count", route="/v1/tts") == 3
    assert delta("xtts_time_to_first_audio_seconds_count", route="/v1/tts") == 2
    assert delta("xtts_time_to_first_audio_seconds_count", route="/v1/tts/ws") == 1
    assert delta("xtts_real_time_factor_count", route="/v1/tts") == 2
    assert delta("xtts_real_time_factor_sum", route="/v1/tts") > 0
    assert delta("xtts_errors_total", code="voice_not_found") == 1
    assert delta("xtts_errors_total", code="not_found") == 1
    assert value(after, "xtts_active_streams") == 0
    assert value(after, "xtts_websocket_sessions") == 0
    assert value(after, "xtts_queue_depth") == 0
    assert value(after, "xtts_batch_capacity") == 4  # the thread synthesizer's slots
    assert ("process_resident_memory_bytes", ()) in after


def test_the_engine_reports_its_load(client: TestClient) -> None:
    provider = metrics._ENGINE.provider
    metrics.set_load_provider(None)
    try:
        metrics.set_batch_occupancy(3, 8)
        metrics.set_queue_depth(5)
        samples = scrape(client)
        assert value(samples, "xtts_batch_occupancy") == 0.375
        assert value(samples, "xtts_batch_active_slots") == 3
        assert value(samples, "xtts_queue_depth") == 5
    finally:
        metrics.set_batch_occupancy(0, 0)
        metrics.set_queue_depth(0)
        metrics.set_load_provider(provider)


@pytest.mark.parametrize(
    ("offered", "kept"),
    [
        ("req-123_abc.DEF:9", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("has space", False),
        ("line\nbreak", False),
        ("émoji-✓", False),
        ("", False),
    ],
)
def test_request_ids(client: TestClient, offered: str, kept: bool) -> None:
    headers = {"X-Request-ID": offered.encode("utf-8")} if offered else {}
    response = client.get("/v1/languages", headers=headers)  # type: ignore[arg-type]
    got = response.headers["x-request-id"]
    if kept:
        assert got == offered
    else:
        assert got != offered and len(got) == 32 and int(got, 16) >= 0
    error = client.post("/v1/tts", json={"text": ""}, headers=headers)  # type: ignore[arg-type]
    assert error.status_code == 422 and "x-request-id" in error.headers


def test_every_log_line_of_a_request_has_its_id(make_client, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    client = make_client(default_voice="Ana Florence")
    with caplog.at_level(logging.INFO):
        caplog.clear()
        client.post("/v1/tts", json={"text": "Secret words.", **FAST}, headers={"X-Request-ID": "r-1"})
        client.post("/v1/tts", json={"text": "Hi.", "voice": "nobody"}, headers={"X-Request-ID": "r-2"})
    records = [r for r in caplog.records if r.name.startswith("xtts_server")]
    access = [r for r in records if r.name == "xtts_server.access"]
    assert [r.request_id for r in access] == ["r-1", "r-2"]  # type: ignore[attr-defined]
    assert access[0].getMessage().startswith("POST /v1/tts 200 ")
    assert "Secret words" not in caplog.text  # text is not logged by default
    line = json.loads(JsonFormatter().format(access[0]))
    assert line["request_id"] == "r-1" and line["status"] == 200 and line["route"] == "/v1/tts"
    assert request_id_var.get() == "-"  # outside a request


def test_text_is_logged_only_when_asked(make_client, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    client = make_client(default_voice="Ana Florence", log_text=True)
    with caplog.at_level(logging.INFO):
        client.post("/v1/tts", json={"text": "Secret words.", **FAST}, headers={"X-Request-ID": "r-3"})
    (record,) = [r for r in caplog.records if "Secret words" in r.getMessage()]
    assert record.request_id == "r-3"  # type: ignore[attr-defined]


def test_control_characters_in_paths_do_not_forge_log_lines(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="xtts_server.access"):
        client.get("/v1/voices/a%0AERROR fake line%0D")
    (record,) = [r for r in caplog.records if r.name == "xtts_server.access"]
    assert "\n" not in record.getMessage() and "\r" not in record.getMessage()
    assert "\\n" in record.getMessage()

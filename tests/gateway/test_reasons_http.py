"""Every fallback reason, produced and checked through real HTTP against a running server."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from gateway_support import Behaving, MemorySource

from flotilla.gateway import REASONS, Gateway, create_app
from flotilla.records import PredictionEvent

ROW = {"x": 3.0, "plan": "pro"}
STATIC = {"static": {"value": 0.0}}


class ListSink:
    """Collects the prediction events the gateway submits."""

    def __init__(self) -> None:
        self.events: list[PredictionEvent] = []

    def submit(self, event: PredictionEvent) -> bool:
        self.events.append(event)
        return True


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def client(
    source: MemorySource, serve: Callable[[Gateway], httpx.Client], sink: ListSink
) -> httpx.Client:
    source.add("lite@1", Behaving(0.5))
    for name, mode in [
        ("ok", "answer"),
        ("raising", "raise"),
        ("hanging", "hang"),
        ("nan", "nan"),
        ("short", "short"),
        ("kind", "wrong_kind"),
        ("tripping", "raise"),
        ("busy", "hang"),
        ("broken", "answer"),
        ("strict", "answer"),
    ]:
        source.add(f"{name}@1", Behaving(1.0, mode=mode, hang_s=0.4))
    source.broken.add("broken@1")
    source.deploy("ok", "ok@1", "lite@1", STATIC)
    source.deploy("raising", "raising@1", "lite@1", STATIC)
    source.deploy("hanging", "hanging@1", STATIC, deadline_ms=100)
    source.deploy("nan", "nan@1", STATIC)
    source.deploy("short", "short@1", STATIC)
    source.deploy("kind", "kind@1", STATIC)
    source.deploy(
        "tripping",
        "tripping@1",
        STATIC,
        breaker={"failure_rate": 0.5, "min_requests": 2, "window_s": 60, "open_s": 60},
    )
    source.deploy("busy", "busy@1", STATIC, deadline_ms=60, max_concurrency=1)
    source.deploy("broken", "broken@1", "lite@1", STATIC)
    source.deploy("strict", "strict@1", STATIC, input_policy="reject")
    return serve(create_app(source, poll_interval_s=0.1, sink=sink))


def predict(client: httpx.Client, model: str, instances: Any, **extra: Any) -> httpx.Response:
    return client.post(f"/v1/models/{model}:predict", json={"instances": instances, **extra})


def reasons(response: httpx.Response) -> list[str]:
    return [r["reason"] for r in response.json()["reasons"]]


def test_live_answer_is_not_degraded(client: httpx.Client) -> None:
    r = client.post(
        "/v1/models/ok:predict",
        json={"instances": [ROW, ROW], "ids": ["u1", "u2"]},
        headers={"X-Request-Id": "req-42"},
    )
    assert r.status_code == 200
    body = r.json()
    assert body == {
        "predictions": [1.0, 1.0],
        "request_id": "req-42",
        "model": "ok",
        "served_by": {"role": "live", "ref": "ok@1"},
        "degraded": False,
        "reasons": [],
    }
    assert r.headers["x-request-id"] == "req-42"
    assert r.headers["x-flotilla-degraded"] == "false"
    name, duration = r.headers["server-timing"].split(";dur=")
    assert name == "chain" and 0 < float(duration) < 10_000


def test_generated_request_ids_are_distinct_hex(client: httpx.Client) -> None:
    ids = {predict(client, "ok", [ROW]).json()["request_id"] for _ in range(20)}
    assert len(ids) == 20
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_request_id_is_generated_when_absent(client: httpx.Client) -> None:
    r = predict(client, "ok", [ROW])
    assert len(r.json()["request_id"]) == 32
    assert r.headers["x-request-id"] == r.json()["request_id"]


def test_error_falls_back_to_the_next_model(client: httpx.Client) -> None:
    r = predict(client, "raising", [ROW])
    body = r.json()
    assert r.status_code == 200
    assert body["served_by"] == {"role": "fallback", "ref": "lite@1"}
    assert body["predictions"] == [0.5]
    assert body["degraded"] is True
    assert r.headers["x-flotilla-degraded"] == "true"
    assert body["reasons"] == [
        {"ref": "raising@1", "reason": "error", "detail": "RuntimeError: model exploded"}
    ]


def test_timeout_is_answered_within_the_deadline(client: httpx.Client) -> None:
    began = time.monotonic()
    r = predict(client, "hanging", [ROW])
    took = time.monotonic() - began
    body = r.json()
    assert reasons(r) == ["timeout"]
    assert body["served_by"] == {"role": "static", "ref": "static:hanging"}
    assert body["predictions"] == [0.0]
    assert "no answer within" in body["reasons"][0]["detail"]
    assert took < 0.4  # answered before the hanging model would have


@pytest.mark.parametrize("model", ["nan", "short", "kind"])
def test_invalid_output(client: httpx.Client, model: str) -> None:
    r = predict(client, model, [ROW, ROW])
    assert r.status_code == 200
    assert reasons(r) == ["invalid_output"]
    assert r.json()["served_by"]["role"] == "static"


def test_invalid_input_lists_violations(client: httpx.Client) -> None:
    r = predict(client, "ok", [ROW, {"x": -5.0, "plan": "gold", "extra": 1}])
    body = r.json()
    assert r.status_code == 200
    assert [x["reason"] for x in body["reasons"]] == ["invalid_input", "invalid_input"]
    detail = body["reasons"][0]["detail"]
    assert "row 1 field 'x'" in detail and "row 1 field 'plan'" in detail
    assert "row 1 field 'extra'" in detail
    assert body["predictions"] == [0.0, 0.0]


def test_circuit_opens_after_failures(client: httpx.Client) -> None:
    assert reasons(predict(client, "tripping", [ROW])) == ["error"]
    assert reasons(predict(client, "tripping", [ROW])) == ["error"]
    r = predict(client, "tripping", [ROW])
    assert reasons(r) == ["circuit_open"]
    listing = client.get("/v1/models/tripping").json()
    assert listing["chain"][0]["breaker"]["state"] == "open"


def test_overloaded_when_the_slot_is_held(client: httpx.Client) -> None:
    first = predict(client, "busy", [ROW])
    assert reasons(first) == ["timeout"]
    second = predict(client, "busy", [ROW])  # the abandoned call still holds the one slot
    assert reasons(second) == ["overloaded"]
    time.sleep(0.5)
    third = predict(client, "busy", [ROW])
    assert reasons(third) == ["timeout"]


def test_not_loaded_goes_down_the_chain(client: httpx.Client) -> None:
    r = predict(client, "broken", [ROW])
    assert r.json()["served_by"] == {"role": "fallback", "ref": "lite@1"}
    assert reasons(r) == ["not_loaded"]
    assert "missing" in r.json()["reasons"][0]["detail"]
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["failures"][0]["ref"] == "broken@1"
    listing = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert listing["broken"]["loaded"] is False
    assert listing["broken"]["status"] == "not_loaded"
    assert listing["ok"]["loaded"] is True


def test_reject_policy_answers_422_listing_every_violation(client: httpx.Client) -> None:
    r = predict(client, "strict", [{"x": 500.0, "plan": "pro"}, {"plan": 3}])
    assert r.status_code == 422
    got = {(v["row"], v["field"]) for v in r.json()["violations"]}
    assert got == {(0, "x"), (1, "x"), (1, "plan")}


def test_every_reason_was_counted_in_metrics(client: httpx.Client) -> None:
    for model in ["raising", "hanging", "nan", "broken"]:
        predict(client, model, [ROW])
    predict(client, "ok", [{"x": "bad"}])
    predict(client, "tripping", [ROW])
    predict(client, "tripping", [ROW])
    predict(client, "tripping", [ROW])
    predict(client, "busy", [ROW])
    predict(client, "busy", [ROW])
    text = client.get("/metrics").text
    for reason in REASONS:
        assert f'reason="{reason}"' in text, reason
    assert 'flotilla_requests_total{model="ok",role="static"} 1.0' in text
    assert "flotilla_request_duration_seconds_bucket" in text
    assert 'flotilla_breaker_state{model="tripping",step="live"} 2.0' in text
    assert 'flotilla_load_failures_total{model="broken"} 1.0' in text


def test_each_answer_is_submitted_to_the_sink(client: httpx.Client, sink: ListSink) -> None:
    r = client.post(
        "/v1/models/raising:predict",
        json={"instances": [ROW, ROW], "ids": ["u1", 7]},
        headers={"X-Request-Id": "abc"},
    )
    assert r.status_code == 200
    deadline = time.monotonic() + 5
    while not sink.events and time.monotonic() < deadline:
        time.sleep(0.01)
    (event,) = sink.events
    assert (event.request_id, event.model, event.ref, event.role) == (
        "abc",
        "raising",
        "lite@1",
        "fallback",
    )
    assert event.ids == ["u1", "7"]
    assert event.predictions == [0.5, 0.5]
    assert event.degraded is True
    assert event.reasons[0]["reason"] == "error"
    assert event.inputs == [ROW, ROW]


def test_late_results_in_flight_and_step_latency_reach_metrics(client: httpx.Client) -> None:
    predict(client, "hanging", [ROW])  # abandoned at 100 ms, its answer comes at 400 ms
    deadline = time.monotonic() + 5
    text = ""
    while 'flotilla_late_results_total{model="hanging"} 1.0' not in text:
        assert time.monotonic() < deadline, "the late result was not counted"
        time.sleep(0.1)
        text = client.get("/metrics").text
    assert 'flotilla_step_duration_seconds_count{model="hanging",step="live"} 1.0' in text
    assert 'flotilla_step_duration_seconds_count{model="hanging",step="static"} 1.0' in text
    assert 'flotilla_in_flight{model="hanging"} 0.0' in text  # back to zero once answered
    assert "flotilla_event_loop_lag_seconds" in text


def test_the_event_time_of_a_record_is_the_arrival_not_the_answer(
    client: httpx.Client, sink: ListSink
) -> None:
    before = datetime.now(UTC)
    r = predict(client, "hanging", [ROW])  # answered after its 100 ms deadline
    after = datetime.now(UTC)
    assert r.json()["reasons"][0]["reason"] == "timeout"
    deadline = time.monotonic() + 5
    while not sink.events and time.monotonic() < deadline:
        time.sleep(0.01)
    (event,) = sink.events
    assert before <= event.event_time
    assert event.event_time - before < timedelta(milliseconds=50) < after - before


def test_a_registered_static_last_step_answers_even_invalid_input(
    source: MemorySource, serve: Callable[[Gateway], httpx.Client]
) -> None:
    source.add("recs@1", Behaving(0.9))
    source.add("top@1", Behaving(0.7), flavor="static")  # its version has a signature too
    source.deploy("recs", "recs@1", "top@1")
    client = serve(create_app(source))
    body = predict(client, "recs", [{"x": "bad", "plan": "pro"}]).json()
    assert body["served_by"] == {"role": "static", "ref": "top@1"}
    assert body["predictions"] == [0.7]
    assert [r["reason"] for r in body["reasons"]] == ["invalid_input"]

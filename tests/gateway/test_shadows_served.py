"""Shadows declared in a deployment are mirrored after the answer, never on the live path."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from gateway_support import Behaving, MemorySource

from flotilla.gateway import Gateway, create_app
from flotilla.records import PredictionEvent, RecordWriter

ROW = {"x": 3.0, "plan": "pro"}


class ListSink:
    def __init__(self) -> None:
        self.events: list[PredictionEvent] = []
        self.lock = threading.Lock()

    def submit(self, event: PredictionEvent) -> bool:
        with self.lock:
            self.events.append(event)
        return True


def test_shadow_gets_a_copy_recorded_with_the_live_request_id(
    source: MemorySource, serve: Callable[[Gateway], httpx.Client]
) -> None:
    source.add("recs@1", Behaving(0.9))
    source.add("recs@2", Behaving(0.2, mode="hang", hang_s=0.1))
    source.deploy(
        "recs",
        "recs@1",
        {"static": {"value": 0.0}},
        shadows=[{"ref": "recs@2", "sample": 1.0}, {"ref": "recs@9", "sample": 1.0}],
    )
    sink = ListSink()
    client = serve(create_app(source, sink=sink, shadow_deadline_s=2.0))
    r = client.post(
        "/v1/models/recs:predict", json={"instances": [ROW]}, headers={"X-Request-Id": "s1"}
    )
    assert r.json()["served_by"]["ref"] == "recs@1"
    deadline = time.monotonic() + 5
    while len(sink.events) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    by_role = {e.role: e for e in sink.events}
    assert by_role["live"].request_id == by_role["shadow"].request_id == "s1"
    assert by_role["shadow"].ref == "recs@2"
    assert by_role["shadow"].predictions == [0.2]
    shadows = client.get("/v1/models/recs").json()["shadows"]
    assert [(s["ref"], s["loaded"]) for s in shadows] == [("recs@2", True), ("recs@9", False)]


def _metric(text: str, name: str) -> float:
    """The sum of every sample of ``name`` in a /metrics text."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and line[len(name)] in " {"
    )


def test_shadow_calls_and_drops_are_counted_in_metrics(
    source: MemorySource, serve: Callable[[Gateway], httpx.Client]
) -> None:
    source.add("recs@1", Behaving(0.9))
    source.add("recs@2", Behaving(0.2, mode="hang", hang_s=0.3))
    source.deploy(
        "recs", "recs@1", {"static": {"value": 0.0}}, shadows=[{"ref": "recs@2", "sample": 1.0}]
    )
    sink = ListSink()
    app = create_app(source, sink=sink, shadow_deadline_s=2.0, shadow_capacity=1, shadow_threads=1)
    client = serve(app)
    for _ in range(5):  # one call runs (0.3 s), one waits: the others find the queue full
        client.post("/v1/models/recs:predict", json={"instances": [ROW]})
    deadline = time.monotonic() + 5
    while app.mirror is not None and app.mirror.pending and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.4)  # the last call ends
    text = client.get("/metrics").text
    dropped = _metric(text, 'flotilla_shadow_dropped_total{model="recs"}')
    calls = _metric(text, 'flotilla_shadow_calls_total{model="recs",outcome="ok"}')
    assert dropped >= 3
    assert dropped + calls == 5


def test_records_the_writer_drops_are_counted_in_metrics(
    source: MemorySource, serve: Callable[[Gateway], httpx.Client], tmp_path: Path
) -> None:
    source.add("recs@1", Behaving(0.9))
    source.deploy("recs", "recs@1", {"static": {"value": 0.0}})
    writer = RecordWriter(tmp_path, flush_interval=60.0, capacity=1).start()
    client = serve(create_app(source, sink=writer))
    for _ in range(3):
        assert client.post("/v1/models/recs:predict", json={"instances": [ROW]}).status_code == 200
    assert _metric(client.get("/metrics").text, "flotilla_records_dropped_total") == 2.0
    assert writer.dropped == 2

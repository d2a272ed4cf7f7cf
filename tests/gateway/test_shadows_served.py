"""Shadows declared in a deployment are mirrored after the answer, never on the live path."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
from gateway_support import Behaving, MemorySource

from flotilla.gateway import Gateway, create_app
from flotilla.records import PredictionEvent

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

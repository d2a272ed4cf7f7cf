"""The shadow mirror: bounded, never blocking, records role shadow with the live request id."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from flotilla.errors import ConfigError
from flotilla.gateway.shadow import ShadowJob, ShadowMirror, sampled
from flotilla.records import PredictionEvent

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class ListSink:
    """Collects submitted events (thread-safe), optionally refusing them."""

    def __init__(self, *, accept: bool = True) -> None:
        self.events: list[PredictionEvent] = []
        self.accept = accept
        self.lock = threading.Lock()

    def submit(self, event: PredictionEvent) -> bool:
        with self.lock:
            self.events.append(event)
        return self.accept


class Doubler:
    def predict(self, records: list[dict[str, Any]]) -> list[float]:
        return [2.0 * r["x"] for r in records]


class Raiser:
    def predict(self, records: list[dict[str, Any]]) -> list[float]:
        raise RuntimeError("boom")


class Gate:
    """Blocks every predict until released (a hanging shadow)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)

    def predict(self, records: list[dict[str, Any]]) -> list[float]:
        self.entered.release()
        self.release.wait(30)
        return [0.0 for _ in records]


MakeJob = Callable[..., ShadowJob]


@pytest.fixture
def job() -> MakeJob:
    def factory(request_id: str = "r1", predictor: Any = None, **kw: Any) -> ShadowJob:
        values: dict[str, Any] = {
            "request_id": request_id,
            "model": "churn",
            "ref": "churn@2",
            "predictor": predictor or Doubler(),
            "records": [{"x": 1.0}, {"x": 2.0}],
            "ids": ["u1", "u2"],
            "event_time": T0,
            "sample": 1.0,
        }
        values.update(kw)
        return ShadowJob(**values)

    return factory


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    yield g
    g.release.set()


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def test_records_carry_role_shadow_and_request_id(job: MakeJob) -> None:
    sink = ListSink()
    with ShadowMirror(deadline_s=5.0, sink=sink) as mirror:
        assert mirror.offer(job("req-7"))
        _wait_for(lambda: len(sink.events) == 1)
    (event,) = sink.events
    assert (event.role, event.request_id, event.ref, event.model) == (
        "shadow",
        "req-7",
        "churn@2",
        "churn",
    )
    assert event.predictions == [2.0, 4.0]
    assert event.ids == ["u1", "u2"] and event.event_time == T0
    assert event.degraded is False and event.reasons == []
    assert mirror.stats.completed == 1


def test_raising_shadow_is_recorded_as_error(job: MakeJob) -> None:
    sink = ListSink()
    results: list[str] = []
    with ShadowMirror(
        deadline_s=5.0, sink=sink, on_result=lambda j, outcome, s: results.append(outcome)
    ) as mirror:
        assert mirror.offer(job(predictor=Raiser()))
        _wait_for(lambda: len(sink.events) == 1)
    event = sink.events[0]
    assert event.degraded is True and event.predictions == [None, None]
    assert event.reasons[0]["reason"] == "error" and "boom" in event.reasons[0]["detail"]
    assert mirror.stats.errors == 1 and results == ["error"]


def test_hanging_shadow_is_abandoned_and_never_blocks_offer(job: MakeJob, gate: Gate) -> None:
    sink = ListSink()
    mirror = ShadowMirror(deadline_s=0.05, sink=sink, concurrency=1, max_abandoned=1).start()
    try:
        assert mirror.offer(job("hang-1", predictor=gate))
        assert gate.entered.acquire(timeout=10)
        _wait_for(lambda: mirror.stats.timeouts == 1)
        event = sink.events[0]
        assert event.reasons[0]["reason"] == "timeout" and event.request_id == "hang-1"
        assert mirror.abandoned == 1
        # with one hung call abandoned, further work is dropped rather than piling up threads
        assert mirror.offer(job("hang-2", predictor=gate))
        _wait_for(lambda: mirror.stats.dropped == 1)
        gate.release.set()
        _wait_for(lambda: mirror.abandoned == 0)
        assert mirror.offer(job("after", predictor=Doubler()))
        _wait_for(lambda: mirror.stats.completed == 1)
    finally:
        gate.release.set()
        mirror.close()


def test_overflow_drops_and_counts_without_blocking(job: MakeJob, gate: Gate) -> None:
    sink = ListSink()
    drops: list[str] = []
    mirror = ShadowMirror(
        deadline_s=30.0,
        sink=sink,
        capacity=3,
        concurrency=1,
        on_drop=lambda j: drops.append(j.request_id),
    ).start()
    try:
        assert mirror.offer(job("busy", predictor=gate))
        assert gate.entered.acquire(timeout=10)  # the only worker is now stuck
        accepted = [mirror.offer(job(f"q{i}", predictor=gate)) for i in range(10)]
        assert accepted == [True] * 3 + [False] * 7
        assert mirror.stats.dropped == 7 and drops == [f"q{i}" for i in range(3, 10)]
        assert mirror.pending == 3
    finally:
        gate.release.set()
        mirror.close()
    assert mirror.stats.completed == 4 and len(sink.events) == 4


def test_sampling_is_deterministic_per_request_id(job: MakeJob) -> None:
    ids = [f"req-{i}" for i in range(2000)]
    first = [sampled(r, 0.25) for r in ids]
    assert first == [sampled(r, 0.25) for r in ids]
    assert 0.2 < sum(first) / len(ids) < 0.3
    # a request sampled at a rate stays sampled at any higher rate
    assert all(sampled(r, 0.5) for r, s in zip(ids, first, strict=True) if s)
    sink = ListSink()
    with ShadowMirror(deadline_s=5.0, sink=sink) as mirror:
        offered = [mirror.offer(job(r, sample=0.25)) for r in ids[:200]]
        _wait_for(lambda: len(sink.events) == sum(first[:200]))
    assert offered == first[:200]
    assert mirror.stats.skipped == 200 - sum(first[:200])


def test_closed_mirror_drops_and_refused_records_are_counted(job: MakeJob) -> None:
    sink = ListSink(accept=False)
    mirror = ShadowMirror(deadline_s=5.0, sink=sink).start()
    assert mirror.offer(job())
    _wait_for(lambda: mirror.stats.unrecorded == 1)
    mirror.close()
    mirror.close()  # idempotent
    assert mirror.offer(job("late")) is False
    assert mirror.stats.dropped == 1
    with pytest.raises(ConfigError, match="closed"):
        mirror.start()


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"deadline_s": 0}, "deadline_s"),
        ({"deadline_s": 1.0, "capacity": 0}, "capacity"),
        ({"deadline_s": 1.0, "concurrency": 1.5}, "concurrency"),
    ],
    ids=["deadline", "capacity", "concurrency"],
)
def test_invalid_parameters_are_refused(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ShadowMirror(sink=ListSink(), **kw)

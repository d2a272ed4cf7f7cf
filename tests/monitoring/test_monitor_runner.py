"""``run_monitor`` on real records through the health report, and the background loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from alert_support import DAY0, clock_on_day, open_registry
from prometheus_client import CollectorRegistry

from flotilla.monitoring.incidents import IncidentStore
from flotilla.monitoring.metrics import HealthMetrics
from flotilla.monitoring.rules import load_rules
from flotilla.monitoring.runner import HealthReportSource, MonitorLoop, run_monitor
from flotilla.records import PredictionEvent, RecordStore, RecordWriter
from flotilla.settings import Settings
from flotilla.testing import FakeClock


def _write(root: Path, model: str, day: int, *, requests: int, fallback_every: int) -> None:
    writer = RecordWriter(root, clock=FakeClock(start=DAY0 + timedelta(days=day + 1)))
    for i in range(requests):
        degraded = fallback_every > 0 and i % fallback_every != 0
        writer.submit(
            PredictionEvent(
                request_id=f"{model}-{day}-{i}",
                model=model,
                ref=f"{model}@1" if not degraded else f"{model}@0",
                role="fallback" if degraded else "live",
                inputs=[{"x": float(i)}],
                predictions=[0.5],
                ids=None,
                latency_ms=2.0,
                degraded=degraded,
                reasons=[{"ref": f"{model}@1", "reason": "timeout"}] if degraded else [],
                event_time=DAY0 + timedelta(days=day, minutes=10 + i),
            )
        )
    writer.close()


def test_default_rules_on_real_records(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    root = Path(settings.records)
    for day in range(3):  # churn: 4 of 5 requests answered by the fallback, three days
        _write(root, "churn", day, requests=20, fallback_every=5)
    _write(root, "quiet", 1, requests=10, fallback_every=0)  # traffic on day 1 only
    clock = clock_on_day(3)
    reg = open_registry(settings, {"churn": "ana", "quiet": "bo"}, clock)
    registry = CollectorRegistry()
    summary = run_monitor(
        reg,
        source=HealthReportSource(RecordStore(root), registry=reg),
        rules=load_rules(),
        sinks=[],
        clock=clock,
        gauges=HealthMetrics(registry=registry),
    )
    firing = {(g.rule, g.models) for g in summary.evaluation.firing}
    assert ("fallback-streak", ("churn",)) in firing
    assert ("no-traffic", ("quiet",)) in firing
    [incident] = IncidentStore(reg).list()
    assert incident.owner == "ana" and incident.rule == "fallback-streak"
    rate = registry.get_sample_value("flotilla_health_fallback_rate", {"model": "churn"})
    assert rate is not None and abs(rate - 0.8) < 1e-9
    assert registry.get_sample_value("flotilla_health_traffic", {"model": "quiet"}) == 0.0
    reg.close()


def test_monitor_loop_runs_until_closed_and_survives_failures() -> None:
    calls: list[int] = []
    ran_twice = threading.Event()

    def run_once() -> None:
        calls.append(1)
        if len(calls) >= 2:
            ran_twice.set()
        if len(calls) == 1:
            raise RuntimeError("first run fails")

    loop = MonitorLoop(0.01, run_once=run_once)
    loop.start()
    loop.start()  # idempotent
    assert ran_twice.wait(30)
    loop.close()
    settled = len(calls)
    time.sleep(0.05)
    assert len(calls) == settled  # stopped


def test_monitor_loop_for_settings(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    registry = CollectorRegistry()
    loop = MonitorLoop.for_settings(
        settings, interval_s=3600, gauges=HealthMetrics(registry=registry)
    )
    loop.start()
    deadline = time.monotonic() + 60
    while loop.runs < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    loop.close()
    assert loop.runs == 1
    value = registry.get_sample_value("flotilla_incidents_open", {"severity": "critical"})
    assert value == 0.0

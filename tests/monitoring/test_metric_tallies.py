"""Tallies publish exactly what direct prometheus-client updates would have published."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry

from flotilla.monitoring.metrics import GatewayMetrics, step_label


def _samples(direct: bool) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry=registry)
    model = metrics.for_model("churn")
    step = model.step(step_label(0, static=False))
    rng = random.Random(7)
    for i in range(2000):
        seconds = rng.choice([0.0, 0.0005, 0.001, 7.5, rng.expovariate(300.0)])
        role = rng.choice(["live", "fallback", "static"])
        reason = rng.choice(["timeout", "error"])
        if direct:
            metrics.request_duration.labels("churn").observe(seconds)
            metrics.step_duration.labels("churn", "live").observe(seconds / 2)
            metrics.requests.labels("churn", role).inc()
            metrics.fallbacks.labels("churn", reason).inc()
            metrics.in_flight.labels("churn").set(i % 3)
        else:
            model.duration.observe(seconds)
            step.duration.observe(seconds / 2)
            model.served(role)
            model.fallback(reason)
            model.in_flight.inc(i % 3 - model.in_flight.value)
        if i % 700 == 0 and not direct:
            metrics.flush()  # several flushes add up
    metrics.flush()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_flushed_tallies_equal_direct_updates() -> None:
    tallied, direct = _samples(direct=False), _samples(direct=True)
    assert tallied.keys() == direct.keys()
    for key, value in direct.items():  # sums may differ in the last bits (order of addition)
        assert tallied[key] == pytest.approx(value, rel=1e-12), key


def test_nothing_is_published_before_a_flush() -> None:
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry=registry)
    model = metrics.for_model("churn")
    model.served("live")
    model.duration.observe(0.01)
    assert (
        registry.get_sample_value("flotilla_requests_total", {"model": "churn", "role": "live"})
        == 0
    )
    metrics.flush()
    assert (
        registry.get_sample_value("flotilla_requests_total", {"model": "churn", "role": "live"})
        == 1.0
    )
    assert (
        registry.get_sample_value("flotilla_request_duration_seconds_count", {"model": "churn"})
        == 1.0
    )

"""The Grafana dashboard uses exactly the metric names that /metrics exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from flotilla.monitoring.metrics import (
    HEALTH_GAUGES,
    GatewayMetrics,
    HealthMetrics,
    exposition,
    step_label,
)

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "flotilla.json"
_NAME = re.compile(r"\bflotilla_[a-z0-9_]+\b")


def _exposed() -> tuple[set[str], set[str]]:
    """(sample names, family names) of the metrics module, every child touched once."""
    registry = CollectorRegistry()
    gateway = GatewayMetrics(registry=registry)
    model = gateway.for_model("churn")
    model.served("live")
    model.fallback("timeout")
    model.duration.observe(0.01)
    model.in_flight.inc()
    model.late_results.inc()
    model.load_failed()
    step = model.step(step_label(0, static=False))
    step.duration.observe(0.002)
    step.set_breaker("open")
    gateway.records_dropped.inc()
    gateway.shadow_calls.labels("churn", "ok").inc()
    gateway.shadow_dropped.labels("churn").inc()
    health = HealthMetrics(registry=registry)
    health.observe_health("churn", dict.fromkeys(HEALTH_GAUGES, 1.0))
    health.set_alerts({("fallback-streak", "critical"): 1}, {"critical": 1})
    text = exposition(registry).decode()
    samples = {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    families = {
        line.split()[2]
        for line in text.splitlines()
        if line.startswith("# TYPE ") and not line.split()[2].endswith("_created")
    }
    return samples, families


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def _used() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return {name for text in _strings(dashboard) for name in _NAME.findall(text)}


def test_dashboard_only_uses_exposed_names() -> None:
    samples, _ = _exposed()
    used = _used()
    assert used, "the dashboard queries no flotilla metric"
    assert used - samples == set(), f"not exposed by /metrics: {sorted(used - samples)}"


def test_every_exposed_family_has_a_panel() -> None:
    _, families = _exposed()
    used = _used()
    missing = {f for f in families if not any(u.startswith(f) for u in used)}
    assert missing == set(), f"no panel shows {sorted(missing)}"


def test_dashboard_is_importable_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] == "Flotilla"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert all(t["expr"] for t in panel["targets"])

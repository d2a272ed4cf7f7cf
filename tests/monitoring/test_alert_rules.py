"""Alert rules: YAML validation, shipped defaults, streaks, grouping, cooldowns, escalation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from alert_support import DAY0, FakeSource, by_day, clock_on_day, open_registry
from prometheus_client import CollectorRegistry

from flotilla.errors import ConfigError, ConflictError
from flotilla.monitoring._alert_state import AlertStateStore
from flotilla.monitoring.alerts import ModelInfo, window_end
from flotilla.monitoring.health import METRIC_NAMES
from flotilla.monitoring.incidents import IncidentStore
from flotilla.monitoring.metrics import HealthMetrics
from flotilla.monitoring.rules import (
    HEALTH_METRICS,
    RuleSet,
    load_rules,
    parse_duration,
    parse_rules,
)
from flotilla.monitoring.runner import run_monitor
from flotilla.settings import Settings

MakeSettings = Callable[..., Settings]


def _rules(*rules: dict[str, object]) -> RuleSet:
    return parse_rules({"rules": list(rules)}, source="test.yaml")


def test_rule_metrics_are_exactly_the_health_report_numbers() -> None:
    assert set(HEALTH_METRICS) == set(METRIC_NAMES)


def test_shipped_defaults_load_and_say_what_they_do() -> None:
    rules = {r.name: r for r in load_rules().rules}
    assert set(rules) == {"fallback-streak", "drift", "error-rate", "latency-p99", "no-traffic"}
    streak = rules["fallback-streak"]
    assert streak.windows_needed == 3 and streak.incident and streak.severity == "critical"
    assert streak.describe() == "fallback_rate > 0.5 for 3 window(s) of 1 day, 0:00:00"
    assert rules["drift"].match == "any" and rules["drift"].incident_after == timedelta(hours=24)
    assert rules["error-rate"].window == timedelta(hours=1)
    assert rules["no-traffic"].holds({"traffic": 0, "previous_traffic": 12})
    assert not rules["no-traffic"].holds({"traffic": 0, "previous_traffic": 0})


def test_unknown_metric_lists_the_valid_names() -> None:
    with pytest.raises(ConfigError) as err:
        _rules({"name": "x", "metric": "fallback", "op": ">", "threshold": 1})
    text = str(err.value)
    assert "test.yaml" in text and "'fallback'" in text
    assert all(name in text for name in HEALTH_METRICS)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"name": "x", "metric": "traffic", "op": "=>", "threshold": 1}, "'op' must be one of"),
        ({"name": "x", "metric": "traffic", "op": ">", "threshold": "1"}, "must be a number"),
        ({"name": "x", "metric": "traffic", "op": ">", "threshold": 1, "for": "3 days"}, "'for'"),
        ({"name": "x", "metric": "traffic", "op": ">", "threshold": 1, "severity": "P1"}, "sever"),
        ({"name": "x", "metric": "traffic", "op": ">", "threshold": 1, "colour": 1}, "Unknown"),
        ({"name": "x", "any": []}, "non-empty list"),
        ({"name": "bad name", "metric": "traffic", "op": ">", "threshold": 1}, "'name'"),
    ],
    ids=["op", "threshold", "duration", "severity", "unknown-key", "empty-any", "name"],
)
def test_malformed_rules_are_refused(rule: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _rules(rule)


def test_duplicate_names_and_bad_files(tmp_path: Path) -> None:
    rule = {"name": "x", "metric": "traffic", "op": ">", "threshold": 1}
    with pytest.raises(ConfigError, match="unique"):
        _rules(rule, rule)
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_rules(bad)
    with pytest.raises(ConfigError, match="Cannot read"):
        load_rules(tmp_path / "missing.yaml")
    bad.write_text("- a\n")
    with pytest.raises(ConfigError, match="'rules' list"):
        load_rules(bad)


def test_durations_and_windows() -> None:
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("1w") == timedelta(days=7)
    assert parse_duration(30) == timedelta(seconds=30)
    with pytest.raises(ConfigError, match="positive duration"):
        parse_duration("0h")
    end = window_end(DAY0 + timedelta(hours=5, minutes=3), timedelta(hours=1))
    assert end == DAY0 + timedelta(hours=5)
    assert window_end(DAY0 + timedelta(hours=5), timedelta(days=1)) == DAY0


def test_one_broken_upstream_sends_one_notification(make_settings: MakeSettings) -> None:
    clock = clock_on_day(1)
    reg = open_registry(make_settings(), {}, clock)
    models = [ModelInfo(f"m{i}", owner="ana", labels={"upstream": "feed-a"}) for i in range(5)]
    models.append(ModelInfo("other", owner="bo", labels={"upstream": "feed-b"}))
    models.append(ModelInfo("fine", owner="bo", labels={"upstream": "feed-b"}))
    rates = {m.name: [0.9] for m in models}
    rates["fine"] = [0.0]
    rules = _rules(
        {
            "name": "fallback-any",
            "metric": "fallback_rate",
            "op": ">",
            "threshold": 0.5,
            "group_by": ["upstream"],
        }
    )
    summary = run_monitor(
        reg, source=by_day(rates), rules=rules, models=models, sinks=[], clock=clock
    )
    notes = summary.evaluation.notifications
    assert [(n.group, n.models) for n in notes] == [
        ("upstream=feed-a", ("m0", "m1", "m2", "m3", "m4")),
        ("upstream=feed-b", ("other",)),
    ]
    assert notes[0].owner == "ana" and "5 model(s)" in notes[0].message
    reg.close()


def test_models_glob_and_idempotent_reruns(make_settings: MakeSettings) -> None:
    clock = clock_on_day(1)
    reg = open_registry(make_settings(), {}, clock)
    source = by_day({"churn-eu": [0.9, 0.9], "churn-us": [0.9, 0.9], "recs": [0.9, 0.9]})
    rules = _rules(
        {
            "name": "churn-fallback",
            "metric": "fallback_rate",
            "op": ">",
            "threshold": 0.5,
            "for": "2d",
            "models": ["churn-*"],
        }
    )
    models = [ModelInfo(n) for n in ("churn-eu", "churn-us", "recs")]
    for _ in range(3):  # three runs in the same window count that window once
        run_monitor(reg, source=source, rules=rules, models=models, sinks=[], clock=clock)
    assert {m for m, *_ in source.calls} == {"churn-eu", "churn-us"}
    streaks = AlertStateStore(reg.engine).streaks("churn-fallback")
    assert {m: s.streak for m, s in streaks.items()} == {"churn-eu": 1, "churn-us": 1}
    clock.advance(days=1)
    summary = run_monitor(reg, source=source, rules=rules, models=models, sinks=[], clock=clock)
    assert [n.kind for n in summary.evaluation.notifications] == ["alert.firing"] * 2
    reg.close()


def test_cooldown_suppresses_flapping(make_settings: MakeSettings) -> None:
    clock = clock_on_day(1, hour=0)
    reg = open_registry(make_settings(), {}, clock)
    pattern = [0.9, 0.0, 0.9, 0.0, 0.9]  # hour by hour

    def numbers(model: str, day: int) -> dict[str, float | None]:
        return {"error_rate": 0.0}

    source = FakeSource(numbers)
    rules = _rules(
        {
            "name": "errors",
            "metric": "error_rate",
            "op": ">",
            "threshold": 0.05,
            "window": "1h",
            "cooldown": "3h",
        }
    )
    kinds = []
    for value in pattern:
        source.numbers = lambda model, day, v=value: {"error_rate": v}  # type: ignore[misc]
        clock.advance(hours=1)
        summary = run_monitor(
            reg, source=source, rules=rules, models=[ModelInfo("m")], sinks=[], clock=clock
        )
        kinds.append([n.kind for n in summary.evaluation.notifications])
    # fires, resolves, flaps back within the 3h cooldown (silent), resolves, fires again
    assert kinds == [
        ["alert.firing"],
        ["alert.resolved"],
        [],
        ["alert.resolved"],
        ["alert.firing"],
    ]
    reg.close()


def test_drift_alarm_escalates_only_when_unacknowledged(make_settings: MakeSettings) -> None:
    clock = clock_on_day(1)
    reg = open_registry(make_settings(), {"a": "ana", "b": "bo"}, clock)
    source = FakeSource(lambda model, day: {"traffic": 50.0, "drifted_fields": 2.0})
    state = AlertStateStore(reg.engine)
    summary = run_monitor(reg, source=source, sinks=[], clock=clock)
    assert sorted(n.group for n in summary.evaluation.notifications) == ["model=a", "model=b"]
    state.acknowledge("drift", "model=b", actor="bo", at=clock.now())
    with pytest.raises(ConflictError, match="not firing"):
        state.acknowledge("error-rate", "model=b", actor="bo", at=clock.now())
    clock.advance(hours=23)
    assert run_monitor(reg, source=source, sinks=[], clock=clock).evaluation.opened == []
    clock.advance(hours=1)
    opened = run_monitor(reg, source=source, sinks=[], clock=clock).evaluation.opened
    assert [(i.models, i.owner, i.rule) for i in opened] == [(("a",), "ana", "drift")]
    assert "unacknowledged" in opened[0].title
    assert IncidentStore(reg).list()[0].severity == "warning"
    reg.close()


def test_a_failing_source_is_reported_and_others_still_evaluated(
    make_settings: MakeSettings,
) -> None:
    clock = clock_on_day(1)
    reg = open_registry(make_settings(), {"good": "ana", "bad": "bo"}, clock)

    def numbers(model: str, day: int) -> dict[str, float | None]:
        if model == "bad":
            raise RuntimeError("records unreadable")
        return {"traffic": 0.0, "previous_traffic": 40.0}

    summary = run_monitor(reg, source=FakeSource(numbers), sinks=[], clock=clock)
    assert any("records unreadable" in e for e in summary.evaluation.errors)
    assert [(g.rule, g.models) for g in summary.evaluation.firing] == [("no-traffic", ("good",))]
    reg.close()


def test_gauges_publish_health_and_alert_states(make_settings: MakeSettings) -> None:
    clock = clock_on_day(3)
    reg = open_registry(make_settings(), {"churn": "ana"}, clock)
    registry = CollectorRegistry()
    gauges = HealthMetrics(registry=registry)
    source = by_day({"churn": [0.9, 0.9, 0.9]})
    run_monitor(reg, source=source, sinks=[], clock=clock, gauges=gauges)
    get = registry.get_sample_value
    assert get("flotilla_health_fallback_rate", {"model": "churn"}) == pytest.approx(0.9)
    assert get("flotilla_health_traffic", {"model": "churn"}) == 100.0
    firing = {"rule": "fallback-streak", "severity": "critical"}
    assert get("flotilla_alerts_firing", firing) == 1.0
    assert get("flotilla_alerts_firing", {"rule": "drift", "severity": "warning"}) == 0.0
    assert get("flotilla_incidents_open", {"severity": "critical"}) == 1.0
    assert get("flotilla_incidents_open", {"severity": "info"}) == 0.0
    # a fresh process in the same window publishes the stored numbers without recomputing
    source.calls.clear()
    fresh = CollectorRegistry()
    clock.advance(minutes=30)
    run_monitor(reg, source=source, sinks=[], clock=clock, gauges=HealthMetrics(registry=fresh))
    assert all(end - start == timedelta(hours=1) for _, start, end in source.calls)
    assert fresh.get_sample_value("flotilla_health_fallback_rate", {"model": "churn"}) == 0.9
    reg.close()

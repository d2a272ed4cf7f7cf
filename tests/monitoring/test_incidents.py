"""Incidents: the fallback-streak incident simulated day by day, ack/resolve, audit trail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alert_support import by_day, clock_on_day, open_registry

from flotilla.errors import ConfigError, ConflictError, NotFoundError
from flotilla.monitoring.incidents import IncidentNotFoundError, IncidentStore
from flotilla.monitoring.notify import Notification
from flotilla.monitoring.rules import load_rules
from flotilla.monitoring.runner import run_monitor
from flotilla.settings import Settings


class Recorder:
    """A sink that keeps what it is sent."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def send(self, notification: Notification, *, deadline: float | None = None) -> bool:
        self.sent.append(notification)
        return True

    def kinds(self) -> list[str]:
        return [n.kind for n in self.sent]

    def clear(self) -> None:
        self.sent.clear()


def test_fallback_streak_opens_on_day_three_and_renotifies_until_ack(settings: Settings) -> None:
    clock = clock_on_day(1)
    reg = open_registry(settings, {"churn": "ana@example.com", "recs": "bo"}, clock)
    source = by_day({"churn": [0.8] * 10, "recs": [0.1] * 10})
    sink = Recorder()
    rules = load_rules()
    store = IncidentStore(reg, clock=clock)

    def run() -> list[str]:
        sink.clear()
        run_monitor(reg, source=source, rules=rules, sinks=[sink], clock=clock)
        return sink.kinds()

    assert run() == []  # day 1 sees day 0: a streak of 1
    clock.advance(days=1)
    assert run() == []  # day 2: a streak of 2, still no incident
    assert store.list() == []
    clock.advance(days=1)
    assert run() == ["alert.firing", "incident.opened"]  # day 3: the third day in a row
    [incident] = store.list()
    assert incident.state == "open"
    assert incident.owner == "ana@example.com"
    assert incident.models == ("churn",)
    assert incident.rule == "fallback-streak"
    assert sink.sent[0].models == ("churn",)

    clock.advance(hours=2)
    assert run() == []  # same window, within cooldown and renotify: nothing new
    clock.advance(hours=22)
    assert run() == ["alert.reminder", "incident.renotify"]
    clock.advance(days=1)
    assert "incident.renotify" in run()

    store.ack(incident.id, note="Upstream feed broken, on it", actor="ana")
    clock.advance(days=1)
    assert "incident.renotify" not in run()
    assert store.list(state="acknowledged")[0].ack_note == "Upstream feed broken, on it"

    resolved = store.resolve(incident.id, note="Feed fixed", actor="ana")
    assert resolved.state == "resolved"
    assert store.list() == []
    assert [i.id for i in store.list(include_resolved=True)] == [incident.id]
    clock.advance(days=1)
    assert "incident.opened" not in run()  # the same firing episode is not reopened

    trail = [e for e in reg.audit_trail(model="churn") if e.action.startswith("incident.")]
    assert [e.action for e in trail] == ["incident.open", "incident.ack", "incident.resolve"]
    assert trail[1].actor == "ana"
    assert trail[1].before is not None and trail[1].before["state"] == "open"
    assert trail[2].after is not None and trail[2].after["state"] == "resolved"
    reg.close()


def test_a_day_below_threshold_resets_the_streak(make_settings: object) -> None:
    settings = make_settings()  # type: ignore[operator]
    clock = clock_on_day(1)
    reg = open_registry(settings, {"churn": "ana"}, clock)
    source = by_day({"churn": [0.8, 0.8, 0.3, 0.8, 0.8, 0.8, 0.8]})
    rules = load_rules()
    store = IncidentStore(reg, clock=clock)
    opened_on = None
    for day in range(1, 8):
        run_monitor(reg, source=source, rules=rules, sinks=[], clock=clock)
        if opened_on is None and store.list():
            opened_on = day
        clock.advance(days=1)
    assert opened_on == 6  # days 3, 4 and 5 above threshold, seen on day 6
    reg.close()


def test_recovery_resolves_the_alert_but_not_the_incident(make_settings: object) -> None:
    settings = make_settings()  # type: ignore[operator]
    clock = clock_on_day(3)
    reg = open_registry(settings, {"churn": "ana"}, clock)
    source = by_day({"churn": [0.9, 0.9, 0.9, 0.0]})
    sink = Recorder()
    summary = run_monitor(reg, source=source, sinks=[sink], clock=clock)
    # a first run catches up on the windows it needs: three days at once
    assert sink.kinds() == ["alert.firing", "incident.opened"]
    assert [g.rule for g in summary.evaluation.firing] == ["fallback-streak"]
    clock.advance(days=1)
    sink.clear()
    summary = run_monitor(reg, source=source, sinks=[sink], clock=clock)
    # the alert resolves, but the incident still waits for a person and is re-notified
    assert sink.kinds() == ["alert.resolved", "incident.renotify"]
    assert summary.evaluation.firing == []
    assert IncidentStore(reg).list()[0].state == "open"  # a person closes incidents
    reg.close()


def test_incident_state_machine_errors(make_settings: object) -> None:
    settings = make_settings()  # type: ignore[operator]
    clock = clock_on_day(0)
    reg = open_registry(settings, {"churn": "ana"}, clock)
    store = IncidentStore(reg, clock=clock)
    inc = store.open(
        rule="manual",
        group="model=churn",
        models=["churn"],
        severity="critical",
        owner="ana",
        title="Manual incident",
        renotify=timedelta(hours=1),
    )
    assert store.get(inc.id) == inc
    with pytest.raises(ConfigError, match="note is required"):
        store.ack(inc.id, note="  ", actor="bo")
    with pytest.raises(IncidentNotFoundError, match="no incident 999") as err:
        store.ack(999, note="x", actor="bo")
    assert isinstance(err.value, NotFoundError) and err.value.http_status == 404
    store.resolve(inc.id, note="false alarm", actor="bo")  # open -> resolved directly
    with pytest.raises(ConflictError, match="is resolved"):
        store.ack(inc.id, note="late", actor="bo")
    with pytest.raises(ConflictError, match="is resolved"):
        store.resolve(inc.id, note="again", actor="bo")
    with pytest.raises(ConfigError, match="must be one of open, acknowledged, resolved"):
        store.list(state="closed")
    assert store.list(state="resolved")[0].resolved_by == "bo"
    assert store.get(inc.id).to_dict()["state"] == "resolved"
    reg.close()

"""Alert evaluation with state: streaks, firing/resolved transitions, grouping and incidents.

Each rule is evaluated on windows aligned to multiples of its ``window`` (UTC): a 1-day rule
looks at whole UTC days, and only windows that have ended. Per (rule, model) the engine keeps
how many consecutive windows the condition held; windows missed since the last run are
evaluated too (at most ``windows_needed`` of them), and running twice in the same window
changes nothing. A model fires when its streak reaches ``windows_needed``.

Models are grouped by the rule's ``group_by`` keys (``model``, ``owner`` or a label such as
``upstream``); one (rule, group) is one alert, however many of its models fire, so one broken
upstream sends one notification listing its models. A firing alert notifies once, then again
only after ``cooldown`` (reminders); it notifies once more when it resolves. Rules with
``incident: true`` open an incident as soon as they fire; rules with ``incident_after`` open
one when the alert has fired that long without being acknowledged.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from flotilla.clock import SystemClock
from flotilla.monitoring._alert_state import AlertStateStore, GroupState, Streak
from flotilla.monitoring.incidents import Incident, IncidentStore
from flotilla.monitoring.notify import Notification
from flotilla.monitoring.rules import AlertRule
from flotilla.types import Clock

__all__ = [
    "AlertEngine",
    "AlertGauges",
    "Evaluation",
    "MetricsSource",
    "ModelInfo",
    "window_end",
]

_log = logging.getLogger("flotilla.alerts")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Numbers = Mapping[str, float | None]


class MetricsSource(Protocol):
    """Anything that gives the health numbers of a model over ``[start, end)``."""

    def metrics(self, model: str, start: datetime, end: datetime) -> Numbers:
        """The health-report numbers (``None`` where unknown)."""
        ...


class AlertGauges(Protocol):
    """Where the engine publishes health numbers and alert states (Prometheus gauges)."""

    def observe_health(self, model: str, metrics: Numbers) -> None:
        """Publish one model's latest health numbers."""
        ...

    def set_alerts(
        self, firing: Mapping[tuple[str, str], int], open_incidents: Mapping[str, int]
    ) -> None:
        """Publish firing alerts per (rule, severity) and open incidents per severity."""
        ...


@dataclass(frozen=True)
class ModelInfo:
    """A model as rules see it: its name, owner and labels (for ``group_by``)."""

    name: str
    owner: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    def key(self, group_by: Sequence[str]) -> str:
        """The group key, e.g. ``model=churn`` or ``upstream=feed-a``."""
        parts = []
        for name in group_by:
            if name == "model":
                value = self.name
            elif name == "owner":
                value = self.owner or "unowned"
            else:
                value = str(self.labels.get(name, "none"))
            parts.append(f"{name}={value}")
        return ",".join(parts)


def window_end(now: datetime, window: timedelta) -> datetime:
    """The end of the last complete window of length ``window`` (aligned to the epoch)."""
    return _EPOCH + ((now - _EPOCH) // window) * window


@dataclass
class Evaluation:
    """What one evaluation pass did."""

    at: datetime
    notifications: list[Notification] = field(default_factory=list)
    firing: list[GroupState] = field(default_factory=list)
    opened: list[Incident] = field(default_factory=list)
    renotified: list[Incident] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    health: dict[str, dict[str, float | None]] = field(default_factory=dict)
    """Per model, the numbers of the last complete window of its longest rule window."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        return {
            "at": self.at.isoformat(),
            "firing": [g.to_dict() for g in self.firing],
            "notifications": [n.to_dict() for n in self.notifications],
            "incidents_opened": [i.to_dict() for i in self.opened],
            "incidents_renotified": [i.id for i in self.renotified],
            "errors": list(self.errors),
        }


class AlertEngine:
    """Evaluate rules against a metrics source, persisting state in the registry database.

    Args:
        rules: the validated rules (:func:`~flotilla.monitoring.rules.load_rules`).
        state: where streaks and alert groups are stored.
        incidents: where incidents are opened.
        source: the health numbers per model and window.
        clock: the current time (inject ``FakeClock`` in tests).
        gauges: optional Prometheus gauges to update.

    Example:
        >>> engine = AlertEngine(rules, state=AlertStateStore(reg.engine),      # doctest: +SKIP
        ...     incidents=IncidentStore(reg), source=source)
        >>> result = engine.evaluate([ModelInfo("churn", owner="ana")])          # doctest: +SKIP
    """

    def __init__(
        self,
        rules: Sequence[AlertRule],
        *,
        state: AlertStateStore,
        incidents: IncidentStore,
        source: MetricsSource,
        clock: Clock | None = None,
        gauges: AlertGauges | None = None,
    ) -> None:
        self.rules = list(rules)
        self.state = state
        self.incidents = incidents
        self.source = source
        self.clock = clock
        self.gauges = gauges

    def _now(self) -> datetime:
        return (self.clock or SystemClock()).now()

    def evaluate(self, models: Sequence[ModelInfo]) -> Evaluation:
        """Evaluate every rule once for ``models``; returns the notifications to send."""
        result = Evaluation(at=self._now())
        cache: dict[tuple[str, datetime, datetime], Numbers] = {}
        longest: dict[str, timedelta] = {}
        for rule in self.rules:
            members = [m for m in models if _selected(rule, m.name)]
            streaks = self._update_streaks(rule, members, cache, result)
            self._update_groups(rule, members, streaks, result)
            for name, found in streaks.items():  # gauges show the longest window's numbers
                if found.numbers is not None and rule.window >= longest.get(name, timedelta(0)):
                    longest[name] = rule.window
                    result.health[name] = dict(found.numbers)
        for incident in self.incidents.due_for_renotify():
            result.renotified.append(incident)
            result.notifications.append(_incident_note(incident, "incident.renotify", result.at))
            self.incidents.mark_notified(incident.id)
        result.firing = [g for g in self.state.groups() if g.firing]
        self._publish(result)
        return result

    def _numbers(
        self,
        model: str,
        start: datetime,
        end: datetime,
        cache: dict[tuple[str, datetime, datetime], Numbers],
        result: Evaluation,
    ) -> Numbers:
        key = (model, start, end)
        if key not in cache:
            try:
                cache[key] = dict(self.source.metrics(model, start, end))
            except Exception as exc:  # one broken model must not stop the others
                _log.warning("No health numbers for %s in [%s, %s): %s", model, start, end, exc)
                result.errors.append(f"{model} [{start.isoformat()}, {end.isoformat()}): {exc}")
                cache[key] = {}
        return cache[key]

    def _update_streaks(
        self,
        rule: AlertRule,
        members: Sequence[ModelInfo],
        cache: dict[tuple[str, datetime, datetime], Numbers],
        result: Evaluation,
    ) -> dict[str, Streak]:
        latest = window_end(result.at, rule.window)
        needed = rule.windows_needed
        stored = self.state.streaks(rule.name)
        current: dict[str, Streak] = {}
        changed: dict[str, Streak] = {}
        for model in members:
            before = stored.get(model.name)
            if before is not None and before.window_end >= latest:
                current[model.name] = before
                continue
            first = latest - (needed - 1) * rule.window
            streak = 0
            if before is not None and before.window_end + rule.window >= first:
                first, streak = before.window_end + rule.window, before.streak
            end, numbers = first, {}
            while end <= latest:
                numbers = dict(self._numbers(model.name, end - rule.window, end, cache, result))
                streak = streak + 1 if rule.holds(numbers) else 0
                end += rule.window
            value = numbers.get(rule.conditions[0].metric)
            current[model.name] = changed[model.name] = Streak(streak, latest, value, numbers)
        self.state.save_streaks(rule.name, changed)
        return current

    def _update_groups(
        self,
        rule: AlertRule,
        members: Sequence[ModelInfo],
        streaks: Mapping[str, Streak],
        result: Evaluation,
    ) -> None:
        grouped: dict[str, list[ModelInfo]] = {}
        for model in members:
            grouped.setdefault(model.key(rule.group_by), []).append(model)
        stored = {g.group: g for g in self.state.groups(rule.name)}
        for key in sorted(set(grouped) | {k for k, g in stored.items() if g.firing}):
            infos = grouped.get(key, [])
            firing = [m for m in infos if streaks[m.name].streak >= rule.windows_needed]
            values = {m.name: streaks[m.name].value for m in firing}
            self._transition(rule, key, stored.get(key), firing, values, result)

    def _transition(
        self,
        rule: AlertRule,
        key: str,
        before: GroupState | None,
        firing: Sequence[ModelInfo],
        values: dict[str, float | None],
        result: Evaluation,
    ) -> None:
        now = result.at
        was_firing = before is not None and before.firing
        if not firing and not was_firing:
            return
        names = tuple(sorted(m.name for m in firing))
        owner = ", ".join(sorted({m.owner for m in firing if m.owner})) or "unowned"
        if not firing:
            assert before is not None
            self.state.save_group(before.with_(state="resolved", updated_at=now))
            note = _alert_note(rule, "alert.resolved", key, before.models, {}, now, owner)
            result.notifications.append(note)
            return
        group = before if was_firing and before is not None else None
        if group is None:
            last = before.notified_at if before is not None else None
            group = GroupState(rule.name, key, "firing", rule.severity, names, now, now, last)
            kind = "alert.firing"
        else:
            kind = "alert.reminder"
        group = group.with_(models=names, updated_at=now, severity=rule.severity)
        last = group.notified_at
        if kind == "alert.firing":  # suppressed when it flaps within the cooldown
            due = last is None or rule.cooldown is None or now - last >= rule.cooldown
        else:
            due = rule.cooldown is not None and last is not None and now - last >= rule.cooldown
        if due:
            group = group.with_(notified_at=now)
            result.notifications.append(_alert_note(rule, kind, key, names, values, now, owner))
        self.state.save_group(group)
        self._maybe_open_incident(rule, group, owner, values, result)

    def _maybe_open_incident(
        self,
        rule: AlertRule,
        group: GroupState,
        owner: str,
        values: dict[str, float | None],
        result: Evaluation,
    ) -> None:
        started = group.started_at or result.at
        escalate = rule.incident or (
            rule.incident_after is not None
            and group.acknowledged_at is None
            and result.at - started >= rule.incident_after
        )
        if not escalate:
            return
        latest = self.incidents.latest(rule.name, group.group)
        if latest is not None and (latest.state != "resolved" or latest.opened_at >= started):
            return  # one incident per firing episode: a resolved one is not reopened
        reason = "fired" if rule.incident else f"unacknowledged for {rule.incident_after}"
        title = f"{rule.name} on {', '.join(group.models)}: {rule.describe()} ({reason})"
        incident = self.incidents.open(
            rule=rule.name,
            group=group.group,
            models=group.models,
            severity=rule.severity,
            owner=owner,
            title=title,
            details={"values": values, "since": started.isoformat()},
            renotify=rule.renotify,
        )
        result.opened.append(incident)
        result.notifications.append(_incident_note(incident, "incident.opened", result.at))

    def _publish(self, result: Evaluation) -> None:
        if self.gauges is None:
            return
        for model, numbers in result.health.items():
            self.gauges.observe_health(model, numbers)
        firing: dict[tuple[str, str], int] = {(r.name, r.severity): 0 for r in self.rules}
        for g in result.firing:
            firing[(g.rule, g.severity)] = firing.get((g.rule, g.severity), 0) + 1
        open_by: dict[str, int] = {"info": 0, "warning": 0, "critical": 0}
        for inc in self.incidents.list():
            open_by[inc.severity] = open_by.get(inc.severity, 0) + 1
        self.gauges.set_alerts(firing, open_by)


def _selected(rule: AlertRule, model: str) -> bool:
    return not rule.models or any(fnmatch.fnmatchcase(model, p) for p in rule.models)


def _alert_note(
    rule: AlertRule,
    kind: str,
    key: str,
    models: Sequence[str],
    values: dict[str, float | None],
    at: datetime,
    owner: str,
) -> Notification:
    verb = {"alert.firing": "FIRING", "alert.reminder": "STILL FIRING"}.get(kind, "RESOLVED")
    listed = ", ".join(models) if models else "-"
    message = f"{verb}: {rule.name} ({rule.describe()}) for {len(models)} model(s): {listed}"
    return Notification(
        kind=kind,
        rule=rule.name,
        severity=rule.severity,
        group=key,
        models=tuple(models),
        message=message,
        at=at,
        owner=owner,
        values=dict(values),
    )


def _incident_note(incident: Incident, kind: str, at: datetime) -> Notification:
    verb = "opened" if kind == "incident.opened" else "still unacknowledged"
    return Notification(
        kind=kind,
        rule=incident.rule,
        severity=incident.severity,
        group=incident.group,
        models=incident.models,
        message=(
            f"Incident {incident.id} {verb}, assigned to {incident.owner}: {incident.title}. "
            f"Acknowledge with `flotilla incidents ack {incident.id} --note ...`."
        ),
        at=at,
        owner=incident.owner,
        incident_id=incident.id,
    )

"""Alert rules: YAML loading and validation, with shipped defaults.

A rule is a threshold on one health-report number (or several, joined by ``any``/``all``) that
must hold for ``for`` worth of consecutive evaluation windows of length ``window``. Example::

    rules:
      - name: fallback-streak
        metric: fallback_rate
        op: ">"
        threshold: 0.5
        window: 1d
        for: 3d
        severity: critical
        incident: true

The shipped defaults live in ``default_rules.yaml`` next to this module; see
:func:`load_rules`.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from flotilla._durations import read_duration
from flotilla.errors import ConfigError
from flotilla.monitoring.health import METRIC_NAMES
from flotilla.types import FALLBACK_REASONS

__all__ = [
    "FALLBACK_REASONS",
    "HEALTH_METRICS",
    "OPERATORS",
    "SEVERITIES",
    "AlertRule",
    "Condition",
    "RuleSet",
    "default_rules_text",
    "load_rules",
    "parse_duration",
    "parse_rules",
]

HEALTH_METRICS: tuple[str, ...] = METRIC_NAMES
"""Every number of a health report that a rule may test."""

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
SEVERITIES = ("info", "warning", "critical")
_RULE_KEYS = {
    "name",
    "description",
    "metric",
    "op",
    "threshold",
    "any",
    "all",
    "for",
    "window",
    "severity",
    "models",
    "group_by",
    "cooldown",
    "incident",
    "incident_after",
    "renotify",
}


def parse_duration(text: object, *, what: str = "duration") -> timedelta:
    """Parse ``"30s"``, ``"15m"``, ``"2h"``, ``"3d"`` or ``"1w"`` (or a number of seconds).

    Raises:
        ConfigError: the text is not a positive duration.
    """
    if isinstance(text, int | float) and not isinstance(text, bool) and text > 0:
        return timedelta(seconds=float(text))
    found = read_duration(text) if isinstance(text, str) else None
    if found is None:
        raise ConfigError(
            f"The {what} must be a positive duration such as '30m', '2h' or '3d'. "
            f"Got {text!r} instead."
        )
    return found


@dataclass(frozen=True)
class Condition:
    """``metric op threshold``; a missing (``None``) or NaN number never satisfies it."""

    metric: str
    op: str
    threshold: float

    def holds(self, metrics: Mapping[str, float | None]) -> bool:
        """Whether the condition is true for these health numbers."""
        value = metrics.get(self.metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return OPERATORS[self.op](float(value), self.threshold)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class AlertRule:
    """One validated alert rule (build it with :func:`parse_rules`).

    Attributes:
        conditions: the thresholds; ``match`` says whether ``all`` or ``any`` must hold.
        window: the length of one evaluation window (windows are aligned to UTC multiples).
        for_: how long the condition must hold; it fires after ``for_ / window`` consecutive
            windows (at least one).
        group_by: keys that group models into one alert (``model``, ``owner``, or a label).
        cooldown: no re-notification of the same (rule, group) within this time.
        incident: open an incident as soon as the alert fires.
        incident_after: open an incident when the alert has fired this long unacknowledged.
        renotify: how often an unacknowledged incident is notified again.
    """

    name: str
    conditions: tuple[Condition, ...]
    match: str = "all"
    window: timedelta = timedelta(days=1)
    for_: timedelta = timedelta(days=1)
    severity: str = "warning"
    models: tuple[str, ...] = ()
    group_by: tuple[str, ...] = ("model",)
    cooldown: timedelta | None = None
    incident: bool = False
    incident_after: timedelta | None = None
    renotify: timedelta = timedelta(hours=24)
    description: str = ""

    @property
    def windows_needed(self) -> int:
        """Consecutive windows the condition must hold before the rule fires."""
        return max(1, math.ceil(self.for_ / self.window - 1e-9))

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The health numbers this rule reads."""
        return tuple(c.metric for c in self.conditions)

    def holds(self, metrics: Mapping[str, float | None]) -> bool:
        """Whether the rule's condition is true for one window's numbers."""
        results = (c.holds(metrics) for c in self.conditions)
        return any(results) if self.match == "any" else all(results)

    def describe(self) -> str:
        """The condition in words, e.g. ``fallback_rate > 0.5 for 3 window(s) of 1 day``."""
        joiner = " or " if self.match == "any" else " and "
        text = joiner.join(str(c) for c in self.conditions)
        return f"{text} for {self.windows_needed} window(s) of {self.window}"


@dataclass(frozen=True)
class RuleSet:
    """Validated rules plus the optional ``notify:`` section of the same file."""

    rules: tuple[AlertRule, ...]
    notify: dict[str, Any] = field(default_factory=dict)
    source: str = "<defaults>"


def _fail(source: str, where: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: {where}: {message}")


def _condition(data: Any, source: str, where: str) -> Condition:
    if not isinstance(data, Mapping):
        raise _fail(source, where, f"A condition must be a mapping. Got {data!r} instead.")
    metric = data.get("metric")
    if metric not in HEALTH_METRICS:
        raise _fail(
            source,
            where,
            f"The 'metric' of a rule must be one of {', '.join(HEALTH_METRICS)}. "
            f"Got {metric!r} instead.",
        )
    op = data.get("op")
    if op not in OPERATORS:
        raise _fail(
            source, where, f"The 'op' must be one of {', '.join(OPERATORS)}. Got {op!r} instead."
        )
    threshold = data.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise _fail(source, where, f"The 'threshold' must be a number. Got {threshold!r} instead.")
    return Condition(metric=str(metric), op=str(op), threshold=float(threshold))


def _conditions(
    data: Mapping[str, Any], source: str, where: str
) -> tuple[tuple[Condition, ...], str]:
    combos = [key for key in ("any", "all") if key in data]
    if combos and "metric" in data:
        raise _fail(
            source, where, "Give either 'metric'/'op'/'threshold' or 'any'/'all', not both."
        )
    if len(combos) > 1:
        raise _fail(source, where, "Give 'any' or 'all', not both.")
    if not combos:
        return (_condition(data, source, where),), "all"
    items = data[combos[0]]
    if not isinstance(items, list) or not items:
        raise _fail(source, where, f"'{combos[0]}' must be a non-empty list of conditions.")
    found = tuple(
        _condition(item, source, f"{where}.{combos[0]}[{i}]") for i, item in enumerate(items)
    )
    return found, combos[0]


def _strings(value: Any, source: str, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(source, where, f"'{key}' must be a list of strings. Got {value!r} instead.")
    return tuple(value)


def _optional_duration(data: Mapping[str, Any], key: str, where: str) -> timedelta | None:
    value = data.get(key)
    return None if value is None else parse_duration(value, what=f"'{key}' of {where}")


def _rule(data: Any, source: str, index: int) -> AlertRule:
    where = f"rules[{index}]"
    if not isinstance(data, Mapping):
        raise _fail(source, where, f"A rule must be a mapping. Got {data!r} instead.")
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,100}", name):
        raise _fail(
            source, where, f"The 'name' must be 1-100 letters, digits or _.:- . Got {name!r}."
        )
    where = f"rule {name!r}"
    unknown = sorted(set(data) - _RULE_KEYS)
    if unknown:
        raise _fail(
            source, where, f"Unknown keys {unknown}; the keys are {', '.join(sorted(_RULE_KEYS))}."
        )
    conditions, match = _conditions(data, source, where)
    severity = data.get("severity", "warning")
    if severity not in SEVERITIES:
        raise _fail(
            source,
            where,
            f"The 'severity' must be one of {', '.join(SEVERITIES)}. Got {severity!r}.",
        )
    window = parse_duration(data.get("window", "1d"), what=f"'window' of {where}")
    for_ = _optional_duration(data, "for", where) or window
    group_by = _strings(data.get("group_by"), source, where, "group_by") or ("model",)
    incident = data.get("incident", False)
    if not isinstance(incident, bool):
        raise _fail(source, where, f"'incident' must be true or false. Got {incident!r}.")
    description = data.get("description", "")
    return AlertRule(
        name=name,
        conditions=conditions,
        match=match,
        window=window,
        for_=for_,
        severity=str(severity),
        models=_strings(data.get("models"), source, where, "models"),
        group_by=group_by,
        cooldown=_optional_duration(data, "cooldown", where),
        incident=incident,
        incident_after=_optional_duration(data, "incident_after", where),
        renotify=_optional_duration(data, "renotify", where) or timedelta(hours=24),
        description=str(description),
    )


def parse_rules(data: Any, *, source: str = "<rules>") -> RuleSet:
    """Validate the parsed YAML of a rules file (``{"rules": [...], "notify": {...}}``).

    Raises:
        ConfigError: a rule is malformed; unknown metric names list the valid ones.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("rules"), list):
        raise ConfigError(
            f"{source}: an alert rules file must be a mapping with a 'rules' list. "
            f"Got {type(data).__name__} instead."
        )
    rules = tuple(_rule(item, source, i) for i, item in enumerate(data["rules"]))
    names = [r.name for r in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{source}: rule names must be unique. Repeated: {duplicates}.")
    notify = data.get("notify") or {}
    if not isinstance(notify, Mapping):
        raise ConfigError(f"{source}: 'notify' must be a mapping. Got {notify!r} instead.")
    return RuleSet(rules=rules, notify=dict(notify), source=source)


def default_rules_text() -> str:
    """The YAML text of the shipped default rules."""
    return (resources.files("flotilla.monitoring") / "default_rules.yaml").read_text("utf-8")


def load_rules(path: str | Path | None = None, *, extra: Sequence[AlertRule] = ()) -> RuleSet:
    """Load rules from ``path``, or the shipped defaults when ``path`` is ``None``.

    Raises:
        ConfigError: the file is missing, is not YAML, or holds an invalid rule.
    """
    if path is None:
        text, source = default_rules_text(), "default_rules.yaml"
    else:
        file = Path(path)
        try:
            text = file.read_text("utf-8")
        except OSError as exc:
            raise ConfigError(
                f"Cannot read the alert rules file {file}: {exc.strerror or exc}."
            ) from exc
        source = str(file)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
    found = parse_rules(data, source=source)
    if extra:
        return RuleSet(rules=found.rules + tuple(extra), notify=found.notify, source=source)
    return found

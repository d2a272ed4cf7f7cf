"""Every Prometheus metric Flotilla exposes, defined in one place.

The gateway builds one :class:`GatewayMetrics` per app (``registry=`` keeps tests isolated)
and, per served model, one :class:`ModelMetrics` whose label children are bound once, so the
request path only calls ``inc``/``observe`` on ready children (no label lookups per request).

Labels are bounded: the model name, the serving role (``live``, ``fallback``, ``static``),
the fallback reason (a fixed vocabulary) and the step position (``live``, ``fallback1`` ...
``fallback8``, ``static``). No request ids, no feature names.

The request path does not write prometheus-client's values directly: a lock per value and a
loop over the buckets cost about 4 us per request. It updates *tallies* (plain attributes,
:class:`CounterTally`, :class:`GaugeTally`, :class:`HistogramTally`) on the event loop's
thread, and :meth:`GatewayMetrics.flush` adds them to the real children on that same thread:
before every ``/metrics`` answer and once a second (so the files of a multi-worker server
are at most a second behind). Values are exact; only their publication is batched.

Multi-process serving (``flotilla serve --workers N``): ``serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before the workers start; prometheus-client then
writes every sample to memory-mapped files there and :func:`exposition` merges them with a
``MultiProcessCollector``. Gauges use ``multiprocess_mode="livesum"`` (in-flight) and
``"max"`` (breaker state), so the merged values stay meaningful.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = [
    "BREAKER_STATE_VALUES",
    "CONTENT_TYPE_LATEST",
    "HEALTH_GAUGES",
    "CounterTally",
    "GatewayMetrics",
    "GaugeTally",
    "HealthMetrics",
    "HistogramTally",
    "ModelMetrics",
    "StepMetrics",
    "exposition",
    "step_label",
]

BREAKER_STATE_VALUES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
"""Value of ``flotilla_breaker_state`` per state."""

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
_MAX_FALLBACK_LABELS = 8


def step_label(position: int, *, static: bool) -> str:
    """The bounded ``step`` label of the step at ``position`` (0 is the live step)."""
    if static:
        return "static"
    if position == 0:
        return "live"
    return f"fallback{min(position, _MAX_FALLBACK_LABELS)}"


class _Flushable(Protocol):
    def flush(self) -> None: ...


_T = TypeVar("_T", bound=_Flushable)


class CounterTally:
    """A counter child counted in memory; :meth:`flush` adds the count to the child."""

    __slots__ = ("child", "pending")

    def __init__(self, child: Counter) -> None:
        self.child = child
        self.pending = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.pending += amount

    def flush(self) -> None:
        if self.pending:
            amount, self.pending = self.pending, 0.0
            self.child.inc(amount)


class GaugeTally:
    """A gauge child kept in memory; :meth:`flush` sets the child when the value changed."""

    __slots__ = ("child", "value", "written")

    def __init__(self, child: Gauge) -> None:
        self.child = child
        self.value = 0.0
        self.written = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def flush(self) -> None:
        if self.value != self.written:
            self.written = self.value
            self.child.set(self.value)


class HistogramTally:
    """A histogram child counted in memory per bucket; :meth:`flush` adds counts and sum.

    Relies on prometheus-client's ``Histogram`` child holding ``_upper_bounds``,
    ``_buckets`` (non-cumulative values) and ``_sum``, as it has since 0.4;
    ``tests/monitoring/test_metric_tallies.py`` fails if that changes.
    """

    __slots__ = ("bounds", "buckets", "child", "counts", "total")

    def __init__(self, child: Histogram) -> None:
        self.child = child
        self.bounds: list[float] = list(child._upper_bounds)
        self.buckets = child._buckets
        self.counts = [0] * len(self.bounds)
        self.total = 0.0

    def observe(self, amount: float) -> None:
        """Count one observation (in the first bucket whose bound is >= ``amount``)."""
        self.counts[bisect_left(self.bounds, amount)] += 1  # the last bound is +Inf
        self.total += amount

    def flush(self) -> None:
        counts = self.counts
        if not any(counts):
            return
        for i, n in enumerate(counts):
            if n:
                self.buckets[i].inc(n)
                counts[i] = 0
        total, self.total = self.total, 0.0
        self.child._sum.inc(total)


@dataclass(frozen=True, slots=True)
class StepMetrics:
    """Label children of one step of one model's chain."""

    duration: HistogramTally
    breaker_state: Gauge

    def set_breaker(self, state: str) -> None:
        """Record the breaker's state (``closed``, ``half_open`` or ``open``)."""
        self.breaker_state.set(BREAKER_STATE_VALUES[state])


@dataclass(frozen=True, slots=True)
class ModelMetrics:
    """Label children of one model, bound once so the request path does no lookups."""

    parent: GatewayMetrics
    model: str
    duration: HistogramTally
    in_flight: GaugeTally
    late_results: Counter
    _served: dict[str, CounterTally] = field(default_factory=dict)
    _fallbacks: dict[str, CounterTally] = field(default_factory=dict)

    def served(self, role: str) -> None:
        """Count one request answered by ``role`` (event loop thread)."""
        tally = self._served.get(role)
        if tally is None:
            child = self.parent.requests.labels(self.model, role)
            tally = self._served[role] = self.parent.tally(CounterTally(child))
        tally.pending += 1.0

    def fallback(self, reason: str) -> None:
        """Count one step skipped for ``reason`` (event loop thread)."""
        tally = self._fallbacks.get(reason)
        if tally is None:
            child = self.parent.fallbacks.labels(self.model, reason)
            tally = self._fallbacks[reason] = self.parent.tally(CounterTally(child))
        tally.pending += 1.0

    def load_failed(self) -> None:
        """Count one version of this model that failed to load."""
        self.parent.load_failures.labels(self.model).inc()

    def step(self, label: str) -> StepMetrics:
        """The children of one step (``label`` from :func:`step_label`)."""
        parent = self.parent
        return StepMetrics(
            duration=parent.tally(HistogramTally(parent.step_duration.labels(self.model, label))),
            breaker_state=parent.breaker_state.labels(self.model, label),
        )


class GatewayMetrics:
    """The gateway's metrics, registered in ``registry``.

    Args:
        registry: where to register (default: a fresh :class:`CollectorRegistry`; pass
            ``prometheus_client.REGISTRY`` to share the process-wide one).

    Example:
        >>> m = GatewayMetrics()
        >>> m.for_model("recs").served("live")
    """

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        self.requests = Counter(
            "flotilla_requests",
            "Prediction requests answered, by model and the role of the step that answered.",
            ["model", "role"],
            registry=reg,
        )
        self.fallbacks = Counter(
            "flotilla_fallbacks",
            "Chain steps skipped, by model and reason (timeout, error, ...).",
            ["model", "reason"],
            registry=reg,
        )
        self.request_duration = Histogram(
            "flotilla_request_duration_seconds",
            "Time from request start to response, by model.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.step_duration = Histogram(
            "flotilla_step_duration_seconds",
            "Time spent in one step of the chain, by model and step position.",
            ["model", "step"],
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.in_flight = Gauge(
            "flotilla_in_flight",
            "Prediction requests being answered now, by model.",
            ["model"],
            multiprocess_mode="livesum",
            registry=reg,
        )
        self.breaker_state = Gauge(
            "flotilla_breaker_state",
            "Circuit breaker state per step: 0 closed, 1 half-open, 2 open.",
            ["model", "step"],
            multiprocess_mode="max",
            registry=reg,
        )
        self.late_results = Counter(
            "flotilla_late_results",
            "Results that arrived after their step's budget and were discarded.",
            ["model"],
            registry=reg,
        )
        self.load_failures = Counter(
            "flotilla_load_failures",
            "Versions that failed to load, by model.",
            ["model"],
            registry=reg,
        )
        self.records_dropped = Counter(
            "flotilla_records_dropped",
            "Prediction records dropped before they were written (the writer's buffer was "
            "full, or a record could not be encoded).",
            registry=reg,
        )
        self.shadow_calls = Counter(
            "flotilla_shadow_calls",
            "Shadow calls made after the answer, by model and outcome (ok, error, timeout).",
            ["model", "outcome"],
            registry=reg,
        )
        self.shadow_dropped = Counter(
            "flotilla_shadow_dropped",
            "Shadow jobs dropped without a call (queue full, too many hung calls, or shutdown).",
            ["model"],
            registry=reg,
        )
        self.loop_lag = Gauge(
            "flotilla_event_loop_lag_seconds",
            "Slack taken off model steps' budgets (up to 10% of the deadline): 1.5x the "
            "event loop's worst timer lateness over the last second.",
            multiprocess_mode="max",
            registry=reg,
        )
        self._models: dict[str, ModelMetrics] = {}
        self._tallies: list[_Flushable] = []

    def tally(self, tally: _T) -> _T:
        """Register ``tally`` so that :meth:`flush` publishes it; returns it."""
        self._tallies.append(tally)
        return tally

    def flush(self) -> None:
        """Publish every tally into prometheus-client (on the thread that updates them)."""
        for tally in self._tallies:
            tally.flush()

    def for_model(self, model: str) -> ModelMetrics:
        """The bound children of ``model`` (created on first use, then cached)."""
        found = self._models.get(model)
        if found is None:
            found = ModelMetrics(
                parent=self,
                model=model,
                duration=self.tally(HistogramTally(self.request_duration.labels(model))),
                in_flight=self.tally(GaugeTally(self.in_flight.labels(model))),
                late_results=self.late_results.labels(model),
            )
            self._models[model] = found
        return found


def exposition(registry: CollectorRegistry, *, multiprocess_dir: str | None = None) -> bytes:
    """The text exposition of ``registry``.

    Args:
        registry: the registry of this process.
        multiprocess_dir: the ``PROMETHEUS_MULTIPROC_DIR`` of a multi-worker server; when
            given, the samples of every worker are merged from there instead.
    """
    if multiprocess_dir:
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
    return generate_latest(registry)


HEALTH_GAUGES = (
    "traffic",
    "latency_p50_ms",
    "latency_p99_ms",
    "error_rate",
    "fallback_rate",
    "shadow_dropped",
    "drifted_fields",
    "drift_share",
    "prediction_drift",
    "performance",
    "estimated_performance",
    "null_rate_max_change",
)
"""Health-report numbers exported as ``flotilla_health_<name>{model}`` gauges (fixed list)."""

_SEVERITIES = ("info", "warning", "critical")


class HealthMetrics:
    """Gauges of the monitor: health numbers per model, firing alerts, open incidents.

    Cardinality is bounded: one gauge per name in :data:`HEALTH_GAUGES` labelled by model
    only (never by field), ``flotilla_alerts_firing{rule,severity}`` (rules come from the
    rules file) and ``flotilla_incidents_open{severity}``.

    Args:
        registry: where to register (default: a fresh :class:`CollectorRegistry`).

    Example:
        >>> h = HealthMetrics()
        >>> h.observe_health("churn", {"fallback_rate": 0.8})
    """

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.health = {
            name: Gauge(
                f"flotilla_health_{name}",
                f"Health report: {name.replace('_', ' ')} of the last complete window, by model.",
                ["model"],
                multiprocess_mode="max",
                registry=self.registry,
            )
            for name in HEALTH_GAUGES
        }
        self.alerts_firing = Gauge(
            "flotilla_alerts_firing",
            "Alert groups firing now, by rule and severity.",
            ["rule", "severity"],
            multiprocess_mode="max",
            registry=self.registry,
        )
        self.incidents_open = Gauge(
            "flotilla_incidents_open",
            "Incidents not yet resolved (open or acknowledged), by severity.",
            ["severity"],
            multiprocess_mode="max",
            registry=self.registry,
        )

    def observe_health(self, model: str, metrics: Mapping[str, float | None]) -> None:
        """Set the gauges of ``model``; unknown (``None``) numbers become NaN."""
        for name, gauge in self.health.items():
            if name in metrics:
                value = metrics[name]
                gauge.labels(model).set(float("nan") if value is None else float(value))

    def set_alerts(
        self, firing: Mapping[tuple[str, str], int], open_incidents: Mapping[str, int]
    ) -> None:
        """Set the firing count per (rule, severity) and open incidents per severity."""
        for (rule, severity), count in firing.items():
            self.alerts_firing.labels(rule, severity).set(count)
        for severity in _SEVERITIES:
            self.incidents_open.labels(severity).set(open_incidents.get(severity, 0))

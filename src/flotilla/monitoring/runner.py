"""``flotilla monitor run``: evaluate the alert rules once, and the background monitor loop.

:func:`run_monitor` computes the health numbers of every registered model through the health
report, evaluates the rules (persisting streaks and alert groups in the registry database),
opens and re-notifies incidents, and sends the notifications within a time budget.
:class:`MonitorLoop` does the same every ``interval_s`` seconds in a daemon thread, for
``flotilla serve --monitor``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flotilla.errors import ConfigError
from flotilla.monitoring._alert_state import AlertStateStore
from flotilla.monitoring.alerts import AlertEngine, AlertGauges, Evaluation, ModelInfo
from flotilla.monitoring.alerts import MetricsSource as MetricsSource
from flotilla.monitoring.incidents import IncidentStore
from flotilla.monitoring.notify import Notifier, Sink, sinks_from_config
from flotilla.monitoring.rules import RuleSet, load_rules
from flotilla.records import OutcomeStore, RecordStore
from flotilla.registry import Registry
from flotilla.settings import Settings
from flotilla.types import Clock

__all__ = [
    "HealthReportSource",
    "MonitorLoop",
    "MonitorSummary",
    "default_rules_path",
    "model_infos",
    "run_monitor",
]

_log = logging.getLogger("flotilla.alerts")


class HealthReportSource:
    """A :class:`~flotilla.monitoring.alerts.MetricsSource` backed by the health report.

    Args:
        store: the prediction records.
        registry: the registry (reference profiles, signatures, tasks).
        outcomes: the outcome store, for performance on labels (optional).
    """

    def __init__(
        self, store: RecordStore, *, registry: Any = None, outcomes: OutcomeStore | None = None
    ) -> None:
        self.store = store
        self.registry = registry
        self.outcomes = outcomes

    def metrics(self, model: str, start: datetime, end: datetime) -> dict[str, float | None]:
        """The health report's flat numbers for ``model`` over ``[start, end)``."""
        from flotilla.monitoring.health import health_report

        report = health_report(
            self.store,
            model,
            start=start,
            end=end,
            registry=self.registry,
            outcomes=self.outcomes,
        )
        return dict(report.metrics)


def model_infos(registry: Registry) -> list[ModelInfo]:
    """Every registered model with its owner; labels are its latest version's tags."""
    infos = []
    for model in registry.list_models():
        versions = registry.list_versions(model.name)
        labels = dict(versions[-1].tags) if versions else {}
        infos.append(ModelInfo(name=model.name, owner=model.owner, labels=labels))
    return infos


def default_rules_path(settings: Settings) -> Path | None:
    """``$FLOTILLA_HOME/alerts.yaml`` when it exists, else ``None`` (the shipped defaults)."""
    path = Path(settings.home) / "alerts.yaml"
    return path if path.is_file() else None


@dataclass(frozen=True)
class MonitorSummary:
    """What one ``monitor run`` did."""

    evaluation: Evaluation
    models: int
    rules: int
    failed_sends: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``monitor run --json``)."""
        return {
            "models": self.models,
            "rules": self.rules,
            "failed_sends": self.failed_sends,
            **self.evaluation.to_dict(),
        }


def run_monitor(
    registry: Registry,
    *,
    source: MetricsSource,
    rules: RuleSet | None = None,
    sinks: Sequence[Sink] | None = None,
    models: Sequence[ModelInfo] | None = None,
    clock: Clock | None = None,
    gauges: AlertGauges | None = None,
    budget_s: float = 30.0,
) -> MonitorSummary:
    """Evaluate the rules once and send the notifications (what cron runs).

    Args:
        registry: the registry (state, incidents, audit trail, models and owners).
        source: the health numbers (:class:`HealthReportSource` in production).
        rules: the rules (default: the shipped defaults).
        sinks: where notifications go (default: from the rules' ``notify:`` section).
        models: the models to watch (default: every registered model).
        clock: the current time.
        gauges: Prometheus gauges to update (:class:`~flotilla.monitoring.metrics.HealthMetrics`).
        budget_s: the total time the notifications may take.
    """
    ruleset = rules if rules is not None else load_rules()
    chosen = list(models) if models is not None else model_infos(registry)
    engine = AlertEngine(
        ruleset.rules,
        state=AlertStateStore(registry.engine),
        incidents=IncidentStore(registry, clock=clock),
        source=source,
        clock=clock,
        gauges=gauges,
    )
    evaluation = engine.evaluate(chosen)
    targets = list(sinks) if sinks is not None else sinks_from_config(ruleset.notify)
    failed = Notifier(targets, budget_s=budget_s).deliver(evaluation.notifications)
    return MonitorSummary(
        evaluation=evaluation, models=len(chosen), rules=len(ruleset.rules), failed_sends=failed
    )


class MonitorLoop:
    """Run :func:`run_monitor` every ``interval_s`` seconds in a daemon thread.

    Args:
        interval_s: seconds between runs (the first run starts right away).
        run_once: the work of one run; :meth:`for_settings` builds the production one.

    A run that raises is logged and the loop goes on. :meth:`close` stops the loop and waits
    (bounded) for a run in progress.

    Example:
        >>> loop = MonitorLoop.for_settings(settings, interval_s=300)  # doctest: +SKIP
        >>> loop.start()                                               # doctest: +SKIP
        >>> loop.close()                                               # doctest: +SKIP
    """

    def __init__(self, interval_s: float, *, run_once: Callable[[], object]) -> None:
        self.interval_s = interval_s
        self.run_once = run_once
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0

    @classmethod
    def for_settings(
        cls,
        settings: Settings,
        *,
        interval_s: float = 300.0,
        gauges: AlertGauges | None = None,
        rules_path: str | Path | None = None,
        budget_s: float = 30.0,
        after_run: Callable[[], object] | None = None,
    ) -> MonitorLoop:
        """A loop over the workspace of ``settings`` (rules from ``rules_path`` or the home).

        ``after_run`` is called after every evaluation (the gateway passes the automatic
        promotion of challengers whose deployment says ``promotion: {auto: true}``).
        """
        if interval_s <= 0:
            raise ConfigError(f"The monitor interval must be > 0 seconds. Got {interval_s!r}.")
        ruleset = load_rules(rules_path or default_rules_path(settings))

        def run_once() -> MonitorSummary:
            with Registry.open(settings) as registry:
                store = RecordStore(Path(settings.records))
                outcomes = OutcomeStore(Path(settings.records), models=registry)
                source = HealthReportSource(store, registry=registry, outcomes=outcomes)
                summary = run_monitor(
                    registry, source=source, rules=ruleset, gauges=gauges, budget_s=budget_s
                )
            if after_run is not None:
                after_run()
            return summary

        return cls(interval_s, run_once=run_once)

    def start(self) -> None:
        """Start the daemon thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="flotilla-monitor", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                _log.exception("The background monitor run failed; retrying next interval")
            self.runs += 1
            self._stop.wait(self.interval_s)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the loop; waits up to ``timeout`` seconds for a run in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

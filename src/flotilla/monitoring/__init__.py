"""Monitoring: drift statistics, reference profiles, health reports, alert rules, incidents.

The statistics follow Evidently's conventions (see ``flotilla.monitoring.drift``); reports add
the change in null rate and a Benjamini-Hochberg correction across fields. Health reports
(``health_report``, ``portfolio_health``) feed the alert rules (``AlertEngine``,
``run_monitor``, ``MonitorLoop``), which open incidents for a person (``IncidentStore``).
Prometheus metrics live in ``flotilla.monitoring.metrics``.
"""

from __future__ import annotations

from flotilla.monitoring.alerts import AlertEngine, MetricsSource, ModelInfo
from flotilla.monitoring.cbpe import CbpeEstimate, estimate_performance
from flotilla.monitoring.compare import DriftReport, FieldDrift, compare_columns
from flotilla.monitoring.drift import (
    benjamini_hochberg,
    binned_counts,
    binned_proportions,
    chi2,
    jensen_shannon,
    ks,
    null_rates,
    proportion_z_test,
    psi,
    wasserstein_normed,
)
from flotilla.monitoring.health import (
    METRIC_NAMES,
    HealthReport,
    health_report,
    health_series,
    portfolio_health,
)
from flotilla.monitoring.health_html import write_health_html
from flotilla.monitoring.incidents import Incident, IncidentStore
from flotilla.monitoring.notify import FileSink, LogSink, Notification, WebhookSink
from flotilla.monitoring.profiles import (
    PROFILE_FORMAT,
    build_profile,
    is_profile,
    profile_to_reference,
)
from flotilla.monitoring.rules import AlertRule, load_rules
from flotilla.monitoring.runner import HealthReportSource, MonitorLoop, run_monitor

__all__ = [
    "METRIC_NAMES",
    "PROFILE_FORMAT",
    "AlertEngine",
    "AlertRule",
    "CbpeEstimate",
    "DriftReport",
    "FieldDrift",
    "FileSink",
    "HealthReport",
    "HealthReportSource",
    "Incident",
    "IncidentStore",
    "LogSink",
    "MetricsSource",
    "ModelInfo",
    "MonitorLoop",
    "Notification",
    "WebhookSink",
    "benjamini_hochberg",
    "binned_counts",
    "binned_proportions",
    "build_profile",
    "chi2",
    "compare_columns",
    "estimate_performance",
    "health_report",
    "health_series",
    "is_profile",
    "jensen_shannon",
    "ks",
    "load_rules",
    "null_rates",
    "portfolio_health",
    "profile_to_reference",
    "proportion_z_test",
    "psi",
    "run_monitor",
    "wasserstein_normed",
    "write_health_html",
]

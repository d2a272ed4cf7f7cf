"""Health reports per model and window, and for the whole portfolio.

:func:`health_report` computes, with DuckDB over the prediction records of one window:
traffic, latency, error and fallback rates (overall and by reason), shadow drops, input and
prediction drift against the live version's reference profile, performance on labels where
outcomes exist, and the CBPE estimate for probability models (``flotilla.monitoring.cbpe``).
Aggregates run in SQL; only a bounded reservoir sample of rows (``sample_rows``, default
50,000, DuckDB ``USING SAMPLE reservoir(n ROWS) REPEATABLE (42)``) is parsed for drift, so a
window of millions of records never lands in Python. :attr:`HealthReport.metrics` is the flat
contract that alert rules read; its names are listed in :data:`METRIC_NAMES`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from flotilla.audit import compare_feature_ages
from flotilla.errors import ConfigError, FlotillaError
from flotilla.monitoring import _health_data as data
from flotilla.monitoring.cbpe import CBPE_ASSUMPTIONS, estimate_performance
from flotilla.monitoring.compare import DriftReport, compare_columns
from flotilla.monitoring.profiles import profile_to_reference
from flotilla.records import OutcomeStore, RecordStore
from flotilla.signature import OUTPUT_KINDS
from flotilla.types import FALLBACK_REASONS

__all__ = [
    "CBPE_ASSUMPTIONS",
    "FALLBACK_REASONS",
    "METRIC_NAMES",
    "MIN_CBPE_ROWS",
    "NO_PROFILE",
    "HealthReport",
    "health_report",
    "health_series",
    "portfolio_health",
    "rank_fields",
    "trouble_score",
]


METRIC_NAMES: tuple[str, ...] = (
    "traffic",
    "previous_traffic",
    "rows",
    "latency_p50_ms",
    "latency_p99_ms",
    "error_rate",
    "fallback_rate",
    *(f"fallback_rate_{r}" for r in FALLBACK_REASONS),
    "shadow_dropped",
    "drifted_fields",
    "drift_share",
    "prediction_drift",
    "labeled",
    "performance",
    "estimated_performance",
    "null_rate_max_change",
)
"""Every key of :attr:`HealthReport.metrics`, the numbers alert rules can use."""

NO_PROFILE = "no reference profile"
MIN_CBPE_ROWS = 30
"""Fewer unlabeled live rows than this give no CBPE estimate (too noisy to alert on)."""
REFERENCE_ROWS = 10_001
"""Rows of the synthetic reference built from a profile: one more than SciPy's limit for the
exact KS p-value, so ``ks_2samp`` uses its asymptotic p-value instead of the exact O(n·m) one
(seconds per field) whenever the profile has more than 10,000 rows."""
PREDICTION_DRIFT_THRESHOLD = 0.1  # Evidently's default for Jensen-Shannon


@dataclass(frozen=True)
class HealthReport:
    """The health of one model over ``[start, end)``.

    Attributes:
        model: the model name.
        start, end: the window (``end`` excluded).
        metrics: the flat numbers of :data:`METRIC_NAMES` (``None`` where undefined, e.g.
            rates without traffic or drift without a reference profile).
        previous_traffic: requests in the window of the same length before ``start``.
        traffic_by_role: ``{role: {"requests": n, "rows": n}}``, shadows included.
        live_ref: the version that answered most live requests (``name@N``), if any.
        drift: the input fields ranked, most drifted first (dicts of drift statistics).
        drift_note: why there are no drift numbers (e.g. ``"no reference profile"``).
        prediction: drift statistics of the output against the profile, if any.
        performance: ``{"metric", "value", "labeled"}`` when labels exist.
        cbpe: the CBPE estimate (with its assumptions) for probability outputs.
        output_kind: ``probability``, ``score``, ``label`` or ``items`` (``None`` if unknown).
        notes: how numbers were computed (sample sizes, sources).
        feature_ages: findings of features served much fresher or staler than the live
            version was trained on (``flotilla.audit.compare_feature_ages``).
    """

    model: str
    start: datetime
    end: datetime
    metrics: dict[str, float | None]
    previous_traffic: int = 0
    traffic_by_role: dict[str, dict[str, int]] = field(default_factory=dict)
    live_ref: str | None = None
    drift: list[dict[str, Any]] = field(default_factory=list)
    drift_note: str | None = None
    prediction: dict[str, Any] | None = None
    performance: dict[str, Any] | None = None
    cbpe: dict[str, Any] | None = None
    output_kind: str | None = None
    notes: list[str] = field(default_factory=list)
    feature_ages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``no traffic``, ``trouble`` (score ≥ 0.5) or ``ok``."""
        if not self.metrics.get("traffic"):
            return "no traffic"
        return "trouble" if self.trouble_score >= 0.5 else "ok"

    @property
    def trouble_score(self) -> float:
        """How much trouble the model is in; see :func:`trouble_score`."""
        return trouble_score(self.metrics)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``--json``)."""
        return {
            "model": self.model,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "status": self.status,
            "trouble_score": self.trouble_score,
            "metrics": dict(self.metrics),
            "previous_traffic": self.previous_traffic,
            "traffic_by_role": self.traffic_by_role,
            "live_ref": self.live_ref,
            "output_kind": self.output_kind,
            "drift": self.drift,
            "drift_note": self.drift_note,
            "prediction": self.prediction,
            "performance": self.performance,
            "cbpe": self.cbpe,
            "feature_ages": self.feature_ages,
            "notes": list(self.notes),
        }


def trouble_score(metrics: Mapping[str, float | None]) -> float:
    """A sortable measure of trouble from the flat metrics (0 is healthy).

    ``2·fallback_rate + 2·error_rate + drift_share + null_rate_max_change
    + 0.5·[prediction_drift ≥ 0.1] + 1·[no traffic now but traffic in the previous window]``.
    Serving failures weigh double because users feel them now; drift and null-rate changes
    are early warnings. Missing numbers count as 0.
    """

    def num(name: str) -> float:
        value = metrics.get(name)
        return 0.0 if value is None or math.isnan(value) else float(value)

    score = 2.0 * num("fallback_rate") + 2.0 * num("error_rate")
    score += num("drift_share") + num("null_rate_max_change")
    if num("prediction_drift") >= PREDICTION_DRIFT_THRESHOLD:
        score += 0.5
    if num("traffic") == 0 and num("previous_traffic") > 0:
        score += 1.0
    return score


def _aware(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime):
        raise ConfigError(f"The '{name}' of a health report must be a datetime. Got {moment!r}.")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _check_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    start, end = _aware(start, "start"), _aware(end, "end")
    if end <= start:
        raise ConfigError(
            f"The window of a health report must end after it starts. Got start={start} "
            f"and end={end} instead."
        )
    return start, end


def health_report(
    store: RecordStore,
    model: str,
    *,
    start: datetime,
    end: datetime,
    registry: Any = None,
    outcomes: OutcomeStore | None = None,
    reference: Mapping[str, Any] | None = None,
    shadow_dropped: int | None = None,
    output_kind: str | None = None,
    sample_rows: int = 50_000,
) -> HealthReport:
    """The health of ``model`` over ``[start, end)`` computed from its records.

    Args:
        store: the prediction records.
        model: the model name.
        start, end: the window (naive datetimes are UTC; ``end`` excluded).
        registry: where to find the live version's reference profile, signature and task
            (anything with ``get_profile``, ``get_version`` and ``get_model``); optional.
        outcomes: the outcome store, for performance on labels.
        reference: a profile dict to compare with instead of the registry's.
        shadow_dropped: shadow jobs dropped in the window, when the caller knows it (the
            records only hold shadows that ran, so drops come from the gateway's counter);
            ``None`` reports it as unknown.
        output_kind: force the output kind instead of the signature's (or the guess from
            the records).
        sample_rows: rows sampled (reservoir) for drift.

    Returns:
        A :class:`HealthReport`.

    Raises:
        ConfigError: a bad window or parameter.

    Example:
        >>> report = health_report(store, "churn", start=t0, end=t1)  # doctest: +SKIP
        >>> report.metrics["fallback_rate"]  # doctest: +SKIP
        0.3
    """
    start, end = _check_window(start, end)
    if isinstance(sample_rows, bool) or not isinstance(sample_rows, int) or sample_rows < 1:
        raise ConfigError(f"The 'sample_rows' must be a positive integer. Got {sample_rows!r}.")
    if output_kind is not None and output_kind not in OUTPUT_KINDS:
        raise ConfigError(
            f"The 'output_kind' must be one of {', '.join(OUTPUT_KINDS)}. Got {output_kind!r}."
        )
    con = data.connect(store, model)
    try:
        window = data.Window(model, start, end)
        serving = data.serving_stats(con, window, FALLBACK_REASONS)
        previous = data.request_count(con, data.Window(model, start - (end - start), start))
        metrics: dict[str, float | None] = dict.fromkeys(METRIC_NAMES)
        metrics.update(serving.metrics)
        metrics["previous_traffic"] = float(previous)
        metrics["shadow_dropped"] = None if shadow_dropped is None else float(shadow_dropped)
        notes: list[str] = []
        live_ref = data.live_ref(con, window)
        kind = (
            output_kind
            or data.output_kind(registry, model, live_ref)
            or data.guess_kind(con, window)
        )
        profile, source = _reference(registry, model, live_ref, reference)
        drift_rows: list[dict[str, Any]] = []
        drift_note: str | None = None
        prediction: dict[str, Any] | None = None
        if serving.traffic == 0:
            drift_note = "no traffic"
        elif profile is None:
            drift_note = NO_PROFILE
        else:
            drift_rows, prediction, sampled = _drift(con, window, profile, metrics, sample_rows)
            notes.append(f"drift: {sampled} sampled rows vs the reference profile of {source}")
        performance, cbpe = _performance(con, window, outcomes, kind, registry, metrics)
        if cbpe is not None:
            notes.append("estimated performance: CBPE expected ROC AUC of the unlabeled live rows")
        ages = _feature_ages(store, registry, model, live_ref)
        return HealthReport(
            model=model,
            start=start,
            end=end,
            metrics=metrics,
            previous_traffic=previous,
            traffic_by_role=serving.by_role,
            live_ref=live_ref,
            drift=drift_rows,
            drift_note=drift_note,
            prediction=prediction,
            performance=performance,
            cbpe=cbpe,
            output_kind=kind,
            notes=notes,
            feature_ages=ages,
        )
    finally:
        con.close()


def _feature_ages(
    store: RecordStore, registry: Any, model: str, live_ref: str | None
) -> list[dict[str, Any]]:
    """Serving feature ages against the live version's training ages (kept in its lineage)."""
    if registry is None or live_ref is None:
        return []
    try:
        version = registry.get_version(live_ref)
    except FlotillaError:  # a ref the registry does not know: nothing to compare with
        return []
    lineage = getattr(version, "lineage", None) or {}
    training = lineage.get("training_feature_ages")
    if not training:
        return []
    serving = store.feature_ages(model)
    if not serving:
        return []
    report = compare_feature_ages({f: v["percentiles"] for f, v in training.items()}, serving)
    return [f.to_dict() for f in report.findings]


def _reference(
    registry: Any, model: str, live_ref: str | None, reference: Mapping[str, Any] | None
) -> tuple[Mapping[str, Any] | None, str | None]:
    if reference is not None:
        return reference, "the given reference"
    if registry is None:
        return None, None
    ref = live_ref or data.deployed_live_ref(registry, model)
    version = data.version_number(ref)
    if version is None:
        return None, None
    try:
        profile = registry.get_profile(model, version)
    except FlotillaError:
        return None, None
    return profile, f"{model}@{version}"


def _drift(
    con: duckdb.DuckDBPyConnection,
    window: data.Window,
    profile: Mapping[str, Any],
    metrics: dict[str, float | None],
    sample_rows: int,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None, int]:
    inputs, output = data.profile_fields(profile)
    out_kind = None if output is None else str(profile["fields"][output].get("kind"))
    sample = data.drift_sample(con, window, inputs, out_kind, sample_rows)
    ref_table = profile_to_reference(profile, max_rows=REFERENCE_ROWS)
    report = compare_columns(ref_table, sample.select(list(inputs)), fields=list(inputs))
    ranked = rank_fields(report)
    decided = [f for f in report.fields if f.drifted is not None]
    metrics["drifted_fields"] = float(len(report.drifted_fields))
    metrics["drift_share"] = len(report.drifted_fields) / len(decided) if decided else None
    changes = [
        abs(f.null_rate_current - f.null_rate_reference)
        for f in report.fields
        if f.null_rate_current is not None and f.null_rate_reference is not None
    ]
    metrics["null_rate_max_change"] = max(changes) if changes else None
    prediction = None
    if output is not None:
        live = sample.filter(data.is_live(sample)).select([data.OUTPUT_COLUMN])
        live = live.rename_columns([output])
        out_report = compare_columns(ref_table, live, fields=[output])
        prediction = out_report.fields[0].to_dict()
        metrics["prediction_drift"] = out_report.fields[0].jensen_shannon
    return ranked, prediction, sample.num_rows


def rank_fields(report: DriftReport) -> list[dict[str, Any]]:
    """The fields of a drift report as dicts, drifted first, then by Jensen-Shannon distance."""

    def key(d: dict[str, Any]) -> tuple[int, float, float, str]:
        js = d.get("jensen_shannon")
        null_change = abs((d.get("null_rate_current") or 0) - (d.get("null_rate_reference") or 0))
        return (0 if d.get("drifted") else 1, -(js or 0.0), -null_change, d["name"])

    return sorted((f.to_dict() for f in report.fields), key=key)


def _performance(
    con: duckdb.DuckDBPyConnection,
    window: data.Window,
    outcomes: OutcomeStore | None,
    kind: str | None,
    registry: Any,
    metrics: dict[str, float | None],
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    performance = None
    labeled_rel = None
    metrics["labeled"] = 0.0
    if outcomes is not None and data.has_outcomes(outcomes, window.model):
        labeled_rel = outcomes.joined(window.model, since=window.start)
        result = data.labeled_performance(labeled_rel, window, kind, data.items_k(registry, window))
        if result is not None:
            performance = result
            metrics["labeled"] = float(result["labeled"])
            metrics["performance"] = result["value"]
    cbpe = None
    if kind == "probability":
        probs = data.unlabeled_probabilities(con, window, labeled_rel)
        if probs.size >= MIN_CBPE_ROWS:
            est = estimate_performance(probs)
            cbpe = est.to_dict()
            metrics["estimated_performance"] = est.roc_auc
    return performance, cbpe


def portfolio_health(
    store: RecordStore,
    models: Sequence[str] | None,
    *,
    start: datetime,
    end: datetime,
    registry: Any = None,
    outcomes: OutcomeStore | None = None,
    shadow_dropped: Mapping[str, int] | None = None,
    sample_rows: int = 50_000,
    workers: int = 1,
) -> list[HealthReport]:
    """Health reports of several models, most trouble first.

    Args:
        models: the model names; ``None`` means every model of the registry plus every
            model with records in this window or the previous one.
        shadow_dropped: shadow drops per model, when known.
        workers: models computed at once (threads; each report has its own DuckDB
            connection, and DuckDB and NumPy release the GIL for the heavy parts).

    A model without records in the window is reported with ``traffic`` 0 (status
    ``no traffic``); :attr:`HealthReport.previous_traffic` tells whether it had traffic.
    """
    start, end = _check_window(start, end)
    names = list(models) if models is not None else _all_models(store, registry, start, end)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"The 'workers' must be a positive integer. Got {workers!r} instead.")
    drops = shadow_dropped or {}

    def one(name: str) -> HealthReport:
        return health_report(
            store,
            name,
            start=start,
            end=end,
            registry=registry,
            outcomes=outcomes,
            shadow_dropped=drops.get(name),
            sample_rows=sample_rows,
        )

    if workers == 1 or len(names) < 2:
        reports = [one(name) for name in names]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="health") as pool:
            reports = list(pool.map(one, names))
    return sorted(reports, key=lambda r: (-r.trouble_score, r.model))


def _all_models(store: RecordStore, registry: Any, start: datetime, end: datetime) -> list[str]:
    names = set(data.models_with_records(store, start - (end - start), end))
    if registry is not None:
        names.update(m.name for m in registry.list_models())
    return sorted(names)


def health_series(
    store: RecordStore,
    model: str,
    *,
    start: datetime,
    end: datetime,
    step: timedelta,
    registry: Any = None,
    reference: Mapping[str, Any] | None = None,
    sample_rows: int = 5_000,
    max_steps: int = 500,
) -> list[dict[str, Any]]:
    """Traffic, fallback rate, error rate and drift share per ``step`` over ``[start, end)``.

    Returns one dict per step: ``start``, ``end`` (ISO text), ``traffic``, ``fallback_rate``,
    ``error_rate`` and ``drift_share`` (``None`` without traffic or reference profile).
    Drift per step uses a reservoir sample of ``sample_rows`` rows.
    """
    start, end = _check_window(start, end)
    if not isinstance(step, timedelta) or step <= timedelta(0):
        raise ConfigError(f"The 'step' of a health series must be positive. Got {step!r}.")
    n_steps = math.ceil((end - start) / step)
    if n_steps > max_steps:
        raise ConfigError(
            f"The health series would have {n_steps} steps; the most is {max_steps}. "
            "Use a longer step or a shorter window."
        )
    con = data.connect(store, model)
    try:
        window = data.Window(model, start, end)
        counts = data.step_counts(con, window, step)
        profile, _ = _reference(registry, model, data.live_ref(con, window), reference)
        inputs = data.profile_fields(profile)[0] if profile is not None else {}
        ref_table = (
            None if profile is None else profile_to_reference(profile, max_rows=REFERENCE_ROWS)
        )
        out: list[dict[str, Any]] = []
        for i in range(n_steps):
            lo, hi = start + i * step, min(start + (i + 1) * step, end)
            traffic, fallbacks, errors = counts.get(i, (0, 0, 0))
            share = None
            if traffic and ref_table is not None and inputs:
                sample = data.drift_sample(
                    con, data.Window(model, lo, hi), inputs, None, sample_rows
                )
                report = compare_columns(
                    ref_table, sample.select(list(inputs)), fields=list(inputs)
                )
                decided = [f for f in report.fields if f.drifted is not None]
                share = len(report.drifted_fields) / len(decided) if decided else None
            out.append(
                {
                    "start": lo.isoformat(),
                    "end": hi.isoformat(),
                    "traffic": traffic,
                    "fallback_rate": fallbacks / traffic if traffic else None,
                    "error_rate": errors / traffic if traffic else None,
                    "drift_share": share,
                }
            )
    finally:
        con.close()
    return out

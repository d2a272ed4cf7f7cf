"""Champion vs challenger on the same requests, judged by delayed ground truth: :func:`compare`.

The live (champion) and shadow (challenger) predictions of the same request row are joined
with their outcome by :meth:`flotilla.records.OutcomeStore.joined` in DuckDB; only the numeric
columns needed (or, for ranking metrics, the JSON lists) come back, as NumPy arrays. On them:
each model's metric with a confidence interval, the paired difference with a paired-bootstrap
interval, the always-valid mSPRT on the per-request loss differences, serving statistics from
the prediction records, label coverage per day, the metric per day, and a verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import duckdb
import numpy as np
import orjson
from numpy.typing import NDArray

from flotilla.clock import SystemClock
from flotilla.errors import ConfigError, RecordsError
from flotilla.evaluation import verdict as _verdict
from flotilla.evaluation.intervals import evaluate, paired_bootstrap
from flotilla.evaluation.metrics import higher_is_better, metric_value, parse_metric, per_row_loss
from flotilla.portfolio import PromotionPolicy
from flotilla.types import Clock

__all__ = ["Comparison", "Estimate", "OutcomeSource", "compare"]

_DAY_S = 86_400.0
_BOOT_ROWS = 50_000  # bootstrap on at most this many rows; wider data: rescaled interval
_AUC_BOOT_ROWS = 2_000  # AUC's bootstrap ranks every resample: fewer rows, fewer resamples
_AUC_N_BOOT = 500
_DELONG_ROWS = 200_000
_DAY_ROWS = 100_000  # rows per day for the per-day metric (the chart)
_FAILURES = ("error", "timeout", "invalid_output")


class OutcomeSource(Protocol):
    """What :func:`compare` reads (``flotilla.records.OutcomeStore`` has it)."""

    @property
    def records(self) -> Any:
        """A ``RecordStore`` (``connect(model)`` gives views ``predictions``/``outcomes``)."""
        ...

    def joined(
        self, model: str, *, since: datetime | None = None, columns: Any = None
    ) -> duckdb.DuckDBPyRelation:
        """Labeled prediction rows of every role with ``label``/``label_value``/``observed_at``."""
        ...


@dataclass(frozen=True)
class Estimate:
    """A value with its confidence interval (``nan`` when undefined, ``None`` in JSON)."""

    value: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan

    def to_dict(self) -> dict[str, float | None]:
        return {k: _num(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Comparison:
    """The evidence for (or against) replacing the champion by the challenger.

    Attributes:
        model, champion, challenger, metric: what was compared (``challenger`` ``None``
            when no shadow predictions were found).
        labeled_pairs: request rows answered by both and labeled.
        champion_metric, challenger_metric: each model's metric with a 95% interval.
        difference: challenger minus champion (in the metric's units) with a paired
            bootstrap 95% interval.
        improvement: the same, signed so that positive means the challenger is better.
        sequential: the mSPRT on ``loss_champion - loss_challenger`` (always valid).
        latency: p50/p99 milliseconds of each, per request.
        rates: requests, error rate and fallback rate of each.
        label_coverage: per day: predictions, labeled, coverage, pairs.
        over_time: per day: pairs and each model's metric.
        days: days since the challenger's first shadow prediction.
        verdict: ``promote``, ``keep_shadowing`` or ``reject``.
        needed: what ``keep_shadowing`` still waits for (labeled pairs, days).
        reasons: why, in words.
        policy: the promotion policy applied.
    """

    model: str
    champion: str | None
    challenger: str | None
    metric: str
    labeled_pairs: int
    champion_metric: Estimate
    challenger_metric: Estimate
    difference: Estimate
    improvement: Estimate
    sequential: dict[str, Any]
    latency: dict[str, dict[str, float | None]]
    rates: dict[str, dict[str, Any]]
    label_coverage: list[dict[str, Any]]
    over_time: list[dict[str, Any]]
    days: float
    verdict: str
    needed: dict[str, Any]
    reasons: list[str]
    policy: dict[str, Any]
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (the ``--json`` output of ``flotilla compare``)."""
        return {
            "model": self.model,
            "champion": self.champion,
            "challenger": self.challenger,
            "metric": self.metric,
            "higher_is_better": higher_is_better(self.metric),
            "labeled_pairs": self.labeled_pairs,
            "champion_metric": self.champion_metric.to_dict(),
            "challenger_metric": self.challenger_metric.to_dict(),
            "difference": self.difference.to_dict(),
            "improvement": self.improvement.to_dict(),
            "sequential": self.sequential,
            "latency": self.latency,
            "rates": self.rates,
            "label_coverage": self.label_coverage,
            "over_time": self.over_time,
            "days": round(self.days, 4),
            "verdict": self.verdict,
            "needed": self.needed,
            "reasons": self.reasons,
            "policy": self.policy,
            "generated_at": self.generated_at.isoformat(),
        }


@dataclass
class Pairs:
    """Labeled request rows answered by both models, ordered by label arrival."""

    y: Any
    champion: Any
    challenger: Any
    event_s: NDArray[np.float64]
    left_out: int = 0

    @property
    def n(self) -> int:
        return len(self.event_s)


def compare(
    outcomes: OutcomeSource,
    model: str,
    *,
    challenger: str | None = None,
    champion: str | None = None,
    since: datetime | None = None,
    metric: str | None = None,
    policy: PromotionPolicy | None = None,
    clock: Clock | None = None,
    seed: int = 0,
) -> Comparison:
    """Compare the live model of ``model`` with a shadow on the same, labeled requests.

    Args:
        outcomes: the outcome store (``flotilla.records.OutcomeStore``).
        model: the model's name.
        challenger: the shadow's exact reference (``churn@4``); default the shadow with
            the most prediction records in the window.
        champion: the live version's exact reference; default the version that answered
            the latest live request.
        since: only requests that arrived at or after this time.
        metric: the metric (default the policy's, else ``auc``).
        policy: the promotion policy (default :class:`~flotilla.portfolio.PromotionPolicy`).
        clock: wall clock for "days of shadowing" (default the system clock).
        seed: seed of the bootstrap resampling.

    Returns:
        The :class:`Comparison`; with no labeled pairs its verdict is ``keep_shadowing``
        ("not enough evidence"), never an error.

    Raises:
        ConfigError: an unknown metric, or labels/predictions that the metric cannot use.

    Example:
        >>> c = compare(OutcomeStore(settings.records), "churn", metric="auc")  # doctest: +SKIP
        >>> c.verdict, c.needed                                               # doctest: +SKIP
        ('keep_shadowing', {'labeled_pairs': 412, 'days': 2.5})
    """
    policy = policy or PromotionPolicy()
    spec = parse_metric(metric or policy.metric)
    name = str(spec)
    now = (clock or SystemClock()).now()
    since = _aware(since)
    con = outcomes.records.connect(model)
    try:
        refs = _refs(con, since)
        champion = champion or refs.latest_live()
        challenger = challenger or refs.busiest_shadow()
        first_shadow = refs.first_shadow(challenger)
        serving = _serving(con, champion, challenger, since)
        predicted = _predictions_per_day(con, champion, since)
    finally:
        con.close()
    joined = outcomes.joined(model, since=since, columns=_JOINED_COLUMNS)
    pairs, labeled = _pull_pairs(joined, champion, challenger, name)
    days = 0.0 if first_shadow is None else max(0.0, (now - first_shadow).total_seconds() / _DAY_S)
    stats = _judge(name, pairs, policy=policy, days=days, seed=seed)
    return Comparison(
        model=model,
        champion=champion,
        challenger=challenger,
        metric=name,
        labeled_pairs=pairs.n,
        champion_metric=stats.champion,
        challenger_metric=stats.challenger,
        difference=stats.difference,
        improvement=stats.improvement,
        sequential=stats.sequential,
        latency=serving["latency"],
        rates=serving["rates"],
        label_coverage=_coverage(predicted, labeled, pairs),
        over_time=_over_time(name, pairs, np.random.default_rng(seed)),
        days=days,
        verdict=stats.verdict,
        needed=stats.needed,
        reasons=_reasons(champion, challenger, pairs, stats.reasons),
        policy=policy.to_dict(),
        generated_at=now,
    )


# -- statistics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Judged:
    champion: Estimate
    challenger: Estimate
    difference: Estimate
    improvement: Estimate
    sequential: dict[str, Any]
    verdict: str
    needed: dict[str, Any]
    reasons: list[str]


def _verdict_policy(policy: Any) -> _verdict.PromotionPolicy:
    if isinstance(policy, _verdict.PromotionPolicy):
        return policy
    data = {
        k: v for k, v in policy.to_dict().items() if k in _verdict.PromotionPolicy.__annotations__
    }
    return _verdict.PromotionPolicy(**data)


def _judge(metric: str, pairs: Pairs, *, policy: Any, days: float, seed: int) -> _Judged:
    """Metrics with intervals, the paired difference, the mSPRT and the verdict."""
    rng = np.random.default_rng(seed)
    try:
        champ = _estimate(metric, pairs.y, pairs.champion, rng)
        chall = _estimate(metric, pairs.y, pairs.challenger, rng)
        diff = _paired(metric, pairs, chall.value - champ.value, rng)
    except ConfigError as exc:
        raise ConfigError(
            f"The metric {metric!r} cannot be computed on the labeled pairs: {exc} "
            "Pick a metric that suits the labels and predictions (--metric)."
        ) from None
    better = higher_is_better(metric)
    improvement = diff if better else Estimate(-diff.value, -diff.ci_high, -diff.ci_low)
    reasons: list[str] = []
    try:
        d = per_row_loss(metric, pairs.y, pairs.champion) - per_row_loss(
            metric, pairs.y, pairs.challenger
        )
    except ConfigError as exc:
        reasons.append(
            f"The sequential test cannot use these predictions ({exc}), so no verdict other "
            "than keep_shadowing is possible; pick a metric whose per-request loss they "
            "support (e.g. --metric accuracy or rmse)."
        )
        d = np.zeros(0)
    found = _verdict.decide(_verdict_policy(policy), differences=d, days=days)
    needed = {"labeled_pairs": found.needed_pairs, "days": _num(found.needed_days)}
    if pairs.n == 0:
        reasons.append("Not enough evidence: no labeled pairs yet.")
    if not reasons:
        reasons = [r[:1].upper() + r[1:] for r in found.reasons]
    elif pairs.n:
        needed = {"labeled_pairs": None, "days": None}
    return _Judged(
        champion=champ,
        challenger=chall,
        difference=diff,
        improvement=improvement,
        sequential=_sequential(found, d.size),
        verdict=found.verdict,
        needed=needed,
        reasons=reasons,
    )


def _sequential(found: _verdict.Verdict, n: int) -> dict[str, Any]:
    test = found.promote_test
    if test is None:
        return {"n": n, "p_value": 1.0, "reject": False, "direction": "none", "test": "mSPRT"}
    out: dict[str, Any] = {"test": "mSPRT", **test.to_dict()}
    out["reject"] = bool(test.reject and test.direction == "challenger")
    if found.reject_test is not None:
        back = found.reject_test
        out["champion_better"] = {
            "p_value": back.p_value,
            "reject": bool(back.reject and back.direction == "champion"),
        }
    return out


def _subsample(n: int, cap: int, rng: np.random.Generator) -> NDArray[np.intp] | None:
    return None if n <= cap else np.sort(rng.choice(n, size=cap, replace=False))


def _estimate(metric: str, y: Any, pred: Any, rng: np.random.Generator) -> Estimate:
    """The metric on every row; its interval on at most a cap of rows, rescaled to ``n``."""
    n = len(y)
    if n == 0:
        return Estimate()
    auc = parse_metric(metric).name == "auc"
    idx = _subsample(n, _DELONG_ROWS if auc else _BOOT_ROWS, rng)
    seed = int(rng.integers(2**31))
    if idx is None:
        r = evaluate(metric, y, pred, seed=seed)
        return Estimate(r.value, r.lo, r.hi)
    value = metric_value(metric, y, pred)
    r = evaluate(metric, _take(y, idx), _take(pred, idx), seed=seed)
    scale = math.sqrt(len(idx) / n)
    return Estimate(value, value - (r.value - r.lo) * scale, value + (r.hi - r.value) * scale)


def _paired(metric: str, pairs: Pairs, diff: float, rng: np.random.Generator) -> Estimate:
    """Challenger minus champion (``diff`` on all rows) with a paired-bootstrap interval,
    computed on at most a cap of rows and then rescaled to ``n``."""
    n = pairs.n
    if n == 0:
        return Estimate()
    auc = parse_metric(metric).name == "auc"
    cap, n_boot = (_AUC_BOOT_ROWS, _AUC_N_BOOT) if auc else (_BOOT_ROWS, 1000)
    idx = _subsample(n, cap, rng)
    seed = int(rng.integers(2**31))
    if idx is None:
        value, lo, hi = paired_bootstrap(
            metric, pairs.y, pairs.challenger, pairs.champion, n_boot, seed
        )
        return Estimate(value, lo, hi)
    y = _take(pairs.y, idx)
    sub, lo, hi = paired_bootstrap(
        metric, y, _take(pairs.challenger, idx), _take(pairs.champion, idx), n_boot, seed
    )
    scale = math.sqrt(len(idx) / n)
    return Estimate(diff, diff - (sub - lo) * scale, diff + (hi - sub) * scale)


# -- SQL over the records ----------------------------------------------------------------------


def _on(rel: duckdb.DuckDBPyRelation, sql: str) -> duckdb.DuckDBPyRelation:
    """Run ``sql`` over ``rel`` (named ``j`` in the SQL)."""
    out = rel.query("j", sql)
    if out is None:  # only for statements that return nothing
        raise RecordsError(f"The evaluation query returned no relation: {sql}")
    return out


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...] | None:
    rows = con.sql(sql).fetchall()
    return rows[0] if rows else None


def _lit(text: str | None) -> str:
    return "NULL" if text is None else "'" + text.replace("'", "''") + "'"


def _since(since: datetime | None, column: str = "event_time") -> str:
    return "" if since is None else f" AND {column} >= TIMESTAMPTZ {_lit(since.isoformat())}"


@dataclass(frozen=True)
class _Refs:
    """Per (role, ref) of the window: records, first and last event time (epoch seconds)."""

    rows: list[tuple[str, str, int, float, float]]

    def latest_live(self) -> str | None:
        live = [r for r in self.rows if r[0] == "live"]
        return max(live, key=lambda r: r[4])[1] if live else None

    def busiest_shadow(self) -> str | None:
        shadows = [r for r in self.rows if r[0] == "shadow"]
        return max(shadows, key=lambda r: (r[2], r[4]))[1] if shadows else None

    def first_shadow(self, ref: str | None) -> datetime | None:
        found = [r[3] for r in self.rows if r[0] == "shadow" and r[1] == ref]
        return datetime.fromtimestamp(found[0], UTC) if found else None


def _refs(con: duckdb.DuckDBPyConnection, since: datetime | None) -> _Refs:
    sql = (
        "SELECT role, ref, count(*), epoch(min(event_time)), epoch(max(event_time)) "
        "FROM predictions WHERE role IN ('live', 'shadow') AND ref IS NOT NULL"
        + _since(since)
        + " GROUP BY role, ref"
    )
    rows = con.sql(sql).fetchall()
    return _Refs([(str(a), str(b), int(n), float(lo), float(hi)) for a, b, n, lo, hi in rows])


def _failed(ref: str | None) -> str:
    """SQL: the reasons of a request name a failure (error/timeout/invalid output) of ``ref``."""
    if ref is None:
        return "false"
    marks = [_lit(f'%"ref":{orjson.dumps(ref).decode()},"reason":"{r}"%') for r in _FAILURES]
    return "(degraded AND (" + " OR ".join(f"reasons LIKE {m}" for m in marks) + "))"


def _serving(
    con: duckdb.DuckDBPyConnection,
    champion: str | None,
    challenger: str | None,
    since: datetime | None,
) -> dict[str, Any]:
    """Latency percentiles and error/fallback rates per request (row 0 of each request)."""
    c, s = _lit(champion), _lit(challenger)
    sql = f"""
        SELECT
          count(*) FILTER (role <> 'shadow'),
          count(*) FILTER (role <> 'shadow' AND degraded),
          count(*) FILTER (role <> 'shadow' AND {_failed(champion)}),
          quantile_cont(latency_ms, [0.5, 0.99]) FILTER (role = 'live' AND ref = {c}),
          count(*) FILTER (role = 'shadow' AND ref = {s}),
          count(*) FILTER (role = 'shadow' AND ref = {s} AND degraded),
          count(*) FILTER (role = 'shadow' AND ref = {s} AND {_failed(challenger)}),
          quantile_cont(latency_ms, [0.5, 0.99]) FILTER (role = 'shadow' AND ref = {s})
        FROM predictions WHERE row = 0 {_since(since)}
    """
    row = _one(con, sql)
    assert row is not None  # an aggregate always returns one row
    n_c, deg_c, err_c, lat_c, n_s, deg_s, err_s, lat_s = row
    return {
        "latency": {"champion": _quantiles(lat_c), "challenger": _quantiles(lat_s)},
        "rates": {
            "champion": _rates(n_c, err_c, deg_c),
            "challenger": _rates(n_s, err_s, deg_s),
        },
    }


def _quantiles(values: list[float] | None) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None}
    return {"p50_ms": _num(values[0]), "p99_ms": _num(values[1])}


def _rates(n: int, errors: int, degraded: int) -> dict[str, Any]:
    """Requests, error rate and fallback rate (a shadow's "fallback" is any failed call)."""
    return {
        "requests": int(n),
        "error_rate": None if not n else errors / n,
        "fallback_rate": None if not n else degraded / n,
    }


def _predictions_per_day(
    con: duckdb.DuckDBPyConnection, champion: str | None, since: datetime | None
) -> dict[str, int]:
    sql = (
        "SELECT CAST(event_time AS DATE)::VARCHAR AS d, count(*) FROM predictions "
        f"WHERE role = 'live' AND ref = {_lit(champion)}{_since(since)} GROUP BY 1"
    )
    rows = con.sql(sql).fetchall()
    return {str(d): int(n) for d, n in rows}


_JOINED_COLUMNS = ("role", "ref", "degraded", "prediction", "prediction_value")


def _pull_pairs(
    joined: duckdb.DuckDBPyRelation, champion: str | None, challenger: str | None, metric: str
) -> tuple[Pairs, dict[str, int]]:
    """The labeled pairs (NumPy arrays, JSON lists for ranking metrics) by label arrival, and
    the champion's labeled rows per day; one pass over the joined relation."""
    ranking = parse_metric(metric).name in ("ndcg", "hit_rate")
    if ranking:
        cols = "c.label AS y, c.prediction AS pc, s.prediction AS ps"
        keep = "c.prediction <> 'null' AND s.prediction <> 'null'"
        wanted = "label, prediction"
    else:
        cols = "c.label_value AS y, c.prediction_value AS pc, s.prediction_value AS ps"
        keep = "c.label_value IS NOT NULL AND c.prediction_value IS NOT NULL "
        keep += "AND s.prediction_value IS NOT NULL"
        wanted = "label_value, prediction_value"
    c, s = _lit(champion), _lit(challenger)
    sql = f"""
        WITH jj AS MATERIALIZED (
               SELECT request_id, row, role, {wanted}, event_time, observed_at FROM j
               WHERE (role = 'live' AND ref = {c})
                  OR (role = 'shadow' AND ref = {s} AND NOT degraded)),
             c AS (SELECT * FROM jj WHERE role = 'live'),
             s AS (SELECT * FROM jj WHERE role = 'shadow')
        SELECT {cols}, epoch(c.event_time) AS te,
               (s.request_id IS NOT NULL AND {keep}) AS usable,
               (s.request_id IS NOT NULL) AS paired
        FROM c LEFT JOIN s ON c.request_id = s.request_id AND c.row = s.row
        ORDER BY c.observed_at, c.request_id, c.row
    """
    data = _on(joined, sql).fetchnumpy()
    te = np.asarray(data["te"], dtype=np.float64)
    days, counts = np.unique(np.floor(te / _DAY_S).astype(np.int64), return_counts=True)
    labeled = {_iso_day(int(d)): int(n) for d, n in zip(days, counts, strict=True)}
    usable = np.asarray(data["usable"], dtype=bool)
    left_out = int((np.asarray(data["paired"], dtype=bool) & ~usable).sum())
    y, pc, ps = (np.asarray(data[k])[usable] for k in ("y", "pc", "ps"))
    if ranking:
        y, pc, ps = ([orjson.loads(v) for v in arr] for arr in (y, pc, ps))
    else:
        y, pc, ps = (np.asarray(a, dtype=np.float64) for a in (y, pc, ps))
    return Pairs(y, pc, ps, te[usable], left_out), labeled


# -- per-day views ------------------------------------------------------------------------------


def _days(pairs: Pairs) -> NDArray[np.int64]:
    return np.floor(pairs.event_s / _DAY_S).astype(np.int64)


def _iso_day(day: int) -> str:
    return datetime.fromtimestamp(day * _DAY_S, UTC).date().isoformat()


def _coverage(
    predicted: dict[str, int], labeled: dict[str, int], pairs: Pairs
) -> list[dict[str, Any]]:
    days, counts = np.unique(_days(pairs), return_counts=True)
    paired = {_iso_day(int(d)): int(n) for d, n in zip(days, counts, strict=True)}
    out = []
    for day in sorted(set(predicted) | set(labeled)):
        n, k = predicted.get(day, 0), labeled.get(day, 0)
        out.append(
            {
                "date": day,
                "predictions": n,
                "labeled": k,
                "coverage": None if not n else k / n,
                "pairs": paired.get(day, 0),
            }
        )
    return out


def _over_time(metric: str, pairs: Pairs, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Each model's metric per day (on at most ``_DAY_ROWS`` random pairs of a day)."""
    if pairs.n == 0:
        return []
    days = _days(pairs)
    out = []
    for day in np.unique(days):
        idx = np.flatnonzero(days == day)
        count = len(idx)
        if count > _DAY_ROWS:
            idx = np.sort(rng.choice(idx, size=_DAY_ROWS, replace=False))
        y = _take(pairs.y, idx)
        out.append(
            {
                "date": _iso_day(int(day)),
                "pairs": count,
                "champion": _safe_metric(metric, y, _take(pairs.champion, idx)),
                "challenger": _safe_metric(metric, y, _take(pairs.challenger, idx)),
            }
        )
    return out


def _take(values: Any, idx: NDArray[np.intp]) -> Any:
    if isinstance(values, np.ndarray):
        return values[idx]
    return [values[i] for i in idx]


def _safe_metric(metric: str, y: Any, pred: Any) -> float | None:
    try:
        return _num(metric_value(metric, y, pred))
    except ConfigError:
        return None


def _reasons(
    champion: str | None, challenger: str | None, pairs: Pairs, judged: list[str]
) -> list[str]:
    out: list[str] = []
    if champion is None:
        out.append("No live predictions were recorded for this model in the window.")
    if challenger is None:
        out.append(
            "No shadow predictions were recorded for this model in the window; add a shadow "
            "to its deployment ('shadows: [{ref: MODEL@N, sample: 0.25}]')."
        )
    if pairs.left_out:
        out.append(
            f"{pairs.left_out} labeled pair(s) were left out because a label or a prediction "
            "is not usable by the metric (not numeric, or missing)."
        )
    return out + judged


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    out = float(value)
    return out if math.isfinite(out) else None

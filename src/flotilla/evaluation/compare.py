"""Champion vs challenger on the same requests, judged by delayed ground truth: :func:`compare`.

The live (champion) and shadow (challenger) answers to the same request row are paired with
their outcome by :meth:`flotilla.records.OutcomeStore.paired` (hash joins in DuckDB, back as
Arrow); only the numeric columns needed (or, for ranking metrics, the JSON lists) come back,
as NumPy arrays. On them: each model's metric with a confidence interval, the paired
difference with a paired-bootstrap interval, the always-valid mSPRT on the per-request loss
differences, serving statistics from the prediction records, label coverage per day, the
metric per day, and a verdict. The two models are judged in two threads, and the serving
statistics are queried meanwhile (NumPy and DuckDB release the GIL): 10 million pairs take
about 8 s on two cores.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from flotilla.clock import SystemClock
from flotilla.errors import ConfigError, RecordsError
from flotilla.evaluation import verdict as _verdict
from flotilla.evaluation.intervals import evaluate, paired_bootstrap
from flotilla.evaluation.metrics import (
    FloatArray,
    higher_is_better,
    metric_value,
    parse_metric,
    per_row_loss,
)
from flotilla.portfolio import PromotionPolicy
from flotilla.records import since_filter, sql_literal
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

    def paired(
        self,
        model: str,
        *,
        champion: str | None,
        challenger: str | None,
        since: datetime | None = None,
        numeric: bool = True,
    ) -> pa.Table:
        """Labeled live answers next to the shadow's, by label arrival (``label``,
        ``champion``, ``challenger``, ``event_s``, ``paired``)."""
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
    day: NDArray[np.int64]  # the live request's UTC day, days since 1970-01-01
    left_out: int = 0

    @property
    def n(self) -> int:
        return len(self.day)


def compare(
    outcomes: OutcomeSource,
    model: str,
    *,
    challenger: str | None = None,
    champion: str | None = None,
    since: datetime | None = None,
    metric: str | None = None,
    policy: PromotionPolicy | _verdict.PromotionPolicy | None = None,
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
        policy: the promotion policy (default :class:`~flotilla.portfolio.PromotionPolicy`;
            :class:`flotilla.evaluation.PromotionPolicy`, with ``alpha`` and ``tau``, too).
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
        if champion is None or challenger is None:  # the defaults come from the records
            refs = _refs(con, since)
            champion = champion or refs.latest_live()
            challenger = challenger or refs.busiest_shadow()
        ranking = spec.name in ("ndcg", "hit_rate")
        with ThreadPoolExecutor(max_workers=1) as pool:
            # DuckDB and NumPy release the GIL: the serving statistics are queried, and then
            # the chart drawn, while the pairs are joined and judged
            first = pool.submit(_first_shadow, con, challenger, since)
            side = pool.submit(_serving_and_days, con, champion, challenger, since)
            table = outcomes.paired(
                model, champion=champion, challenger=challenger, since=since, numeric=not ranking
            )
            pairs, labeled = _pull_pairs(table, ranking)
            del table
            chart = pool.submit(_over_time, name, pairs, np.random.default_rng(seed))
            days = _days_since(first.result(), now)
            stats = _judge(name, pairs, policy=policy, days=days, seed=seed)
            serving, predicted = side.result()
            over_time = chart.result()
    finally:
        con.close()
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
        over_time=over_time,
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
    auc = parse_metric(metric).name == "auc"
    one_cap, pair_cap = (_DELONG_ROWS, _AUC_BOOT_ROWS) if auc else (_BOOT_ROWS, _BOOT_ROWS)
    draws = [_draw(pairs.n, cap, rng) for cap in (one_cap, one_cap, pair_cap)]
    models = (pairs.champion, pairs.challenger)
    # NumPy's sorts and ufuncs release the GIL: both models' losses, then their metrics, run
    # in two threads while this one runs the sequential test on the losses
    with ThreadPoolExecutor(max_workers=2) as pool:
        losses = [pool.submit(_attempt, per_row_loss, metric, pairs.y, p) for p in models]
        metrics = [
            pool.submit(_attempt, _estimate, metric, pairs.y, p, draw)
            for p, draw in zip(models, draws[:2], strict=True)
        ]
        reasons, d = _differences(*(loss.result() for loss in losses))
        found = _verdict.decide(_verdict_policy(policy), differences=d, days=days)
        champ, chall = (m.result() for m in metrics)
    try:
        if isinstance(champ, ConfigError):
            raise champ
        if isinstance(chall, ConfigError):
            raise chall
        diff = _paired(metric, pairs, chall.value - champ.value, draws[2])
    except ConfigError as exc:
        raise ConfigError(
            f"The metric {metric!r} cannot be computed on the labeled pairs: {exc} "
            "Pick a metric that suits the labels and predictions (--metric)."
        ) from None
    better = higher_is_better(metric)
    improvement = diff if better else Estimate(-diff.value, -diff.ci_high, -diff.ci_low)
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


def _differences(
    loss_c: FloatArray | ConfigError, loss_s: FloatArray | ConfigError
) -> tuple[list[str], FloatArray]:
    """``loss_champion - loss_challenger`` per pair, or no pairs and the reason why."""
    if isinstance(loss_c, ConfigError) or isinstance(loss_s, ConfigError):
        error = loss_c if isinstance(loss_c, ConfigError) else loss_s
        reason = (
            f"The sequential test cannot use these predictions ({error}), so no verdict "
            "other than keep_shadowing is possible; pick a metric whose per-request loss "
            "they support (e.g. --metric accuracy or rmse)."
        )
        return [reason], np.zeros(0)
    return [], np.subtract(loss_c, loss_s, out=loss_c)


_T = TypeVar("_T")


def _attempt(fn: Callable[..., _T], *args: Any) -> _T | ConfigError:
    """``fn(*args)``, or the ConfigError it raised (to be raised or reported later)."""
    try:
        return fn(*args)
    except ConfigError as exc:
        return exc


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


_Draw = tuple[NDArray[np.intp] | None, int]


def _draw(n: int, cap: int, rng: np.random.Generator) -> _Draw:
    """The rows an interval is computed on (``None``: all) and its bootstrap seed."""
    idx = None if n <= cap else np.sort(rng.choice(n, size=cap, replace=False))
    return idx, int(rng.integers(2**31))


def _estimate(metric: str, y: Any, pred: Any, draw: _Draw) -> Estimate:
    """The metric on every row; its interval on at most a cap of rows, rescaled to ``n``."""
    n = len(y)
    if n == 0:
        return Estimate()
    idx, seed = draw
    if idx is None:
        r = evaluate(metric, y, pred, seed=seed)
        return Estimate(r.value, r.lo, r.hi)
    value = metric_value(metric, y, pred)
    r = evaluate(metric, _take(y, idx), _take(pred, idx), seed=seed)
    scale = math.sqrt(len(idx) / n)
    return Estimate(value, value - (r.value - r.lo) * scale, value + (r.hi - r.value) * scale)


def _paired(metric: str, pairs: Pairs, diff: float, draw: _Draw) -> Estimate:
    """Challenger minus champion (``diff`` on all rows) with a paired-bootstrap interval,
    computed on at most a cap of rows and then rescaled to ``n``."""
    n = pairs.n
    if n == 0:
        return Estimate()
    n_boot = _AUC_N_BOOT if parse_metric(metric).name == "auc" else 1000
    idx, seed = draw
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


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...] | None:
    rows = con.sql(sql).fetchall()
    return rows[0] if rows else None


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


def _first_shadow(
    con: duckdb.DuckDBPyConnection, ref: str | None, since: datetime | None
) -> datetime | None:
    """The time of ``ref``'s first shadow record in the window."""
    sql = "SELECT epoch(min(event_time)) FROM predictions WHERE role = 'shadow' AND ref = "
    row = _one(con, sql + sql_literal(ref) + since_filter(since))
    return None if row is None or row[0] is None else datetime.fromtimestamp(row[0], UTC)


def _refs(con: duckdb.DuckDBPyConnection, since: datetime | None) -> _Refs:
    sql = (
        "SELECT role, ref, count(*), epoch(min(event_time)), epoch(max(event_time)) "
        "FROM predictions WHERE role IN ('live', 'shadow') AND ref IS NOT NULL"
        + since_filter(since)
        + " GROUP BY role, ref"
    )
    rows = con.sql(sql).fetchall()
    return _Refs([(str(a), str(b), int(n), float(lo), float(hi)) for a, b, n, lo, hi in rows])


def _failed(ref: str | None) -> str:
    """SQL: the reasons of a request name a failure (error/timeout/invalid output) of ``ref``."""
    if ref is None:
        return "false"
    marks = [sql_literal(f'%"ref":{orjson.dumps(ref).decode()},"reason":"{r}"%') for r in _FAILURES]
    return "(degraded AND (" + " OR ".join(f"reasons LIKE {m}" for m in marks) + "))"


def _serving(
    con: duckdb.DuckDBPyConnection,
    champion: str | None,
    challenger: str | None,
    since: datetime | None,
) -> dict[str, Any]:
    """Latency percentiles and error/fallback rates per request (row 0 of each request)."""
    c, s = sql_literal(champion), sql_literal(challenger)
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
        FROM predictions WHERE row = 0 {since_filter(since)}
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


def _serving_and_days(
    con: duckdb.DuckDBPyConnection,
    champion: str | None,
    challenger: str | None,
    since: datetime | None,
) -> tuple[dict[str, Any], dict[str, int]]:
    return _serving(con, champion, challenger, since), _predictions_per_day(con, champion, since)


def _predictions_per_day(
    con: duckdb.DuckDBPyConnection, champion: str | None, since: datetime | None
) -> dict[str, int]:
    sql = (  # the day as compare's NumPy side computes it (faster than a cast to DATE)
        f"SELECT floor(epoch(event_time) / {_DAY_S})::BIGINT AS d, count(*) FROM predictions "
        f"WHERE role = 'live' AND ref = {sql_literal(champion)}{since_filter(since)} GROUP BY 1"
    )
    rows = con.sql(sql).fetchall()
    return {_iso_day(int(d)): int(n) for d, n in sorted(rows)}


def _pull_pairs(table: pa.Table, ranking: bool) -> tuple[Pairs, dict[str, int]]:
    """The usable labeled pairs (NumPy arrays, decoded JSON for ranking metrics) in label
    arrival order, and the champion's labeled rows per day."""
    days = _day_numbers(_floats(table.column("event_s")))
    labeled = _per_day(days)
    paired = table.column("paired")
    label, champ, chall = (pc.is_valid(table.column(k)) for k in _PAIR_COLUMNS)
    usable = pc.and_(paired, pc.and_(label, pc.and_(champ, chall)))
    n_usable = int(pc.sum(usable).as_py() or 0)
    left_out = int(pc.sum(paired).as_py() or 0) - n_usable
    if n_usable < table.num_rows:
        table = table.filter(usable)
        days = _day_numbers(_floats(table.column("event_s")))
    cols = [table.column(k) for k in _PAIR_COLUMNS]
    if ranking:
        y, c, s = ([orjson.loads(v) for v in col.to_pylist()] for col in cols)
        return Pairs(y, c, s, days, left_out), labeled
    yf, cf, sf = (_floats(col) for col in cols)
    return Pairs(yf, cf, sf, days, left_out), labeled


_PAIR_COLUMNS = ("label", "champion", "challenger")


def _floats(column: pa.ChunkedArray) -> NDArray[np.float64]:
    """A null-free DOUBLE column as NumPy, through its buffer (``to_numpy`` imports pandas)."""
    array = column.combine_chunks()
    if len(array) == 0:
        return np.zeros(0)
    if array.null_count or array.type != pa.float64():
        raise RecordsError(f"Expected a DOUBLE column without nulls. Got {array.type}.")
    return np.frombuffer(array.buffers()[1], np.float64, len(array), array.offset * 8)


def _day_numbers(epoch_s: NDArray[np.float64]) -> NDArray[np.int64]:
    days = epoch_s / _DAY_S
    return np.floor(days, out=days).astype(np.int64)


def _per_day(days: NDArray[np.int64]) -> dict[str, int]:
    """Rows per day (``days`` since the epoch) in O(n), as ``{"2026-03-01": n}``."""
    if days.size == 0:
        return {}
    first = int(days.min())
    counts = np.bincount(days - first)
    return {_iso_day(first + int(d)): int(counts[d]) for d in np.flatnonzero(counts)}


# -- per-day views ------------------------------------------------------------------------------


def _iso_day(day: int) -> str:
    return datetime.fromtimestamp(day * _DAY_S, UTC).date().isoformat()


def _coverage(
    predicted: dict[str, int], labeled: dict[str, int], pairs: Pairs
) -> list[dict[str, Any]]:
    paired = _per_day(pairs.day)
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
    out = []
    for day, idx in _by_day(pairs.day):
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


def _by_day(days: NDArray[np.int64]) -> list[tuple[int, NDArray[np.intp]]]:
    """``(day, ascending row indices)`` per day, by one stable sort (radix for short spans)."""
    first = int(days.min())
    offset = days - first
    span = int(offset.max()) + 1
    order = np.argsort(offset.astype(np.int16) if span < 2**15 else offset, kind="stable")
    counts = np.bincount(offset, minlength=span)
    ends = np.cumsum(counts)
    return [(first + int(d), order[ends[d] - counts[d] : ends[d]]) for d in np.flatnonzero(counts)]


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


def _days_since(moment: datetime | None, now: datetime) -> float:
    return 0.0 if moment is None else max(0.0, (now - moment).total_seconds() / _DAY_S)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    out = float(value)
    return out if math.isfinite(out) else None

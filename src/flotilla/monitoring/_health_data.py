"""The DuckDB queries behind the health reports (one window of one model's records)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from flotilla.errors import FlotillaError
from flotilla.records import RecordStore

OUTPUT_COLUMN = "__output__"
ROLE_COLUMN = "__role__"
SEED = 42
METRIC_SAMPLE_ROWS = 1_000_000
_SERVED = "role IS DISTINCT FROM 'shadow'"
_IN_WINDOW = "model = $model AND event_time >= $start AND event_time < $end"
_FALLBACK = "(coalesce(degraded, false) OR role = 'fallback')"
_REASONS = "CAST(json_extract_string(reasons, '$[*].reason') AS VARCHAR[])"


@dataclass(frozen=True)
class Window:
    """One model's records with ``start <= event_time < end``."""

    model: str
    start: datetime
    end: datetime

    @property
    def params(self) -> dict[str, Any]:
        return {"model": self.model, "start": self.start, "end": self.end}


def connect(store: RecordStore, model: str) -> duckdb.DuckDBPyConnection:
    """A connection with the ``predictions`` view of one model.

    It comes from ``RecordStore.connect``, so a query that fails on a segment damaged inside
    its pages skips that segment (with a ``CorruptSegmentWarning``) and runs again, but with
    that one view only and no compaction recovery pass: the segment catalog already hides the
    sources of an unfinished compaction, so the rows are the same.
    """
    return store.connect(model, views=("predictions",), recovery=False)


def has_outcomes(outcomes: Any, model: str) -> bool:
    """Whether any outcome segment of ``model`` exists (skips the join when not)."""
    return bool(outcomes.records.segments("outcomes", model))


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> Any:
    """The first row of ``sql`` (the result is read to the end, freeing the connection)."""
    rows = con.execute(sql, params).fetchall()
    return rows[0] if rows else None


@dataclass(frozen=True)
class Serving:
    traffic: int
    metrics: dict[str, float | None]
    by_role: dict[str, dict[str, int]]


def _rate(count: Any, total: int) -> float | None:
    return float(count) / total if total else None


def serving_stats(
    con: duckdb.DuckDBPyConnection, window: Window, reasons: Sequence[str]
) -> Serving:
    """Traffic, latency percentiles, error and fallback rates (by first reason) in SQL."""
    by_reason = ", ".join(f"count(*) FILTER (WHERE {_FALLBACK} AND rs[1] = '{r}')" for r in reasons)
    sql = f"""
        SELECT count(*), quantile_cont(latency_ms, 0.5), quantile_cont(latency_ms, 0.99),
            count(*) FILTER (WHERE list_contains(rs, 'error')),
            count(*) FILTER (WHERE {_FALLBACK}), {by_reason}
        FROM (SELECT *, {_REASONS} AS rs FROM predictions
              WHERE {_IN_WINDOW} AND row = 0 AND {_SERVED})
    """
    row = _one(con, sql, window.params)
    assert row is not None
    traffic = int(row[0])
    metrics: dict[str, float | None] = {
        "traffic": float(traffic),
        "latency_p50_ms": row[1],
        "latency_p99_ms": row[2],
        "error_rate": _rate(row[3], traffic),
        "fallback_rate": _rate(row[4], traffic),
    }
    for reason, count in zip(reasons, row[5:], strict=True):
        metrics[f"fallback_rate_{reason}"] = _rate(count, traffic)
    roles = con.execute(
        f"""SELECT coalesce(role, 'unknown'), count(*) FILTER (WHERE row = 0), count(*)
            FROM predictions WHERE {_IN_WINDOW} GROUP BY 1 ORDER BY 1""",
        window.params,
    ).fetchall()
    by_role = {str(r): {"requests": int(q), "rows": int(n)} for r, q, n in roles}
    metrics["rows"] = float(sum(v["rows"] for k, v in by_role.items() if k != "shadow"))
    return Serving(traffic, metrics, by_role)


def request_count(con: duckdb.DuckDBPyConnection, window: Window) -> int:
    """Served requests (every role but shadow) in the window."""
    row = _one(
        con,
        f"SELECT count(*) FROM predictions WHERE {_IN_WINDOW} AND row = 0 AND {_SERVED}",
        window.params,
    )
    return int(row[0]) if row else 0


def live_ref(con: duckdb.DuckDBPyConnection, window: Window) -> str | None:
    """The version that answered most live requests in the window."""
    row = _one(
        con,
        f"""SELECT ref FROM predictions WHERE {_IN_WINDOW} AND role = 'live' AND row = 0
            AND ref IS NOT NULL GROUP BY ref ORDER BY count(*) DESC, ref LIMIT 1""",
        window.params,
    )
    return None if row is None else str(row[0])


def version_number(ref: str | None) -> int | None:
    """``3`` for ``"name@3"``; ``None`` for anything else."""
    if not ref or "@" not in ref:
        return None
    tail = ref.rpartition("@")[2]
    return int(tail) if tail.isdigit() else None


def deployed_live_ref(registry: Any, model: str) -> str | None:
    """The ``live`` ref of the model's current deployment, resolved to ``name@N``."""
    try:
        deployment = registry.current_deployment(model)
        live = None if deployment is None else deployment.spec.get("live")
        if not isinstance(live, str):
            return None
        return str(registry.get_version(live).ref)
    except (FlotillaError, AttributeError):
        return None


def _signature(registry: Any, model: str, ref: str | None) -> Any:
    if registry is None:
        return None
    try:
        if ref is not None and version_number(ref) is not None:
            sig = registry.get_version(ref).signature
            if sig is not None:
                return sig
        return registry.get_model(model).signature
    except (FlotillaError, AttributeError):
        return None


def output_kind(registry: Any, model: str, ref: str | None) -> str | None:
    """The output kind of the live version's (or the model's) signature."""
    sig = _signature(registry, model, ref)
    return None if sig is None else str(sig.output.kind)


def items_k(registry: Any, window: Window) -> int:
    """The ``k`` of hit_rate@k: the signature's ``output.k``, else 10."""
    sig = _signature(registry, window.model, None)
    k = None if sig is None else sig.output.k
    return int(k) if k else 10


def guess_kind(con: duckdb.DuckDBPyConnection, window: Window) -> str | None:
    """Guess the output kind from the live predictions when no signature says it."""
    row = _one(
        con,
        f"""SELECT count(*), count(prediction_value), min(prediction_value),
                max(prediction_value),
                count(*) FILTER (WHERE prediction_value <> round(prediction_value)),
                count(*) FILTER (WHERE starts_with(ltrim(prediction), '['))
            FROM predictions WHERE {_IN_WINDOW} AND role = 'live' AND prediction IS NOT NULL""",
        window.params,
    )
    if row is None or row[0] == 0:
        return None
    total, numeric, low, high, fractional, lists = row
    if lists:
        return "items"
    if numeric < total or not fractional:
        return "label"
    return "probability" if 0.0 <= low and high <= 1.0 else "score"


def profile_fields(profile: Mapping[str, Any]) -> tuple[dict[str, str], str | None]:
    """``({input field: kind}, output field or None)`` of a profile."""
    inputs: dict[str, str] = {}
    output = None
    for name, summary in (profile.get("fields") or {}).items():
        if summary.get("role") == "output":
            output = str(name)
        else:
            inputs[str(name)] = str(summary.get("kind"))
    return inputs, output


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _pointer(name: str) -> str:
    """The field's JSON pointer as an SQL string literal (``'/a~1b'`` for ``a/b``)."""
    pointer = "/" + name.replace("~", "~0").replace("/", "~1")
    return "'" + pointer.replace("'", "''") + "'"


def drift_sample(
    con: duckdb.DuckDBPyConnection,
    window: Window,
    inputs: Mapping[str, str],
    output_kind: str | None,
    sample_rows: int,
) -> pa.Table:
    """A reservoir sample of the served rows, one typed column per profile field.

    Inputs are parsed from the JSON ``inputs`` column by DuckDB; the model's output (live
    rows only) is in :data:`OUTPUT_COLUMN` and the role in :data:`ROLE_COLUMN`.
    """
    columns = []
    for i, (name, kind) in enumerate(inputs.items(), start=1):
        value = f"_v[{i}]" if kind != "numeric" else f"TRY_CAST(_v[{i}] AS DOUBLE)"
        columns.append(f"{value} AS {_quote(name)}")
    columns.append(f"role AS {_quote(ROLE_COLUMN)}")
    # one JSON parse per row for every field: json_extract_string with a list of pointers
    pointers = ", ".join(_pointer(n) for n in inputs) or "'/'"
    if output_kind is not None:
        out = (
            "prediction_value"
            if output_kind == "numeric"
            else "json_extract_string(prediction, '$')"
        )
        columns.append(f"{out} AS {_quote(OUTPUT_COLUMN)}")
    sql = f"""
        SELECT {", ".join(columns)} FROM (
            SELECT json_extract_string(inputs, [{pointers}]) AS _v, * FROM (
                SELECT inputs, prediction, prediction_value, role FROM predictions
                WHERE {_IN_WINDOW} AND {_SERVED}
            ) USING SAMPLE reservoir({int(sample_rows)} ROWS) REPEATABLE ({SEED})
        )
    """
    return con.sql(sql, params=window.params).to_arrow_table()


def is_live(sample: pa.Table) -> pa.ChunkedArray:
    """A mask of the sample's live rows."""
    return pc.fill_null(pc.equal(sample.column(ROLE_COLUMN), "live"), False)


def unlabeled_probabilities(
    con: duckdb.DuckDBPyConnection, window: Window, labeled: duckdb.DuckDBPyRelation | None
) -> NDArray[np.float64]:
    """Live probabilities of the window without an outcome (bounded reservoir sample)."""
    base = f"""SELECT request_id, row, prediction_value FROM predictions
               WHERE {_IN_WINDOW} AND role = 'live' AND prediction_value IS NOT NULL"""
    sample = f"USING SAMPLE reservoir({METRIC_SAMPLE_ROWS} ROWS) REPEATABLE ({SEED})"
    if labeled is None:
        rel = con.sql(f"SELECT prediction_value FROM ({base}) {sample}", params=window.params)
        return np.asarray(rel.fetchnumpy()["prediction_value"], dtype=np.float64)
    # the joined relation lives on its own connection, which has the same views
    query = f"""SELECT prediction_value FROM (
        SELECT prediction_value FROM ({base}) p
        WHERE NOT EXISTS (SELECT 1 FROM joined j WHERE j.request_id = p.request_id
                          AND j.row = p.row)) {sample}"""
    query = _inline(query, window)
    return np.asarray(_query(labeled, query)["prediction_value"], dtype=np.float64)


def _query(rel: duckdb.DuckDBPyRelation, sql: str) -> dict[str, Any]:
    """Run ``sql`` over ``rel`` (named ``joined``) and fetch the columns as NumPy arrays."""
    result = rel.query("joined", sql)
    assert result is not None
    return dict(result.fetchnumpy())


def _inline(sql: str, window: Window) -> str:
    """``sql`` with the window parameters written as literals (for relation.query)."""
    model = window.model.replace("'", "''")
    return (
        sql.replace("$model", f"'{model}'")
        .replace("$start", f"TIMESTAMPTZ '{window.start.isoformat()}'")
        .replace("$end", f"TIMESTAMPTZ '{window.end.isoformat()}'")
    )


_METRIC_OF_KIND = {"probability": "auc", "score": "rmse", "label": "accuracy", "items": "hit_rate"}


def labeled_performance(
    joined: duckdb.DuckDBPyRelation, window: Window, kind: str | None, k: int
) -> dict[str, Any] | None:
    """The metric of the output kind on the labeled live rows of the window."""
    query = _inline(
        f"""SELECT * FROM (
                SELECT prediction, prediction_value, label, label_value FROM joined
                WHERE {_IN_WINDOW} AND role = 'live'
            ) USING SAMPLE reservoir({METRIC_SAMPLE_ROWS} ROWS) REPEATABLE ({SEED})""",
        window,
    )
    table = _query(joined, query)
    n = len(table["label"])
    if n == 0 or kind not in _METRIC_OF_KIND:
        return None
    metric = _METRIC_OF_KIND[kind]
    if metric == "auc":
        value = _auc(table["label_value"], table["prediction_value"])
    elif metric == "rmse":
        value = _rmse(table["label_value"], table["prediction_value"])
    elif metric == "accuracy":
        value = _accuracy(table["label"], table["prediction"])
    else:
        metric = f"hit_rate@{k}"
        value = _hit_rate(table["label"], table["prediction"], k)
    return {"metric": metric, "value": value, "labeled": n}


def _floats(values: Any) -> NDArray[np.float64]:
    return np.asarray(np.ma.filled(np.ma.asarray(values, dtype=np.float64), np.nan))


def _auc(labels: Any, scores: Any) -> float | None:
    y, s = _floats(labels), _floats(scores)
    ok = ~np.isnan(y) & ~np.isnan(s)
    y, s = y[ok], s[ok]
    if not np.isin(y, (0.0, 1.0)).all():
        return None
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    from scipy import stats  # imported here: scipy costs ~1 s at start-up

    ranks = stats.rankdata(s)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _rmse(labels: Any, predictions: Any) -> float | None:
    y, p = _floats(labels), _floats(predictions)
    ok = ~np.isnan(y) & ~np.isnan(p)
    return float(math.sqrt(np.mean((y[ok] - p[ok]) ** 2))) if ok.any() else None


def _loads(text: Any) -> Any:
    return None if text is None or text is np.ma.masked else orjson.loads(text)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


def _accuracy(labels: Any, predictions: Any) -> float | None:
    pairs = [(_loads(y), _loads(p)) for y, p in zip(labels, predictions, strict=True)]
    pairs = [(y, p) for y, p in pairs if y is not None]
    return sum(_same(y, p) for y, p in pairs) / len(pairs) if pairs else None


def _hit_rate(labels: Any, predictions: Any, k: int) -> float | None:
    hits, n = 0, 0
    for y_text, p_text in zip(labels, predictions, strict=True):
        label, ranked = _loads(y_text), _loads(p_text)
        if label is None:
            continue
        relevant = set(label) if isinstance(label, list) else {label}
        top = ranked[:k] if isinstance(ranked, list) else []
        hits += any(item in relevant for item in top if isinstance(item, str | int | float))
        n += 1
    return hits / n if n else None


def models_with_records(store: RecordStore, start: datetime, end: datetime) -> list[str]:
    """Models with prediction records in ``[start, end)`` (one view, no recovery pass, as
    :func:`connect`)."""
    con = store.connect(views=("predictions",), recovery=False)
    rows = con.execute(
        "SELECT DISTINCT model FROM predictions WHERE event_time >= $start AND event_time < $end",
        {"start": start, "end": end},
    ).fetchall()
    return sorted(str(r[0]) for r in rows)


def step_counts(
    con: duckdb.DuckDBPyConnection, window: Window, step: timedelta
) -> dict[int, tuple[int, int, int]]:
    """``{step index: (requests, fallbacks, errors)}`` of the served requests."""
    micros = max(1, int(step / timedelta(microseconds=1)))
    rows = con.execute(
        f"""SELECT (epoch_us(event_time) - epoch_us($start)) // {micros} AS i, count(*),
                count(*) FILTER (WHERE {_FALLBACK}),
                count(*) FILTER (WHERE list_contains({_REASONS}, 'error'))
            FROM predictions WHERE {_IN_WINDOW} AND row = 0 AND {_SERVED} GROUP BY 1""",
        window.params,
    ).fetchall()
    return {int(i): (int(n), int(f), int(e)) for i, n, f, e in rows}

"""Point-in-time correct feature joins (DuckDB ASOF JOIN).

For each event (entity, event_time) and each feature table, take the row of that entity with
the latest ``written_at <= event_time`` (and ``written_at >= event_time - ttl`` when a TTL is
given); rows written at the same instant are resolved by file order (the later row wins);
no match gives nulls. ``written_at`` is when the value became available, which is what makes
the join leak-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from flotilla._atomic import write_atomic
from flotilla.audit._source import (
    column_type,
    connect,
    quote,
    register,
    require_columns,
    time_sql,
)
from flotilla.errors import AuditError

__all__ = ["FeatureTable", "point_in_time_join", "write_table"]


@dataclass(frozen=True)
class FeatureTable:
    """A table of feature values keyed by entity and the time each row was written.

    Args:
        source: a Parquet/CSV path, a ``pyarrow.Table`` or a ``pandas.DataFrame``.
        entity: the entity column in this table (default: the join's ``entity``).
        written_at: the column holding when each row's values became available.
        features: the feature columns to take (default: every other column).
        prefix: prepended to each feature's output name (to avoid clashes).
    """

    source: Any
    entity: str | None = None
    written_at: str = "written_at"
    features: tuple[str, ...] | None = None
    prefix: str = ""


def _ttl_seconds(ttl: timedelta | None) -> float | None:
    if ttl is None:
        return None
    if ttl.total_seconds() <= 0:
        raise AuditError(
            f"The 'ttl' of point_in_time_join must be a positive duration. Got {ttl} instead."
        )
    return ttl.total_seconds()


def _events_view(
    conn: duckdb.DuckDBPyConnection, events: Any, entity: str, event_time: str
) -> list[str]:
    columns = register(conn, "events_src", events, "events")
    require_columns(columns, {"entity": entity, "event time": event_time}, "events")
    ts = time_sql(conn, "events_src", event_time, "event time")
    conn.execute(
        "CREATE OR REPLACE VIEW events AS SELECT row_number() OVER () AS __eord, "
        f"{ts} AS __et, * FROM events_src"
    )
    return columns


def _feature_view(
    conn: duckdb.DuckDBPyConnection,
    i: int,
    table: FeatureTable,
    entity: str,
    taken: set[str],
    event_key_type: str,
) -> tuple[list[tuple[str, str]], str, bool]:
    """Register feature table ``i`` as view ``ft{i}`` (entity ``__k``, ``__w``, ``c0``...).

    Returns the (column, output name) pairs, the SQL type both join keys are cast to, and
    whether some (entity, written_at) pairs occur more than once.
    """
    src = f"ft{i}_src"
    what = f"feature table #{i + 1}"
    columns = register(conn, src, table.source, what)
    key = table.entity or entity
    require_columns(columns, {"entity": key, "written_at": table.written_at}, what)
    feats = (
        list(table.features)
        if table.features is not None
        else [c for c in columns if c not in (key, table.written_at)]
    )
    for feat in feats:
        require_columns(columns, {"feature": feat}, what)
    if not feats:
        raise AuditError(
            f"The {what} has no feature columns besides '{key}' and '{table.written_at}'."
        )
    pairs = [(f, table.prefix + f) for f in feats]
    for _, out in pairs:
        if out in taken:
            raise AuditError(
                f"The output column '{out}' of the {what} clashes with an existing column. "
                "Give the table a prefix (FeatureTable(prefix=...) or --features PATH:PREFIX)."
            )
        taken.add(out)
    ts = time_sql(conn, src, table.written_at, "written_at")
    key_type = "BIGINT" if event_key_type == _key_type(conn, src, key) == "BIGINT" else "VARCHAR"
    values = ", ".join(f"{quote(f)} AS {quote('c' + str(j))}" for j, (f, _) in enumerate(pairs))
    base = f"CAST({quote(key)} AS {key_type}) AS __k, {ts} AS __w, {values} FROM {quote(src)}"
    conn.execute(
        f"CREATE OR REPLACE VIEW ft{i} AS SELECT * FROM (SELECT {base}) "
        "WHERE __k IS NOT NULL AND __w IS NOT NULL"
    )
    return pairs, key_type, _resolve_ties(conn, i, base, len(pairs))


def _resolve_ties(conn: duckdb.DuckDBPyConnection, i: int, base: str, width: int) -> bool:
    """Store, for (entity, written_at) pairs written more than once, the last row's values.

    The ASOF join picks an arbitrary row among such ties; the join then takes the values from
    table ``td{i}`` instead. Checking costs one hash aggregate on the keys; resolving touches
    only the tied rows. Returns whether there are ties.
    """
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE tk{i} AS SELECT __k, __w FROM ft{i} "
        "GROUP BY __k, __w HAVING count(*) > 1"
    )
    if not conn.execute(f"SELECT count(*) FROM tk{i}").fetchall()[0][0]:
        return False
    struct = ", ".join(f"{quote('c' + str(j))}: {quote('c' + str(j))}" for j in range(width))
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE td{i} AS SELECT o.__k, o.__w, "
        f"max_by({{{struct}}}, o.__ford) AS __v FROM "
        f"(SELECT row_number() OVER () AS __ford, {base}) o "
        f"SEMI JOIN tk{i} t ON o.__k = t.__k AND o.__w = t.__w GROUP BY o.__k, o.__w"
    )
    return True


_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER")


def _key_type(conn: duckdb.DuckDBPyConnection, view: str, column: str) -> str:
    """Integers join as BIGINT, everything else as VARCHAR, so both sides always compare."""
    return "BIGINT" if column_type(conn, view, column) in _INTEGERS else "VARCHAR"


def point_in_time_join(
    events: Any,
    features: list[FeatureTable | str | Path],
    *,
    entity: str,
    event_time: str,
    ttl: timedelta | None = None,
    include_written_at: bool = False,
    memory_limit: str | None = None,
) -> pa.Table:
    """Join each event to every feature table's latest value written at or before its time.

    Args:
        events: the events (Parquet/CSV path, ``pyarrow.Table`` or ``pandas.DataFrame``).
        features: feature tables (``FeatureTable`` or paths with an ``entity`` and a
            ``written_at`` column).
        entity: the entity column of the events (and of the feature tables by default).
        event_time: the event-time column; naive timestamps are UTC.
        ttl: when given, a value older than ``event_time - ttl`` counts as missing.
        include_written_at: add a ``<feature>__written_at`` column per feature (what
            :func:`flotilla.audit.audit` reads to check timeliness).
        memory_limit: DuckDB's memory limit (e.g. ``"4GB"``); beyond it DuckDB spills to a
            temp directory, which is much slower. ``None``: DuckDB's default (80% of RAM).

    Returns:
        The events in their original order with one column per feature (null when missing);
        the schema metadata key ``flotilla.features`` lists the added columns (JSON).

    Raises:
        AuditError: a missing column, an unparsable time, a name clash or a bad TTL.

    Example:
        >>> point_in_time_join("events.parquet", ["logins.parquet"],
        ...                    entity="user_id", event_time="ts")  # doctest: +SKIP
    """
    ttl_s = _ttl_seconds(ttl)
    if not features:
        raise AuditError("point_in_time_join needs at least one feature table. Got none.")
    conn = connect(memory_limit)
    try:
        original = _events_view(conn, events, entity, event_time)
        taken = set(original)
        key_type = _key_type(conn, "events_src", entity)
        selects: list[str] = ["e.* EXCLUDE (__eord, __et)"]
        joins: list[str] = []
        for i, item in enumerate(features):
            table = item if isinstance(item, FeatureTable) else FeatureTable(source=item)
            pairs, ktype, ties = _feature_view(conn, i, table, entity, taken, key_type)
            _join_parts(
                i,
                pairs,
                ties,
                f"CAST(e.{quote(entity)} AS {ktype})",
                ttl_s,
                include_written_at,
                selects,
                joins,
            )
        sql = f"SELECT {', '.join(selects)} FROM events e {' '.join(joins)} ORDER BY e.__eord"
        try:
            table = conn.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise AuditError(f"The point-in-time join failed: {exc}") from exc
        added = [c for c in table.column_names if c not in original]
        return table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"flotilla.features": orjson.dumps(added)}
        )
    finally:
        conn.close()


def _join_parts(
    i: int,
    pairs: list[tuple[str, str]],
    ties: bool,
    event_key: str,
    ttl_s: float | None,
    include_written_at: bool,
    selects: list[str],
    joins: list[str],
) -> None:
    """Append feature table ``i``'s ASOF join (and tie fix-up join) and output columns."""
    f, d = f"f{i}", f"d{i}"
    joins.append(f"ASOF LEFT JOIN ft{i} {f} ON {event_key} = {f}.__k AND e.__et >= {f}.__w")
    if ties:
        joins.append(f"LEFT JOIN td{i} {d} ON {d}.__k = {f}.__k AND {d}.__w = {f}.__w")
    fresh = "TRUE"
    if ttl_s is not None:
        fresh = f"{f}.__w >= e.__et - to_microseconds(CAST({round(ttl_s * 1e6)} AS BIGINT))"
    for j, (_, out) in enumerate(pairs):
        c = quote("c" + str(j))
        value = f"{f}.{c}"
        if ties:
            value = f"CASE WHEN {d}.__k IS NULL THEN {value} ELSE {d}.__v.{c} END"
        selects.append(f"CASE WHEN {fresh} THEN {value} END AS {quote(out)}")
        if include_written_at:
            selects.append(f"CASE WHEN {fresh} THEN {f}.__w END AS {quote(out + '__written_at')}")


def write_table(table: pa.Table, path: str | Path) -> Path:
    """Write ``table`` atomically as Parquet (default) or CSV (``.csv``); returns the path."""
    as_csv = Path(path).name.lower().endswith(".csv")
    return write_atomic(
        path, lambda tmp: pa_csv.write_csv(table, tmp) if as_csv else pq.write_table(table, tmp)
    )

"""The audit's view of a training set: roles, label targets, write times and a bounded sample.

Everything that scans all rows is a DuckDB aggregate over the source (streamed, bounded by
DuckDB's memory limit, spilling to disk); per-feature statistics that need the rows themselves
run on a uniform reservoir sample of at most ``sample_rows`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from flotilla.audit._source import column_type, quote, register, require_columns, time_sql
from flotilla.errors import AuditError

__all__ = ["MAX_CLASSES", "AuditData", "Feature", "prepare"]

MAX_CLASSES = 20
DEFAULT_SUFFIX = "__written_at"
_NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
    "BOOLEAN",
)
_INTEGER = _NUMERIC[:9]


@dataclass(frozen=True)
class Feature:
    """A feature column: its name, kind (numeric, time, categorical) and write-time column."""

    name: str
    kind: str
    integer: bool
    written: str | None  # the column of ``rows`` holding its write time (epoch s), if known


@dataclass
class AuditData:
    """The prepared training set (DuckDB view ``rows``) plus what the checks need to know."""

    conn: duckdb.DuckDBPyConnection
    rows: int
    features: list[Feature]
    label_kind: str  # binary | multiclass | numeric
    targets: list[str]  # the class values (of ``__cls``) each scored one-vs-rest
    label_classes: int
    entity: str | None
    split: str | None
    event_time: str
    label: str
    dropped_null_labels: int
    capped_classes: bool = False
    sample: dict[str, NDArray[Any]] = field(default_factory=dict)

    def positive(self, target: str) -> NDArray[np.bool_]:
        """The sample's rows of class ``target``."""
        cls: NDArray[Any] = self.sample["__cls"]
        return np.asarray(cls == target, dtype=bool)


def _kind(type_name: str) -> tuple[str, bool]:
    base = type_name.split("(")[0]
    if base in _NUMERIC:
        return "numeric", base in _INTEGER
    if base.startswith(("TIMESTAMP", "DATE")):
        return "time", False
    return "categorical", False


def _is_file(spec: object) -> bool:
    if isinstance(spec, Path):
        return True
    return isinstance(spec, str) and spec.lower().endswith((".parquet", ".pq", ".csv", ".csv.gz"))


def _label_setup(
    conn: duckdb.DuckDBPyConnection, label: str
) -> tuple[str, str, list[str], int, bool]:
    """(label kind, SQL of ``__cls``, targets, number of classes, capped)."""
    col = quote(label)
    distinct = int(conn.sql(f"SELECT count(DISTINCT {col}) FROM src").fetchall()[0][0])
    if distinct < 2:
        raise AuditError(
            f"The label column '{label}' must have at least two distinct values to audit. "
            f"Got {distinct} instead."
        )
    kind, _ = _kind(column_type(conn, "src", label))
    if kind == "numeric" and distinct > MAX_CLASSES:
        median = conn.sql(f"SELECT quantile_cont({col}, 0.5) FROM src").fetchall()[0][0]
        cls = (
            f"CASE WHEN {col} > {float(median)!r} THEN 'above median' ELSE 'at or below median' END"
        )
        return "numeric", cls, ["above median"], distinct, False
    top = conn.sql(
        f"SELECT CAST({col} AS VARCHAR) AS c, count(*) AS n FROM src WHERE {col} IS NOT NULL "
        f"GROUP BY 1 ORDER BY n DESC, c LIMIT {MAX_CLASSES}"
    ).fetchall()
    classes = [str(r[0]) for r in top]
    listed = ", ".join(_text(c) for c in classes)
    as_text = f"CAST({col} AS VARCHAR)"
    cls = f"CASE WHEN {as_text} IN ({listed}) THEN {as_text} ELSE '(other)' END"
    if distinct == 2:
        return "binary", cls, [sorted(classes)[-1]], 2, False
    return "multiclass", cls, classes, distinct, distinct > MAX_CLASSES


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _written_from_table(
    conn: duckdb.DuckDBPyConnection, spec: Any, entity: str | None, names: list[str]
) -> dict[str, str]:
    """Pivot a long (entity, feature, written_at) table to one latest write per entity/feature."""
    if entity is None:
        raise AuditError(
            "A written-at table is joined to rows by entity: pass the entity column (--entity)."
        )
    cols = register(conn, "wa_src", spec, "written-at table")
    require_columns(
        cols,
        {"entity": "entity", "feature": "feature", "written_at": "written_at"},
        "written-at table",
    )
    ts = time_sql(conn, "wa_src", "written_at", "written_at")
    listed = conn.sql("SELECT DISTINCT CAST(feature AS VARCHAR) FROM wa_src").fetchall()
    known = [n for n in names if n in {str(r[0]) for r in listed}]
    if not known:
        raise AuditError(
            "The written-at table names none of the training data's feature columns in its "
            f"'feature' column. Features are: {', '.join(names[:20])}."
        )
    parts = ", ".join(
        f"max(epoch({ts})) FILTER (WHERE CAST(feature AS VARCHAR) = {_text(n)})"
        f" AS {quote('__w' + str(i))}"
        for i, n in enumerate(known)
    )
    conn.execute(
        f"CREATE OR REPLACE VIEW wa AS SELECT CAST(entity AS VARCHAR) AS __wk, {parts} "
        "FROM wa_src GROUP BY 1"
    )
    return {n: f"wa.{quote('__w' + str(i))}" for i, n in enumerate(known)}


def _write_times(
    conn: duckdb.DuckDBPyConnection,
    columns: list[str],
    written_at: Any,
    entity: str | None,
    roles: set[str | None],
) -> tuple[list[str], dict[str, str], str]:
    """(feature names, feature -> SQL of its write time in epoch s, extra JOIN clause)."""
    table_form = written_at is not None and (
        isinstance(written_at, pa.Table) or _is_file(written_at)
    )
    suffix = written_at if isinstance(written_at, str) and not table_form else DEFAULT_SUFFIX
    names = [c for c in columns if c not in roles and not c.endswith(suffix)]
    if table_form:
        written = _written_from_table(conn, written_at, entity, names)
        return (
            names,
            written,
            f"LEFT JOIN wa ON wa.__wk = CAST(src.{quote(str(entity))} AS VARCHAR)",
        )
    written = {
        n: f"epoch({time_sql(conn, 'src', n + suffix, 'written-at')})"
        for n in names
        if n + suffix in columns
    }
    return names, written, ""


def _feature_columns(
    conn: duckdb.DuckDBPyConnection, names: list[str], written: dict[str, str], selects: list[str]
) -> list[Feature]:
    """Describe each feature and append its columns (value, write time) to ``selects``."""
    features = []
    for i, n in enumerate(names):
        type_name = column_type(conn, "src", n)
        fkind, integer = _kind(type_name)
        wcol = None
        if n in written:
            wcol = f"__wt{i}"
            selects.append(f"{written[n]} AS {wcol}")
        raw = f"src.{quote(n)}"
        if type_name in ("FLOAT", "DOUBLE"):  # NaN counts as missing, as in pandas
            raw = f"CASE WHEN isnan({raw}) THEN NULL ELSE {raw} END"
        selects.append(f"{raw} AS {quote(n)}")
        features.append(Feature(n, fkind, integer, wcol))
    return features


def prepare(
    data: Any,
    *,
    label: str,
    event_time: str,
    entity: str | None,
    split: str | None,
    written_at: Any,
    sample_rows: int,
    seed: int,
    conn: duckdb.DuckDBPyConnection,
) -> AuditData:
    """Validate the roles, build the ``rows`` view and draw the sample."""
    columns = register(conn, "src", data, "training data")
    require_columns(
        columns,
        {"label": label, "event time": event_time, "entity": entity, "split": split},
        "training data",
    )
    total = int(conn.sql("SELECT count(*) FROM src").fetchall()[0][0])
    if total == 0:
        raise AuditError(
            "The training data has no rows. Audit a file that holds the training rows."
        )
    t_sql = time_sql(conn, "src", event_time, "event time")
    names, written, join = _write_times(
        conn, columns, written_at, entity, {label, event_time, entity, split}
    )
    kind, cls, targets, n_classes, capped = _label_setup(conn, label)
    selects = [f"{cls} AS __cls", f"src.{quote(label)} AS __y", f"epoch({t_sql}) AS __t"]
    if entity:
        selects.append(f"src.{quote(entity)} AS __ent")
    if split:
        selects.append(f"CAST(src.{quote(split)} AS VARCHAR) AS __split")
    features = _feature_columns(conn, names, written, selects)
    conn.execute(
        f"CREATE OR REPLACE VIEW rows AS SELECT {', '.join(selects)} FROM src {join} "
        f"WHERE src.{quote(label)} IS NOT NULL"
    )
    kept = int(conn.sql("SELECT count(*) FROM rows").fetchall()[0][0])
    if kept == 0:
        raise AuditError(
            f"The label column '{label}' is null on every row. Audit rows that have a label."
        )
    audit_data = AuditData(
        conn,
        kept,
        features,
        kind,
        targets,
        n_classes,
        entity,
        split,
        event_time,
        label,
        total - kept,
        capped,
    )
    audit_data.sample = _sample(conn, features, kept, sample_rows, seed)
    return audit_data


def _sample(
    conn: duckdb.DuckDBPyConnection, features: list[Feature], rows: int, limit: int, seed: int
) -> dict[str, NDArray[Any]]:
    """A uniform sample of at most ``limit`` rows, as NumPy arrays (nulls as nan / None)."""
    selects = ["__cls", "TRY_CAST(__y AS DOUBLE) AS __y", "__t"]
    for i, f in enumerate(features):
        col = quote(f.name)
        if f.kind == "numeric":
            selects.append(f"CAST({col} AS DOUBLE) AS {quote('f' + str(i))}")
        elif f.kind == "time":
            selects.append(f"epoch({col}) AS {quote('f' + str(i))}")
        else:
            selects.append(f"CAST({col} AS VARCHAR) AS {quote('f' + str(i))}")
        if f.written:
            selects.append(f"{f.written} AS {quote('w' + str(i))}")
    sampling = "" if rows <= limit else f" USING SAMPLE reservoir({limit} ROWS) REPEATABLE ({seed})"
    conn.execute("SET threads = 1")  # a repeatable sample needs one thread
    try:
        table = conn.sql(f"SELECT {', '.join(selects)} FROM rows{sampling}").to_arrow_table()
    finally:
        conn.execute("RESET threads")
    out: dict[str, NDArray[Any]] = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            out[name] = np.asarray(col.to_pylist(), dtype=object)
        else:
            out[name] = col.to_numpy(zero_copy_only=False).astype(np.float64)
    return out

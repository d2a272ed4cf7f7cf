"""Reading tables (Parquet, CSV, Arrow, pandas) into DuckDB and normalising timestamps to UTC."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from flotilla.errors import AuditError

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "column_type",
    "connect",
    "quote",
    "register",
    "require_columns",
    "time_sql",
]

DEFAULT_MEMORY_LIMIT = "1GB"
_PARQUET = (".parquet", ".pq", ".parq")
_CSV = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".txt")


def quote(name: str) -> str:
    """``name`` as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT, *, nan_safe: bool = False
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection in UTC with a memory limit that spills to a temp dir.

    ``nan_safe`` turns off statistics propagation (see below): needed wherever ``isnan`` is
    evaluated on Parquet columns, and far too slow for the ASOF joins (7x at 1M rows).
    """
    conn = duckdb.connect(":memory:")
    conn.execute("SET TimeZone = 'UTC'")
    if memory_limit is not None:  # None: DuckDB's default, 80% of the machine's memory
        conn.execute(f"SET memory_limit = {_literal(memory_limit)}")
    conn.execute(f"SET temp_directory = {_literal(tempfile.gettempdir())}")
    conn.execute("SET preserve_insertion_order = true")
    conn.execute("SET enable_progress_bar = false")
    # DuckDB 2.0 folds isnan(x) to FALSE from Parquet statistics that leave NaN out, so NaN
    # (pandas' "missing") would never count as missing; statistics propagation stays off.
    if nan_safe:
        conn.execute("SET disabled_optimizers = 'statistics_propagation'")
    return conn


def _file_sql(path: Path, what: str) -> str:
    if not path.exists():
        raise AuditError(
            f"The {what} file '{path}' does not exist. Give the path of a Parquet or CSV file."
        )
    if path.is_dir():
        glob = str(path / "**" / "*.parquet")
        return f"read_parquet({_literal(glob)}, hive_partitioning = true)"
    name = path.name.lower()
    if name.endswith(_PARQUET):
        return f"read_parquet({_literal(str(path))})"
    if name.endswith(_CSV):
        return f"read_csv({_literal(str(path))}, auto_detect = true, header = true)"
    raise AuditError(
        f"The {what} file '{path}' must be Parquet (.parquet) or CSV (.csv). "
        f"Got '{path.suffix or path.name}' instead."
    )


def register(conn: duckdb.DuckDBPyConnection, view: str, data: Any, what: str) -> list[str]:
    """Make ``data`` (a path, Arrow table or pandas DataFrame) queryable as ``view``.

    Returns the column names. Parquet is scanned lazily; CSV is loaded into DuckDB once.
    """
    if isinstance(data, str | Path):
        source = _file_sql(Path(data), what)
        # CSV is loaded once (DuckDB would sniff the file again for every query on a view);
        # Parquet stays a lazy view so large files are streamed.
        kind = "TABLE" if source.startswith("read_csv") else "VIEW"
        try:
            conn.execute(f"CREATE OR REPLACE {kind} {quote(view)} AS SELECT * FROM {source}")
        except duckdb.Error as exc:
            raise AuditError(f"The {what} file '{data}' could not be read: {exc}") from exc
    else:
        table = _as_arrow(data, what)
        conn.register(f"{view}__arrow", table)
        conn.execute(
            f"CREATE OR REPLACE VIEW {quote(view)} AS SELECT * FROM {quote(view + '__arrow')}"
        )
    rows = conn.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index",
        [view],
    ).fetchall()
    return [str(r[0]) for r in rows]


def _as_arrow(data: Any, what: str) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise AuditError(
        f"The {what} must be a file path, a pyarrow.Table or a pandas.DataFrame. "
        f"Got {type(data).__name__} instead."
    )


def column_type(conn: duckdb.DuckDBPyConnection, view: str, column: str) -> str:
    """DuckDB's type name of ``column`` in ``view`` (from the catalog: no query is bound)."""
    row = conn.execute(
        "SELECT data_type FROM duckdb_columns() WHERE table_name = ? AND column_name = ?",
        [view, column],
    ).fetchall()
    if not row:
        raise AuditError(f"The column '{column}' is not in '{view}'.")
    return str(row[0][0]).upper()


def time_sql(conn: duckdb.DuckDBPyConnection, view: str, column: str, what: str) -> str:
    """A SQL expression giving ``column`` as TIMESTAMPTZ (UTC); naive values are taken as UTC.

    Raises:
        AuditError: the column is not a time, or a text value does not parse (the message names
            the column and shows an example value).
    """
    col = quote(column)
    kind = column_type(conn, view, column)
    if kind.startswith("TIMESTAMP WITH TIME ZONE"):
        return col
    if kind.startswith(("TIMESTAMP", "DATE")):
        return f"CAST({col} AS TIMESTAMPTZ)"
    if kind == "VARCHAR":
        bad = conn.sql(
            f"SELECT {col} FROM {quote(view)} WHERE {col} IS NOT NULL AND trim({col}) <> '' "
            f"AND TRY_CAST({col} AS TIMESTAMPTZ) IS NULL LIMIT 1"
        ).fetchall()
        if bad:
            raise AuditError(
                f"The {what} column '{column}' must hold timestamps (ISO 8601 such as "
                f"'2024-05-01T12:00:00Z'; no offset means UTC). Got {bad[0][0]!r} instead."
            )
        return f"TRY_CAST(NULLIF(trim({col}), '') AS TIMESTAMPTZ)"
    raise AuditError(
        f"The {what} column '{column}' must be a timestamp, a date or an ISO 8601 string. "
        f"Got a column of type {kind} instead."
    )


def require_columns(columns: list[str], wanted: dict[str, str | None], what: str) -> None:
    """Raise AuditError naming the missing column and listing the columns there are."""
    for role, name in wanted.items():
        if name is not None and name not in columns:
            shown = ", ".join(repr(c) for c in columns[:40])
            more = f" (and {len(columns) - 40} more)" if len(columns) > 40 else ""
            raise AuditError(
                f"The {role} column '{name}' is not in the {what}. "
                f"Its columns are: {shown}{more}. Pass one of them."
            )

"""Encoded predictions to an Arrow table with DuckDB's JSON functions: the records helper's way.

:func:`flotilla.records._schema.encode_prediction` turns a prediction's fields into one JSON
array. Expanding those arrays row by row in Python (decode, build tuples, convert columns)
costs the helper about 6 us of CPU per record on the development machine; one DuckDB query
over the batch's lines (``json_extract`` of the twelve fields, typed casts, one row per
request row) costs about 2.5 us, so a busy server's records take a third of the CPU they
took, on cores the server shares with its load.

The query gives the same columns as :func:`~flotilla.records._schema.fields_to_table`, with
one difference in form only: the JSON texts (``inputs``, ``prediction``, ``reasons``) are
written by DuckDB, which spells some large floats differently from orjson (``1e+16`` comes
back as ``10000000000000000.0``); they parse to the same values. Lines that carry
``feature_times`` (their feature ages need Python) and batches the query refuses (a line that
is not a twelve-field prediction) go through ``fields_to_table``, which reports the bad ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from flotilla.records._schema import FIELDS, PREDICTION_SCHEMA, fields_to_table

__all__ = ["EncodedConverter"]

_NO_FEATURE_TIMES = b",null]"  # the last field of an encoded prediction without feature times
# Thirteen paths: a twelve-field line has $[11] (maybe JSON null) and no $[12].
_PATHS = "[" + ", ".join(f"'$[{k}]'" for k in range(FIELDS + 1)) + "]"

# e[1..12]: request_id, model, ref, role, inputs, predictions, ids, latency_ms, degraded,
# reasons, event_time, feature_times (see _schema.FIELDS). One row per index of the longer of
# inputs and predictions (the shorter padded with JSON null, as fields_to_table pads it);
# every line gives at least one row so that its ``ok`` flag is seen (``keep`` drops the
# extra row of a line with no rows).
_SQL = f"""
WITH e AS (SELECT json_extract(line, {_PATHS}) AS e FROM lines),
f AS (
    SELECT e[1] ->> '$' AS request_id, e[2] ->> '$' AS model, e[3] ->> '$' AS ref,
        e[4] ->> '$' AS role, e[5]::JSON[] AS i, e[6]::JSON[] AS p, e[7]::JSON[] AS c,
        e[8]::DOUBLE AS latency_ms, e[9]::BOOLEAN AS degraded, e[10] AS r,
        (e[11] ->> '$')::TIMESTAMPTZ AS event_time,
        e[12] IS NOT NULL AND e[13] IS NULL AND i IS NOT NULL AND p IS NOT NULL
            AND request_id IS NOT NULL AND model IS NOT NULL AND event_time IS NOT NULL
            AND json_type(e[8]) IN ('DOUBLE', 'BIGINT', 'UBIGINT')
            AND json_type(e[9]) = 'BOOLEAN' AND json_type(e[10]) IN ('ARRAY', 'NULL') AS ok
    FROM e
),
x AS (
    SELECT *, greatest(len(i), len(p)) AS n,
        unnest(range(greatest(coalesce(len(i), 0), coalesce(len(p), 0), 1))) AS k
    FROM f
)
SELECT request_id, k AS row,
    CASE json_type(c[k + 1])
        WHEN 'NULL' THEN NULL
        WHEN 'BOOLEAN' THEN CASE WHEN c[k + 1]::BOOLEAN THEN 'True' ELSE 'False' END
        ELSE c[k + 1] ->> '$' END AS caller_id,
    model, ref, role,
    coalesce(i[k + 1]::VARCHAR, 'null') AS inputs,
    coalesce(p[k + 1]::VARCHAR, 'null') AS prediction,
    CASE json_type(p[k + 1])
        WHEN 'DOUBLE' THEN p[k + 1]::DOUBLE
        WHEN 'BIGINT' THEN p[k + 1]::DOUBLE
        WHEN 'UBIGINT' THEN p[k + 1]::DOUBLE
        WHEN 'BOOLEAN' THEN CASE WHEN p[k + 1]::BOOLEAN THEN 1.0 ELSE 0.0 END
        END AS prediction_value,
    latency_ms, degraded,
    CASE WHEN json_type(r) = 'NULL' OR json_array_length(r) = 0 THEN '[]' ELSE r::VARCHAR END
        AS reasons,
    event_time, ok, k < n AS keep
FROM x
"""


class EncodedConverter:
    """Converts batches of encoded predictions (JSON lines) with one DuckDB connection.

    One thread (the helper is a background process that should take little of the machine)
    and the UTC time zone, so that an event time without an offset is UTC as in Python.

    Attributes:
        sql_lines: lines converted by the query so far.
        python_lines: lines converted by ``fields_to_table`` so far (feature times, or a
            batch with a line the query refused).
    """

    def __init__(self) -> None:
        self.sql_lines = 0
        self.python_lines = 0
        self._con = duckdb.connect(config={"threads": 1})
        self._con.execute("SET TimeZone = 'UTC'")

    def close(self) -> None:
        """Close the DuckDB connection."""
        self._con.close()

    def to_table(self, lines: Sequence[bytes], written_at: datetime) -> tuple[pa.Table, list[str]]:
        """The rows of ``lines`` (see the module docstring), stamped ``written_at``, and one
        message per line that could not be recorded."""
        fast: list[bytes] = []
        slow: list[Any] = []
        for line in lines:
            (fast if line.endswith(_NO_FEATURE_TIMES) else slow).append(line)
        tables: list[pa.Table] = []
        bad: list[str] = []
        if fast:
            table = self._query(fast, written_at)
            if table is None:  # the Python path finds and reports the lines it cannot record
                slow = list(lines)
            else:
                self.sql_lines += len(fast)
                tables.append(table)
        if slow or not tables:
            table, bad = fields_to_table(slow, written_at)
            self.python_lines += len(slow)
            tables.append(table)
        return (tables[0] if len(tables) == 1 else pa.concat_tables(tables)), bad

    def _query(self, lines: list[bytes], written_at: datetime) -> pa.Table | None:
        """The fast path's table, or ``None`` when some line needs the Python path."""
        con = self._con
        con.register("lines", pa.table({"line": pa.array(lines, type=pa.string())}))
        try:
            got = con.sql(_SQL).to_arrow_table()
        except (duckdb.Error, pa.ArrowInvalid):
            return None
        finally:
            con.unregister("lines")
        ok = got.column("ok")
        if ok.null_count or not pc.all(ok).as_py():
            return None
        got = got.filter(got.column("keep")).drop_columns(["ok", "keep"])
        n = got.num_rows
        stamp = pa.array([written_at] * n, type=PREDICTION_SCHEMA.field("written_at").type)
        ages = pa.nulls(n, type=PREDICTION_SCHEMA.field("feature_ages_s").type)
        got = got.append_column("written_at", stamp).append_column("feature_ages_s", ages)
        try:
            return got.select(PREDICTION_SCHEMA.names).cast(PREDICTION_SCHEMA)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None

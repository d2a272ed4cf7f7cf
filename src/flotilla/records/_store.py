"""Query, tail, check and compact the record segments with DuckDB."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from flotilla.errors import ConfigError, RecordsError
from flotilla.records._catalog import SegmentCatalog, recover
from flotilla.records._compact import DEFAULT_TARGET_BYTES, CompactReport, CompactStep, compact
from flotilla.records._schema import OUTCOME_SCHEMA, PREDICTION_SCHEMA
from flotilla.records._segments import KINDS, active_journals, partitions

__all__ = ["CheckReport", "RecordStore"]

_SCHEMAS = {"predictions": PREDICTION_SCHEMA, "outcomes": OUTCOME_SCHEMA}


@dataclass(frozen=True)
class CheckReport:
    """The health of the segments on disk.

    Attributes:
        ok: no corrupted segment was found.
        segments: readable segments.
        rows: rows in the readable segments.
        corrupted: one ``{"path", "error"}`` per segment that cannot be read.
        journals: compactions that died halfway and are finished by the next query/compact.
    """

    ok: bool
    segments: int
    rows: int
    corrupted: list[dict[str, str]] = field(default_factory=list)
    journals: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "segments": self.segments,
            "rows": self.rows,
            "corrupted": self.corrupted,
            "journals": self.journals,
        }


class RecordStore:
    """Read access to the prediction and outcome segments under a records root.

    Queries run on an in-memory DuckDB connection with two views, ``predictions`` and
    ``outcomes`` (columns as in :data:`PREDICTION_SCHEMA` and :data:`OUTCOME_SCHEMA`; times
    are ``TIMESTAMP WITH TIME ZONE`` in UTC). The views are built on the list of readable
    segments at :meth:`connect` time: a corrupted segment is skipped with a
    :class:`CorruptSegmentWarning` and reported by :meth:`check`, and never breaks a query.

    Args:
        root: the records root folder (``Settings.records``).

    Example:
        >>> store = RecordStore(settings.records)                           # doctest: +SKIP
        >>> store.query("SELECT role, count(*) FROM predictions GROUP BY 1").df()  # doctest: +SKIP
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._catalog = SegmentCatalog(self.root)

    def segments(self, kind: str, model: str | None = None) -> list[Path]:
        """The readable segments of ``kind`` (``predictions`` or ``outcomes``)."""
        if kind not in KINDS:
            raise ConfigError(f"The kind of records must be one of {KINDS}. Got {kind!r} instead.")
        return self._catalog.scan(kind, model).good

    def relation(
        self,
        con: duckdb.DuckDBPyConnection,
        kind: str,
        model: str | None = None,
        *,
        provenance: bool = False,
    ) -> duckdb.DuckDBPyRelation:
        """A relation over the readable segments of ``kind`` (of one model when given).

        Args:
            provenance: add ``filename``, ``file_row_number`` and ``file_index`` (the file's
                position in filename order) columns: ``(file_index, file_row_number)`` is a
                total order of the rows on disk, the same as ``(filename, file_row_number)``
                but cheaper to sort on.
        """
        files = self.segments(kind, model)
        if not files:
            empty = _SCHEMAS[kind].empty_table()
            if provenance:
                empty = empty.append_column("file_row_number", pa.array([], pa.int64()))
                empty = empty.append_column("filename", pa.array([], pa.string()))
                empty = empty.append_column("file_index", pa.array([], pa.int64()))
            return con.from_arrow(empty)
        if provenance:
            rel = con.sql(
                "SELECT *, file_index::BIGINT AS file_index FROM read_parquet($files, "
                "union_by_name = true, filename = true, file_row_number = true, "
                "hive_partitioning = false)",
                params={"files": sorted(str(p) for p in files)},
            )
            if rel is None:  # a SELECT always gives a relation
                raise RecordsError("Reading the record segments gave no relation.")
        else:
            rel = con.read_parquet([str(p) for p in files], union_by_name=True)
        if model is not None:
            rel = rel.filter(duckdb.ColumnExpression("model") == duckdb.ConstantExpression(model))
        return rel

    def connect(self, model: str | None = None) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with views ``predictions`` and ``outcomes``.

        Args:
            model: restrict both views to one model's partitions (faster for big roots).
        """
        recover(self.root, KINDS, model=model, catalog=self._catalog)
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        for kind in KINDS:
            self.relation(con, kind, model).to_view(kind)
        return con

    def query(self, sql: str, *, model: str | None = None) -> duckdb.DuckDBPyRelation:
        """Run ``sql`` over the views; returns a lazy relation (``.to_arrow_table()``, ``.df()``).

        Raises:
            RecordsError: the SQL does not parse or bind (the message names the views).
        """
        con = self.connect(model)
        try:
            return con.sql(sql)
        except duckdb.Error as exc:
            raise RecordsError(
                f"The query failed: {exc}. Query the views 'predictions' "
                f"({', '.join(PREDICTION_SCHEMA.names)}) and 'outcomes' "
                f"({', '.join(OUTCOME_SCHEMA.names)})."
            ) from exc

    def tail(self, model: str, n: int = 20) -> duckdb.DuckDBPyRelation:
        """The ``n`` latest prediction records of ``model``, newest first."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"The 'n' of tail must be a positive integer. Got {n!r} instead.")
        con = self.connect(model)
        return con.sql(
            f"SELECT * FROM predictions ORDER BY event_time DESC, request_id, role, row LIMIT {n}"
        )

    def feature_ages(self, model: str, *, limit: int = 100_000) -> dict[str, list[float]]:
        """Feature ages (seconds) recorded for ``model``'s live answers, newest ``limit`` rows.

        They come from the ``feature_times`` a request carried (``feature_ages_s`` column).
        """
        con = self.connect(model)
        try:
            rows = con.sql(
                "SELECT feature_ages_s FROM predictions WHERE role = 'live' AND "
                f"feature_ages_s IS NOT NULL ORDER BY event_time DESC LIMIT {int(limit)}"
            ).fetchall()
        finally:
            con.close()
        out: dict[str, list[float]] = {}
        for (text,) in rows:
            for feature, age in orjson.loads(text).items():
                if isinstance(age, int | float):
                    out.setdefault(str(feature), []).append(float(age))
        return out

    def check(self) -> CheckReport:
        """Read every segment fully (verifying page checksums) and report the broken ones.

        The corrupted segments found are remembered (``<root>/.corrupted.json``) so that later
        queries skip them even when only their pages, not their footer, are damaged.
        """
        segments, rows = 0, 0
        found: list[tuple[Path, str]] = []
        journals = 0
        for kind in KINDS:
            scan = self._catalog.scan(kind, full=True, warn=False)
            segments += len(scan.good)
            rows += scan.rows
            found.extend(scan.corrupted)
            journals += sum(len(active_journals(f)) for f in partitions(self.root, kind))
        if self.root.is_dir():
            self._catalog.remember_corrupted(found)
        corrupted = [{"path": str(p), "error": e} for p, e in found]
        return CheckReport(not corrupted, segments, rows, corrupted, journals)

    def compact(
        self,
        model: str | None = None,
        *,
        target_bytes: int = DEFAULT_TARGET_BYTES,
        progress: Callable[[CompactStep], Any] | None = None,
    ) -> CompactReport:
        """Merge small segments per partition; never loses or double counts a record.

        See :func:`flotilla.records.compact` for the steps and their safety.
        """
        return compact(self.root, model=model, target_bytes=target_bytes, progress=progress)

    def to_arrow(self, sql: str) -> pa.Table:
        """Run ``sql`` and return the whole result as an Arrow table."""
        return self.query(sql).to_arrow_table()

"""Query, tail, check and compact the record segments with DuckDB."""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar, cast

import duckdb
import orjson
import pyarrow as pa

from flotilla.errors import ConfigError, RecordsError
from flotilla.records._catalog import KNOWN_BAD_FILE, CorruptSegmentWarning, SegmentCatalog, recover
from flotilla.records._compact import DEFAULT_TARGET_BYTES, CompactReport, CompactStep, compact
from flotilla.records._schema import OUTCOME_SCHEMA, PREDICTION_SCHEMA
from flotilla.records._segments import KINDS, active_journals, model_of_dir, partitions

__all__ = ["CheckReport", "RecordStore"]

_SCHEMAS = {"predictions": PREDICTION_SCHEMA, "outcomes": OUTCOME_SCHEMA}
_T = TypeVar("_T")


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
    :class:`CorruptSegmentWarning` and reported by :meth:`check`, and never breaks a query;
    one damaged only inside its pages is found when a query fails on it, then skipped and
    the query run again.

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

    def models(self, kind: str = "predictions") -> list[str]:
        """The models that have readable segments of ``kind``, sorted."""
        return sorted({model_of_dir(path.parent.parent) for path in self.segments(kind)})

    def relation(
        self,
        con: duckdb.DuckDBPyConnection,
        kind: str,
        model: str | None = None,
        *,
        provenance: bool = False,
    ) -> duckdb.DuckDBPyRelation:
        """A relation over the readable segments of ``kind`` (of one model when given).

        On a connection from :meth:`connect`, a view made of it with ``to_view`` is rebuilt
        without a segment that turns out damaged while a query reads it.

        Args:
            provenance: add ``filename``, ``file_row_number`` and ``file_index`` (the file's
                position in filename order) columns: ``(file_index, file_row_number)`` is a
                total order of the rows on disk, the same as ``(filename, file_row_number)``
                but cheaper to sort on.
        """
        spec = _ViewSpec(kind, model, provenance, tuple(self.segments(kind, model)))
        if isinstance(con, _Guarded):
            rel = _Guarded(_build_relation(con._target, spec), con._views, spec)
            return cast(duckdb.DuckDBPyRelation, rel)
        return _build_relation(con, spec)

    def connect(
        self,
        model: str | None = None,
        *,
        views: Sequence[str] = KINDS,
        recovery: bool = True,
    ) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with views ``predictions`` and ``outcomes``.

        A query on it (or on a relation made from it) that fails on a segment damaged inside
        its pages, which the cheap footer check at connect time cannot see, is healed: the
        segments it read are read fully to find the damaged ones, which are skipped with a
        :class:`CorruptSegmentWarning` and listed for ``records check`` like the ones a check
        finds; the views are rebuilt without them and the query runs again. Only a failing
        query pays for that; a streamed result (``to_arrow_reader``, ``iter_rows``) that
        fails halfway is not run again.

        Args:
            model: restrict the views to one model's partitions (faster for big roots).
            views: the views to create, of ``predictions`` and ``outcomes``; a view not
                asked for costs nothing (its segments are not listed).
            recovery: first finish or undo the compactions that died halfway (in
                ``model``'s partitions when given). Without it the rows are the same (the
                segment catalog hides the sources of an unfinished compaction), and the
                leftover files wait for the next caller that recovers; callers that connect
                often (health reports) skip it.

        Raises:
            ConfigError: ``views`` names something else than ``predictions`` or ``outcomes``.
            RecordsError: (from a query) it failed reading the segments and no damaged one
                was found to skip.

        Example:
            >>> con = store.connect("churn", views=["predictions"])  # doctest: +SKIP
            >>> con.execute("SELECT count(*) FROM predictions").fetchall()  # doctest: +SKIP
        """
        if isinstance(views, str) or not set(views) <= set(KINDS):
            raise ConfigError(
                f"The 'views' of connect must be a sequence of {KINDS}. Got {views!r} instead."
            )
        if recovery:
            recover(self.root, KINDS, model=model, catalog=self._catalog)
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        segment_views = _SegmentViews(self._catalog, con)
        for kind in dict.fromkeys(views):
            spec = _ViewSpec(kind, model, False, tuple(self.segments(kind, model)))
            segment_views.define(kind, spec)
        return cast(duckdb.DuckDBPyConnection, _GuardedConnection(con, segment_views))

    def query(self, sql: str, *, model: str | None = None) -> duckdb.DuckDBPyRelation:
        """Run ``sql`` over the views; returns a lazy relation (``.to_arrow_table()``, ``.df()``).

        A segment found damaged while the relation runs is skipped (see :meth:`connect`).

        Raises:
            RecordsError: the SQL does not parse or bind (the message names the views), or
                (when the relation runs) reading the segments failed and no damaged segment
                was found to skip.
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
        """The ``n`` latest prediction records of ``model``, newest first (a lazy relation).

        A segment found damaged while the relation runs is skipped (see :meth:`connect`).
        """
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


# -- healing queries that fail on a damaged segment -------------------------------------------


@dataclass(frozen=True)
class _ViewSpec:
    """What a segment view reads: ``files`` of ``kind`` (one model's when given)."""

    kind: str
    model: str | None
    provenance: bool
    files: tuple[Path, ...]


def _build_relation(con: duckdb.DuckDBPyConnection, spec: _ViewSpec) -> duckdb.DuckDBPyRelation:
    kind, model, files = spec.kind, spec.model, spec.files
    if not files:
        empty = _SCHEMAS[kind].empty_table()
        if spec.provenance:
            empty = empty.append_column("file_row_number", pa.array([], pa.int64()))
            empty = empty.append_column("filename", pa.array([], pa.string()))
            empty = empty.append_column("file_index", pa.array([], pa.int64()))
        return con.from_arrow(empty)
    if spec.provenance:
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


_READ_ERRORS = (duckdb.IOException, duckdb.InvalidInputException, duckdb.NotImplementedException)
"""DuckDB errors that may come from a damaged segment when they name it; a plain
``duckdb.Error`` (thrift, decoder) names no file."""

_FETCHES = frozenset(
    {"df", "fetch_df", "fetch_df_chunk", "fetchall", "fetchdf", "fetchmany", "fetchnumpy"}
    | {"fetchone", "tf", "to_arrow_reader", "to_arrow_table", "torch"}
)
"""Connection methods that read the result of the last ``execute``."""


class _SegmentViews:
    """The segment views of one connection; finds, skips and drops a damaged segment.

    DuckDB does not verify page checksums and fails (or, rarely, misreads) on a damaged page,
    naming the file in some errors and not in others (a bad page header). A relation binds
    its views again each time it runs, so rebuilding the views is enough for a retry.
    """

    def __init__(self, catalog: SegmentCatalog, con: duckdb.DuckDBPyConnection) -> None:
        self._catalog = catalog
        self._con = con
        self._specs: dict[str, _ViewSpec] = {}
        self._lock = threading.Lock()
        self._generation = 0  # how many times the views were healed

    def define(self, name: str, spec: _ViewSpec) -> None:
        """Create (or replace) the view ``name`` over ``spec``."""
        _build_relation(self._con, spec).to_view(name)
        self.register(name, spec)

    def register(self, name: str, spec: _ViewSpec) -> None:
        """Remember that the view ``name`` reads ``spec`` (to rebuild it when healing)."""
        with self._lock:
            self._specs[name] = spec

    def run(self, call: Callable[[], _T], again: Callable[[], _T] | None = None) -> _T:
        """``call()``; after healing a failure on a damaged segment, ``(again or call)()``.

        Each retry follows a heal that skipped at least one more segment, so this ends.
        """
        attempt = call
        while True:
            generation = self._generation
            try:
                return attempt()
            except duckdb.Error as exc:
                if not self._heal(exc, generation):
                    raise
            attempt = again or call

    def _heal(self, exc: duckdb.Error, generation: int) -> bool:
        """Skip the damaged segments behind ``exc``; ``False`` when it is not about segments."""
        bare = type(exc) is duckdb.Error
        if not bare and not isinstance(exc, _READ_ERRORS):
            return False  # an error of the SQL (binder, conversion, ...)
        with self._lock:
            if generation != self._generation:
                return True  # healed meanwhile by another query on this connection
            read = sorted({p for spec in self._specs.values() for p in spec.files})
            suspects = [p for p in read if str(p) in str(exc)] or (read if bare else [])
            if not suspects:
                return False  # about some other file
            found = self._catalog.find_corrupted(suspects)
            if not found:
                raise RecordsError(
                    f"Reading the record segments failed ({exc}), and a full read of the "
                    f"{len(suspects)} segment(s) it may come from found none damaged to skip. "
                    "Run 'flotilla records check' and move away any segment it reports."
                ) from exc
            self._catalog.quarantine(found)
            for path, error in found:
                warnings.warn(
                    f"Skipping the corrupted record segment {path} ({error}); a query failed "
                    f"on it. It is listed in {self._catalog.root / KNOWN_BAD_FILE}: run "
                    "'flotilla records check' and move the file away.",
                    CorruptSegmentWarning,
                    stacklevel=_caller_level(),
                )
            bad = {p for p, _ in found}
            for name, spec in self._specs.items():
                if bad.intersection(spec.files):
                    spec = replace(spec, files=tuple(p for p in spec.files if p not in bad))
                    _build_relation(self._con, spec).to_view(name)
                    self._specs[name] = spec
            self._generation += 1
        return True


def _caller_level() -> int:
    """The ``stacklevel`` of the first caller outside this module (where a warning points)."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    return level


def _unwrap(value: Any) -> Any:
    return value._target if isinstance(value, _Guarded) else value


class _Guarded:
    """A DuckDB relation over segment views whose calls heal a damaged segment and retry.

    Everything else passes through; relations it gives are guarded too.
    """

    __slots__ = ("_spec", "_target", "_views")

    def __init__(self, target: Any, views: _SegmentViews, spec: _ViewSpec | None = None) -> None:
        self._target = target
        self._views = views
        self._spec = spec  # what this relation reads, when relation() made it

    def __getattr__(self, name: str) -> Any:
        if name in ("_spec", "_target", "_views", "_pending"):  # not set yet (copy, pickle)
            raise AttributeError(name)
        value = self._views.run(lambda: getattr(self._target, name))
        if not callable(value):
            return self._wrap(value)

        def call(*args: Any, **kwargs: Any) -> Any:
            args = tuple(_unwrap(a) for a in args)
            kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
            return self._call(name, value, args, kwargs)

        return call

    def _call(
        self, name: str, method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        result = self._views.run(lambda: method(*args, **kwargs))
        if name == "to_view" and self._spec is not None:
            self._views.register(args[0] if args else kwargs["view_name"], self._spec)
        return self._wrap(result)

    def _wrap(self, value: Any) -> Any:
        if value is self._target:
            return self
        if isinstance(value, duckdb.DuckDBPyRelation):
            return _Guarded(value, self._views)
        if isinstance(value, duckdb.DuckDBPyConnection):
            return _GuardedConnection(value, self._views)
        return value

    def __len__(self) -> int:
        return self._views.run(lambda: len(self._target))

    def __getitem__(self, key: Any) -> Any:
        return self._wrap(self._views.run(lambda: self._target[key]))

    def __contains__(self, name: Any) -> bool:
        return self._views.run(lambda: name in self._target)

    def __repr__(self) -> str:
        return self._views.run(lambda: repr(self._target))

    def __str__(self) -> str:
        return self._views.run(lambda: str(self._target))

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self._target.__arrow_c_stream__(requested_schema)  # streamed: not retried


class _GuardedConnection(_Guarded):
    """A guarded DuckDB connection; a fetch that fails runs its ``execute`` again first."""

    __slots__ = ("_pending",)

    def __init__(self, target: Any, views: _SegmentViews) -> None:
        super().__init__(target, views)
        self._pending: Callable[[], Any] | None = None

    def _call(
        self, name: str, method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if name in ("execute", "executemany"):
            self._pending = None
            result = super()._call(name, method, args, kwargs)
            self._pending = lambda: method(*args, **kwargs)
            return result
        if name not in _FETCHES or self._pending is None:
            return super()._call(name, method, args, kwargs)
        pending, self._pending = self._pending, None  # a fetch may consume the result

        def again() -> Any:
            pending()
            return method(*args, **kwargs)

        return self._wrap(self._views.run(lambda: method(*args, **kwargs), again))

    def __enter__(self) -> _GuardedConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._target.close()

"""Outcomes (delayed ground truth): validated ingestion and the join back to predictions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from flotilla.clock import SystemClock
from flotilla.errors import ConfigError, FlotillaError, ModelNotFoundError, RecordsError
from flotilla.records._schema import OUTCOME_SCHEMA, PREDICTION_SCHEMA, dumps, numeric_value
from flotilla.records._segments import write_partitioned
from flotilla.records._sql import since_filter, sql_literal
from flotilla.records._store import RecordStore
from flotilla.records._validate import CleanOutcome, OutcomeProblem, clean_outcome
from flotilla.types import Clock

__all__ = ["DEFAULT_MAX_SKEW", "IngestReport", "OutcomeStore"]

DEFAULT_MAX_SKEW = timedelta(minutes=5)
"""How far in the future an ``observed_at`` may lie (clock skew between systems)."""

ModelCheck = Callable[[str], object]


@dataclass(frozen=True)
class IngestReport:
    """What an ingestion accepted and rejected.

    Attributes:
        model: the model the outcomes belong to.
        accepted: outcomes written.
        rejected: one ``{"index", "error"}`` per outcome refused (index in the input list).
        written_at: the write time stamped on every accepted outcome of this batch.
    """

    model: str
    accepted: int
    rejected: list[dict[str, Any]] = field(default_factory=list)
    written_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "written_at": None if self.written_at is None else self.written_at.isoformat(),
        }


def _table(model: str, rows: list[CleanOutcome], written_at: datetime) -> pa.Table:
    data = {
        "model": [model] * len(rows),
        "request_id": [r.request_id for r in rows],
        "row": [r.row for r in rows],
        "caller_id": [r.caller_id for r in rows],
        "label": [dumps(r.label) for r in rows],
        "label_value": [numeric_value(r.label) for r in rows],
        "observed_at": [r.observed_at for r in rows],
        "written_at": [written_at] * len(rows),
    }
    return pa.table(data, schema=OUTCOME_SCHEMA)


def _output_kind(found: object) -> str | None:
    """The output kind of a model or version (``None`` without a signature)."""
    kind = getattr(getattr(getattr(found, "signature", None), "output", None), "kind", None)
    return kind if isinstance(kind, str) else None


def _live_kind(models: object, model: str) -> str | None:
    """The output kind of the live version of ``model``'s deployment, when ``models`` is a
    registry and the model is deployed (``None`` otherwise)."""
    current = getattr(models, "current_deployment", None)
    get_version = getattr(models, "get_version", None)
    if not callable(current) or not callable(get_version):
        return None
    try:
        revision = current(model)
        spec = getattr(revision, "spec", None)
        live = spec.get("live") if isinstance(spec, dict) else None
        return _output_kind(get_version(live)) if isinstance(live, str) else None
    except FlotillaError:  # e.g. an alias that no longer resolves: the model's kind then
        return None


class OutcomeStore:
    """Ingest outcomes for a model and join them back to its prediction records.

    Join semantics (see the README, "Join semantics"):

    * an outcome with ``request_id`` matches the prediction rows with that request id and
      row ``index`` (default 0), exactly, whatever their role (live, shadow, fallback, static);
    * an outcome with only a caller ``id`` matches the latest prediction for that id at or
      before ``observed_at`` (within ``horizon`` when given), an ASOF join;
    * when several outcomes match the same prediction row, the last written wins (then the
      latest ``observed_at``);
    * outcomes that match nothing are kept and listed by :meth:`unmatched`, never dropped.

    Args:
        root: the records root folder (``Settings.records``).
        models: a registry (anything with ``get_model(name)``) or a callable that raises
            ``ModelNotFoundError`` or returns ``False`` for an unknown model; ``None`` skips
            the check. Labels are checked against the output kind of the deployment's live
            version (a registry only), else of what ``get_model``/the callable returned
            (its ``signature.output.kind``); with no known kind any JSON scalar is a label.
        clock: wall clock for ``written_at`` and the "not in the future" check.
        max_skew: how far in the future ``observed_at`` may lie (default 5 minutes).

    Example:
        >>> store = OutcomeStore(settings.records, models=registry)          # doctest: +SKIP
        >>> store.ingest("churn", [{"request_id": "r1", "index": 0, "label": 1,
        ...                         "observed_at": "2026-01-31T12:00:00Z"}])  # doctest: +SKIP
        IngestReport(model='churn', accepted=1, rejected=[], ...)
    """

    def __init__(
        self,
        root: Path,
        *,
        models: Any = None,
        clock: Clock | None = None,
        max_skew: timedelta = DEFAULT_MAX_SKEW,
    ) -> None:
        self.root = Path(root)
        self.models = models
        self.clock: Clock = clock or SystemClock()
        self.max_skew = max_skew
        self.records = RecordStore(self.root)

    @staticmethod
    def _check_name(model: str) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigError(f"The model of outcomes must be a non-empty name. Got {model!r}.")

    def _check_model(self, model: str) -> str | None:
        """Refuse an unknown model; return its output kind when known (it types the labels)."""
        self._check_name(model)
        if self.models is None:
            return None
        check: ModelCheck = getattr(self.models, "get_model", self.models)
        try:
            found = check(model)
        except ModelNotFoundError:
            found = False
        if found is False:
            raise ModelNotFoundError(
                f"No model is named {model!r}, so its outcomes cannot be stored. "
                "Register it first ('flotilla models register') or fix the name."
            )
        return _live_kind(self.models, model) or _output_kind(found)

    def ingest(self, model: str, outcomes: Sequence[Any]) -> IngestReport:
        """Validate ``outcomes`` and write the valid ones as one batch (one segment per date).

        Each outcome is ``{"request_id", "index", "label", "observed_at"}`` or
        ``{"id", "label", "observed_at"}``. ``observed_at`` is ISO-8601 (naive means UTC;
        missing means now) and may not lie more than ``max_skew`` in the future. ``label``
        must fit the output kind of the model's live version (else of the model's
        signature): ``probability`` 0/1 or true/false, ``score`` a finite number, ``label``
        a string, int or bool, ``items`` an item id or a list of them; with no known kind,
        any number, bool or string. Invalid outcomes are listed in ``rejected`` with a
        message naming them; the others are still written.

        Raises:
            ModelNotFoundError: the model does not exist (nothing is written).
        """
        kind = self._check_model(model)
        now = self.clock.now()
        good: list[CleanOutcome] = []
        rejected: list[dict[str, Any]] = []
        for i, raw in enumerate(outcomes):
            try:
                good.append(
                    clean_outcome(raw, now=now, max_skew=self.max_skew, kind=kind, model=model)
                )
            except OutcomeProblem as exc:
                rejected.append({"index": i, "error": f"Outcome {i} is invalid: {exc}"})
        if good:
            write_partitioned(self.root, "outcomes", _table(model, good, now), "observed_at")
        return IngestReport(model, len(good), rejected, now)

    def _sql(self, horizon: timedelta | None, since: datetime | None) -> str:
        """The CTEs shared by the join queries (``candidates``, ``resolved``, ...)."""
        horizon_filter = ""
        if horizon is not None:
            if horizon <= timedelta(0):
                raise ConfigError(f"The 'horizon' must be positive. Got {horizon} instead.")
            micros = int(horizon.total_seconds() * 1_000_000)
            horizon_filter = f"WHERE k.event_time >= o.observed_at - to_microseconds({micros})"
        return _JOIN_SQL.format(since=since_filter(since), horizon_filter=horizon_filter)

    def _connect(self, model: str) -> duckdb.DuckDBPyConnection:
        self._check_name(model)
        con = self.records.connect(model)
        self.records.relation(con, "outcomes", model, provenance=True).to_view("outcomes_ordered")
        return con

    def joined(
        self,
        model: str,
        *,
        horizon: timedelta | None = None,
        since: datetime | None = None,
        columns: Sequence[str] | None = None,
    ) -> duckdb.DuckDBPyRelation:
        """Prediction rows of ``model`` (every role) with their outcome, as a lazy relation.

        Columns: every prediction column, then ``label``, ``label_value``, ``observed_at``,
        ``label_written_at`` and ``matched_by`` (``request`` or ``id``). Only labeled rows.

        Args:
            horizon: an id outcome matches a prediction at most this much older than it.
            since: only predictions with ``event_time >= since``.
            columns: only these prediction columns (the join keys are always kept); reading
                fewer columns, e.g. not the JSON ``inputs``, makes large joins much faster.
        """
        sql = self._sql(horizon, since) + _SELECT_JOINED.format(
            pred_columns=_pred_columns(columns), since=since_filter(since)
        )
        return self._connect(model).sql(sql)

    def paired(
        self,
        model: str,
        *,
        champion: str | None,
        challenger: str | None,
        since: datetime | None = None,
        numeric: bool = True,
    ) -> pa.Table:
        """The labeled live answers of ``champion`` next to ``challenger``'s shadow answers.

        One row per labeled request row answered live by ``champion`` (join semantics as
        :meth:`joined`), in label-arrival order (``observed_at``, then request id and row),
        with the shadow answer of ``challenger`` to the same request row when it gave one
        (a degraded, i.e. failed, shadow call counts as no answer). This is what
        champion/challenger evaluation reads; it runs as hash joins in DuckDB and comes
        back as Arrow, which is much faster than pairing the rows of :meth:`joined`.

        Args:
            champion, challenger: exact references (``churn@3``); ``None`` matches nothing.
            since: only predictions with ``event_time >= since``.
            numeric: the numeric ``label_value``/``prediction_value`` (default) or the JSON
                ``label``/``prediction`` texts (ranking metrics; a JSON ``null`` prediction
                comes back as null).

        Returns:
            An Arrow table with columns ``label``, ``champion``, ``challenger`` (null without
            an answer: no shadow call, a failed one, or no value), ``event_s`` (the live
            request's time, epoch seconds) and ``paired`` (the shadow answered). A request
            row recorded twice by the same role gives one row per combination, as
            :meth:`joined` would.

        Example:
            >>> t = store.paired("m", champion="m@3", challenger="m@4")  # doctest: +SKIP
            >>> t.column_names  # doctest: +SKIP
            ['label', 'champion', 'challenger', 'event_s', 'paired']
        """
        values = ("label_value", "prediction_value")
        if not numeric:
            values = ("label", "nullif(prediction, 'null')")
        con = self._connect(model)
        try:
            # Without the last-write-wins ranking first: exact when no request row occurs
            # twice in the result (no duplicate outcome, live or shadow record for it), which
            # the key hashes prove; a repeated hash (rare) reruns with the ranking.
            table = _fetch(con, self._paired_sql(champion, challenger, since, values, False))
            if _repeats(table.column("key_hash")):
                table = _fetch(con, self._paired_sql(champion, challenger, since, values, True))
        finally:
            con.close()
        return table.drop_columns(["key_hash"])

    def _paired_sql(
        self,
        champion: str | None,
        challenger: str | None,
        since: datetime | None,
        values: tuple[str, str],
        ranked: bool,
    ) -> str:
        return self._sql(None, since) + _SELECT_PAIRED.format(
            label=values[0],
            prediction=values[1],
            champion=sql_literal(champion),
            challenger=sql_literal(challenger),
            since=since_filter(since),
            outcomes="resolved" if ranked else "candidates",
        )

    def unmatched(
        self, model: str, *, horizon: timedelta | None = None, since: datetime | None = None
    ) -> duckdb.DuckDBPyRelation:
        """Outcomes of ``model`` that match no prediction (kept, never dropped)."""
        con = self._connect(model)
        return con.sql(
            self._sql(horizon, since) + _SELECT_UNMATCHED.format(since=since_filter(since))
        )

    def outcomes(self, model: str) -> duckdb.DuckDBPyRelation:
        """Every stored outcome of ``model`` (duplicates included)."""
        return self._connect(model).sql("SELECT * FROM outcomes")


_JOIN_KEYS = ("request_id", "row", "caller_id", "event_time")


def _pred_columns(columns: Sequence[str] | None) -> str:
    if columns is None:
        return "*"
    known = set(PREDICTION_SCHEMA.names)
    unknown = sorted(set(columns) - known)
    if unknown:
        raise ConfigError(
            f"The 'columns' of joined() must be prediction columns {sorted(known)}. "
            f"Got unknown {unknown} instead."
        )
    wanted = list(_JOIN_KEYS) + [c for c in columns if c not in _JOIN_KEYS]
    return ", ".join(f'"{c}"' for c in wanted)


def _fetch(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    rel = con.sql(sql)
    if rel is None:  # a SELECT always gives a relation
        raise RecordsError(f"The join query returned no relation: {sql}")
    return rel.to_arrow_table()


def _repeats(column: pa.ChunkedArray) -> bool:
    """Whether a value of a null-free UINT64 column occurs twice (sorting 10 million takes
    about 0.2 s; read through the buffer, as ``to_numpy`` would import pandas)."""
    array = column.combine_chunks()
    if len(array) < 2:
        return False
    values = np.frombuffer(array.buffers()[1], np.uint64, len(array), array.offset * 8)
    values = np.sort(values)
    return bool(np.any(values[1:] == values[:-1]))


# Outcome candidates of prediction rows: by request id and row (``request``), or the latest
# prediction of the caller id at or before ``observed_at`` (``id``, an ASOF join); then
# ``resolved``: the last written candidate per request row (then the latest ``observed_at``,
# then the last on disk). No global sort: ``(file_index, file_row_number)`` orders the disk.
_JOIN_SQL = """
WITH outs AS NOT MATERIALIZED (SELECT * EXCLUDE (filename) FROM outcomes_ordered),
id_keys AS (
    SELECT DISTINCT caller_id, event_time, request_id, row FROM predictions
    WHERE caller_id IS NOT NULL{since}
),
by_id AS NOT MATERIALIZED (
    SELECT k.request_id AS m_request_id, k.row AS m_row, o.*
    FROM (SELECT * FROM outs WHERE request_id IS NULL) o
    ASOF JOIN id_keys k ON o.caller_id = k.caller_id AND o.observed_at >= k.event_time
    {horizon_filter}
),
candidates AS NOT MATERIALIZED (
    SELECT request_id AS m_request_id, row AS m_row, label, label_value, observed_at,
        written_at, file_index, file_row_number, 'request' AS matched_by
    FROM outs WHERE request_id IS NOT NULL
    UNION ALL
    SELECT m_request_id, m_row, label, label_value, observed_at, written_at, file_index,
        file_row_number, 'id' AS matched_by
    FROM by_id
),
resolved AS NOT MATERIALIZED (
    SELECT * FROM candidates
    QUALIFY row_number() OVER (
        PARTITION BY m_request_id, m_row
        ORDER BY written_at DESC, observed_at DESC, file_index DESC, file_row_number DESC) = 1
)
"""

_SELECT_JOINED = """
SELECT p.*, r.label, r.label_value, r.observed_at, r.written_at AS label_written_at,
    r.matched_by
FROM (SELECT {pred_columns} FROM predictions WHERE true{since}) p
JOIN resolved r ON p.request_id = r.m_request_id AND p.row = r.m_row
"""

_SELECT_PAIRED = """,
c AS NOT MATERIALIZED (
    SELECT request_id, row, {prediction} AS value, event_time FROM predictions
    WHERE role = 'live' AND ref = {champion}{since}
),
s AS NOT MATERIALIZED (
    SELECT request_id, row, {prediction} AS value FROM predictions
    WHERE role = 'shadow' AND ref = {challenger} AND NOT degraded{since}
)
SELECT o.{label} AS label, c.value AS champion, s.value AS challenger,
    epoch(c.event_time) AS event_s, s.request_id IS NOT NULL AS paired,
    hash(c.request_id, c.row) AS key_hash
FROM c JOIN {outcomes} o ON c.request_id = o.m_request_id AND c.row = o.m_row
LEFT JOIN s ON c.request_id = s.request_id AND c.row = s.row
ORDER BY o.observed_at, c.request_id, c.row
"""

_SELECT_UNMATCHED = """
SELECT * EXCLUDE (file_index, file_row_number) FROM outs o
WHERE NOT (o.request_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM predictions p
        WHERE p.request_id = o.request_id AND p.row = o.row{since}))
    AND NOT EXISTS (
        SELECT 1 FROM by_id b
        WHERE b.file_index = o.file_index AND b.file_row_number = o.file_row_number)
"""

"""Prediction and outcome records: buffered, batched, durable, queryable.

The gateway hands every answer to a :class:`RecordWriter` as a :class:`PredictionEvent`; the
writer flushes Parquet segments partitioned by model and date under the records root.
:class:`RecordStore` queries them with DuckDB (views ``predictions`` and ``outcomes``), checks
and compacts them; :class:`OutcomeStore` ingests delayed ground truth and joins it back.
"""

from __future__ import annotations

from flotilla.records._catalog import CorruptSegmentWarning
from flotilla.records._compact import CompactReport, CompactStep, compact
from flotilla.records._event import ROLES, PredictionEvent
from flotilla.records._files import OUTCOME_FILE_FORMATS, read_outcome_file
from flotilla.records._outcomes import DEFAULT_MAX_SKEW, IngestReport, OutcomeStore
from flotilla.records._schema import OUTCOME_SCHEMA, PREDICTION_SCHEMA
from flotilla.records._sql import since_filter, sql_literal
from flotilla.records._store import CheckReport, RecordStore
from flotilla.records._writer import RecordWriter, install_signal_flush

__all__ = [
    "DEFAULT_MAX_SKEW",
    "OUTCOME_FILE_FORMATS",
    "OUTCOME_SCHEMA",
    "PREDICTION_SCHEMA",
    "ROLES",
    "CheckReport",
    "CompactReport",
    "CompactStep",
    "CorruptSegmentWarning",
    "IngestReport",
    "OutcomeStore",
    "PredictionEvent",
    "RecordStore",
    "RecordWriter",
    "compact",
    "install_signal_flush",
    "read_outcome_file",
    "since_filter",
    "sql_literal",
]

"""Arrow schemas of prediction and outcome records, and the event-to-rows expansion."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from flotilla.records._event import PredictionEvent

__all__ = [
    "FIELDS",
    "OUTCOME_SCHEMA",
    "PREDICTION_SCHEMA",
    "dumps",
    "encode_prediction",
    "event_fields",
    "fields_to_table",
    "numeric_value",
]

_TS = pa.timestamp("us", tz="UTC")

PREDICTION_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("row", pa.int64(), nullable=False),
        pa.field("caller_id", pa.string()),
        pa.field("model", pa.string(), nullable=False),
        pa.field("ref", pa.string()),
        pa.field("role", pa.string()),
        pa.field("inputs", pa.string()),
        pa.field("prediction", pa.string()),
        pa.field("prediction_value", pa.float64()),
        pa.field("latency_ms", pa.float64()),
        pa.field("degraded", pa.bool_()),
        pa.field("reasons", pa.string()),
        pa.field("event_time", _TS, nullable=False),
        pa.field("written_at", _TS, nullable=False),
        pa.field("feature_ages_s", pa.string()),
    ]
)
"""One row per (request, row index). JSON columns hold minified JSON text (written by
``orjson``, or by DuckDB in the records helper: the same values, some large floats spelled
differently)."""

OUTCOME_SCHEMA = pa.schema(
    [
        pa.field("model", pa.string(), nullable=False),
        pa.field("request_id", pa.string()),
        pa.field("row", pa.int64()),
        pa.field("caller_id", pa.string()),
        pa.field("label", pa.string(), nullable=False),
        pa.field("label_value", pa.float64()),
        pa.field("observed_at", _TS, nullable=False),
        pa.field("written_at", _TS, nullable=False),
    ]
)
"""One row per outcome (delayed ground truth)."""

_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _default(obj: Any) -> Any:
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def dumps(value: Any) -> str:
    """JSON text of ``value`` (numpy values and datetimes included; others as ``str``)."""
    return orjson.dumps(value, default=_default, option=_OPTS).decode()


def numeric_value(value: Any) -> float | None:
    """``value`` as a float when it is a finite number or a bool, else ``None``."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        out = float(value)
        return out if math.isfinite(out) else None
    if hasattr(value, "dtype") and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return numeric_value(value.item())
    return None


def _as_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    return None


def _feature_ages(times: Mapping[str, Any], event_time: datetime) -> str:
    ages: dict[str, float | None] = {}
    for name, value in times.items():
        when = _as_time(value)
        ages[str(name)] = None if when is None else (event_time - when).total_seconds()
    return dumps(ages)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _pad(items: list[Any] | None, n: int) -> list[Any]:
    if items is None:
        return [None] * n
    if len(items) >= n:
        return items
    return [*items, *([None] * (n - len(items)))]


_Row = tuple[Any, ...]

FIELDS = 12
"""The fields of :class:`PredictionEvent`, in order: what ``RecordWriter.record`` takes."""


def event_fields(event: PredictionEvent) -> tuple[Any, ...]:
    """``event``'s fields as a tuple, in :class:`PredictionEvent`'s order."""
    return (
        event.request_id, event.model, event.ref, event.role, event.inputs, event.predictions,
        event.ids, event.latency_ms, event.degraded, event.reasons, event.event_time,
        event.feature_times,
    )  # fmt: skip


def encode_prediction(fields: tuple[Any, ...]) -> bytes:
    """One prediction's fields (see :data:`FIELDS`) as JSON bytes.

    The form a writer with a helper process buffers: a copy (the caller may change its lists
    afterwards) that the garbage collector never scans however long it waits, and that
    crosses to the helper as it is.

    The bytes are copied out of orjson's result: orjson writes into a large buffer and
    shrinks it, and keeping tens of thousands of those until the next flush cost one fresh
    page of memory (a page fault) per record, about 3 us per record on the serving thread;
    the right-sized copy (``bytes(bytearray(b))``, cheaper than a memoryview or a slice)
    comes from Python's small-object allocator: about 1 us and one fault per 17 records,
    measured with ``resource.getrusage``.

    Raises:
        TypeError: a value cannot be written as JSON (an integer beyond 64 bits, say); other
            objects are written as their ``str``.
    """
    return bytes(bytearray(orjson.dumps(fields, default=_default, option=_OPTS)))


def _fields_rows(fields: Any) -> list[_Row]:
    if type(fields) is bytes:
        fields = orjson.loads(fields)
    if len(fields) != FIELDS:
        raise TypeError(f"a prediction has {FIELDS} fields, not {len(fields)}")
    request_id, model, ref, role, inputs, predictions, ids, latency, degraded, reasons = fields[:10]
    when, times = fields[10], fields[11]
    event_time = _as_time(when) if isinstance(when, str) else _aware(when)
    if event_time is None:
        raise ValueError(f"event_time {when!r} is not an ISO 8601 time")
    n = max(len(inputs), len(predictions))
    if len(inputs) != n or len(predictions) != n:
        inputs, predictions = _pad(inputs, n), _pad(predictions, n)
    ids = ids if ids is not None and len(ids) >= n else _pad(ids, n)
    request_id, latency, degraded = str(request_id), float(latency), bool(degraded)
    reasons = dumps(reasons) if reasons else "[]"
    rows: list[_Row] = []
    for i in range(n):
        prediction, caller = predictions[i], ids[i]
        ftimes = times[i] if times is not None and i < len(times) else None
        fast = type(prediction) is float and math.isfinite(prediction)
        value = prediction if fast else numeric_value(prediction)
        rows.append(
            (
                request_id,
                i,
                None if caller is None else str(caller),
                model,
                ref,
                role,
                dumps(inputs[i]),
                dumps(prediction),
                value,
                latency,
                degraded,
                reasons,
                event_time,
                None if ftimes is None else _feature_ages(ftimes, event_time),
            )
        )
    return rows


_ROW_ERRORS = (
    TypeError, ValueError, AttributeError, OverflowError, KeyError, IndexError,
    orjson.JSONDecodeError,
)  # fmt: skip


def fields_to_table(
    items: Iterable[Any], written_at: datetime, *, chunk: int = 4096
) -> tuple[pa.Table, list[str]]:
    """Expand predictions to one row per (request, row index), stamped with ``written_at``.

    Each item is a prediction's fields (a sequence in :data:`FIELDS` order, ``event_time``
    a datetime or ISO text) or :func:`encode_prediction`'s bytes of them. Items are expanded
    ``chunk`` at a time so the Python objects of one conversion die young. Returns the
    table and one message per item that could not be expanded (e.g. ``inputs`` that is not
    a list); those rows are left out so one bad prediction never fails a batch.
    """
    tables: list[pa.Table] = []
    bad: list[str] = []
    rows: list[_Row] = []
    for item in items:
        try:
            rows.extend(_fields_rows(item))
        except _ROW_ERRORS as exc:
            bad.append(f"event {_request_id(item)!r} could not be recorded ({exc})")
        if len(rows) >= chunk:
            tables.append(_table(rows, written_at))
            rows = []
    if rows or not tables:
        tables.append(_table(rows, written_at))
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    return table, bad


_ROW_NAMES = [f.name for f in PREDICTION_SCHEMA if f.name != "written_at"]


def _table(rows: list[_Row], written_at: datetime) -> pa.Table:
    n = len(rows)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in _ROW_NAMES]
    arrays = {
        name: pa.array(values, type=PREDICTION_SCHEMA.field(name).type)
        for name, values in zip(_ROW_NAMES, columns, strict=True)
    }
    arrays["written_at"] = pa.array([_aware(written_at)] * n, type=_TS)
    return pa.table([arrays[f.name] for f in PREDICTION_SCHEMA], schema=PREDICTION_SCHEMA)


def _request_id(item: Any) -> str:
    try:
        fields = orjson.loads(item) if type(item) is bytes else item
        return str(fields[0])
    except Exception:
        return "?"

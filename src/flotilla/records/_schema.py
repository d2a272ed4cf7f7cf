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
    "OUTCOME_SCHEMA",
    "PREDICTION_SCHEMA",
    "dumps",
    "events_to_table",
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
"""One row per (request, row index). JSON columns hold text written by ``orjson``."""

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


def _event_rows(event: PredictionEvent) -> list[_Row]:
    inputs, predictions = event.inputs, event.predictions
    n = max(len(inputs), len(predictions))
    if len(inputs) != n or len(predictions) != n:
        inputs, predictions = _pad(inputs, n), _pad(predictions, n)
    ids = event.ids if event.ids is not None and len(event.ids) >= n else _pad(event.ids, n)
    times = event.feature_times
    event_time = _aware(event.event_time)
    request_id, model, ref, role = str(event.request_id), event.model, event.ref, event.role
    latency, degraded = float(event.latency_ms), bool(event.degraded)
    reasons = dumps(event.reasons) if event.reasons else "[]"
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


def events_to_table(
    events: Iterable[PredictionEvent], written_at: datetime
) -> tuple[pa.Table, list[tuple[PredictionEvent, Exception]]]:
    """Expand events to one row per (request, row index), stamped with ``written_at``.

    Returns the table and the events that could not be expanded (e.g. ``inputs`` that is not
    a list), each with its error; those rows are left out so one bad event never fails a batch.
    """
    names = [f.name for f in PREDICTION_SCHEMA if f.name != "written_at"]
    rows: list[_Row] = []
    bad: list[tuple[PredictionEvent, Exception]] = []
    for event in events:
        try:
            rows.extend(_event_rows(event))
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            bad.append((event, exc))
    n = len(rows)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = {
        name: pa.array(list(values), type=PREDICTION_SCHEMA.field(name).type)
        for name, values in zip(names, columns, strict=True)
    }
    arrays["written_at"] = pa.array([_aware(written_at)] * n, type=_TS)
    table = pa.table([arrays[f.name] for f in PREDICTION_SCHEMA], schema=PREDICTION_SCHEMA)
    return table, bad

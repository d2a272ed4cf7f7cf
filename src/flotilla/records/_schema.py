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


def _get(items: list[Any] | None, i: int) -> Any:
    return items[i] if items is not None and i < len(items) else None


def _append_event(cols: dict[str, list[Any]], event: PredictionEvent) -> None:
    n = max(len(event.inputs), len(event.predictions))
    event_time = _aware(event.event_time)
    reasons = dumps(event.reasons)
    for i in range(n):
        prediction = _get(event.predictions, i)
        caller = _get(event.ids, i)
        times = _get(event.feature_times, i)
        cols["request_id"].append(str(event.request_id))
        cols["row"].append(i)
        cols["caller_id"].append(None if caller is None else str(caller))
        cols["model"].append(event.model)
        cols["ref"].append(event.ref)
        cols["role"].append(event.role)
        cols["inputs"].append(dumps(_get(event.inputs, i)))
        cols["prediction"].append(dumps(prediction))
        cols["prediction_value"].append(numeric_value(prediction))
        cols["latency_ms"].append(float(event.latency_ms))
        cols["degraded"].append(bool(event.degraded))
        cols["reasons"].append(reasons)
        cols["event_time"].append(event_time)
        cols["feature_ages_s"].append(None if times is None else _feature_ages(times, event_time))


def events_to_table(
    events: Iterable[PredictionEvent], written_at: datetime
) -> tuple[pa.Table, list[tuple[PredictionEvent, Exception]]]:
    """Expand events to one row per (request, row index), stamped with ``written_at``.

    Returns the table and the events that could not be expanded (e.g. ``inputs`` that is not
    a list), each with its error; those rows are left out so one bad event never fails a batch.
    """
    names = [f.name for f in PREDICTION_SCHEMA if f.name != "written_at"]
    cols: dict[str, list[Any]] = {name: [] for name in names}
    bad: list[tuple[PredictionEvent, Exception]] = []
    for event in events:
        size = len(cols["request_id"])
        try:
            _append_event(cols, event)
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            for values in cols.values():
                del values[size:]
            bad.append((event, exc))
    n = len(cols["request_id"])
    arrays = {name: pa.array(cols[name], type=PREDICTION_SCHEMA.field(name).type) for name in names}
    arrays["written_at"] = pa.array([_aware(written_at)] * n, type=_TS)
    table = pa.table([arrays[f.name] for f in PREDICTION_SCHEMA], schema=PREDICTION_SCHEMA)
    return table, bad

"""Validation of outcome dicts (the boundary of ``OutcomeStore.ingest``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["CleanOutcome", "OutcomeProblem", "clean_outcome"]


class OutcomeProblem(ValueError):
    """One outcome is invalid; the message names the field and what to do."""


@dataclass(frozen=True, slots=True)
class CleanOutcome:
    """A validated outcome."""

    request_id: str | None
    row: int | None
    caller_id: str | None
    label: str | bool | int | float
    observed_at: datetime


def _text(value: Any, name: str) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise OutcomeProblem(f"its '{name}' must be a string. Got {value!r} instead.")
    text = str(value)
    if not text:
        raise OutcomeProblem(f"its '{name}' must not be empty.")
    return text


def _index(value: Any) -> int:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OutcomeProblem(
            f"its 'index' (the row of the request) must be an integer >= 0. Got {value!r} instead."
        )
    return value


def _label(value: Any) -> str | bool | int | float:
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise OutcomeProblem(
        "its 'label' must be a JSON scalar (a number, a bool or a string). "
        f"Got {value!r} ({type(value).__name__}) instead."
    )


def parse_time(value: Any, name: str) -> datetime:
    """An aware UTC datetime from an ISO-8601 string or a datetime (naive means UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise OutcomeProblem(
                f"its '{name}' must be an ISO-8601 time such as '2026-01-31T12:00:00Z'. "
                f"Got {value!r} instead."
            ) from None
    else:
        raise OutcomeProblem(
            f"its '{name}' must be an ISO-8601 time string. Got {value!r} instead."
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def clean_outcome(raw: Any, *, now: datetime, max_skew: timedelta) -> CleanOutcome:
    """Validate one outcome dict.

    Raises:
        OutcomeProblem: what is wrong with it (the caller prefixes the row).
    """
    if not isinstance(raw, dict):
        raise OutcomeProblem(
            "it must be an object like {'request_id': 'r1', 'index': 0, 'label': 1, "
            f"'observed_at': '2026-01-31T12:00:00Z'}}. Got {raw!r} instead."
        )
    request_id = _text(raw.get("request_id"), "request_id")
    caller_id = _text(raw.get("id"), "id")
    if request_id is None and caller_id is None:
        raise OutcomeProblem("it needs a 'request_id' (with its 'index') or a caller 'id'.")
    if "label" not in raw:
        raise OutcomeProblem("it has no 'label'.")
    label = _label(raw["label"])
    observed = raw.get("observed_at")
    observed_at = now if observed is None else parse_time(observed, "observed_at")
    if observed_at > now + max_skew:
        raise OutcomeProblem(
            f"its 'observed_at' {observed_at.isoformat()} lies in the future (now is "
            f"{now.isoformat()}, allowed clock skew {max_skew}). Send outcomes once observed."
        )
    row = _index(raw.get("index")) if request_id is not None else None
    return CleanOutcome(request_id, row, caller_id, label, observed_at)

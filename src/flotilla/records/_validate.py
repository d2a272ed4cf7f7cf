"""Validation of outcome dicts (the boundary of ``OutcomeStore.ingest``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

__all__ = ["CleanOutcome", "Label", "OutcomeProblem", "clean_outcome"]

Label = str | bool | int | float | list[str | int | float]
"""A stored label: a scalar, or for ranking models the list of relevant item ids."""


class OutcomeProblem(ValueError):
    """One outcome is invalid; the message names the field and what to do."""


@dataclass(frozen=True, slots=True)
class CleanOutcome:
    """A validated outcome."""

    request_id: str | None
    row: int | None
    caller_id: str | None
    label: Label
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


def _scalar(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def _label(value: Any) -> str | bool | int | float:
    value = _scalar(value)
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise OutcomeProblem(
        "its 'label' must be a JSON scalar (a number, a bool or a string). "
        f"Got {value!r} ({type(value).__name__}) instead."
    )


_BAD = object()  # what a label rule answers for a label of the wrong type
_TRUTH = {"0": 0, "1": 1, "false": False, "true": True}


def _number_text(text: str) -> float | None:
    """A finite number written as text (CSV columns mixing numbers and words are text)."""
    if "_" in text:  # float() reads '1_0' as 10
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _binary(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return int(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUTH:
            return _TRUTH[text]
        number = _number_text(text)
        if number is not None and number in (0.0, 1.0):
            return int(number)
    return _BAD


def _score(value: Any) -> Any:
    if isinstance(value, bool):
        return _BAD
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    if isinstance(value, str):
        number = _number_text(value.strip())
        return _BAD if number is None else number
    return _BAD


def _class(value: Any) -> Any:
    if isinstance(value, str | int | bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return _BAD


def _item(value: Any) -> Any:
    if isinstance(value, bool):
        return _BAD
    if isinstance(value, str | int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return _BAD


def _items(value: Any) -> Any:
    if not isinstance(value, list | tuple):
        return _item(value)
    items = [_item(_scalar(v)) for v in value]
    return _BAD if any(v is _BAD for v in items) else items


_RULES: dict[str, tuple[Callable[[Any], Any], str]] = {
    "probability": (_binary, "a binary outcome: 0 or 1, true or false"),
    "score": (_score, "a finite number (the observed value)"),
    "label": (_class, "a class label: a string, an integer or a bool"),
    "items": (_items, "the relevant item id (a string or a number) or a list of them"),
}
"""Per output kind: the label check (the cleaned label, or ``_BAD``) and what it expects."""


def _label_for(value: Any, kind: str | None, model: str | None) -> Label:
    """``value`` checked against the model's output kind (any JSON scalar when unknown)."""
    rule = _RULES.get(kind or "")
    if rule is None:
        return _label(value)
    clean, expected = rule
    value = _scalar(value)
    label = clean(value)
    if label is _BAD:
        whose = "the model" if model is None else f"model {model!r}"
        raise OutcomeProblem(
            f"its 'label' must be {expected}, as {whose} has output kind {kind!r}. "
            f"Got {value!r} ({type(value).__name__}) instead."
        )
    return cast(Label, label)


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


def clean_outcome(
    raw: Any,
    *,
    now: datetime,
    max_skew: timedelta,
    kind: str | None = None,
    model: str | None = None,
) -> CleanOutcome:
    """Validate one outcome dict; ``kind`` (the model's output kind) types the label.

    Without a known ``kind`` any JSON scalar is a label. Labels that CSV reads as text are
    taken when they fit (``"1"`` for a probability model, ``"2.5"`` for a score model).

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
    label = _label_for(raw["label"], kind, model)
    observed = raw.get("observed_at")
    observed_at = now if observed is None else parse_time(observed, "observed_at")
    if observed_at > now + max_skew:
        raise OutcomeProblem(
            f"its 'observed_at' {observed_at.isoformat()} lies in the future (now is "
            f"{now.isoformat()}, allowed clock skew {max_skew}). Send outcomes once observed."
        )
    row = _index(raw.get("index")) if request_id is not None else None
    return CleanOutcome(request_id, row, caller_id, label, observed_at)

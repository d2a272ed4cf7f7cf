"""The unit a gateway hands to the records writer: one request's answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["ROLES", "PredictionEvent"]

ROLES = ("live", "shadow", "fallback", "static")
"""The roles a prediction can be recorded with."""


@dataclass(frozen=True, slots=True)
class PredictionEvent:
    """One request's answer (or one shadow/fallback step), expanded to rows by the writer.

    Args:
        request_id: the request's id (shared by the live, shadow and fallback steps).
        model: the model name the request was made to.
        ref: the version that answered, ``"name@N"`` (or ``"static"``-like labels).
        role: ``live``, ``shadow``, ``fallback`` or ``static``.
        inputs: the request's rows (one dict per row).
        predictions: one prediction per row.
        ids: optional caller ids, one per row (used to join outcomes by id).
        latency_ms: how long this step took.
        degraded: whether the answer was degraded (served by a fallback step).
        reasons: why it was degraded (``[{"step": ..., "reason": ...}]``), empty when not.
        event_time: when the request arrived, an aware UTC datetime.
        feature_times: optional per-row ``{feature: written_at}`` (datetime or ISO text);
            stored as the feature ages in seconds at ``event_time``.

    Example:
        >>> from datetime import UTC, datetime
        >>> e = PredictionEvent(
        ...     request_id="r1", model="churn", ref="churn@3", role="live",
        ...     inputs=[{"x": 1.0}], predictions=[0.7], ids=["u42"], latency_ms=1.2,
        ...     degraded=False, reasons=[], event_time=datetime.now(UTC))
        >>> e.role
        'live'
    """

    request_id: str
    model: str
    ref: str
    role: str
    inputs: list[dict[str, Any]]
    predictions: list[Any]
    ids: list[str] | None
    latency_ms: float
    degraded: bool
    reasons: list[dict[str, Any]]
    event_time: datetime
    feature_times: list[dict[str, Any]] | None = None

"""Shared type aliases and protocols used across Flotilla's packages."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable

__all__ = ["FALLBACK_REASONS", "Clock", "JSONValue", "Predictor", "Record"]

FALLBACK_REASONS: tuple[str, ...] = (
    "invalid_input",
    "timeout",
    "error",
    "invalid_output",
    "circuit_open",
    "overloaded",
    "not_loaded",
)
"""Why a step of a fallback chain did not answer: the complete vocabulary, shared by the
gateway (responses, metrics), the health report and the alert rules."""

Record = dict[str, Any]
"""One input row: field name -> value."""

JSONValue = Any
"""Anything ``orjson`` can serialise (kept loose on purpose)."""


@runtime_checkable
class Predictor(Protocol):
    """Anything that turns a batch of records into one prediction per record."""

    def predict(self, records: list[Record]) -> list[Any]:
        """Predict a batch; returns a list as long as ``records``."""
        ...


class Clock(Protocol):
    """A source of time: monotonic seconds for durations, aware UTC datetimes for stamps."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes backwards."""
        ...

    def now(self) -> datetime:
        """The current wall time, aware, in UTC."""
        ...

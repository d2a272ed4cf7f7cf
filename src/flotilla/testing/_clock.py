"""A clock tests can move by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["FakeClock"]


class FakeClock:
    """A clock that only moves when told to.

    Example:
        >>> c = FakeClock(start=datetime(2026, 1, 1, tzinfo=UTC))
        >>> c.advance(days=3)
        >>> c.now().day
        4
    """

    def __init__(self, *, start: datetime | None = None) -> None:
        self._wall = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 1000.0

    def monotonic(self) -> float:
        return self._mono

    def now(self) -> datetime:
        return self._wall

    def advance(self, seconds: float = 0.0, **delta: float) -> None:
        """Move both clocks forward by ``seconds`` plus any ``timedelta`` keywords."""
        step = timedelta(seconds=seconds, **delta)
        self._wall += step
        self._mono += step.total_seconds()

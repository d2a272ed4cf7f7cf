"""Clocks: a monotonic one for durations and deadlines, a wall one for timestamps.

Inject a :class:`Clock` wherever time matters so tests can control it
(``flotilla.testing.FakeClock``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["SystemClock", "utcnow"]


def utcnow() -> datetime:
    """The current wall time as an aware UTC datetime."""
    return datetime.now(UTC)


class SystemClock:
    """The real clock: ``monotonic()`` for durations, ``now()`` for event and write times."""

    monotonic = staticmethod(time.monotonic)
    """Seconds from an arbitrary origin that never goes backwards (``time.monotonic`` itself:
    the request path reads it several times per request)."""

    def now(self) -> datetime:
        """The current wall time, aware, in UTC."""
        return datetime.now(UTC)

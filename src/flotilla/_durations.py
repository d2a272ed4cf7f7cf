"""Durations (``30m``, ``12h``, ``7d``) and ISO-8601 times as the CLI and rule files write them.

Callers keep their own error messages: these helpers return ``None`` for text they cannot read.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["SECONDS_PER_UNIT", "read_duration", "read_utc_time"]

SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def read_duration(
    text: str, *, units: str = "smhdw", whole: bool = False, positive: bool = True
) -> timedelta | None:
    """The duration ``text`` names (a number and one of ``units``), else ``None``.

    Example:
        >>> read_duration("90m")
        datetime.timedelta(seconds=5400)
        >>> read_duration("1.5h", whole=True) is None
        True
    """
    match = _DURATION.match(text)
    if match is None or match.group(2) not in units:
        return None
    number = match.group(1)
    if whole and not number.isdigit():
        return None
    value = float(number)
    if positive and value <= 0:
        return None
    return timedelta(seconds=value * SECONDS_PER_UNIT[match.group(2)])


def read_utc_time(text: str) -> datetime | None:
    """An ISO-8601 date or time (``Z`` allowed) as an aware datetime; naive means UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

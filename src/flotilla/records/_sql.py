"""SQL text pieces for queries over the records views (``predictions``, ``outcomes``)."""

from __future__ import annotations

from datetime import UTC, datetime

from flotilla.errors import ConfigError

__all__ = ["since_filter", "sql_literal"]


def sql_literal(text: str | None) -> str:
    """``text`` as a quoted SQL string literal (``NULL`` for ``None``)."""
    return "NULL" if text is None else "'" + text.replace("'", "''") + "'"


def since_filter(since: datetime | None) -> str:
    """`` AND event_time >= <since>`` (a naive ``since`` is UTC), or nothing for ``None``."""
    if since is None:
        return ""
    if not isinstance(since, datetime):
        raise ConfigError(f"The 'since' must be a datetime. Got {since!r} instead.")
    moment = since if since.tzinfo else since.replace(tzinfo=UTC)
    return f" AND event_time >= TIMESTAMPTZ {sql_literal(moment.isoformat())}"

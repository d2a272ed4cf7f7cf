"""Persistence of alert state in the registry database: streaks and alert groups."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from flotilla.errors import ConflictError
from flotilla.registry import tables as t
from flotilla.registry.engine import run_read, run_write

__all__ = ["AlertStateStore", "GroupState", "Streak"]


@dataclass(frozen=True)
class Streak:
    """How many consecutive windows up to ``window_end`` a rule held for one model."""

    streak: int
    window_end: datetime
    value: float | None = None
    numbers: dict[str, float | None] | None = None


@dataclass(frozen=True)
class GroupState:
    """The stored state of one (rule, group key)."""

    rule: str
    group: str
    state: str
    severity: str
    models: tuple[str, ...]
    started_at: datetime | None
    updated_at: datetime
    notified_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None

    @property
    def firing(self) -> bool:
        """Whether the alert of this group fires now."""
        return self.state == "firing"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""

        def iso(v: datetime | None) -> str | None:
            return None if v is None else v.isoformat()

        return {
            "rule": self.rule,
            "group": self.group,
            "state": self.state,
            "severity": self.severity,
            "models": list(self.models),
            "started_at": iso(self.started_at),
            "updated_at": iso(self.updated_at),
            "notified_at": iso(self.notified_at),
            "acknowledged_at": iso(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
        }

    def with_(self, **changes: Any) -> GroupState:
        """A copy with some fields changed."""
        return replace(self, **changes)


def _finite(numbers: dict[str, float | None] | None) -> dict[str, float | None] | None:
    """JSON-safe numbers: NaN and infinities become ``None``."""
    if numbers is None:
        return None
    return {
        k: None if v is None or not math.isfinite(float(v)) else float(v)
        for k, v in numbers.items()
    }


def _group_from_row(row: sa.Row[Any]) -> GroupState:
    m = row._mapping
    return GroupState(
        rule=m["rule"],
        group=m["group_key"],
        state=m["state"],
        severity=m["severity"],
        models=tuple(m["models"] or ()),
        started_at=m["started_at"],
        updated_at=m["updated_at"],
        notified_at=m["notified_at"],
        acknowledged_at=m["acknowledged_at"],
        acknowledged_by=m["acknowledged_by"],
    )


class AlertStateStore:
    """Reads and writes streaks and alert groups (tables ``fl_alert_streaks``/``_groups``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def streaks(self, rule: str) -> dict[str, Streak]:
        """The streak of every model of ``rule``."""
        s = t.alert_streaks

        def read(conn: Connection) -> dict[str, Streak]:
            rows = conn.execute(sa.select(s).where(s.c.rule == rule))
            return {r.model: Streak(r.streak, r.window_end, r.value, r.numbers) for r in rows}

        return run_read(self.engine, read)

    def save_streaks(self, rule: str, streaks: dict[str, Streak]) -> None:
        """Replace the stored streaks of these models of ``rule``."""
        if not streaks:
            return
        s = t.alert_streaks

        def write(conn: Connection) -> None:
            conn.execute(sa.delete(s).where(s.c.rule == rule, s.c.model.in_(list(streaks))))
            conn.execute(
                sa.insert(s),
                [
                    {
                        "rule": rule,
                        "model": model,
                        "streak": st.streak,
                        "window_end": st.window_end,
                        "value": st.value,
                        "numbers": _finite(st.numbers),
                    }
                    for model, st in streaks.items()
                ],
            )

        run_write(self.engine, write)

    def groups(self, rule: str | None = None) -> list[GroupState]:
        """Stored alert groups (of one rule, or all), firing ones first."""
        g = t.alert_groups
        query = sa.select(g).order_by(g.c.rule, g.c.group_key)
        if rule is not None:
            query = query.where(g.c.rule == rule)

        def read(conn: Connection) -> list[GroupState]:
            found = [_group_from_row(r) for r in conn.execute(query)]
            return sorted(found, key=lambda x: not x.firing)

        return run_read(self.engine, read)

    def save_group(self, group: GroupState) -> None:
        """Insert or replace one group's state."""
        g = t.alert_groups
        values = {
            "rule": group.rule,
            "group_key": group.group,
            "state": group.state,
            "severity": group.severity,
            "models": list(group.models),
            "started_at": group.started_at,
            "updated_at": group.updated_at,
            "notified_at": group.notified_at,
            "acknowledged_at": group.acknowledged_at,
            "acknowledged_by": group.acknowledged_by,
        }

        def write(conn: Connection) -> None:
            conn.execute(sa.delete(g).where(g.c.rule == group.rule, g.c.group_key == group.group))
            conn.execute(sa.insert(g).values(**values))

        run_write(self.engine, write)

    def acknowledge(self, rule: str, group: str, *, actor: str, at: datetime) -> GroupState:
        """Mark a firing alert acknowledged (it will not escalate to an incident).

        Raises:
            ConflictError: the alert of (rule, group) is not firing.
        """
        g = t.alert_groups

        def write(conn: Connection) -> GroupState:
            row = conn.execute(sa.select(g).where(g.c.rule == rule, g.c.group_key == group)).first()
            if row is None or row.state != "firing":
                raise ConflictError(
                    f"The alert {rule!r} of group {group!r} is not firing; nothing to "
                    f"acknowledge. See `flotilla monitor alerts` for the firing ones."
                )
            conn.execute(
                sa.update(g)
                .where(g.c.rule == rule, g.c.group_key == group)
                .values(acknowledged_at=at, acknowledged_by=actor)
            )
            found = conn.execute(sa.select(g).where(g.c.rule == rule, g.c.group_key == group)).one()
            return _group_from_row(found)

        return run_write(self.engine, write)

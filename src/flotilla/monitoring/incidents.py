"""Incidents: alerts that need a person, assigned to the model's owner until resolved.

States move ``open -> acknowledged -> resolved`` (an open incident may also be resolved
directly). Every change is written to the registry's audit trail (``incident.open``,
``incident.ack``, ``incident.resolve``). Unacknowledged incidents are notified again every
``renotify`` interval by the monitor (:meth:`IncidentStore.due_for_renotify`).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from flotilla.clock import SystemClock
from flotilla.errors import ConfigError, ConflictError, NotFoundError
from flotilla.registry import Registry
from flotilla.registry import tables as t
from flotilla.registry.engine import run_read, run_write
from flotilla.types import Clock

__all__ = ["INCIDENT_STATES", "Incident", "IncidentNotFoundError", "IncidentStore"]

INCIDENT_STATES = ("open", "acknowledged", "resolved")


class IncidentNotFoundError(NotFoundError):
    """No incident has this id."""


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True)
class Incident:
    """One incident: what fired, for which models, who owns it, and where it stands."""

    id: int
    rule: str
    group: str
    models: tuple[str, ...]
    severity: str
    state: str
    owner: str
    title: str
    opened_at: datetime
    renotify: timedelta
    details: dict[str, Any] = field(default_factory=dict)
    notified_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    ack_note: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolve_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``GET /v1/incidents`` and ``--json``)."""
        return {
            "id": self.id,
            "rule": self.rule,
            "group": self.group,
            "models": list(self.models),
            "severity": self.severity,
            "state": self.state,
            "owner": self.owner,
            "title": self.title,
            "details": self.details,
            "opened_at": _iso(self.opened_at),
            "renotify_s": self.renotify.total_seconds(),
            "notified_at": _iso(self.notified_at),
            "acknowledged_at": _iso(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
            "ack_note": self.ack_note,
            "resolved_at": _iso(self.resolved_at),
            "resolved_by": self.resolved_by,
            "resolve_note": self.resolve_note,
        }


def _from_row(row: sa.Row[Any]) -> Incident:
    m = row._mapping
    return Incident(
        id=int(m["id"]),
        rule=m["rule"],
        group=m["group_key"],
        models=tuple(m["models"] or ()),
        severity=m["severity"],
        state=m["state"],
        owner=m["owner"],
        title=m["title"],
        opened_at=m["opened_at"],
        renotify=timedelta(seconds=float(m["renotify_s"])),
        details=dict(m["details"] or {}),
        notified_at=m["notified_at"],
        acknowledged_at=m["acknowledged_at"],
        acknowledged_by=m["acknowledged_by"],
        ack_note=m["ack_note"],
        resolved_at=m["resolved_at"],
        resolved_by=m["resolved_by"],
        resolve_note=m["resolve_note"],
    )


def _note(note: object) -> str:
    if not isinstance(note, str) or not note.strip():
        raise ConfigError(
            f"A note is required to acknowledge or resolve an incident (what was done). "
            f"Got {note!r} instead."
        )
    return note.strip()


class IncidentStore:
    """Incidents in the registry database.

    Args:
        registry: an open :class:`~flotilla.registry.Registry` (its engine and audit trail).
        clock: the source of timestamps (default the system clock).

    Example:
        >>> store = IncidentStore(registry)                                     # doctest: +SKIP
        >>> store.ack(3, note="Upstream feed fixed, watching", actor="ana")      # doctest: +SKIP
    """

    def __init__(self, registry: Registry, *, clock: Clock | None = None) -> None:
        self.registry = registry
        self.clock = clock

    def _now(self) -> datetime:
        return (self.clock or SystemClock()).now()

    def open(
        self,
        *,
        rule: str,
        group: str,
        models: Sequence[str],
        severity: str,
        owner: str,
        title: str,
        details: dict[str, Any] | None = None,
        renotify: timedelta = timedelta(hours=24),
        actor: str = "flotilla-monitor",
    ) -> Incident:
        """Open a new incident (already notified now) and audit it; returns it."""
        now = self._now()
        values = {
            "rule": rule,
            "group_key": group,
            "models": sorted(models),
            "severity": severity,
            "state": "open",
            "owner": owner,
            "title": title,
            "details": details or {},
            "renotify_s": renotify.total_seconds(),
            "opened_at": now,
            "notified_at": now,
        }

        def write(conn: Connection) -> Incident:
            new_id = conn.execute(sa.insert(t.incidents).values(**values)).inserted_primary_key
            assert new_id is not None
            return self._get(conn, int(new_id[0]))

        incident = run_write(self.registry.engine, write)
        self._audit("incident.open", incident, before=None, reason=title, actor=actor)
        return incident

    def _get(self, conn: Connection, incident_id: int) -> Incident:
        row = conn.execute(sa.select(t.incidents).where(t.incidents.c.id == incident_id)).first()
        if row is None:
            raise IncidentNotFoundError(
                f"There is no incident {incident_id}. See `flotilla incidents list --all`."
            )
        return _from_row(row)

    def get(self, incident_id: int) -> Incident:
        """One incident by id.

        Raises:
            IncidentNotFoundError: no incident has this id.
        """
        return run_read(self.registry.engine, lambda conn: self._get(conn, int(incident_id)))

    def list(self, *, state: str | None = None, include_resolved: bool = False) -> list[Incident]:
        """Incidents, newest first: unresolved ones by default, or only those in ``state``.

        Raises:
            ConfigError: ``state`` is not one of open, acknowledged, resolved.
        """
        i = t.incidents
        query = sa.select(i).order_by(i.c.id.desc())
        if state is not None:
            if state not in INCIDENT_STATES:
                raise ConfigError(
                    f"The 'state' of an incident must be one of {', '.join(INCIDENT_STATES)}. "
                    f"Got {state!r} instead."
                )
            query = query.where(i.c.state == state)
        elif not include_resolved:
            query = query.where(i.c.state != "resolved")
        return run_read(
            self.registry.engine, lambda conn: [_from_row(r) for r in conn.execute(query)]
        )

    def latest(self, rule: str, group: str) -> Incident | None:
        """The newest incident of (rule, group) in any state, if any."""
        i = t.incidents
        query = sa.select(i).where(i.c.rule == rule, i.c.group_key == group).order_by(i.c.id.desc())

        def read(conn: Connection) -> Incident | None:
            row = conn.execute(query).first()
            return None if row is None else _from_row(row)

        return run_read(self.registry.engine, read)

    def _transition(
        self, incident_id: int, *, to: str, allowed: tuple[str, ...], changes: dict[str, Any]
    ) -> tuple[Incident, Incident]:
        def write(conn: Connection) -> tuple[Incident, Incident]:
            before = self._get(conn, int(incident_id))
            if before.state not in allowed:
                verb = "acknowledge" if to == "acknowledged" else "resolve"
                raise ConflictError(
                    f"Incident {before.id} is {before.state}; only {' or '.join(allowed)} "
                    f"incidents can be {to}. Nothing to {verb}."
                )
            conn.execute(
                sa.update(t.incidents)
                .where(t.incidents.c.id == before.id)
                .values(state=to, **changes)
            )
            return before, self._get(conn, before.id)

        return run_write(self.registry.engine, write)

    def ack(self, incident_id: int, *, note: str, actor: str) -> Incident:
        """Acknowledge an open incident: a person is on it, so re-notification stops.

        Raises:
            IncidentNotFoundError: no such incident.
            ConflictError: the incident is not open.
            ConfigError: the note is empty.
        """
        text = _note(note)
        before, after = self._transition(
            incident_id,
            to="acknowledged",
            allowed=("open",),
            changes={"acknowledged_at": self._now(), "acknowledged_by": actor, "ack_note": text},
        )
        self._audit("incident.ack", after, before=before, reason=text, actor=actor)
        return after

    def resolve(self, incident_id: int, *, note: str, actor: str) -> Incident:
        """Resolve an open or acknowledged incident (closes it).

        Raises:
            IncidentNotFoundError: no such incident.
            ConflictError: the incident is already resolved.
            ConfigError: the note is empty.
        """
        text = _note(note)
        before, after = self._transition(
            incident_id,
            to="resolved",
            allowed=("open", "acknowledged"),
            changes={"resolved_at": self._now(), "resolved_by": actor, "resolve_note": text},
        )
        self._audit("incident.resolve", after, before=before, reason=text, actor=actor)
        return after

    def due_for_renotify(self) -> builtins.list[Incident]:
        """Open (unacknowledged) incidents whose last notification is ``renotify`` old."""
        now = self._now()
        return [
            inc
            for inc in self.list(state="open")
            if inc.notified_at is None or now - inc.notified_at >= inc.renotify
        ]

    def mark_notified(self, incident_id: int) -> None:
        """Record that the incident was just notified."""
        now = self._now()

        def write(conn: Connection) -> None:
            conn.execute(
                sa.update(t.incidents)
                .where(t.incidents.c.id == incident_id)
                .values(notified_at=now)
            )

        run_write(self.registry.engine, write)

    def _audit(
        self, action: str, incident: Incident, *, before: Incident | None, reason: str, actor: str
    ) -> None:
        self.registry.record_event(
            action,
            model=incident.models[0] if len(incident.models) == 1 else None,
            subject=f"incident:{incident.id}",
            before=None if before is None else _audit_view(before),
            after=_audit_view(incident),
            reason=reason,
            actor=actor,
        )


def _audit_view(incident: Incident) -> dict[str, Any]:
    return {
        "state": incident.state,
        "rule": incident.rule,
        "group": incident.group,
        "models": list(incident.models),
        "owner": incident.owner,
        "severity": incident.severity,
    }

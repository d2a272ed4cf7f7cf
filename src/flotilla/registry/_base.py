"""Shared plumbing of the registry's parts: transactions' audit entries, locks, checks."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from flotilla.clock import SystemClock
from flotilla.errors import VersionNotFoundError
from flotilla.registry import tables as t
from flotilla.registry._rows import json_dict, model_missing
from flotilla.registry.artifacts import ArtifactStore
from flotilla.registry.models import AuditEntry
from flotilla.types import Clock

__all__ = ["RegistryBase", "listing"]

_LISTED = 10  # how many existing versions/aliases an error message lists


def listing(values: list[Any]) -> str:
    """The last few of ``values``, comma-separated, for error messages."""
    shown = values[-_LISTED:]
    more = f"... ({len(values) - len(shown)} more), " if len(values) > len(shown) else ""
    return more + ", ".join(str(v) for v in shown)


class RegistryBase:
    """Storage, clock and the helpers every part of :class:`Registry` uses."""

    def __init__(
        self, engine: Engine, artifacts: ArtifactStore, *, clock: Clock | None = None
    ) -> None:
        self.engine = engine
        self.artifacts = artifacts
        self.clock: Clock = clock if clock is not None else SystemClock()

    def _audit(
        self,
        conn: Connection,
        action: str,
        *,
        model: str | None,
        subject: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        actor: str,
        reason: str | None = None,
    ) -> AuditEntry:
        values = {
            "at": self.clock.now(),
            "actor": actor,
            "action": action,
            "model": model,
            "subject": subject,
            "before": json_dict(before, what="audit 'before'", optional=True),
            "after": json_dict(after, what="audit 'after'", optional=True),
            "reason": reason,
        }
        new_id = conn.execute(t.audit_log.insert().values(**values).returning(t.audit_log.c.id))
        return AuditEntry(id=int(new_id.scalar_one()), **values)  # type: ignore[arg-type]

    def _lock_model(self, conn: Connection, name: str) -> None:
        """Lock the model row for this transaction (PostgreSQL; SQLite is already exclusive)."""
        query = sa.select(t.models.c.name).where(t.models.c.name == name).with_for_update()
        if conn.execute(query).first() is None:
            raise model_missing(conn, name)

    def _require_version(self, conn: Connection, name: str, version: int) -> None:
        query = sa.select(t.model_versions.c.version).where(
            t.model_versions.c.model == name, t.model_versions.c.version == version
        )
        if conn.execute(query).first() is None:
            raise self._version_missing(conn, name, f"version {version}")

    def _version_missing(self, conn: Connection, name: str, what: str) -> VersionNotFoundError:
        versions = list(
            conn.execute(
                sa.select(t.model_versions.c.version)
                .where(t.model_versions.c.model == name)
                .order_by(t.model_versions.c.version)
            ).scalars()
        )
        if not versions:
            return VersionNotFoundError(
                f"Model {name!r} has no versions yet, so it has no {what}. Register one with "
                f"`flotilla models register {name} ...`."
            )
        return VersionNotFoundError(
            f"Model {name!r} has no {what}. Its versions are {listing(versions)}."
        )

    def _check_model_exists(self, conn: Connection, name: str) -> None:
        if conn.execute(sa.select(t.models.c.name).where(t.models.c.name == name)).first() is None:
            raise model_missing(conn, name)

    @staticmethod
    def _bump_deployments_version(conn: Connection) -> None:
        conn.execute(
            t.counters.update()
            .where(t.counters.c.name == "deployments")
            .values(value=t.counters.c.value + 1)
        )

"""Aliases and reference profiles of versions (part of :class:`Registry`)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from flotilla.errors import AliasNotFoundError, ConfigError
from flotilla.registry import tables as t
from flotilla.registry._base import RegistryBase, listing
from flotilla.registry._rows import check_actor, json_dict
from flotilla.registry.engine import run_read, run_write
from flotilla.registry.models import check_alias

__all__ = ["AliasesMixin"]


class AliasesMixin(RegistryBase):
    """Aliases (``churn@champion``) with their history, and reference profiles."""

    def _alias_missing(self, conn: Connection, name: str, alias: str) -> AliasNotFoundError:
        self._check_model_exists(conn, name)
        names = sorted(
            conn.execute(sa.select(t.aliases.c.alias).where(t.aliases.c.model == name)).scalars()
        )
        known = f"Its aliases are {listing(names)}." if names else "It has no aliases yet."
        return AliasNotFoundError(
            f"Model {name!r} has no alias {alias!r}. {known} Set one with "
            f"`flotilla models alias {name}@<version> {alias}`."
        )

    # -- aliases ---------------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: int, *, actor: str) -> None:
        """Point ``alias`` of model ``name`` at ``version`` (moving it when set elsewhere).

        Every move is kept in :meth:`alias_history` and in the audit trail; setting an alias
        to the version it already points at changes and records nothing.
        """
        check_alias(alias)
        check_actor(actor)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ConfigError(f"The version of an alias must be an integer >= 1. Got {version!r}.")

        def write(conn: Connection) -> None:
            self._lock_model(conn, name)
            self._require_version(conn, name, version)
            key = (t.aliases.c.model == name) & (t.aliases.c.alias == alias)
            old = conn.execute(sa.select(t.aliases.c.version).where(key)).scalar()
            if old == version:
                return
            if old is None:
                conn.execute(t.aliases.insert().values(model=name, alias=alias, version=version))
            else:
                conn.execute(t.aliases.update().where(key).values(version=version))
            conn.execute(
                t.alias_moves.insert().values(
                    model=name,
                    alias=alias,
                    from_version=old,
                    to_version=version,
                    actor=actor,
                    at=self.clock.now(),
                )
            )
            self._bump_deployments_version(conn)
            self._audit(
                conn,
                "alias.set",
                model=name,
                subject=f"{name}@{alias}",
                before=None if old is None else {"version": old},
                after={"version": version},
                actor=actor,
            )

        run_write(self.engine, write)

    def aliases(self, name: str) -> dict[str, int]:
        """``{alias: version}`` of model ``name``."""

        def read(conn: Connection) -> dict[str, int]:
            self._check_model_exists(conn, name)
            rows = conn.execute(
                sa.select(t.aliases.c.alias, t.aliases.c.version)
                .where(t.aliases.c.model == name)
                .order_by(t.aliases.c.alias)
            )
            return {r.alias: int(r.version) for r in rows}

        return run_read(self.engine, read)

    def alias_history(self, name: str) -> list[dict[str, Any]]:
        """Every alias move of model ``name``, oldest first (``from_version`` None = created)."""

        def read(conn: Connection) -> list[dict[str, Any]]:
            self._check_model_exists(conn, name)
            am = t.alias_moves
            rows = conn.execute(sa.select(am).where(am.c.model == name).order_by(am.c.id))
            return [dict(r._mapping) | {"at": r.at.isoformat()} for r in rows]

        return run_read(self.engine, read)

    # -- profiles --------------------------------------------------------------------------
    def set_profile(self, name: str, version: int, profile: dict[str, Any], *, actor: str) -> None:
        """Attach (or replace) the reference profile of a version; audited with its hash."""
        check_actor(actor)
        data = json_dict(profile, what="reference profile") or {}
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

        def write(conn: Connection) -> None:
            self._lock_model(conn, name)
            self._require_version(conn, name, version)
            p = t.profiles
            key = (p.c.model == name) & (p.c.version == version)
            old = conn.execute(sa.select(p.c.profile).where(key)).scalar()
            values = {"profile": data, "actor": actor, "updated_at": self.clock.now()}
            if old is None:
                conn.execute(p.insert().values(model=name, version=version, **values))
            else:
                conn.execute(p.update().where(key).values(**values))
            before = None
            if old is not None:
                before = {
                    "sha256": hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()
                }
            self._audit(
                conn,
                "profile.set",
                model=name,
                subject=f"{name}@{version}",
                before=before,
                after={"sha256": digest, "keys": sorted(data)[:20]},
                actor=actor,
            )

        run_write(self.engine, write)

    def get_profile(self, name: str, version: int) -> dict[str, Any] | None:
        """The reference profile of a version, or None when it has none."""

        def read(conn: Connection) -> dict[str, Any] | None:
            p = t.profiles
            data = conn.execute(
                sa.select(p.c.profile).where(p.c.model == name, p.c.version == version)
            ).scalar()
            if data is None:
                self._check_model_exists(conn, name)
                self._require_version(conn, name, version)
                return None
            return dict(data)

        return run_read(self.engine, read)

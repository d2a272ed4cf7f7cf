"""Deployment revisions of the registry (the spec's content belongs to the gateway)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from flotilla.errors import NotFoundError
from flotilla.registry import tables as t
from flotilla.registry._base import RegistryBase
from flotilla.registry._rows import check_actor, deployment_from_row, json_dict, model_missing
from flotilla.registry.engine import run_read, run_write
from flotilla.registry.models import DeploymentRevision

__all__ = ["DeploymentsMixin", "RevisionNotFoundError"]


class RevisionNotFoundError(NotFoundError):
    """The model has no deployment revision of that number."""


class DeploymentsMixin(RegistryBase):
    """Deployment revisions and the cheap change counter the gateway polls."""

    def put_deployment(
        self,
        model: str,
        spec: dict[str, Any],
        *,
        actor: str,
        reason: str | None = None,
        diff: dict[str, Any] | None = None,
    ) -> DeploymentRevision:
        """Store ``spec`` as the next deployment revision of ``model`` (revisions start at 1).

        The audit entry holds the previous and the new spec (and ``diff`` when given).

        Raises:
            ModelNotFoundError: no such model.
            ConfigError: ``spec`` or ``diff`` is not a JSON mapping.
        """
        check_actor(actor)
        spec_json = json_dict(spec, what="deployment spec")
        assert spec_json is not None
        diff_json = json_dict(diff, what="deployment diff", optional=True)
        d = t.deployments

        def write(conn: Connection) -> DeploymentRevision:
            counter = conn.execute(
                t.models.update()
                .where(t.models.c.name == model)
                .values(next_revision=t.models.c.next_revision + 1)
                .returning(t.models.c.next_revision)
            ).scalar()
            if counter is None:
                raise model_missing(conn, model)
            previous = conn.execute(
                sa.select(d.c.revision, d.c.spec)
                .where(d.c.model == model)
                .order_by(d.c.revision.desc())
                .limit(1)
            ).first()
            values: dict[str, Any] = {
                "model": model,
                "revision": int(counter) - 1,
                "spec": spec_json,
                "diff": diff_json,
                "actor": actor,
                "reason": reason,
                "created_at": self.clock.now(),
            }
            new_id = conn.execute(d.insert().values(**values).returning(d.c.id)).scalar_one()
            self._bump_deployments_version(conn)
            after: dict[str, Any] = {"revision": values["revision"], "spec": spec_json}
            if diff_json is not None:
                after["diff"] = diff_json
            before = None
            if previous is not None:
                before = {"revision": int(previous.revision), "spec": previous.spec}
            self._audit(
                conn,
                "deployment.put",
                model=model,
                subject=f"{model}#{values['revision']}",
                before=before,
                after=after,
                actor=actor,
                reason=reason,
            )
            return DeploymentRevision(id=int(new_id), **values)

        return run_write(self.engine, write)

    def current_deployment(self, model: str) -> DeploymentRevision | None:
        """The latest revision of ``model``'s deployment, or None when it was never deployed."""
        d = t.deployments
        query = sa.select(d).where(d.c.model == model).order_by(d.c.revision.desc()).limit(1)

        def read(conn: Connection) -> DeploymentRevision | None:
            row = conn.execute(query).first()
            if row is None:
                self._check_model_exists(conn, model)
                return None
            return deployment_from_row(row)

        return run_read(self.engine, read)

    def deployment_history(self, model: str) -> list[DeploymentRevision]:
        """Every revision of ``model``'s deployment, oldest first."""
        d = t.deployments

        def read(conn: Connection) -> list[DeploymentRevision]:
            self._check_model_exists(conn, model)
            rows = conn.execute(sa.select(d).where(d.c.model == model).order_by(d.c.revision))
            return [deployment_from_row(r) for r in rows]

        return run_read(self.engine, read)

    def get_deployment(self, model: str, revision: int) -> DeploymentRevision:
        """Revision ``revision`` of ``model``'s deployment (e.g. to roll back to it).

        Raises:
            RevisionNotFoundError: with the revisions that exist.
        """
        d = t.deployments

        def read(conn: Connection) -> DeploymentRevision:
            row = conn.execute(
                sa.select(d).where(d.c.model == model, d.c.revision == revision)
            ).first()
            if row is not None:
                return deployment_from_row(row)
            self._check_model_exists(conn, model)
            revs = list(
                conn.execute(
                    sa.select(d.c.revision).where(d.c.model == model).order_by(d.c.revision)
                ).scalars()
            )
            known = f"Its revisions are 1 to {revs[-1]}." if revs else "It was never deployed."
            raise RevisionNotFoundError(
                f"Model {model!r} has no deployment revision {revision!r}. {known} See "
                f"`flotilla deployments {model}` for the history."
            )

        return run_read(self.engine, read)

    def current_deployments(self) -> list[DeploymentRevision]:
        """The latest deployment revision of every deployed model, sorted by model name."""
        d = t.deployments
        latest = (
            sa.select(d.c.model, sa.func.max(d.c.revision).label("revision"))
            .group_by(d.c.model)
            .subquery()
        )
        query = (
            sa.select(d)
            .join(latest, (d.c.model == latest.c.model) & (d.c.revision == latest.c.revision))
            .order_by(d.c.model)
        )

        def read(conn: Connection) -> list[DeploymentRevision]:
            return [deployment_from_row(r) for r in conn.execute(query)]

        return run_read(self.engine, read)

    def deployments_version(self) -> int:
        """A number that grows whenever any deployment revision or alias changes.

        Cheap (one primary-key read): the gateway polls it and reloads when it moves. It is
        bumped inside the writing transaction, under a row lock, so commit order and number
        order agree and no change can be missed.
        """
        query = sa.select(t.counters.c.value).where(t.counters.c.name == "deployments")
        return int(run_read(self.engine, lambda conn: conn.execute(query).scalar() or 0))

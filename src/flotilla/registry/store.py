"""The registry: models, immutable versions, aliases, profiles, deployments and the audit trail.

Every mutating method takes a keyword ``actor`` and writes an append-only audit entry in the
same transaction as the change: either both are stored or neither is. Version and revision
numbers come from counters on the model row, incremented with ``UPDATE ... RETURNING`` in the
writing transaction, so concurrent writers (threads or processes, SQLite or PostgreSQL) always
get distinct numbers and a number once committed is never handed out again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from flotilla.errors import ArtifactNotFoundError, ConfigError, ConflictError
from flotilla.registry import tables as t
from flotilla.registry._aliases import AliasesMixin
from flotilla.registry._deployments import DeploymentsMixin
from flotilla.registry._rows import (
    audit_from_row,
    check_actor,
    json_dict,
    metrics_dict,
    model_from_row,
    model_missing,
    signature_from_json,
    tags_dict,
    version_from_row,
)
from flotilla.registry.artifacts import LocalArtifactStore, StoredArtifact
from flotilla.registry.engine import make_engine, migrate, run_read, run_write
from flotilla.registry.models import (
    AuditEntry,
    Model,
    ModelRef,
    ModelVersion,
    check_name,
    check_task,
)
from flotilla.settings import Settings
from flotilla.signature import Signature
from flotilla.types import Clock

__all__ = ["Registry"]


def _check_flavor(flavor: object) -> str:
    if not isinstance(flavor, str) or not flavor.isidentifier() or flavor.lower() != flavor:
        raise ConfigError(
            f"The flavor of a version must be a lowercase word such as 'onnx', 'sklearn', "
            f"'lightgbm', 'python' or 'static'. Got {flavor!r} instead."
        )
    return flavor


class Registry(AliasesMixin, DeploymentsMixin):
    """Models, versions, aliases, profiles, deployments and the audit trail in one database.

    Args:
        engine: a SQLAlchemy engine from :func:`make_engine` (migrated with :func:`migrate`).
        artifacts: where artifacts are stored (checked when a version is registered).
        clock: the source of timestamps (default the system clock).

    Use :meth:`open` to build one from :class:`~flotilla.settings.Settings`.

    Example:
        >>> reg = Registry.open(settings)                                  # doctest: +SKIP
        >>> reg.create_model("churn", task="classification", actor="ana")  # doctest: +SKIP
    """

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock | None = None) -> Registry:
        """Connect to ``settings.db_url``, migrate the schema, and use the local artifact root.

        Raises:
            StorageError: the database is unreachable or read-only.
        """
        engine = make_engine(settings.db_url)
        migrate(engine)
        return cls(engine, LocalArtifactStore(Path(settings.artifacts)), clock=clock)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- models ----------------------------------------------------------------------------
    def create_model(
        self,
        name: str,
        *,
        task: str,
        signature: Signature | None = None,
        description: str = "",
        owner: str = "",
        actor: str,
    ) -> Model:
        """Create a model.

        Raises:
            ConfigError: the name or task is invalid.
            ConflictError: a model of that name exists.
        """
        check_name(name)
        check_task(task)
        check_actor(actor)
        model = Model(name, task, description, owner, signature, self.clock.now())

        def write(conn: Connection) -> Model:
            values = model.to_dict() | {"created_at": model.created_at}
            conn.execute(t.models.insert().values(**values, next_version=1, next_revision=1))
            after = {k: v for k, v in model.to_dict().items() if k != "created_at"}
            self._audit(
                conn,
                "model.create",
                model=name,
                subject=name,
                before=None,
                after=after,
                actor=actor,
            )
            return model

        try:
            return run_write(self.engine, write)
        except sa.exc.IntegrityError as exc:
            existing = self.get_model(name)
            raise ConflictError(
                f"A model named {name!r} already exists (task {existing.task!r}). Use it, or "
                f"choose another name."
            ) from exc

    def ensure_model(
        self,
        name: str,
        *,
        task: str,
        signature: Signature | None = None,
        description: str = "",
        owner: str = "",
        actor: str,
    ) -> Model:
        """Return model ``name``, creating it when missing.

        Raises:
            ConflictError: the model exists with another task.
        """
        check_task(task)
        try:
            existing = self.get_model(name)
        except LookupError:
            try:
                return self.create_model(
                    name,
                    task=task,
                    signature=signature,
                    description=description,
                    owner=owner,
                    actor=actor,
                )
            except ConflictError:  # created meanwhile by someone else
                existing = self.get_model(name)
        if existing.task != task:
            raise ConflictError(
                f"Model {name!r} exists with task {existing.task!r}, not {task!r}. Register the "
                f"version under another model name, or use task {existing.task!r}."
            )
        return existing

    def update_model(
        self,
        name: str,
        *,
        signature: Signature | None = None,
        description: str | None = None,
        owner: str | None = None,
        actor: str,
    ) -> Model:
        """Change a model's signature, description or owner (``None`` leaves a field as is).

        The name and task identify a model and cannot change; versions keep the signature
        they were registered with.
        """
        check_actor(actor)
        changes: dict[str, Any] = {}
        if signature is not None:
            changes["signature"] = signature.to_dict()
        if description is not None:
            changes["description"] = description
        if owner is not None:
            changes["owner"] = owner

        def write(conn: Connection) -> Model:
            self._lock_model(conn, name)
            row = conn.execute(sa.select(t.models).where(t.models.c.name == name)).one()
            before = {k: row._mapping[k] for k in changes}
            if changes and before != changes:
                conn.execute(t.models.update().where(t.models.c.name == name).values(**changes))
                self._audit(
                    conn,
                    "model.update",
                    model=name,
                    subject=name,
                    before=before,
                    after=changes,
                    actor=actor,
                )
            return model_from_row(
                conn.execute(sa.select(t.models).where(t.models.c.name == name)).one()
            )

        return run_write(self.engine, write)

    def get_model(self, name: str) -> Model:
        """The model called ``name``; :class:`ModelNotFoundError` suggests close names."""

        def read(conn: Connection) -> Model:
            row = conn.execute(sa.select(t.models).where(t.models.c.name == name)).first()
            if row is None:
                raise model_missing(conn, name)
            return model_from_row(row)

        return run_read(self.engine, read)

    def list_models(self) -> list[Model]:
        """Every model, sorted by name."""

        def read(conn: Connection) -> list[Model]:
            rows = conn.execute(sa.select(t.models).order_by(t.models.c.name))
            return [model_from_row(r) for r in rows]

        return run_read(self.engine, read)

    # -- versions --------------------------------------------------------------------------
    def register_version(
        self,
        name: str,
        *,
        flavor: str,
        artifact: StoredArtifact | None,
        entry: str | None = None,
        params: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
        lineage: dict[str, Any] | None = None,
        trust_pickle: bool = False,
        signature: Signature | None = None,
        actor: str,
    ) -> ModelVersion:
        """Register the next version of model ``name``; versions are immutable once stored.

        The version's signature is ``signature`` or else the model's signature now.

        Raises:
            ModelNotFoundError: no such model (create it first).
            ArtifactNotFoundError: ``artifact`` is not in the artifact store.
            ConfigError: invalid flavor, params, metrics, tags or lineage.
        """
        check_actor(actor)
        _check_flavor(flavor)
        values: dict[str, Any] = {
            "flavor": flavor,
            "sha256": None if artifact is None else artifact.sha256,
            "size": None if artifact is None else artifact.size,
            "artifact_kind": None if artifact is None else artifact.kind,
            "filename": None if artifact is None else artifact.filename,
            "entry": entry,
            "params": json_dict(params, what="params of a version"),
            "metrics": metrics_dict(metrics),
            "tags": tags_dict(tags),
            "lineage": json_dict(lineage, what="lineage of a version"),
            "trust_pickle": bool(trust_pickle),
            "created_by": actor,
        }
        if artifact is not None and not self.artifacts.exists(artifact.sha256):
            raise ArtifactNotFoundError(
                f"The artifact {artifact.sha256} ({artifact.filename}) is not in the artifact "
                f"store; put it there first (ArtifactStore.put) and register again."
            )

        def write(conn: Connection) -> ModelVersion:
            counter = conn.execute(
                t.models.update()
                .where(t.models.c.name == name)
                .values(next_version=t.models.c.next_version + 1)
                .returning(t.models.c.next_version, t.models.c.signature)
            ).first()
            if counter is None:
                raise model_missing(conn, name)
            sig = signature if signature is not None else signature_from_json(counter.signature)
            row = values | {
                "model": name,
                "version": int(counter.next_version) - 1,
                "created_at": self.clock.now(),
                "signature": None if sig is None else sig.to_dict(),
            }
            conn.execute(t.model_versions.insert().values(**row))
            version = ModelVersion(**(row | {"signature": sig}))
            after = {k: v for k, v in version.to_dict().items() if k != "signature"}
            self._audit(
                conn,
                "version.register",
                model=name,
                subject=version.ref,
                before=None,
                after=after,
                actor=actor,
            )
            return version

        return run_write(self.engine, write)

    def get_version(self, ref: str | ModelRef) -> ModelVersion:
        """Resolve ``name`` (latest version), ``name@N`` or ``name@alias``.

        Raises:
            ConfigError: ``ref`` is not a valid reference.
            ModelNotFoundError / VersionNotFoundError / AliasNotFoundError: with what exists.
        """
        mref = ModelRef.parse(ref)
        mv = t.model_versions

        def read(conn: Connection) -> ModelVersion:
            name, number = mref.name, mref.version
            if mref.alias is not None:
                number = conn.execute(
                    sa.select(t.aliases.c.version).where(
                        t.aliases.c.model == name, t.aliases.c.alias == mref.alias
                    )
                ).scalar()
                if number is None:
                    raise self._alias_missing(conn, name, mref.alias)
            elif number is None:
                number = conn.execute(
                    sa.select(sa.func.max(mv.c.version)).where(mv.c.model == name)
                ).scalar()
            row = None
            if number is not None:
                query = sa.select(mv).where(mv.c.model == name, mv.c.version == number)
                row = conn.execute(query).first()
            if row is None:
                self._check_model_exists(conn, name)
                what = "versions" if number is None else f"version {number}"
                raise self._version_missing(conn, name, what)
            return version_from_row(row)

        return run_read(self.engine, read)

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every version of model ``name``, oldest first."""

        def read(conn: Connection) -> list[ModelVersion]:
            self._check_model_exists(conn, name)
            mv = t.model_versions
            rows = conn.execute(sa.select(mv).where(mv.c.model == name).order_by(mv.c.version))
            return [version_from_row(r) for r in rows]

        return run_read(self.engine, read)

    # -- audit -----------------------------------------------------------------------------
    def record_event(
        self,
        action: str,
        *,
        model: str | None,
        subject: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        reason: str | None,
        actor: str,
    ) -> AuditEntry:
        """Append an entry to the audit trail (promotions, audit gates, incidents...)."""
        check_actor(actor)
        if not isinstance(action, str) or not action or len(action) > 64:
            raise ConfigError(f"An audit action must be a word of 1-64 characters. Got {action!r}.")
        return run_write(
            self.engine,
            lambda conn: self._audit(
                conn,
                action,
                model=model,
                subject=subject,
                before=before,
                after=after,
                actor=actor,
                reason=reason,
            ),
        )

    def audit_trail(
        self, *, model: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        """The audit trail (of one model, or all), oldest first; ``limit`` keeps the newest."""
        a = t.audit_log
        query = sa.select(a).order_by(a.c.id.desc())
        if model is not None:
            query = query.where(a.c.model == model)
        if limit is not None:
            query = query.limit(max(0, int(limit)))

        def read(conn: Connection) -> list[AuditEntry]:
            return [audit_from_row(r) for r in conn.execute(query)][::-1]

        return run_read(self.engine, read)

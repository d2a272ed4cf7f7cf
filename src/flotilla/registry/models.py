"""The registry's value objects: plain frozen dataclasses, no SQLAlchemy.

Every class has ``to_dict()`` returning JSON-friendly data (datetimes as ISO 8601 strings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flotilla.errors import ConfigError
from flotilla.signature import Signature

__all__ = [
    "TASKS",
    "AuditEntry",
    "DeploymentRevision",
    "Model",
    "ModelRef",
    "ModelVersion",
    "check_alias",
    "check_name",
    "check_task",
]

TASKS = ("classification", "regression", "ranking")
"""The tasks a model can have."""

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_NAME_RULE = (
    "1 to 63 characters: lowercase letters, digits, '_' and '-', starting with a letter or digit"
)


def check_name(name: object, *, what: str = "model name") -> str:
    """Return ``name`` when it is a valid model name, else raise :class:`ConfigError`."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"The {what} must be {_NAME_RULE}. Got {name!r} instead.")
    return name


def check_alias(alias: object) -> str:
    """Return ``alias`` when it is a valid alias (a model-name-like word, not all digits)."""
    check_name(alias, what="alias")
    assert isinstance(alias, str)  # narrowed by check_name
    if alias.isdigit():
        raise ConfigError(
            f"The alias must not be all digits (that would read as a version number). "
            f"Got {alias!r} instead; use e.g. 'champion' or 'v{alias}'."
        )
    return alias


def check_task(task: object) -> str:
    """Return ``task`` when it is one of :data:`TASKS`, else raise :class:`ConfigError`."""
    if task not in TASKS:
        raise ConfigError(f"The task of a model must be one of {', '.join(TASKS)}. Got {task!r}.")
    assert isinstance(task, str)
    return task


def _iso(value: datetime) -> str:
    return value.isoformat()


def _sig(signature: Signature | None) -> dict[str, Any] | None:
    return None if signature is None else signature.to_dict()


@dataclass(frozen=True)
class ModelRef:
    """A reference to a version: ``name`` (latest), ``name@3`` (version) or ``name@alias``.

    Example:
        >>> ModelRef.parse("churn@champion")
        ModelRef(name='churn', version=None, alias='champion')
        >>> str(ModelRef.parse("churn@3"))
        'churn@3'
    """

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str | ModelRef) -> ModelRef:
        """Parse ``name``, ``name@N`` or ``name@alias``; raises :class:`ConfigError` on junk."""
        if isinstance(text, ModelRef):
            return text
        if not isinstance(text, str) or text.count("@") > 1:
            raise ConfigError(
                f"A model reference must look like 'churn', 'churn@3' or 'churn@champion'. "
                f"Got {text!r} instead."
            )
        name, _, tail = text.partition("@")
        try:
            check_name(name)
        except ConfigError as exc:
            raise ConfigError(f"In the model reference {text!r}: {exc}") from None
        if "@" not in text:
            return cls(name)
        if tail.isdigit():
            version = int(tail)
            if version < 1:
                raise ConfigError(f"Version numbers start at 1. Got {text!r}; use e.g. '{name}@1'.")
            return cls(name, version=version)
        try:
            return cls(name, alias=check_alias(tail))
        except ConfigError as exc:
            raise ConfigError(
                f"In the model reference {text!r} the part after '@' must be a version number "
                f"or an alias. {exc}"
            ) from None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


@dataclass(frozen=True)
class Model:
    """A named prediction service: its task, owner, description and signature."""

    name: str
    task: str
    description: str
    owner: str
    signature: Signature | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "name": self.name,
            "task": self.task,
            "description": self.description,
            "owner": self.owner,
            "signature": _sig(self.signature),
            "created_at": _iso(self.created_at),
        }


@dataclass(frozen=True)
class ModelVersion:
    """An immutable, registered version of a model.

    ``sha256``/``size``/``artifact_kind``/``filename`` describe the stored artifact (all None
    for artifact-less flavors such as ``static``). ``signature`` is the version's own
    signature, or the model's signature at registration time.
    """

    model: str
    version: int
    flavor: str
    sha256: str | None
    size: int | None
    artifact_kind: str | None
    entry: str | None
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    lineage: dict[str, Any]
    trust_pickle: bool
    created_by: str
    created_at: datetime
    signature: Signature | None
    filename: str | None = None

    @property
    def ref(self) -> str:
        """``"name@N"``: the exact reference of this version."""
        return f"{self.model}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (includes ``ref``)."""
        return {
            "model": self.model,
            "version": self.version,
            "ref": self.ref,
            "flavor": self.flavor,
            "sha256": self.sha256,
            "size": self.size,
            "artifact_kind": self.artifact_kind,
            "filename": self.filename,
            "entry": self.entry,
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
            "lineage": dict(self.lineage),
            "trust_pickle": self.trust_pickle,
            "created_by": self.created_by,
            "created_at": _iso(self.created_at),
            "signature": _sig(self.signature),
        }


@dataclass(frozen=True)
class AuditEntry:
    """One append-only line of the audit trail: who did what to which subject, and why."""

    id: int
    at: datetime
    actor: str
    action: str
    model: str | None
    subject: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "id": self.id,
            "at": _iso(self.at),
            "actor": self.actor,
            "action": self.action,
            "model": self.model,
            "subject": self.subject,
            "before": self.before,
            "after": self.after,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class DeploymentRevision:
    """One revision of a model's deployment spec (the spec's content belongs to the gateway)."""

    model: str
    revision: int
    spec: dict[str, Any]
    actor: str
    created_at: datetime
    reason: str | None
    id: int
    diff: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "id": self.id,
            "model": self.model,
            "revision": self.revision,
            "spec": self.spec,
            "actor": self.actor,
            "created_at": _iso(self.created_at),
            "reason": self.reason,
            "diff": self.diff,
        }

"""Row <-> value-object conversion and validation of the JSON the registry stores."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from flotilla.errors import ConfigError, ModelNotFoundError
from flotilla.registry import tables as t
from flotilla.registry.models import AuditEntry, DeploymentRevision, Model, ModelVersion
from flotilla.signature import Signature

__all__ = [
    "audit_from_row",
    "check_actor",
    "deployment_from_row",
    "json_dict",
    "metrics_dict",
    "model_from_row",
    "model_missing",
    "signature_from_json",
    "tags_dict",
    "version_from_row",
]


def check_actor(actor: object) -> str:
    """The actor written to the audit trail: a non-empty string."""
    if not isinstance(actor, str) or not actor.strip():
        raise ConfigError(
            f"The 'actor' of a registry change must be a non-empty name. Got {actor!r}."
        )
    return actor


def json_dict(value: Any, *, what: str, optional: bool = False) -> dict[str, Any] | None:
    """A JSON-safe copy of a mapping (tuples become lists); raises ConfigError otherwise."""
    if value is None and optional:
        return None
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"The {what} must be a mapping. Got {type(value).__name__} instead.")
    try:
        copied = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"The {what} must hold only JSON values (strings, finite numbers, booleans, null, "
            f"lists, mappings with string keys): {exc}."
        ) from exc
    assert isinstance(copied, dict)
    return copied


def metrics_dict(value: Mapping[str, Any] | None) -> dict[str, float]:
    """Metrics as ``{name: finite float}``."""
    out: dict[str, float] = {}
    for key, raw in (value or {}).items():
        ok = isinstance(raw, int | float) and not isinstance(raw, bool)
        if not isinstance(key, str) or not ok or not math.isfinite(float(raw)):
            raise ConfigError(
                f"The metrics of a version must map names to finite numbers. "
                f"Got {key!r}: {raw!r} instead."
            )
        out[key] = float(raw)
    return out


def tags_dict(value: Mapping[str, Any] | None) -> dict[str, str]:
    """Tags as ``{name: string}``."""
    out: dict[str, str] = {}
    for key, raw in (value or {}).items():
        if not isinstance(key, str) or not isinstance(raw, str):
            raise ConfigError(
                f"The tags of a version must map strings to strings. Got {key!r}: {raw!r}."
            )
        out[key] = raw
    return out


def signature_from_json(data: Any) -> Signature | None:
    """The stored signature mapping back as a :class:`Signature`."""
    return None if data is None else Signature.from_dict(data)


def model_from_row(row: sa.Row[Any]) -> Model:
    """A :class:`Model` from a ``fl_models`` row."""
    m = row._mapping
    return Model(
        name=m["name"],
        task=m["task"],
        description=m["description"],
        owner=m["owner"],
        signature=signature_from_json(m["signature"]),
        created_at=m["created_at"],
    )


def version_from_row(row: sa.Row[Any]) -> ModelVersion:
    """A :class:`ModelVersion` from a ``fl_model_versions`` row."""
    m = row._mapping
    return ModelVersion(
        model=m["model"],
        version=int(m["version"]),
        flavor=m["flavor"],
        sha256=m["sha256"],
        size=None if m["size"] is None else int(m["size"]),
        artifact_kind=m["artifact_kind"],
        entry=m["entry"],
        params=dict(m["params"] or {}),
        metrics={k: float(v) for k, v in (m["metrics"] or {}).items()},
        tags=dict(m["tags"] or {}),
        lineage=dict(m["lineage"] or {}),
        trust_pickle=bool(m["trust_pickle"]),
        created_by=m["created_by"],
        created_at=m["created_at"],
        signature=signature_from_json(m["signature"]),
        filename=m["filename"],
    )


def audit_from_row(row: sa.Row[Any]) -> AuditEntry:
    """An :class:`AuditEntry` from a ``fl_audit`` row."""
    m = row._mapping
    return AuditEntry(
        id=int(m["id"]),
        at=m["at"],
        actor=m["actor"],
        action=m["action"],
        model=m["model"],
        subject=m["subject"],
        before=m["before"],
        after=m["after"],
        reason=m["reason"],
    )


def deployment_from_row(row: sa.Row[Any]) -> DeploymentRevision:
    """A :class:`DeploymentRevision` from a ``fl_deployments`` row."""
    m = row._mapping
    return DeploymentRevision(
        model=m["model"],
        revision=int(m["revision"]),
        spec=dict(m["spec"]),
        actor=m["actor"],
        created_at=m["created_at"],
        reason=m["reason"],
        id=int(m["id"]),
        diff=m["diff"],
    )


def model_missing(conn: Connection, name: str) -> ModelNotFoundError:
    """A :class:`ModelNotFoundError` for ``name`` that suggests close names."""
    names = list(conn.execute(sa.select(t.models.c.name).order_by(t.models.c.name)).scalars())
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        hint = f"Did you mean {', '.join(repr(c) for c in close)}?"
    elif names:
        hint = "See `flotilla models list` for the registered models."
    else:
        hint = "No model is registered yet; register one with `flotilla models register`."
    return ModelNotFoundError(f"No model is named {name!r}. {hint}")

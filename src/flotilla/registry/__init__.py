"""The model registry: models, immutable versions, aliases, deployments, audit; artifacts.

Example:
    >>> from flotilla.registry import Registry                      # doctest: +SKIP
    >>> reg = Registry.open(settings)                               # doctest: +SKIP
    >>> art = reg.artifacts.put(Path("model.onnx"))                 # doctest: +SKIP
    >>> reg.ensure_model("churn", task="classification", actor="ana")       # doctest: +SKIP
    >>> reg.register_version("churn", flavor="onnx", artifact=art, actor="ana").ref
    'churn@1'
"""

from __future__ import annotations

from flotilla.registry._deployments import RevisionNotFoundError
from flotilla.registry.artifacts import ArtifactStore, LocalArtifactStore, StoredArtifact
from flotilla.registry.engine import make_engine, migrate
from flotilla.registry.models import (
    TASKS,
    AuditEntry,
    DeploymentRevision,
    Model,
    ModelRef,
    ModelVersion,
    check_alias,
    check_name,
    check_task,
)
from flotilla.registry.store import Registry

__all__ = [
    "TASKS",
    "ArtifactStore",
    "AuditEntry",
    "DeploymentRevision",
    "LocalArtifactStore",
    "Model",
    "ModelRef",
    "ModelVersion",
    "Registry",
    "RevisionNotFoundError",
    "StoredArtifact",
    "check_alias",
    "check_name",
    "check_task",
    "make_engine",
    "migrate",
]

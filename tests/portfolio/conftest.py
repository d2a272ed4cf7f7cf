"""Fixtures: a real registry (with its artifact store) holding tiny python and static models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flotilla.registry import ModelVersion, Registry
from flotilla.settings import Settings
from flotilla.signature import Signature

MODEL_CODE = """
class Model:
    def __init__(self, answer=0.5):
        self.answer = answer

    def predict(self, records):
        return [self.answer for _ in records]
"""

Register = Callable[..., ModelVersion]


def _signature(inputs: dict[str, str], kind: str, k: int | None = None) -> dict[str, Any]:
    output: dict[str, Any] = {"kind": kind}
    if k is not None:
        output["k"] = k
    return {
        "inputs": [
            {"name": n, "type": t.rstrip("?"), "nullable": t.endswith("?")}
            for n, t in inputs.items()
        ],
        "output": output,
    }


@pytest.fixture
def registry(settings: Settings) -> Iterator[Registry]:
    """A registry on the parametrised database (SQLite and PostgreSQL)."""
    registry = Registry.open(settings)
    yield registry
    registry.close()


@pytest.fixture
def register(registry: Registry, tmp_path: Path) -> Register:
    """Factory: register a python model (``answer=``) or a static one (``static=``).

    ``inputs`` maps field names to types (a trailing ``?`` makes the field nullable).
    """
    code = tmp_path / "tiny_model.py"
    code.write_text(MODEL_CODE, encoding="utf-8")
    stored = registry.artifacts.put(code)
    task = {"items": "ranking", "score": "regression"}

    def factory(
        name: str,
        *,
        inputs: dict[str, str] | None = None,
        kind: str = "probability",
        k: int | None = None,
        answer: Any = 0.5,
        static: dict[str, Any] | None = None,
        alias: str | None = None,
    ) -> ModelVersion:
        signature = Signature.from_dict(_signature(inputs or {"x": "float"}, kind, k))
        registry.ensure_model(
            name, task=task.get(kind, "classification"), signature=signature, actor="tester"
        )
        version = registry.register_version(
            name,
            flavor="python" if static is None else "static",
            artifact=stored if static is None else None,
            entry="tiny_model:Model" if static is None else None,
            params={"answer": answer} if static is None else static,
            signature=signature,
            actor="tester",
        )
        if alias:
            registry.set_alias(name, alias, version.version, actor="tester")
        return version

    return factory


@pytest.fixture
def recs_world(register: Register) -> Register:
    """recs@1, recs@2 (champion), recs-lite@1..2, recs-top (static items), churn@1."""
    items = {"kind": "items", "k": 5}
    register("recs", inputs={"user": "string", "age": "float"}, answer=[1, 2], **items)
    register(
        "recs", inputs={"user": "string", "age": "float"}, answer=[2, 1], alias="champion", **items
    )
    register("recs-lite", inputs={"user": "string"}, answer=[3], **items)
    register("recs-lite", inputs={"user": "string", "hour": "int?"}, answer=[4], **items)
    register("recs-top", inputs={"user": "string?"}, static={"items": [9, 8]}, **items)
    register("churn", inputs={"age": "float"}, answer=0.2)
    return register

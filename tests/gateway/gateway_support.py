"""Test helpers of the gateway tests: an in-memory deployment source and controllable models."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flotilla.errors import ArtifactNotFoundError, VersionNotFoundError
from flotilla.signature import Signature

SIGNATURE = Signature.from_dict(
    {
        "inputs": [
            {"name": "x", "type": "float", "min": 0, "max": 100},
            {"name": "plan", "type": "category", "categories": ["basic", "pro"]},
        ],
        "output": {"kind": "score"},
    }
)


class Behaving:
    """A model whose behaviour a test switches: answer, raise, hang, nan, short, wrong_kind."""

    def __init__(self, value: float = 1.0, mode: str = "answer", hang_s: float = 0.5) -> None:
        self.value = value
        self.mode = mode
        self.hang_s = hang_s
        self.calls = 0
        self.batch_sizes: list[int] = []

    def load(self) -> None:
        return None

    def predict(self, records: list[dict[str, Any]]) -> list[Any]:
        self.calls += 1
        self.batch_sizes.append(len(records))
        n = len(records)
        if self.mode == "raise":
            raise RuntimeError("model exploded")
        if self.mode == "hang":
            time.sleep(self.hang_s)
        if self.mode == "nan":
            return [math.nan] * n
        if self.mode == "short":
            return [self.value] * (n - 1)
        if self.mode == "wrong_kind":
            return ["not-a-number"] * n
        return [self.value] * n


@dataclass(frozen=True)
class FakeVersion:
    model: str
    version: int
    flavor: str = "python"
    signature: Signature | None = SIGNATURE

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


@dataclass(frozen=True)
class FakeRevision:
    model: str
    revision: int
    spec: dict[str, Any]


class MemorySource:
    """A DeploymentSource held in memory: versions, aliases and deployment revisions."""

    def __init__(self) -> None:
        self.version_no = 0
        self.models: dict[str, Behaving] = {}
        self.versions: dict[str, FakeVersion] = {}
        self.aliases: dict[str, str] = {}
        self.deployments: dict[str, FakeRevision] = {}
        self.broken: set[str] = set()
        self.loads: list[str] = []

    def add(self, ref: str, model: Behaving, *, flavor: str = "python") -> Behaving:
        name, _, number = ref.partition("@")
        self.versions[ref] = FakeVersion(name, int(number), flavor=flavor)
        self.models[ref] = model
        return model

    def alias(self, name: str, alias: str, ref: str) -> None:
        self.aliases[f"{name}@{alias}"] = ref
        self.version_no += 1

    def deploy(self, model: str, live: str, *fallbacks: Any, **spec: Any) -> None:
        previous = self.deployments.get(model)
        revision = 1 if previous is None else previous.revision + 1
        chain = list(fallbacks) or [{"static": {"value": 0.0}}]
        data = {"live": live, "fallbacks": chain, **spec}
        self.deployments[model] = FakeRevision(model, revision, data)
        self.version_no += 1

    # -- DeploymentSource ------------------------------------------------------------------
    def deployments_version(self) -> int:
        return self.version_no

    def current_deployments(self) -> list[Any]:
        return list(self.deployments.values())

    def resolve(self, ref: str) -> Any:
        ref = self.aliases.get(ref, ref)
        if ref not in self.versions:
            raise VersionNotFoundError(f"No version {ref!r}.")
        return self.versions[ref]

    def load(self, version: Any, *, device: str | None = None) -> Any:
        self.loads.append(version.ref if device is None else f"{version.ref} on {device}")
        if version.ref in self.broken:
            raise ArtifactNotFoundError(f"The artifact of {version.ref} is missing.")
        return self.models[version.ref]


XY_SIGNATURE = {
    "inputs": [{"name": "x", "type": "float"}, {"name": "y", "type": "float"}],
    "output": {"kind": "score"},
}


def linear_onnx(path: Path) -> Path:
    """A tiny ONNX model answering ``x + 2 * y`` (inputs as in :data:`XY_SIGNATURE`)."""
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression

    x = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    model = LinearRegression().fit(x, x[:, 0] + 2 * x[:, 1])
    path.write_bytes(to_onnx(model, x[:1]).SerializeToString())
    return path

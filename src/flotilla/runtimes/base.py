"""The runtime contract: :class:`RuntimeSpec`, the :class:`Runtime` protocol, metadata.

A runtime turns one artifact (a local, already sha256-verified file or folder) into a
predictor. Every flavor implements the same three methods: ``load()`` (idempotent),
``predict(records)`` (one plain-Python, JSON-serialisable prediction per record) and
``metadata()``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from flotilla.errors import ArtifactNotFoundError, ConfigError, RuntimeLoadError
from flotilla.signature import Signature
from flotilla.types import Record

__all__ = ["DEVICES", "BaseRuntime", "Runtime", "RuntimeMetadata", "RuntimeSpec"]

DEVICES: tuple[str, ...] = ("cpu", "gpu")


@dataclass(frozen=True, kw_only=True)
class RuntimeSpec:
    """Everything a runtime needs to load one version.

    Args:
        flavor: one of :data:`flotilla.runtimes.FLAVORS` (``onnx``, ``sklearn``, ...).
        path: the artifact (file or folder), already verified; ``None`` for flavors that
            need none (``python`` with an importable entry, ``static`` with ``params``).
        signature: the model's signature; maps records to the model's inputs and picks the
            output (``probability``, ``score``, ``label``, ``items``).
        entry: ``"pkg.module:Class"`` for the ``python`` flavor.
        params: keyword arguments for a ``python`` class; ``{"value": x}`` or
            ``{"items": [...]}`` for a ``static`` runtime without a file.
        trust_pickle: allow loading pickle/joblib files (runs arbitrary code).
        device: ``"cpu"`` or ``"gpu"`` (only ``onnx`` uses a GPU).
        label: a name for messages, e.g. ``"churn@3"``.
    """

    flavor: str
    path: Path | None
    signature: Signature | None
    entry: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    trust_pickle: bool = False
    device: str = "cpu"
    label: str = ""

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ConfigError(
                f"The 'device' of RuntimeSpec must be one of {', '.join(DEVICES)}. "
                f"Got {self.device!r} instead."
            )

    @property
    def name(self) -> str:
        """The label, or the artifact's file name, for messages."""
        if self.label:
            return self.label
        return self.path.name if self.path is not None else f"<{self.flavor}>"


@dataclass(frozen=True, kw_only=True)
class RuntimeMetadata:
    """What a loaded runtime reports about itself (serialisable with :meth:`to_dict`).

    Args:
        flavor: the runtime's flavor.
        inputs: the input field names in the order the model reads them, or ``None``.
        output_kind: the kind of output it answers with, or ``None`` when unknown.
        device: ``"cpu"`` or ``"gpu"``.
        providers: execution providers in use (ONNX Runtime), else empty.
        extra: flavor-specific facts (opset, number of features, library versions).
    """

    flavor: str
    inputs: list[str] | None
    output_kind: str | None
    device: str = "cpu"
    providers: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "flavor": self.flavor,
            "inputs": None if self.inputs is None else list(self.inputs),
            "output_kind": self.output_kind,
            "device": self.device,
            "providers": list(self.providers),
            "extra": dict(self.extra),
        }


@runtime_checkable
class Runtime(Protocol):
    """A loaded (or loadable) model that predicts batches of records."""

    def load(self) -> None:
        """Load the artifact; calling it again does nothing."""
        ...

    def predict(self, records: list[Record]) -> list[Any]:
        """One plain-Python, JSON-serialisable prediction per record (``[]`` for ``[]``)."""
        ...

    def metadata(self) -> RuntimeMetadata:
        """What the runtime knows about its inputs, output and device."""
        ...


class BaseRuntime:
    """Shared plumbing for the built-in runtimes: stores the spec, makes load idempotent."""

    flavor: str = ""

    def __init__(self, spec: RuntimeSpec) -> None:
        self.spec = spec
        self._loaded = False
        self._load_lock = threading.Lock()

    def load(self) -> None:
        """Load the artifact once (thread-safe); later calls do nothing."""
        if self._loaded:
            return
        with self._load_lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def _load(self) -> None:  # pragma: no cover - every flavor overrides it
        raise NotImplementedError

    def _require_loaded(self) -> None:
        if not self._loaded:
            raise RuntimeLoadError(
                f"The {self.flavor} runtime of {self.spec.name} is not loaded; call load() "
                "first (or build it with load_runtime(spec))."
            )

    def _artifact(self, *, folder: bool = False) -> Path:
        """The artifact path, checked to exist (and to be a file unless ``folder``)."""
        path = self.spec.path
        if path is None:
            raise RuntimeLoadError(
                f"The {self.flavor} flavor needs an artifact file, but {self.spec.name} has no "
                "path. Register the version with an artifact."
            )
        if not path.exists():
            raise ArtifactNotFoundError(
                f"The artifact of {self.spec.name} ({path}) does not exist. Check the path, or "
                "re-fetch it from the artifact store."
            )
        if not folder and not path.is_file():
            raise RuntimeLoadError(
                f"The artifact of {self.spec.name} ({path}) must be a file for the "
                f"{self.flavor} flavor, but it is a folder."
            )
        return path

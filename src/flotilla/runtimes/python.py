"""The ``python`` flavor: a user class ``entry = "pkg.module:Class"`` with ``predict(records)``.

Where the code comes from (``spec.path``):

- a folder: it is mounted as a private package named ``flotilla_user_<digest>`` (the digest
  of the folder's resolved path), and the entry's module is imported inside it, e.g.
  ``flotilla_user_1a2b3c4d5e6f.pkg.module``. Two versions of the same module (two artifact
  folders) therefore never clash in one process, and relative imports inside the folder's
  packages (``from .util import f``) work. While importing, the folder is also on
  ``sys.path``, so absolute imports of sibling top-level modules work too, but those are
  shared by name across versions (use relative imports to keep versions apart).
- one ``.py`` file: imported as ``flotilla_user_<digest>.<module>`` from that file.
- ``None``: the entry's module must be importable already (installed in the environment).

The class is built with ``spec.params`` as keyword arguments; its ``predict(records)`` must
return one prediction per record (numpy values are converted to plain Python).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import sys
import threading
import types
from pathlib import Path
from typing import Any

from flotilla.errors import FlotillaError, PredictionError, RuntimeLoadError
from flotilla.runtimes._outputs import output_kind, to_plain_list
from flotilla.runtimes.base import BaseRuntime, RuntimeMetadata, RuntimeSpec
from flotilla.types import Record

__all__ = ["PythonRuntime", "import_entry", "parse_entry"]

_IMPORT_LOCK = threading.Lock()


def parse_entry(entry: str | None, *, label: str) -> tuple[str, str]:
    """Split ``"pkg.module:Class"`` into module and class names."""
    if not entry or entry.count(":") != 1 or not all(entry.split(":")):
        raise RuntimeLoadError(
            f"The 'entry' of the python model {label} must look like 'pkg.module:Class'. "
            f"Got {entry!r} instead."
        )
    module, _, name = entry.partition(":")
    return module.strip(), name.strip()


def _digest(path: Path) -> str:
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]


def _mount(path: Path) -> str:
    """Register a namespace-like package for ``path``; returns its name."""
    name = f"flotilla_user_{_digest(path)}"
    if name not in sys.modules:
        folder = str(path.parent if path.is_file() else path)
        package = types.ModuleType(name)
        package.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        package.__spec__.submodule_search_locations = [folder]
        package.__path__ = [folder]
        package.__package__ = name
        sys.modules[name] = package
    return name


def _import_file(path: Path, module: str, label: str) -> types.ModuleType:
    root = _mount(path)
    full = f"{root}.{module.rsplit('.', 1)[-1]}"
    if full in sys.modules:
        return sys.modules[full]
    spec = importlib.util.spec_from_file_location(full, path)
    if spec is None or spec.loader is None:
        raise RuntimeLoadError(f"The python model {label} cannot import {path}.")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[full] = loaded
    try:
        spec.loader.exec_module(loaded)
    except BaseException:
        sys.modules.pop(full, None)
        raise
    return loaded


def import_entry(path: Path | None, entry: str | None, *, label: str) -> Any:
    """Import the class named by ``entry`` from ``path`` (see the module docstring).

    Raises:
        RuntimeLoadError: bad entry, the module fails to import, or the class is missing.
    """
    module_name, class_name = parse_entry(entry, label=label)
    try:
        with _IMPORT_LOCK:
            if path is None:
                module = importlib.import_module(module_name)
            elif path.is_file():
                module = _import_file(path, module_name, label)
            else:
                root = _mount(path)
                added = str(path) not in sys.path
                if added:
                    sys.path.insert(0, str(path))
                try:
                    module = importlib.import_module(f"{root}.{module_name}")
                finally:
                    if added:
                        sys.path.remove(str(path))
    except FlotillaError:
        raise
    except Exception as exc:
        raise RuntimeLoadError(
            f"The python model {label} could not import module {module_name!r}"
            f"{'' if path is None else f' from {path}'}: {type(exc).__name__}: {exc}"
        ) from exc
    cls = getattr(module, class_name, None)
    if cls is None or not callable(cls):
        public = sorted(n for n in vars(module) if not n.startswith("_"))[:20]
        raise RuntimeLoadError(
            f"The python model {label} names class {class_name!r}, but module "
            f"{module_name!r} has no such class. Names defined there: {public}."
        )
    return cls


class PythonRuntime(BaseRuntime):
    """Predict with a user's Python class (see the module docstring for the import rule).

    Example:
        >>> spec = RuntimeSpec(flavor="python", path=Path("model.py"), signature=None,
        ...                    entry="model:Doubler", params={"factor": 2})
        >>> rt = PythonRuntime(spec); rt.load()  # doctest: +SKIP
    """

    flavor = "python"

    def __init__(self, spec: RuntimeSpec) -> None:
        super().__init__(spec)
        self._model: Any = None

    def _load(self) -> None:
        path = self._artifact(folder=True) if self.spec.path is not None else None
        cls = import_entry(path, self.spec.entry, label=self.spec.name)
        try:
            model = cls(**self.spec.params)
        except TypeError as exc:
            raise RuntimeLoadError(
                f"The python model {self.spec.name} could not build {self.spec.entry} with "
                f"params {sorted(self.spec.params)}: {exc}. Fix the params to match the "
                "class's constructor."
            ) from exc
        except Exception as exc:
            raise RuntimeLoadError(
                f"The constructor of {self.spec.entry} ({self.spec.name}) failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not callable(getattr(model, "predict", None)):
            raise RuntimeLoadError(
                f"The class {self.spec.entry} of {self.spec.name} has no predict(records) "
                "method; add one that returns one prediction per record."
            )
        self._model = model

    def predict(self, records: list[Record]) -> list[Any]:
        """Call the user's ``predict`` and check it returns one prediction per record."""
        self._require_loaded()
        if not records:
            return []
        try:
            out = self._model.predict(records)
        except FlotillaError:
            raise
        except Exception as exc:
            raise PredictionError(
                f"The python model {self.spec.name} raised {type(exc).__name__}: {exc}"
            ) from exc
        if out is None or isinstance(out, str | bytes | dict) or not hasattr(out, "__len__"):
            raise PredictionError(
                f"The python model {self.spec.name} must return a list with one prediction per "
                f"record; it returned {type(out).__name__}."
            )
        return to_plain_list(out, len(records), label=self.spec.name)

    def metadata(self) -> RuntimeMetadata:
        """Flavor, entry point and the signature's inputs/output (the class is opaque)."""
        sig = self.spec.signature
        return RuntimeMetadata(
            flavor=self.flavor,
            inputs=sig.field_names if sig is not None else None,
            output_kind=output_kind(sig, "") or None,
            extra={"entry": self.spec.entry, "params": sorted(self.spec.params)},
        )

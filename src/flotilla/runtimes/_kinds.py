"""The explicit flavor -> ``"module:Class"`` map, and the factories that use it.

Heavy libraries are imported only when a flavor's module is imported, i.e. when a runtime of
that flavor is created.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, cast

from flotilla.errors import FlavorError, RuntimeLoadError
from flotilla.runtimes.base import Runtime, RuntimeSpec

__all__ = ["FLAVORS", "create_runtime", "load_runtime", "runtime_class"]

FLAVORS: dict[str, str] = {
    "onnx": "flotilla.runtimes.onnx:OnnxRuntime",
    "sklearn": "flotilla.runtimes.sklearn:SklearnRuntime",
    "lightgbm": "flotilla.runtimes.lightgbm:LightGBMRuntime",
    "python": "flotilla.runtimes.python:PythonRuntime",
    "static": "flotilla.runtimes.static:StaticRuntime",
}
"""Every built-in flavor and the class that runs it."""

_EXTRAS = {"onnx": "onnx", "sklearn": "sklearn", "lightgbm": "lightgbm"}


def check_flavor(flavor: str) -> str:
    """Return ``flavor`` when known, else raise :class:`FlavorError` with a did-you-mean."""
    if flavor in FLAVORS:
        return flavor
    hint = difflib.get_close_matches(str(flavor), FLAVORS, n=1)
    did = f" Did you mean {hint[0]!r}?" if hint else ""
    raise FlavorError(
        f"The flavor must be one of {', '.join(FLAVORS)}. Got {flavor!r} instead.{did}"
    )


def runtime_class(flavor: str) -> type[Any]:
    """The runtime class of ``flavor`` (imports its module, and so its library)."""
    module_name, _, class_name = FLAVORS[check_flavor(flavor)].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = _EXTRAS.get(flavor, flavor)
        raise RuntimeLoadError(
            f"The {flavor} flavor needs a library that is not installed ({exc}). Install it "
            f"with: pip install 'flotilla[{extra}]'."
        ) from exc
    return cast(type[Any], getattr(module, class_name))


def create_runtime(spec: RuntimeSpec) -> Runtime:
    """Build (but do not load) the runtime for ``spec``.

    Raises:
        FlavorError: unknown flavor.
        RuntimeLoadError: the flavor's library is not installed.

    Example:
        >>> rt = create_runtime(RuntimeSpec(flavor="static", path=None, signature=None,
        ...                                 params={"value": 0.5}))
        >>> rt.load(); rt.predict([{}])
        [0.5]
    """
    return cast(Runtime, runtime_class(spec.flavor)(spec))


def load_runtime(spec: RuntimeSpec) -> Runtime:
    """Build and load the runtime for ``spec`` (see :func:`create_runtime`).

    Raises:
        FlavorError, ArtifactNotFoundError, UnsafeArtifactError, RuntimeLoadError: the
            artifact is missing, not of its flavor, unsafe, or does not load.
    """
    runtime = create_runtime(spec)
    runtime.load()
    return runtime

"""Runtimes: turn a verified artifact into a predictor with ``load``/``predict``/``metadata``.

Flavors (see :data:`FLAVORS`): ``onnx`` (ONNX Runtime), ``sklearn`` (skops files, or
trusted pickles), ``lightgbm`` (native text models), ``python`` (a user class) and
``static`` (a fixed answer). Heavy libraries are imported only when a runtime of their flavor
is created, so ``import flotilla.runtimes`` stays light.

Example:
    >>> from flotilla.runtimes import RuntimeSpec, load_runtime
    >>> rt = load_runtime(RuntimeSpec(flavor="static", path=None, signature=None,
    ...                               params={"value": 0.0}))
    >>> rt.predict([{"x": 1}, {"x": 2}])
    [0.0, 0.0]
"""

from __future__ import annotations

from flotilla.runtimes._kinds import FLAVORS, check_flavor, create_runtime, load_runtime
from flotilla.runtimes.base import Runtime, RuntimeMetadata, RuntimeSpec
from flotilla.runtimes.convert import TOLERANCE, ConversionReport, to_onnx
from flotilla.runtimes.infer import (
    SignatureRequiredError,
    infer_signature,
    signature_required_message,
)
from flotilla.runtimes.static import StaticRuntime

__all__ = [
    "FLAVORS",
    "TOLERANCE",
    "ConversionReport",
    "Runtime",
    "RuntimeMetadata",
    "RuntimeSpec",
    "SignatureRequiredError",
    "StaticRuntime",
    "check_flavor",
    "create_runtime",
    "infer_signature",
    "load_runtime",
    "signature_required_message",
    "to_onnx",
]

"""Convert scikit-learn and LightGBM models to ONNX, check agreement, measure the speed-up.

:func:`to_onnx` never crashes on a model it cannot convert: the report says why
(``ok=False``) and the caller keeps the original flavor. A conversion is kept only when the
ONNX model's predictions on the sample agree with the original's within :data:`TOLERANCE`.
The ONNX bytes are not a stable identity (two exports of one model can differ): identify a
converted version by its source version, not by the ONNX file's hash.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flotilla._atomic import write_bytes_atomic
from flotilla.errors import FlotillaError
from flotilla.runtimes._inputs import plan_columns
from flotilla.runtimes._kinds import create_runtime
from flotilla.runtimes.base import Runtime, RuntimeSpec
from flotilla.runtimes.onnx import FEATURE_NAMES_KEY, OnnxRuntime
from flotilla.signature import Signature
from flotilla.types import Record

__all__ = ["CONVERTIBLE", "TOLERANCE", "ConversionReport", "to_onnx"]

TOLERANCE = 1e-5
"""Largest absolute difference between original and ONNX predictions that counts as agreement."""

CONVERTIBLE: tuple[str, ...] = ("sklearn", "lightgbm")


@dataclass(frozen=True, kw_only=True)
class ConversionReport:
    """What :func:`to_onnx` did.

    Attributes:
        ok: whether the ONNX model was written and agrees with the original.
        flavor: the original flavor.
        reason: why not, when ``ok`` is false (else ``""``).
        onnx_path: the ONNX file when ``ok``, else ``None``.
        max_abs_diff: largest prediction difference on the sample (``inf`` for a label
            mismatch), or ``None`` when the conversion failed before comparing.
        timings_ms: median milliseconds per predict call: ``original_1``, ``onnx_1``,
            ``original_1000``, ``onnx_1000``.
        speedup_1, speedup_1000: original time / ONNX time for 1 and 1,000 rows.
    """

    ok: bool
    flavor: str
    reason: str = ""
    onnx_path: Path | None = None
    max_abs_diff: float | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    speedup_1: float | None = None
    speedup_1000: float | None = None

    def to_dict(self) -> dict[str, Any]:
        diff = self.max_abs_diff
        return {
            "ok": self.ok,
            "flavor": self.flavor,
            "reason": self.reason,
            "onnx_path": None if self.onnx_path is None else str(self.onnx_path),
            "max_abs_diff": diff if diff is None or math.isfinite(diff) else "inf",
            "timings_ms": dict(self.timings_ms),
            "speedup_1": self.speedup_1,
            "speedup_1000": self.speedup_1000,
        }


def to_onnx(
    flavor: str,
    path: Path,
    *,
    signature: Signature,
    sample: list[Record],
    out_dir: Path,
    trust_pickle: bool = False,
    repeats: int = 5,
) -> ConversionReport:
    """Convert a ``sklearn`` or ``lightgbm`` artifact to ONNX and check it.

    Args:
        flavor: ``sklearn`` or ``lightgbm`` (others give ``ok=False``).
        path: the original artifact.
        signature: the model's signature (input order, output kind).
        sample: records to compare predictions on and to time with (at least one).
        out_dir: where ``<stem>.onnx`` is written (only when the conversion is kept).
        trust_pickle: allow a pickle/joblib sklearn artifact.
        repeats: timing repeats (the median is reported).

    Raises:
        FlotillaError: the original artifact itself cannot be loaded (missing, unsafe).

    Example:
        >>> report = to_onnx("sklearn", Path("m.skops"), signature=sig,
        ...                  sample=sig.sample_records(), out_dir=Path("out"))  # doctest: +SKIP
        >>> report.ok, report.speedup_1  # doctest: +SKIP
        (True, 21.4)
    """
    if flavor not in CONVERTIBLE:
        return ConversionReport(
            ok=False, flavor=flavor, reason=f"the {flavor} flavor cannot be converted to ONNX"
        )
    if not sample:
        return ConversionReport(ok=False, flavor=flavor, reason="the sample has no records")
    spec = RuntimeSpec(flavor=flavor, path=path, signature=signature, trust_pickle=trust_pickle)
    original = create_runtime(spec)
    original.load()
    expected = original.predict(sample)
    try:
        model_proto = _convert(flavor, path, signature, trust_pickle)
    except Exception as exc:  # any converter failure means: keep the original flavor
        return ConversionReport(
            ok=False,
            flavor=flavor,
            reason=f"conversion failed: {type(exc).__name__}: {exc}",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{path.stem}.onnx"
    write_bytes_atomic(target, model_proto.SerializeToString())
    try:
        converted = OnnxRuntime(RuntimeSpec(flavor="onnx", path=target, signature=signature))
        converted.load()
        diff = _max_abs_diff(expected, converted.predict(sample))
    except FlotillaError as exc:
        target.unlink(missing_ok=True)
        return ConversionReport(
            ok=False, flavor=flavor, reason=f"the ONNX model does not run: {exc}"
        )
    if diff > TOLERANCE:
        target.unlink(missing_ok=True)
        return ConversionReport(
            ok=False,
            flavor=flavor,
            max_abs_diff=diff,
            reason=f"ONNX predictions differ from the original by up to {diff:.3g} "
            f"(tolerance {TOLERANCE})",
        )
    timings = _timings(original, converted, sample, repeats)
    return ConversionReport(
        ok=True,
        flavor=flavor,
        onnx_path=target,
        max_abs_diff=diff,
        timings_ms=timings,
        speedup_1=round(timings["original_1"] / timings["onnx_1"], 2),
        speedup_1000=round(timings["original_1000"] / timings["onnx_1000"], 2),
    )


def _convert(flavor: str, path: Path, signature: Signature, trust_pickle: bool) -> Any:
    if flavor == "lightgbm":
        return _convert_lightgbm(path, signature)
    return _convert_sklearn(path, signature, trust_pickle)


def _convert_sklearn(path: Path, signature: Signature, trust_pickle: bool) -> Any:
    from skl2onnx import to_onnx as skl_to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    from flotilla.runtimes.sklearn import _is_classifier, load_estimator

    model = load_estimator(path, trust_pickle=trust_pickle, label=path.name)
    names = getattr(model, "feature_names_in_", None)
    plan = plan_columns(
        signature,
        None if names is None else list(names),
        label=path.name,
        n_features=getattr(model, "n_features_in_", None),
    )
    steps = getattr(model, "steps", None)
    final = steps[-1][1] if steps else model
    options = {id(final): {"zipmap": False}} if _is_classifier(final) else None
    if steps is not None or not plan.numeric:
        inputs = [
            (n, StringTensorType([None, 1]) if k == "text" else FloatTensorType([None, 1]))
            for n, k in zip(plan.names, plan.kinds, strict=True)
        ]
        return skl_to_onnx(model, initial_types=inputs, options=options)
    proto = skl_to_onnx(
        model, initial_types=[("input", FloatTensorType([None, len(plan.names)]))], options=options
    )
    return _with_feature_names(proto, list(plan.names))


def _convert_lightgbm(path: Path, signature: Signature) -> Any:
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    from flotilla.runtimes.lightgbm import load_booster, named_features

    booster = load_booster(path, label=path.name)
    plan = plan_columns(
        signature, named_features(booster), label=path.name, n_features=booster.num_feature()
    )
    if not plan.numeric:
        raise TypeError("LightGBM models with categorical inputs are not converted")
    proto = onnxmltools.convert_lightgbm(
        booster,
        initial_types=[("input", FloatTensorType([None, len(plan.names)]))],
        zipmap=False,
    )
    return _with_feature_names(proto, list(plan.names))


def _with_feature_names(proto: Any, names: list[str]) -> Any:
    import json

    entry = proto.metadata_props.add()
    entry.key = FEATURE_NAMES_KEY
    entry.value = json.dumps(names)
    return proto


def _max_abs_diff(expected: list[Any], actual: list[Any]) -> float:
    if len(expected) != len(actual):
        return math.inf
    worst = 0.0
    for a, b in zip(expected, actual, strict=True):
        if isinstance(a, list) and isinstance(b, list):
            worst = max(worst, _max_abs_diff(a, b))
        elif _number(a) and _number(b):
            worst = max(worst, abs(float(a) - float(b)))
        elif a != b:
            return math.inf
    return worst


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _timings(
    original: Runtime, converted: Runtime, sample: list[Record], repeats: int
) -> dict[str, float]:
    one = sample[:1]
    batch = [sample[i % len(sample)] for i in range(1000)]
    return {
        "original_1": _median_ms(lambda: original.predict(one), repeats * 4),
        "onnx_1": _median_ms(lambda: converted.predict(one), repeats * 4),
        "original_1000": _median_ms(lambda: original.predict(batch), repeats),
        "onnx_1000": _median_ms(lambda: converted.predict(batch), repeats),
    }


def _median_ms(call: Callable[[], object], repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000.0, 4)

"""Every built-in flavor passes the runtime conformance suite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flotilla.runtimes import RuntimeSpec, StaticRuntime, create_runtime
from flotilla.signature import OutputSpec, Signature
from flotilla.testing import RUNTIME_CHECKS, run_checks

# case id -> (flavor, artifact name or None, output kind, signature options, extra spec args)
CASES: dict[str, tuple[str, str | None, str, dict[str, Any], dict[str, Any]]] = {
    "sklearn-logreg-frame": ("sklearn", "logreg", "probability", {}, {}),
    "sklearn-logreg-numpy": ("sklearn", "logreg_np", "probability", {}, {}),
    "sklearn-logreg-label": ("sklearn", "logreg", "label", {}, {}),
    "sklearn-gradient-boosting": ("sklearn", "gbc", "probability", {}, {}),
    "sklearn-random-forest-label": ("sklearn", "rf", "label", {}, {}),
    "sklearn-random-forest-score": ("sklearn", "rf", "score", {}, {}),
    "sklearn-linear-regression": ("sklearn", "linreg", "score", {}, {}),
    "sklearn-pipeline-categorical": ("sklearn", "pipeline", "probability", {"plan": True}, {}),
    "sklearn-pickle-trusted": ("sklearn", "pickle", "probability", {}, {"trust_pickle": True}),
    "onnx-zipmap": ("onnx", "onnx_zipmap", "probability", {}, {}),
    "onnx-tensor": ("onnx", "onnx_tensor", "probability", {}, {}),
    "onnx-label": ("onnx", "onnx_zipmap", "label", {}, {}),
    "onnx-columns-categorical": ("onnx", "onnx_columns", "probability", {"plan": True}, {}),
    "onnx-regression": ("onnx", "onnx_regression", "score", {}, {}),
    "lightgbm-binary": ("lightgbm", "lgb_binary", "probability", {}, {}),
    "lightgbm-binary-unnamed": ("lightgbm", "lgb_binary_anon", "probability", {}, {}),
    "lightgbm-binary-score": ("lightgbm", "lgb_binary", "score", {}, {}),
    "lightgbm-regression": ("lightgbm", "lgb_regression", "score", {}, {}),
    "lightgbm-multiclass": ("lightgbm", "lgb_multiclass", "label", {}, {}),
    "python-file": (
        "python",
        "python_file",
        "score",
        {},
        {"entry": "scaled_model:Scaled", "params": {"factor": 2.0}},
    ),
    "python-package": (
        "python",
        "python_package",
        "score",
        {},
        {"entry": "mymodel.core:Model", "params": {"offset": 1.0}},
    ),
    "static-value-file": ("static", "static_value", "probability", {}, {}),
    "static-items-file": ("static", "static_items", "items", {}, {}),
}


@pytest.mark.parametrize("case_id", list(CASES))
def test_builtin_flavor_passes_conformance(
    case_id: str, build: Callable[[str], Path], make_sig: Callable[..., Signature]
) -> None:
    flavor, artifact, kind, sig_options, extra = CASES[case_id]
    sig = make_sig(kind, **sig_options)
    path = build(artifact) if artifact else None
    spec = RuntimeSpec(flavor=flavor, path=path, signature=sig, label=case_id, **extra)
    records = sig.sample_records(6, seed=1)

    report = run_checks(lambda: create_runtime(spec), records, output=sig.output)

    assert report.ok, report.to_dict()["failed"]
    assert report.passed == list(RUNTIME_CHECKS)


@pytest.mark.parametrize(
    "value,output",
    [
        ({"value": 0.5}, OutputSpec(kind="probability")),
        ({"value": "fallback"}, OutputSpec(kind="label")),
        ({"items": [3, 1, 2]}, OutputSpec(kind="items", k=3)),
        ({"items": [{"id": "a"}]}, None),
    ],
    ids=["probability", "label", "items", "nested-items"],
)
def test_static_from_value_passes_conformance(value: dict[str, Any], output: Any) -> None:
    report = run_checks(lambda: StaticRuntime.from_value(value), [{"a": 1.0}, {}], output=output)
    assert report.ok, report.to_dict()["failed"]

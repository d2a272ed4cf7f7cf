"""infer_signature: signatures from artifacts that name their inputs, None otherwise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from flotilla.errors import ArtifactNotFoundError, SignatureError
from flotilla.runtimes import (
    SignatureRequiredError,
    infer_signature,
    signature_required_message,
)

Build = Callable[[str], Path]


def test_sklearn_fitted_on_dataframe(build: Build) -> None:
    sig = infer_signature("sklearn", build("logreg"))
    assert sig is not None
    assert sig.to_dict() == {
        "inputs": [
            {"name": "a", "type": "float", "nullable": False},
            {"name": "b", "type": "float", "nullable": False},
        ],
        "output": {"kind": "probability"},
    }


def test_sklearn_pipeline_encoder_columns_become_categories(build: Build) -> None:
    sig = infer_signature("sklearn", build("pipeline"), output_kind="label")
    assert sig is not None
    plan = sig.field("plan")
    assert plan.type == "category" and plan.categories == ("basic", "pro", "team")
    assert sig.field("a").type == "float" and sig.output.kind == "label"


def test_sklearn_regressor_defaults_to_score(build: Build) -> None:
    sig = infer_signature("sklearn", build("linreg"))
    assert sig is not None and sig.output.kind == "score"


def test_lightgbm_with_feature_names(build: Build) -> None:
    sig = infer_signature("lightgbm", build("lgb_binary"))
    assert sig is not None
    assert sig.field_names == ["a", "b"] and sig.output.kind == "probability"
    reg = infer_signature("lightgbm", build("lgb_regression"))
    assert reg is not None and reg.output.kind == "score"
    multi = infer_signature("lightgbm", build("lgb_multiclass"))
    assert multi is not None and multi.output.kind == "label"


def test_onnx_with_one_input_per_field(build: Build) -> None:
    sig = infer_signature("onnx", build("onnx_columns"))
    assert sig is not None
    assert [(f.name, f.type) for f in sig.inputs] == [
        ("a", "float"),
        ("b", "float"),
        ("plan", "string"),
    ]
    assert sig.output.kind == "probability"


@pytest.mark.parametrize(
    "flavor,artifact",
    [
        ("sklearn", "logreg_np"),
        ("lightgbm", "lgb_binary_anon"),
        ("onnx", "onnx_tensor"),
        ("static", "static_value"),
        ("python", "python_file"),
    ],
)
def test_none_when_the_artifact_does_not_name_inputs(
    flavor: str, artifact: str, build: Build
) -> None:
    assert infer_signature(flavor, build(artifact), entry="scaled_model:Scaled") is None


def test_missing_artifact(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFoundError, match="does not exist"):
        infer_signature("sklearn", tmp_path / "gone.skops")


def test_bad_output_kind(build: Build) -> None:
    with pytest.raises(SignatureError, match="Did you mean 'probability'"):
        infer_signature("sklearn", build("logreg"), output_kind="probabilty")


def test_signature_required_message() -> None:
    message = signature_required_message("onnx", "model.onnx")
    assert "cannot infer a signature from the onnx artifact 'model.onnx'" in message
    assert "--signature FILE" in message
    assert isinstance(SignatureRequiredError(message), SignatureError)

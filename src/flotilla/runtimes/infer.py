"""Infer a signature from an artifact that names its inputs.

Works for scikit-learn estimators fitted on a DataFrame (``feature_names_in_``; encoder
columns become ``category`` fields with the encoder's categories), LightGBM models with real
feature names, and ONNX models with one input per field or a ``feature_names`` metadata
entry. Anything else returns ``None``; callers then ask for ``--signature`` with
:func:`signature_required_message`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flotilla.errors import ArtifactNotFoundError, SignatureError
from flotilla.runtimes._kinds import check_flavor
from flotilla.signature import InputField, OutputSpec, Signature

__all__ = ["SignatureRequiredError", "infer_signature", "signature_required_message"]

_ONNX_TYPES = {
    "tensor(float)": "float",
    "tensor(double)": "float",
    "tensor(int64)": "int",
    "tensor(int32)": "int",
    "tensor(bool)": "bool",
    "tensor(string)": "string",
}


class SignatureRequiredError(SignatureError):
    """The artifact does not name its inputs, so a signature must be given."""


def signature_required_message(flavor: str, path: Path | str) -> str:
    """The message for a version whose signature cannot be inferred.

    It reads: ``Flotilla cannot infer a signature from the <flavor> artifact '<path>': it
    does not name its inputs. Pass --signature FILE (YAML or JSON with 'inputs' and
    'output'), e.g. {"inputs": [{"name": "age", "type": "float"}], "output": {"kind":
    "probability"}}.``
    """
    return (
        f"Flotilla cannot infer a signature from the {flavor} artifact {str(path)!r}: it does "
        "not name its inputs. Pass --signature FILE (YAML or JSON with 'inputs' and 'output'), "
        'e.g. {"inputs": [{"name": "age", "type": "float"}], "output": {"kind": "probability"}}.'
    )


def infer_signature(
    flavor: str,
    path: Path,
    *,
    output_kind: str | None = None,
    entry: str | None = None,
    params: dict[str, Any] | None = None,
    trust_pickle: bool = False,
) -> Signature | None:
    """Build a signature from an artifact that names its inputs, else return ``None``.

    Args:
        flavor: the artifact's flavor.
        path: the artifact.
        output_kind: the output kind; by default ``probability`` for binary classifiers,
            ``label`` for multiclass ones and ``score`` otherwise.
        entry, params: unused today (python classes do not declare inputs).
        trust_pickle: allow reading a pickle/joblib sklearn artifact.

    Raises:
        ArtifactNotFoundError: the artifact does not exist.
        FlavorError, UnsafeArtifactError: as when loading the artifact.
        SignatureError: ``output_kind`` is not a known kind.

    Example:
        >>> infer_signature("sklearn", Path("model.skops"))  # doctest: +SKIP
        Signature(inputs=(InputField(name='age', type='float', ...),), ...)
    """
    del entry, params
    check_flavor(flavor)
    if not path.exists():
        raise ArtifactNotFoundError(
            f"Cannot infer a signature: the artifact {str(path)!r} does not exist. Check the path."
        )
    if output_kind is not None:
        OutputSpec.from_dict({"kind": output_kind}, where="inferred signature")
    found: tuple[list[InputField], str] | None = None
    if flavor == "sklearn":
        found = _from_sklearn(path, trust_pickle)
    elif flavor == "lightgbm":
        found = _from_lightgbm(path)
    elif flavor == "onnx":
        found = _from_onnx(path)
    if found is None:
        return None
    fields, default = found
    kind = output_kind or default
    return Signature(inputs=tuple(fields), output=OutputSpec.from_dict({"kind": kind}))


def _default_kind(classifier: bool, n_classes: int) -> str:
    if not classifier:
        return "score"
    return "probability" if n_classes <= 2 else "label"


def _encoder_categories(model: Any) -> dict[str, tuple[str, ...]]:
    """Columns that a ColumnTransformer sends to an encoder with string categories."""
    steps = getattr(model, "steps", None)
    first = steps[0][1] if steps else model
    out: dict[str, tuple[str, ...]] = {}
    for _, transformer, columns in getattr(first, "transformers_", []):
        encoder = transformer
        inner = getattr(transformer, "steps", None)
        if inner:
            encoder = next((s for _, s in inner if hasattr(s, "categories_")), transformer)
        cats = getattr(encoder, "categories_", None)
        if cats is None or not isinstance(columns, list | tuple):
            continue
        for column, values in zip(columns, cats, strict=False):
            texts = [v for v in values.tolist() if isinstance(v, str)]
            if isinstance(column, str) and texts:
                out[column] = tuple(texts)
    return out


def _from_sklearn(path: Path, trust_pickle: bool) -> tuple[list[InputField], str] | None:
    from flotilla.runtimes.sklearn import _is_classifier, load_estimator

    model = load_estimator(path, trust_pickle=trust_pickle, label=path.name)
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return None
    categories = _encoder_categories(model)
    fields = [
        InputField(name=str(n), type="category", categories=categories[str(n)])
        if str(n) in categories
        else InputField(name=str(n), type="float")
        for n in names
    ]
    n_classes = len(getattr(model, "classes_", ()))
    return fields, _default_kind(_is_classifier(model), n_classes)


def _from_lightgbm(path: Path) -> tuple[list[InputField], str] | None:
    from flotilla.runtimes.lightgbm import booster_task, load_booster, named_features

    booster = load_booster(path, label=path.name)
    names = named_features(booster)
    if names is None:
        return None
    task = booster_task(booster)
    kind = {"binary": "probability", "multiclass": "label"}.get(task, "score")
    return [InputField(name=n, type="float", nullable=True) for n in names], kind


def _from_onnx(path: Path) -> tuple[list[InputField], str] | None:
    from flotilla.runtimes.onnx import make_session, onnx_feature_names

    session = make_session(path, device="cpu", label=path.name)
    inputs = session.get_inputs()
    outputs = session.get_outputs()
    has_prob = any(o.type.startswith("seq(map") or "prob" in o.name.lower() for o in outputs)
    kind = "probability" if has_prob else "score"
    if len(inputs) == 1 and len(inputs[0].shape) == 2:
        names = onnx_feature_names(session)
        if names is None:
            return None
        is_int = _ONNX_TYPES.get(inputs[0].type) == "int"
        return [InputField(name=n, type="int" if is_int else "float") for n in names], kind
    if len(inputs) < 2:
        return None
    fields = [
        InputField(name=i.name, type=_ONNX_TYPES.get(i.type, "float"))  # type: ignore[arg-type]
        for i in inputs
    ]
    return fields, kind

"""The ``sklearn`` flavor: scikit-learn estimators saved with skops (or trusted pickles).

skops files load with a deliberate trusted-types list: the types the file asks for, filtered
against :data:`TRUSTED_PREFIXES`. Anything outside is refused with
:class:`~flotilla.errors.UnsafeArtifactError`. Pickle/joblib files run arbitrary code when
loaded and are refused unless the version was registered with ``trust_pickle``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flotilla.errors import FlavorError, PredictionError, RuntimeLoadError, UnsafeArtifactError
from flotilla.runtimes._inputs import ColumnPlan, plan_columns
from flotilla.runtimes._outputs import output_kind, positive_column, to_plain_list
from flotilla.runtimes.base import BaseRuntime, RuntimeMetadata, RuntimeSpec
from flotilla.types import Record

__all__ = ["PICKLE_SUFFIXES", "TRUSTED_PREFIXES", "SklearnRuntime", "load_estimator"]

TRUSTED_PREFIXES: tuple[str, ...] = ("sklearn.", "numpy.", "scipy.")
"""Type-name prefixes a skops file may use without being refused."""

PICKLE_SUFFIXES: frozenset[str] = frozenset({".pkl", ".pickle", ".joblib"})


def is_pickle(path: Path) -> bool:
    """Whether the file is a pickle/joblib file (by suffix or pickle magic bytes)."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return True
    with path.open("rb") as fh:
        head = fh.read(2)
    return len(head) == 2 and head[0] == 0x80 and head[1] <= 0x05


def load_estimator(path: Path, *, trust_pickle: bool, label: str) -> Any:
    """Load a scikit-learn estimator safely (skops allow-list, pickle only when trusted).

    Raises:
        UnsafeArtifactError: a pickle without trust, or a skops file with untrusted types.
        FlavorError: the file is neither a skops file nor a pickle.
    """
    if is_pickle(path):
        if not trust_pickle:
            raise UnsafeArtifactError(
                f"The artifact of {label} ({path.name}) is a pickle/joblib file, and unpickling "
                "runs arbitrary code. Save the model with skops (skops.io.dump(model, "
                "'model.skops')) and register that file, or register it with --trust-pickle "
                "if you trust its origin."
            )
        import joblib  # type: ignore[import-untyped]

        try:
            return joblib.load(path)
        except Exception as exc:
            raise RuntimeLoadError(
                f"The pickle artifact of {label} could not be loaded: {exc}"
            ) from exc
    return _load_skops(path, label=label)


def _load_skops(path: Path, *, label: str) -> Any:
    import skops.io as sio

    try:
        wanted = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise FlavorError(
            f"The artifact of {label} ({path.name}) is not a skops file: {exc}. Save "
            "scikit-learn models with skops.io.dump(model, 'model.skops')."
        ) from exc
    refused = [t for t in wanted if not t.startswith(TRUSTED_PREFIXES)]
    if refused:
        raise UnsafeArtifactError(
            f"The skops artifact of {label} needs types outside Flotilla's allow-list "
            f"({', '.join(TRUSTED_PREFIXES)}*): {refused}. Loading them could run code that "
            "is not part of scikit-learn, numpy or scipy; use the python flavor for custom "
            "code, or --trust-pickle with a joblib file if you trust its origin."
        )
    try:
        return sio.load(path, trusted=list(wanted))
    except Exception as exc:
        raise RuntimeLoadError(f"The skops artifact of {label} could not be loaded: {exc}") from exc


def _is_classifier(model: Any) -> bool:
    from sklearn.base import is_classifier

    return bool(is_classifier(model)) or hasattr(model, "classes_")


class SklearnRuntime(BaseRuntime):
    """Predict with a scikit-learn estimator or Pipeline.

    Records are mapped to the estimator's ``feature_names_in_`` when it was fitted on a
    DataFrame (passed as a DataFrame), else to the signature's fields in order (passed as
    one float array). Output per the signature's kind: ``probability`` =
    ``predict_proba[:, 1]``, ``score`` = ``decision_function`` or ``predict``, ``label`` =
    ``predict``, ``items`` = each row of ``predict`` as a list.

    Example:
        >>> rt = SklearnRuntime(RuntimeSpec(flavor="sklearn", path=p, signature=sig))
        >>> rt.load(); rt.predict([{"age": 30.0}])  # doctest: +SKIP
        [0.27]
    """

    flavor = "sklearn"

    def __init__(self, spec: RuntimeSpec) -> None:
        super().__init__(spec)
        self._model: Any = None
        self._plan: ColumnPlan | None = None
        self._frame = False
        self._kind = ""
        self._method: Any = None
        self._column: int | None = None

    def _load(self) -> None:
        path = self._artifact()
        model = load_estimator(path, trust_pickle=self.spec.trust_pickle, label=self.spec.name)
        if not hasattr(model, "predict"):
            raise FlavorError(
                f"The artifact of {self.spec.name} holds a {type(model).__name__}, which has "
                "no predict(); the sklearn flavor needs a fitted estimator or Pipeline."
            )
        names = getattr(model, "feature_names_in_", None)
        plan = plan_columns(
            self.spec.signature,
            None if names is None else list(names),
            label=self.spec.name,
            n_features=getattr(model, "n_features_in_", None),
        )
        classifier = _is_classifier(model)
        n_classes = len(getattr(model, "classes_", ()))
        default = ("probability" if n_classes == 2 else "label") if classifier else "score"
        kind = output_kind(self.spec.signature, default)
        self._pick_method(model, kind, classifier)
        self._model, self._plan, self._kind = model, plan, kind
        self._frame = names is not None or not plan.numeric

    def _pick_method(self, model: Any, kind: str, classifier: bool) -> None:
        label = self.spec.name
        if kind == "probability" or (kind == "score" and classifier):
            if kind == "score" and hasattr(model, "decision_function"):
                self._method = model.decision_function
                return
            if not hasattr(model, "predict_proba"):
                raise RuntimeLoadError(
                    f"The model {label} ({type(model).__name__}) has no predict_proba, so it "
                    f"cannot answer output kind {kind!r}. Use 'label' or 'score'."
                )
            n_classes = len(getattr(model, "classes_", ()))
            self._column = positive_column(n_classes or 2, label=label)
            self._method = model.predict_proba
            return
        self._method = model.predict

    def predict(self, records: list[Record]) -> list[Any]:
        """One prediction per record (see the class docstring for the output mapping)."""
        self._require_loaded()
        if not records:
            return []
        assert self._plan is not None
        data = self._plan.to_frame(records) if self._frame else self._plan.to_array(records)
        try:
            raw = self._method(data)
        except Exception as exc:
            raise PredictionError(
                f"The sklearn model {self.spec.name} failed to predict: {type(exc).__name__}: {exc}"
            ) from exc
        if self._column is not None:
            raw = raw[:, self._column]
        elif self._kind in ("score", "probability") and getattr(raw, "ndim", 1) == 2:
            raw = raw[:, 0]
        return to_plain_list(raw, len(records), label=self.spec.name)

    def metadata(self) -> RuntimeMetadata:
        """Flavor, input order, output kind and the estimator's class and sklearn version."""
        import sklearn

        extra: dict[str, Any] = {"sklearn_version": sklearn.__version__}
        if self._model is not None:
            extra["estimator"] = type(self._model).__name__
            extra["n_features"] = len(self._plan.names) if self._plan else None
        return RuntimeMetadata(
            flavor=self.flavor,
            inputs=list(self._plan.names) if self._plan else None,
            output_kind=self._kind or None,
            device="cpu",
            extra=extra,
        )

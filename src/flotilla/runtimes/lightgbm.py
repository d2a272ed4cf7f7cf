"""The ``lightgbm`` flavor: native LightGBM text models (``Booster.save_model``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from flotilla.errors import FlavorError, PredictionError, RuntimeLoadError
from flotilla.runtimes._inputs import ColumnPlan, plan_columns
from flotilla.runtimes._outputs import output_kind, to_plain_list
from flotilla.runtimes.base import BaseRuntime, RuntimeMetadata, RuntimeSpec
from flotilla.types import Record

__all__ = ["LightGBMRuntime", "booster_task", "named_features"]

_BINARY = frozenset({"binary", "cross_entropy", "xentropy"})
_MULTICLASS = frozenset({"multiclass", "softmax", "multiclassova", "multiclass_ova", "ova"})


def booster_task(booster: Any) -> str:
    """``"binary"``, ``"multiclass"`` or ``"regression"`` (any other objective)."""
    objective = str(booster.params.get("objective", "regression")).split()[0]
    if objective in _BINARY:
        return "binary"
    if objective in _MULTICLASS:
        return "multiclass"
    return "regression"


def named_features(booster: Any) -> list[str] | None:
    """The booster's feature names, or ``None`` when LightGBM made them up (Column_N)."""
    names = [str(n) for n in booster.feature_name()]
    if all(n == f"Column_{i}" for i, n in enumerate(names)):
        return None
    return names


def load_booster(path: Any, *, label: str) -> Any:
    """``lightgbm.Booster(model_file=path)``; FlavorError when it is not a LightGBM model."""
    import lightgbm

    try:
        return lightgbm.Booster(model_file=str(path))
    except Exception as exc:
        raise FlavorError(
            f"The artifact of {label} ({path.name}) is not a LightGBM model file: {exc}. Save "
            "models with booster.save_model('model.txt')."
        ) from exc


class LightGBMRuntime(BaseRuntime):
    """Predict with a LightGBM Booster.

    Output per the signature's kind: binary objective -> ``probability`` (or ``score`` =
    raw margin, ``label`` = 0/1 at 0.5); regression -> ``score``; multiclass -> ``label``
    (argmax) or ``probability`` only with two classes. Categorical columns use the
    categories stored in the model (``pandas_categorical``).
    """

    flavor = "lightgbm"

    def __init__(self, spec: RuntimeSpec) -> None:
        super().__init__(spec)
        self._booster: Any = None
        self._plan: ColumnPlan | None = None
        self._task = ""
        self._kind = ""
        self._categories: list[list[Any]] = []

    def _load(self) -> None:
        path = self._artifact()
        booster = load_booster(path, label=self.spec.name)
        task = booster_task(booster)
        plan = plan_columns(
            self.spec.signature,
            named_features(booster),
            label=self.spec.name,
            n_features=booster.num_feature(),
        )
        default = {"binary": "probability", "multiclass": "label"}.get(task, "score")
        kind = output_kind(self.spec.signature, default)
        n_class = booster.num_model_per_iteration()
        if kind == "probability" and not (task == "binary" or n_class == 2):
            raise RuntimeLoadError(
                f"The LightGBM model {self.spec.name} has objective "
                f"{booster.params.get('objective')!r} with {n_class} classes; output kind "
                "'probability' needs a binary model. Use 'label' or 'score'."
            )
        categories = list(getattr(booster, "pandas_categorical", None) or [])
        n_text = plan.kinds.count("text")
        if n_text and n_text != len(categories):
            raise RuntimeLoadError(
                f"The signature of {self.spec.name} has {n_text} string/category field(s) but "
                f"the LightGBM model stores categories for {len(categories)} column(s). Train "
                "on pandas categorical columns, or make those fields numeric."
            )
        self._booster, self._plan, self._task, self._kind = booster, plan, task, kind
        self._categories = categories

    def _inputs(self, records: list[Record]) -> Any:
        assert self._plan is not None
        if self._plan.numeric:
            return self._plan.to_array(records)
        import pandas as pd

        frame = self._plan.to_frame(records)
        text = [n for n, k in zip(self._plan.names, self._plan.kinds, strict=True) if k == "text"]
        for name, cats in zip(text, self._categories, strict=True):
            frame[name] = pd.Categorical(frame[name], categories=cats)
        return frame

    def predict(self, records: list[Record]) -> list[Any]:
        """One prediction per record (see the class docstring)."""
        self._require_loaded()
        if not records:
            return []
        data = self._inputs(records)
        raw_score = self._kind == "score" and self._task != "regression"
        try:
            out = self._booster.predict(data, raw_score=raw_score)
        except Exception as exc:
            raise PredictionError(
                f"The LightGBM model {self.spec.name} failed to predict: {exc}"
            ) from exc
        out = np.asarray(out)
        if out.ndim == 2:
            if self._kind == "probability":
                out = out[:, 1]
            elif self._kind == "label":
                out = out.argmax(axis=1)
            elif self._kind == "score":
                out = out[:, -1]
        elif self._kind == "label" and self._task == "binary":
            out = (out >= 0.5).astype(np.int64)
        return to_plain_list(out, len(records), label=self.spec.name)

    def metadata(self) -> RuntimeMetadata:
        """Flavor, input order, output kind, objective and LightGBM version."""
        import lightgbm

        extra: dict[str, Any] = {"lightgbm_version": lightgbm.__version__}
        if self._booster is not None:
            extra["objective"] = str(self._booster.params.get("objective", ""))
            extra["n_features"] = int(self._booster.num_feature())
            extra["n_trees"] = int(self._booster.num_trees())
        return RuntimeMetadata(
            flavor=self.flavor,
            inputs=list(self._plan.names) if self._plan else None,
            output_kind=self._kind or None,
            extra=extra,
        )

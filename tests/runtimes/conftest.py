"""Tiny models trained on the spot, saved as artifacts once per session."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flotilla.signature import Signature

N_ROWS = 60


def make_frame(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=N_ROWS),
            "b": rng.normal(size=N_ROWS),
            "plan": rng.choice(["basic", "pro", "team"], size=N_ROWS),
        }
    )
    y = ((frame["a"] + 0.5 * frame["b"] + (frame["plan"] == "pro")) > 0.3).astype(int)
    return frame, y.to_numpy()


def signature(kind: str, *, plan: bool = False, names: tuple[str, ...] = ("a", "b")) -> Signature:
    inputs: list[dict[str, Any]] = [
        {"name": n, "type": "float", "min": -3, "max": 3} for n in names
    ]
    if plan:
        inputs.append({"name": "plan", "type": "category", "categories": ["basic", "pro", "team"]})
    return Signature.from_dict({"inputs": inputs, "output": {"kind": kind}})


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def build(model_dir: Path) -> Callable[[str], Path]:
    """``build(name)`` trains and saves the named tiny model once; returns its path."""
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            cache[name] = BUILDERS[name](model_dir)
        return cache[name]

    return get


def _skops(model: Any, path: Path) -> Path:
    import skops.io as sio

    sio.dump(model, path)
    return path


def _logreg_frame(d: Path) -> Path:
    from sklearn.linear_model import LogisticRegression

    x, y = make_frame()
    return _skops(LogisticRegression().fit(x[["a", "b"]], y), d / "logreg.skops")


def _logreg_numpy(d: Path) -> Path:
    from sklearn.linear_model import LogisticRegression

    x, y = make_frame()
    return _skops(LogisticRegression().fit(x[["a", "b"]].to_numpy(), y), d / "logreg_np.skops")


def _gbc(d: Path) -> Path:
    from sklearn.ensemble import GradientBoostingClassifier

    x, y = make_frame()
    model = GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0)
    return _skops(model.fit(x[["a", "b"]], y), d / "gbc.skops")


def _rf(d: Path) -> Path:
    from sklearn.ensemble import RandomForestClassifier

    x, y = make_frame()
    model = RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0)
    return _skops(model.fit(x[["a", "b"]], y), d / "rf.skops")


def _hgb(d: Path) -> Path:
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = make_frame()
    model = HistGradientBoostingClassifier(max_iter=3, max_depth=2)
    return _skops(model.fit(x[["a", "b"]], y), d / "hgb.skops")


def _linreg(d: Path) -> Path:
    from sklearn.linear_model import LinearRegression

    x, _ = make_frame()
    return _skops(LinearRegression().fit(x[["a", "b"]], x["a"] * 2 - x["b"]), d / "linreg.skops")


def _pipeline(d: Path) -> Path:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x, y = make_frame()
    x = x.astype({"plan": object})
    pre = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["plan"]), (StandardScaler(), ["a", "b"])
    )
    return _skops(make_pipeline(pre, LogisticRegression()).fit(x, y), d / "pipeline.skops")


def _pickle(d: Path) -> Path:
    import joblib  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression

    x, y = make_frame()
    path = d / "logreg.joblib"
    joblib.dump(LogisticRegression().fit(x[["a", "b"]], y), path)
    return path


def _onnx(d: Path, zipmap: bool, name: str) -> Path:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    x, y = make_frame()
    model = LogisticRegression().fit(x[["a", "b"]].to_numpy(np.float32), y)
    options = None if zipmap else {"zipmap": False}
    proto = to_onnx(model, initial_types=[("X", FloatTensorType([None, 2]))], options=options)
    path = d / name
    path.write_bytes(proto.SerializeToString())
    return path


def _onnx_regression(d: Path) -> Path:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LinearRegression

    x, _ = make_frame()
    xs = x[["a", "b"]].to_numpy(np.float32)
    proto = to_onnx(
        LinearRegression().fit(xs, xs[:, 0] * 2 - xs[:, 1]),
        initial_types=[("X", FloatTensorType([None, 2]))],
    )
    path = d / "linreg.onnx"
    path.write_bytes(proto.SerializeToString())
    return path


def _onnx_columns(d: Path) -> Path:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    pipeline_path = build_pipeline_once(d)
    from flotilla.runtimes.sklearn import load_estimator

    model = load_estimator(pipeline_path, trust_pickle=False, label="pipeline")
    inputs = [
        ("a", FloatTensorType([None, 1])),
        ("b", FloatTensorType([None, 1])),
        ("plan", StringTensorType([None, 1])),
    ]
    final = model.steps[-1][1]
    proto = to_onnx(model, initial_types=inputs, options={id(final): {"zipmap": False}})
    path = d / "pipeline.onnx"
    path.write_bytes(proto.SerializeToString())
    return path


def build_pipeline_once(d: Path) -> Path:
    path = d / "pipeline.skops"
    return path if path.exists() else _pipeline(d)


def _lgb(d: Path, objective: str, named: bool) -> Path:
    import lightgbm as lgb

    x, y = make_frame()
    data = x[["a", "b"]] if named else x[["a", "b"]].to_numpy()
    params: dict[str, Any] = {
        "objective": objective,
        "verbose": -1,
        "num_leaves": 4,
        "min_data_in_leaf": 3,
    }
    label: Any = y
    if objective == "multiclass":
        params["num_class"] = 3
        label = (x["plan"].map({"basic": 0, "pro": 1, "team": 2})).to_numpy()
    elif objective == "regression":
        label = (x["a"] * 2 - x["b"]).to_numpy()
    booster = lgb.train(params, lgb.Dataset(data, label), num_boost_round=4)
    path = d / f"lgb_{objective}_{'named' if named else 'anon'}.txt"
    booster.save_model(str(path))
    return path


PYTHON_MODULE = '''
class Scaled:
    """Predicts factor * a + b, or a constant label."""

    def __init__(self, factor=1.0):
        self.factor = factor

    def predict(self, records):
        return [self.factor * (r.get("a") or 0.0) + (r.get("b") or 0.0) for r in records]


class WrongLength:
    def predict(self, records):
        return [0.0]


class Broken:
    def predict(self, records):
        raise ZeroDivisionError("boom")
'''


def _python_file(d: Path) -> Path:
    path = d / "scaled_model.py"
    path.write_text(PYTHON_MODULE)
    return path


def _python_package(d: Path) -> Path:
    root = d / "pyproject_dir"
    pkg = root / "mymodel"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "helpers.py").write_text("def combine(a, b):\n    return 2.0 * a - b\n")
    (pkg / "core.py").write_text(
        "import numpy as np\n"
        "from .helpers import combine\n\n"
        "class Model:\n"
        "    def __init__(self, offset=0.0):\n"
        "        self.offset = offset\n\n"
        "    def predict(self, records):\n"
        "        return [np.float64(combine(r.get('a') or 0.0, r.get('b') or 0.0) + self.offset)"
        " for r in records]\n"
    )
    return root


def _static(d: Path, payload: Any, name: str) -> Path:
    path = d / name
    path.write_text(json.dumps(payload))
    return path


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "logreg": _logreg_frame,
    "logreg_np": _logreg_numpy,
    "gbc": _gbc,
    "rf": _rf,
    "hgb": _hgb,
    "linreg": _linreg,
    "pipeline": build_pipeline_once,
    "pickle": _pickle,
    "onnx_zipmap": lambda d: _onnx(d, True, "logreg_zipmap.onnx"),
    "onnx_tensor": lambda d: _onnx(d, False, "logreg_tensor.onnx"),
    "onnx_columns": _onnx_columns,
    "onnx_regression": _onnx_regression,
    "lgb_binary": lambda d: _lgb(d, "binary", True),
    "lgb_binary_anon": lambda d: _lgb(d, "binary", False),
    "lgb_regression": lambda d: _lgb(d, "regression", True),
    "lgb_multiclass": lambda d: _lgb(d, "multiclass", True),
    "python_file": _python_file,
    "python_package": _python_package,
    "static_value": lambda d: _static(d, {"value": 0.25}, "value.json"),
    "static_items": lambda d: _static(d, {"items": ["x", "y", "z"]}, "items.json"),
}


@pytest.fixture(scope="session")
def make_sig() -> Callable[..., Signature]:
    """``make_sig(kind, plan=False, names=("a", "b"))`` builds a test signature."""
    return signature


@pytest.fixture(scope="session")
def frame() -> pd.DataFrame:
    """The training frame of the tiny models (columns a, b, plan)."""
    return make_frame()[0]

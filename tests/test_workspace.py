"""The Python API end to end: register, resolve, load, check, aliases, audit gate."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from flotilla.errors import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    ConflictError,
    FlavorError,
    LeakageRiskError,
    SignatureError,
    UnsafeArtifactError,
)
from flotilla.settings import Settings
from flotilla.workspace import Workspace

SIG = {
    "inputs": [{"name": "x", "type": "float", "min": 0, "max": 10}],
    "output": {"kind": "score"},
}
MODEL_PY = """
class Doubler:
    def __init__(self, factor=2.0):
        self.factor = factor

    def predict(self, records):
        return [float(r["x"]) * self.factor for r in records]
"""


@pytest.fixture
def ws(settings: Settings) -> Workspace:
    return Workspace.open(settings)


@pytest.fixture
def model_py(tmp_path: Path) -> Path:
    path = tmp_path / "doubler.py"
    path.write_text(MODEL_PY)
    return path


def test_register_load_and_predict(ws: Workspace, model_py: Path) -> None:
    v1 = ws.register(
        "double", flavor="python", artifact=model_py, entry="doubler:Doubler",
        params={"factor": 3.0}, signature=SIG, metrics={"rmse": 0.5}, alias="champion",
    )  # fmt: skip
    assert v1.ref == "double@1"
    assert v1.sha256 and len(v1.sha256) == 64
    assert ws.load("double@champion").predict([{"x": 2.0}]) == [6.0]
    v2 = ws.register("double", flavor="python", artifact=model_py, entry="doubler:Doubler")
    assert v2.version == 2  # signature reused from the model
    assert ws.resolve("double").version == 2
    assert ws.check("double@2").ok
    trail = [e.action for e in ws.registry.audit_trail(model="double")]
    assert trail.count(trail[-1]) >= 1 and len(trail) >= 3


def test_static_and_tampered_artifact(ws: Workspace, tmp_path: Path) -> None:
    art = tmp_path / "top.json"
    art.write_text(json.dumps({"items": [3, 1, 2]}))
    sig = {"inputs": [{"name": "u", "type": "string"}], "output": {"kind": "items", "k": 3}}
    v = ws.register("top", flavor="static", artifact=art, signature=sig)
    assert ws.load(v).predict([{"u": "a"}, {"u": "b"}]) == [[3, 1, 2], [3, 1, 2]]
    blob = next(p for p in ws.settings.artifacts.rglob(v.sha256[2:] + "*") if p.is_file())
    blob.write_bytes(blob.read_bytes() + b" ")
    with pytest.raises(ArtifactIntegrityError) as info:
        ws.load("top@1")
    assert "top@1" in str(info.value) and v.sha256 in str(info.value)


def test_bad_input_is_refused_and_nothing_is_stored(ws: Workspace, tmp_path: Path) -> None:
    text = tmp_path / "model.onnx"
    text.write_text("this is not onnx")
    with pytest.raises(FlavorError, match="flavor must be one of"):
        ws.register("m", flavor="tensorflow", artifact=text, signature=SIG)
    with pytest.raises(ArtifactNotFoundError, match="does not exist"):
        ws.register("m", flavor="onnx", artifact=tmp_path / "nope.onnx", signature=SIG)
    with pytest.raises(FlavorError):
        ws.register("m", flavor="onnx", artifact=text, signature=SIG)
    with pytest.raises(SignatureError, match="--signature"):
        ws.register("m", flavor="static", artifact=_static(tmp_path))
    assert ws.registry.list_models() == []
    assert not any(p.is_file() for p in ws.settings.artifacts.rglob("*"))


def test_pickle_needs_trust(ws: Workspace, tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    path = tmp_path / "lr.pkl"
    path.write_bytes(pickle.dumps(LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0])))
    with pytest.raises(UnsafeArtifactError, match="trust-pickle"):
        ws.register("lr", flavor="sklearn", artifact=path, signature=SIG)
    v = ws.register("lr", flavor="sklearn", artifact=path, signature=SIG, trust_pickle=True)
    assert v.trust_pickle
    assert ws.load(v).predict([{"x": 1.0}]) == pytest.approx([2.0])


def test_same_name_other_task_conflicts(ws: Workspace, tmp_path: Path) -> None:
    ws.register("m", flavor="static", artifact=_static(tmp_path), signature=SIG)
    with pytest.raises(ConflictError, match="task"):
        ws.register("m", flavor="static", artifact=_static(tmp_path), signature=SIG, task="ranking")


def test_leakage_gate(ws: Workspace, tmp_path: Path) -> None:
    from flotilla.quickstart._data import churn_frame

    df = churn_frame(1500)
    leaky = tmp_path / "leaky.parquet"
    df.to_parquet(leaky, index=False)
    kw = {"training_data": leaky, "label": "churned", "event_time": "event_time"}
    with pytest.raises(LeakageRiskError, match="accept-leakage-risk"):
        ws.register("c", flavor="static", artifact=_static(tmp_path), signature=SIG, **kw)
    assert ws.registry.list_models() == []
    v = ws.register(
        "c", flavor="static", artifact=_static(tmp_path), signature=SIG,
        accept_leakage_risk="known trigger; fixed upstream next sprint", **kw,
    )  # fmt: skip
    assert v.lineage["training_audit"]["has_errors"] is True
    reasons = [e.reason for e in ws.registry.audit_trail(model="c")]
    assert "known trigger; fixed upstream next sprint" in reasons


def _static(tmp_path: Path) -> Path:
    path = tmp_path / "static.json"
    path.write_text(json.dumps({"value": 0.5}))
    return path


def test_reference_profile_is_stored(ws: Workspace, tmp_path: Path, model_py: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ref = tmp_path / "ref.parquet"
    pq.write_table(pa.table({"x": [0.5, 1.5, 2.5, None], "y": [1.0, 3.0, 5.0, 0.0]}), ref)
    v = ws.register(
        "double", flavor="python", artifact=model_py, entry="doubler:Doubler", signature=SIG,
        reference=ref, reference_output="y",
    )  # fmt: skip
    profile = ws.registry.get_profile("double", v.version)
    assert profile is not None
    assert "x" in str(profile)
    missing = tmp_path / "missing.parquet"
    pq.write_table(pa.table({"z": [1.0]}), missing)
    with pytest.raises(Exception, match="x"):
        ws.register(
            "double", flavor="python", artifact=model_py, entry="doubler:Doubler",
            signature=SIG, reference=missing,
        )  # fmt: skip
    assert [x.version for x in ws.registry.list_versions("double")] == [1]


def test_a_model_that_cannot_predict_its_signature_is_refused(
    ws: Workspace, tmp_path: Path
) -> None:
    from flotilla.errors import ConfigError, RuntimeLoadError

    code = tmp_path / "picky.py"
    code.write_text(
        "class Picky:\n    def predict(self, records):\n        return [r['y'] for r in records]\n"
    )
    with pytest.raises(RuntimeLoadError, match="failed to predict two sample rows"):
        ws.register("picky", flavor="python", artifact=code, entry="picky:Picky", signature=SIG)
    with pytest.raises(ConfigError, match="alias"):
        ws.register(
            "picky", flavor="python", artifact=code, entry="picky:Picky", signature=SIG,
            alias="Not An Alias!",
        )  # fmt: skip
    assert ws.registry.list_models() == []

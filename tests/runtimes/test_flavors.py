"""Flavor behaviour: predictions against the libraries, conversions, and clear errors."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flotilla.errors import (
    ArtifactNotFoundError,
    FlavorError,
    InputValidationError,
    PredictionError,
    RuntimeLoadError,
    UnsafeArtifactError,
)
from flotilla.runtimes import FLAVORS, RuntimeSpec, StaticRuntime, create_runtime, load_runtime
from flotilla.signature import Signature

Build = Callable[[str], Path]
MakeSig = Callable[..., Signature]


def spec(flavor: str, path: Path | None, sig: Signature | None, **kw: Any) -> RuntimeSpec:
    return RuntimeSpec(flavor=flavor, path=path, signature=sig, label="m@1", **kw)


def records_of(frame: pd.DataFrame, columns: tuple[str, ...] = ("a", "b")) -> list[dict[str, Any]]:
    return [{c: row[c] for c in columns} for _, row in frame.head(10).iterrows()]


def test_flavor_map_names_every_builtin_flavor() -> None:
    assert set(FLAVORS) == {"onnx", "sklearn", "lightgbm", "python", "static"}
    for target in FLAVORS.values():
        module, _, cls = target.partition(":")
        assert module.startswith("flotilla.runtimes.") and cls.endswith("Runtime")


def test_unknown_flavor_lists_flavors_with_did_you_mean() -> None:
    with pytest.raises(FlavorError) as err:
        create_runtime(spec("sklern", None, None))
    assert "onnx, sklearn, lightgbm, python, static" in str(err.value)
    assert "Did you mean 'sklearn'?" in str(err.value)


def test_bad_device_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="'device' of RuntimeSpec"):
        spec("onnx", None, None, device="tpu")


def test_import_pulls_in_no_heavy_library() -> None:
    code = (
        "import sys, flotilla.runtimes, flotilla.testing\n"
        "heavy = ['onnxruntime', 'onnx', 'sklearn', 'skops', 'lightgbm', 'skl2onnx',"
        " 'onnxmltools']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("flavor", ["onnx", "sklearn", "lightgbm", "static", "python"])
def test_missing_artifact_is_artifact_not_found(
    flavor: str, tmp_path: Path, make_sig: MakeSig
) -> None:
    rt = create_runtime(spec(flavor, tmp_path / "gone.bin", make_sig("score"), entry="m:C"))
    with pytest.raises(ArtifactNotFoundError, match="does not exist"):
        rt.load()


@pytest.mark.parametrize(
    "flavor,message",
    [
        ("onnx", "is not a valid ONNX model"),
        ("lightgbm", "is not a LightGBM model file"),
        ("sklearn", "is not a skops file"),
        ("static", "is not valid JSON"),
    ],
)
def test_text_file_is_a_flavor_error(
    flavor: str, message: str, tmp_path: Path, make_sig: MakeSig
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("this is not a model\n")
    with pytest.raises(FlavorError, match=message):
        load_runtime(spec(flavor, path, make_sig("score")))


def test_predict_before_load_says_to_load(build: Build, make_sig: MakeSig) -> None:
    rt = create_runtime(spec("sklearn", build("logreg"), make_sig("probability")))
    with pytest.raises(RuntimeLoadError, match=r"call load\(\) first"):
        rt.predict([{"a": 1.0, "b": 0.0}])


# --- sklearn -------------------------------------------------------------------------------


def test_sklearn_probability_matches_predict_proba(
    build: Build, make_sig: MakeSig, frame: pd.DataFrame
) -> None:
    from flotilla.runtimes.sklearn import load_estimator

    path = build("logreg")
    model = load_estimator(path, trust_pickle=False, label="x")
    rt = load_runtime(spec("sklearn", path, make_sig("probability")))
    recs = records_of(frame)
    expected = model.predict_proba(frame[["a", "b"]].head(10))[:, 1]
    got = rt.predict(recs)
    assert all(type(p) is float for p in got)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    labels = load_runtime(spec("sklearn", path, make_sig("label"))).predict(recs)
    assert labels == model.predict(frame[["a", "b"]].head(10)).tolist()
    assert all(type(v) is int for v in labels)


def test_sklearn_pipeline_with_categories_gets_a_dataframe(
    build: Build, make_sig: MakeSig, frame: pd.DataFrame
) -> None:
    from flotilla.runtimes.sklearn import load_estimator

    path = build("pipeline")
    model = load_estimator(path, trust_pickle=False, label="x")
    rt = load_runtime(spec("sklearn", path, make_sig("probability", plan=True)))
    recs = records_of(frame, ("a", "b", "plan"))
    expected = model.predict_proba(frame.head(10).astype({"plan": object}))[:, 1]
    np.testing.assert_allclose(rt.predict(recs), expected, rtol=1e-12)
    assert rt.metadata().inputs == ["a", "b", "plan"]


def test_sklearn_signature_missing_a_model_field_is_refused(
    build: Build, make_sig: MakeSig
) -> None:
    with pytest.raises(RuntimeLoadError, match=r"needs input\(s\) \['b'\]"):
        load_runtime(spec("sklearn", build("logreg"), make_sig("probability", names=("a", "c"))))


def test_sklearn_numpy_model_needs_signature_of_right_width(
    build: Build, make_sig: MakeSig
) -> None:
    path = build("logreg_np")
    with pytest.raises(RuntimeLoadError, match="has no signature"):
        load_runtime(spec("sklearn", path, None))
    with pytest.raises(RuntimeLoadError, match="expects 2 input column"):
        load_runtime(spec("sklearn", path, make_sig("probability", names=("a",))))


def test_sklearn_bad_value_is_input_validation_error(build: Build, make_sig: MakeSig) -> None:
    rt = load_runtime(spec("sklearn", build("logreg_np"), make_sig("probability")))
    with pytest.raises(InputValidationError) as err:
        rt.predict([{"a": 1.0, "b": 2.0}, {"a": "lots", "b": 1.0}])
    assert err.value.violations[0]["row"] == 1
    assert err.value.violations[0]["field"] == "a"


def test_sklearn_probability_of_multiclass_is_refused(tmp_path: Path, make_sig: MakeSig) -> None:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    x = np.arange(30, dtype=float).reshape(15, 2)
    path = tmp_path / "multi.skops"
    sio.dump(LogisticRegression().fit(x, np.arange(15) % 3), path)
    with pytest.raises(RuntimeLoadError, match="has 3 classes"):
        load_runtime(spec("sklearn", path, make_sig("probability")))
    assert load_runtime(spec("sklearn", path, make_sig("label"))).predict([{"a": 1, "b": 2}])[
        0
    ] in (0, 1, 2)


def test_bool_and_timestamp_fields_are_converted(tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.linear_model import LinearRegression

    x = np.array([[0.0, 0.0], [1.0, 1000.0], [0.0, 2000.0], [1.0, 3000.0]])
    path = tmp_path / "lin.skops"
    sio.dump(LinearRegression().fit(x, 3 * x[:, 0] + x[:, 1] / 1000), path)
    sig = Signature.from_dict(
        {
            "inputs": [{"name": "flag", "type": "bool"}, {"name": "at", "type": "timestamp"}],
            "output": {"kind": "score"},
        }
    )
    rt = load_runtime(spec("sklearn", path, sig))
    got = rt.predict([{"flag": True, "at": "1970-01-01T00:16:40"}, {"flag": False, "at": 2000}])
    assert got == pytest.approx([4.0, 2.0], abs=1e-6)


def test_pickle_is_refused_without_trust_and_loaded_with_it(
    build: Build, make_sig: MakeSig, frame: pd.DataFrame
) -> None:
    path = build("pickle")
    with pytest.raises(UnsafeArtifactError) as err:
        load_runtime(spec("sklearn", path, make_sig("probability")))
    assert "arbitrary code" in str(err.value)
    assert "skops.io.dump" in str(err.value) and "--trust-pickle" in str(err.value)
    trusted = load_runtime(spec("sklearn", path, make_sig("probability"), trust_pickle=True))
    plain = load_runtime(spec("sklearn", build("logreg"), make_sig("probability")))
    recs = records_of(frame)
    assert trusted.predict(recs) == pytest.approx(plain.predict(recs))


def test_pickle_is_detected_by_magic_bytes(build: Build, tmp_path: Path, make_sig: MakeSig) -> None:
    disguised = tmp_path / "model.bin"
    disguised.write_bytes(build("pickle").read_bytes())
    with pytest.raises(UnsafeArtifactError):
        load_runtime(spec("sklearn", disguised, make_sig("probability")))


def test_skops_with_untrusted_type_is_refused(tmp_path: Path, make_sig: MakeSig) -> None:
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "custom.skops"
    sio.dump(FunctionTransformer(func=math.log1p).fit(np.ones((3, 2))), path)
    with pytest.raises(UnsafeArtifactError, match=r"math\.log1p"):
        load_runtime(spec("sklearn", path, make_sig("score")))


def test_skops_tree_models_load_with_the_allow_list(build: Build, make_sig: MakeSig) -> None:
    rt = load_runtime(spec("sklearn", build("rf"), make_sig("label")))
    assert rt.predict([{"a": 2.0, "b": 2.0}]) == [1]
    assert rt.metadata().extra["estimator"] == "RandomForestClassifier"


# --- lightgbm ------------------------------------------------------------------------------


def test_lightgbm_matches_booster(build: Build, make_sig: MakeSig, frame: pd.DataFrame) -> None:
    import lightgbm as lgb

    path = build("lgb_binary")
    booster = lgb.Booster(model_file=str(path))
    x = frame[["a", "b"]].head(10)
    recs = records_of(frame)
    got = load_runtime(spec("lightgbm", path, make_sig("probability"))).predict(recs)
    np.testing.assert_allclose(got, booster.predict(x), rtol=1e-12)
    raw = load_runtime(spec("lightgbm", path, make_sig("score"))).predict(recs)
    np.testing.assert_allclose(raw, booster.predict(x, raw_score=True), rtol=1e-12)
    labels = load_runtime(spec("lightgbm", path, make_sig("label"))).predict(recs)
    assert labels == [int(p >= 0.5) for p in got]


def test_lightgbm_handles_missing_values_and_reports_metadata(
    build: Build, make_sig: MakeSig
) -> None:
    rt = load_runtime(spec("lightgbm", build("lgb_binary"), make_sig("probability")))
    (p,) = rt.predict([{"a": None}])
    assert 0.0 <= p <= 1.0
    meta = rt.metadata().to_dict()
    assert meta["extra"]["objective"] == "binary" and meta["inputs"] == ["a", "b"]


def test_lightgbm_multiclass_probability_is_refused(build: Build, make_sig: MakeSig) -> None:
    with pytest.raises(RuntimeLoadError, match="needs a binary model"):
        load_runtime(spec("lightgbm", build("lgb_multiclass"), make_sig("probability")))


# --- onnx ----------------------------------------------------------------------------------


@pytest.mark.parametrize("artifact", ["onnx_zipmap", "onnx_tensor"])
def test_onnx_probability_matches_sklearn(
    artifact: str, build: Build, make_sig: MakeSig, frame: pd.DataFrame
) -> None:
    sk = load_runtime(spec("sklearn", build("logreg"), make_sig("probability")))
    rt = load_runtime(spec("onnx", build(artifact), make_sig("probability")))
    recs = records_of(frame)
    np.testing.assert_allclose(rt.predict(recs), sk.predict(recs), atol=1e-5)
    meta = rt.metadata()
    assert meta.providers == ["CPUExecutionProvider"] and meta.device == "cpu"


def test_onnx_regression_score(build: Build, make_sig: MakeSig) -> None:
    rt = load_runtime(spec("onnx", build("onnx_regression"), make_sig("score")))
    assert rt.predict([{"a": 1.0, "b": 0.5}, {"a": 0.0, "b": 1.0}]) == pytest.approx(
        [1.5, -1.0], abs=1e-4
    )


def test_onnx_one_input_per_field_with_strings(
    build: Build, make_sig: MakeSig, frame: pd.DataFrame
) -> None:
    sig = make_sig("probability", plan=True)
    sk = load_runtime(spec("sklearn", build("pipeline"), sig))
    rt = load_runtime(spec("onnx", build("onnx_columns"), sig))
    recs = records_of(frame, ("a", "b", "plan"))
    np.testing.assert_allclose(rt.predict(recs), sk.predict(recs), atol=1e-5)


def test_onnx_session_runner_answers_as_inference_session_run(build: Build) -> None:
    import onnxruntime as ort

    from flotilla.runtimes.onnx import session_runner

    session = ort.InferenceSession(str(build("onnx_tensor")), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.array([[0.5, 1.5], [2.0, -1.0]], dtype=np.float32)}
    names = [o.name for o in session.get_outputs()]
    runner = session_runner(session, "cpu")
    assert runner is not session.run  # the native run: no Python checks per call
    for got, want in zip(runner(names, feed, None), session.run(names, feed), strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(Exception, match="input"):  # a wrong feed still fails in ORT itself
        runner(names, {"nope": feed[next(iter(feed))]}, None)
    assert session_runner(session, "gpu") == session.run  # CUDA keeps the CPU fallback


def test_onnx_gpu_without_cuda_provider_says_how_to_fall_back(
    build: Build, make_sig: MakeSig
) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has the CUDA provider")
    with pytest.raises(RuntimeLoadError, match="CUDAExecutionProvider") as err:
        load_runtime(spec("onnx", build("onnx_tensor"), make_sig("probability"), device="gpu"))
    assert "tier 'cpu'" in str(err.value)


# --- python --------------------------------------------------------------------------------


def test_python_file_and_package(build: Build) -> None:
    rec = [{"a": 1.0, "b": 2.0}, {"a": -1.0, "b": 0.5}]
    file_rt = load_runtime(
        spec(
            "python", build("python_file"), None, entry="scaled_model:Scaled", params={"factor": 3}
        )
    )
    assert file_rt.predict(rec) == [5.0, -2.5]
    pkg_rt = load_runtime(spec("python", build("python_package"), None, entry="mymodel.core:Model"))
    out = pkg_rt.predict(rec)
    assert out == [0.0, -2.5] and all(type(v) is float for v in out)


def test_python_versions_of_one_module_do_not_clash(tmp_path: Path) -> None:
    runtimes = []
    for answer in (1, 2):
        folder = tmp_path / f"v{answer}"
        folder.mkdir()
        (folder / "clash.py").write_text(
            f"class M:\n    def predict(self, records):\n        return [{answer}] * len(records)\n"
        )
        runtimes.append(load_runtime(spec("python", folder, None, entry="clash:M")))
    assert [rt.predict([{}]) for rt in runtimes] == [[1], [2]]
    assert "clash" not in sys.modules


@pytest.mark.parametrize(
    "entry,params,message",
    [
        ("scaled_model", {}, "must look like 'pkg.module:Class'"),
        ("scaled_model:Nope", {}, "has no such class"),
        ("scaled_model:Scaled", {"factr": 2}, "Fix the params"),
    ],
    ids=["bad-entry", "missing-class", "bad-params"],
)
def test_python_load_errors(entry: str, params: dict[str, Any], message: str, build: Build) -> None:
    with pytest.raises(RuntimeLoadError, match=message):
        load_runtime(spec("python", build("python_file"), None, entry=entry, params=params))


def test_python_missing_module(tmp_path: Path) -> None:
    with pytest.raises(RuntimeLoadError, match="could not import module 'nowhere'"):
        load_runtime(spec("python", tmp_path, None, entry="nowhere:Model"))
    with pytest.raises(RuntimeLoadError, match="could not import"):
        load_runtime(spec("python", None, None, entry="flotilla_no_such_module:Model"))


@pytest.mark.parametrize(
    "entry,message",
    [("scaled_model:WrongLength", "returned 1 prediction"), ("scaled_model:Broken", "boom")],
)
def test_python_predict_errors(entry: str, message: str, build: Build) -> None:
    rt = load_runtime(spec("python", build("python_file"), None, entry=entry))
    with pytest.raises(PredictionError, match=message):
        rt.predict([{}, {}])


# --- static --------------------------------------------------------------------------------


def test_static_value_and_items(build: Build) -> None:
    value = load_runtime(spec("static", build("static_value"), None))
    assert value.predict([{}, {"a": object()}]) == [0.25, 0.25]
    items = load_runtime(spec("static", build("static_items"), None))
    first = items.predict([{}, {}])
    first[0].append("mutated")
    assert items.predict([{}]) == [["x", "y", "z"]]
    assert items.predict([]) == []


@pytest.mark.parametrize(
    "payload,message",
    [
        ({"valeu": 1}, "exactly one key"),
        ({"value": 1, "items": []}, "exactly one key"),
        ({"items": "abc"}, "must be a list"),
        ([1, 2], "exactly one key"),
    ],
)
def test_static_bad_payload(payload: Any, message: str) -> None:
    with pytest.raises(FlavorError, match=message):
        StaticRuntime.from_value(payload)

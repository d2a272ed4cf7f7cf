"""to_onnx: conversions that agree are kept with timings; failures are reported, not raised."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from flotilla.runtimes import (
    TOLERANCE,
    RuntimeSpec,
    infer_signature,
    load_runtime,
    to_onnx,
)
from flotilla.signature import Signature

Build = Callable[[str], Path]
MakeSig = Callable[..., Signature]


@pytest.mark.parametrize(
    "flavor,artifact,plan",
    [
        ("sklearn", "logreg", False),
        ("sklearn", "logreg_np", False),
        ("sklearn", "pipeline", True),
        ("lightgbm", "lgb_binary", False),
    ],
)
def test_conversion_agrees_and_reports_speedups(
    flavor: str, artifact: str, plan: bool, build: Build, make_sig: MakeSig, tmp_path: Path
) -> None:
    sig = make_sig("probability", plan=plan)
    sample = sig.sample_records(20, seed=3)
    report = to_onnx(
        flavor, build(artifact), signature=sig, sample=sample, out_dir=tmp_path, repeats=1
    )

    assert report.ok, report.reason
    assert report.max_abs_diff is not None and report.max_abs_diff <= TOLERANCE
    assert report.onnx_path is not None and report.onnx_path.is_file()
    assert set(report.timings_ms) == {"original_1", "onnx_1", "original_1000", "onnx_1000"}
    assert report.speedup_1 is not None and report.speedup_1 > 0
    assert report.speedup_1000 is not None and report.speedup_1000 > 0
    orjson.dumps(report.to_dict())

    onnx_rt = load_runtime(RuntimeSpec(flavor="onnx", path=report.onnx_path, signature=sig))
    original = load_runtime(RuntimeSpec(flavor=flavor, path=build(artifact), signature=sig))
    assert onnx_rt.predict(sample) == pytest.approx(original.predict(sample), abs=TOLERANCE)
    inferred = infer_signature("onnx", report.onnx_path)
    assert inferred is not None and inferred.field_names == sig.field_names


def test_hist_gradient_boosting_failure_is_reported(
    build: Build, make_sig: MakeSig, tmp_path: Path
) -> None:
    sig = make_sig("probability")
    report = to_onnx(
        "sklearn", build("hgb"), signature=sig, sample=sig.sample_records(5), out_dir=tmp_path
    )
    assert not report.ok
    assert report.reason.startswith("conversion failed")
    assert report.onnx_path is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flavor", ["onnx", "python", "static"])
def test_unconvertible_flavors_are_reported(
    flavor: str, build: Build, make_sig: MakeSig, tmp_path: Path
) -> None:
    sig = make_sig("probability")
    report = to_onnx(flavor, build("static_value"), signature=sig, sample=[{}], out_dir=tmp_path)
    assert not report.ok and "cannot be converted" in report.reason

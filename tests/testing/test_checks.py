"""The conformance suite passes a good runtime and catches each kind of broken one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from flotilla.errors import ConfigError, InputValidationError
from flotilla.runtimes import RuntimeMetadata, StaticRuntime
from flotilla.signature import OutputSpec
from flotilla.testing import (
    RUNTIME_CHECKS,
    Check,
    ConformanceError,
    RuntimeCase,
    check_runtime,
    parametrize_with_checks,
    run_checks,
)

RECORDS = [{"x": 0.1}, {"x": 0.5}, {"x": 0.9}]
PROBABILITY = OutputSpec(kind="probability")


class GoodRuntime:
    """Predicts x clipped to [0, 1]; raises InputValidationError on a non-number."""

    def __init__(self) -> None:
        self.loaded = False

    def load(self) -> None:
        self.loaded = True

    def _one(self, rec: dict[str, Any]) -> float:
        x = rec.get("x", 0.0)
        if x is None:
            return 0.0
        if isinstance(x, bool) or not isinstance(x, int | float):
            raise InputValidationError(f"x must be a number, got {x!r}")
        return float(min(max(x, 0.0), 1.0))

    def predict(self, records: list[dict[str, Any]]) -> list[Any]:
        return [self._one(r) for r in records]

    def metadata(self) -> RuntimeMetadata:
        return RuntimeMetadata(flavor="good", inputs=["x"], output_kind="probability")


class NumpyScalars(GoodRuntime):
    def predict(self, records: list[dict[str, Any]]) -> list[Any]:
        return [np.float64(v) for v in super().predict(records)]


class WrongLength(GoodRuntime):
    def predict(self, records: list[dict[str, Any]]) -> list[Any]:
        return super().predict(records)[:1]


class BatchDependent(GoodRuntime):
    def predict(self, records: list[dict[str, Any]]) -> list[Any]:
        return [v / len(records) for v in super().predict(records)]


class NotIdempotent(GoodRuntime):
    loads = 0

    def load(self) -> None:
        self.loads += 1

    def predict(self, records: list[dict[str, Any]]) -> list[Any]:
        return [v / self.loads for v in super().predict(records)]


class UntypedErrors(GoodRuntime):
    def _one(self, rec: dict[str, Any]) -> float:
        return float(min(max(float(rec["x"]), 0.0), 1.0))


class MutatesInput(GoodRuntime):
    def predict(self, records: list[dict[str, Any]]) -> list[Any]:
        out = super().predict(records)
        for rec in records:
            rec["seen"] = True
        return out


class BadMetadata(GoodRuntime):
    def metadata(self) -> RuntimeMetadata:
        return RuntimeMetadata(flavor="bad", inputs=None, output_kind=None, extra={"x": object()})


class EmptyBatchAnswer(GoodRuntime):
    def predict(self, records: list[dict[str, Any]]) -> list[Any]:
        return super().predict(records) or [0.0]


class OutOfRange(GoodRuntime):
    def predict(self, records: list[dict[str, Any]]) -> list[Any]:
        return [v + 1.5 for v in super().predict(records)]


def test_good_runtime_passes_every_check() -> None:
    report = run_checks(GoodRuntime, RECORDS, output=PROBABILITY)
    assert report.ok and report.passed == list(RUNTIME_CHECKS)
    assert report.to_dict() == {"ok": True, "passed": list(RUNTIME_CHECKS), "failed": []}


@pytest.mark.parametrize(
    "runtime,failing",
    [
        (NumpyScalars, "json_plain"),
        (WrongLength, "one_per_record"),
        (BatchDependent, "batch_invariant"),
        (NotIdempotent, "load_idempotent"),
        (UntypedErrors, "bad_input_typed"),
        (MutatesInput, "input_unchanged"),
        (BadMetadata, "metadata_serialisable"),
        (EmptyBatchAnswer, "empty_batch"),
        (OutOfRange, "fits_output"),
    ],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_each_broken_runtime_is_caught(runtime: type[GoodRuntime], failing: str) -> None:
    report = run_checks(runtime, RECORDS, output=PROBABILITY)
    assert not report.ok
    failed = dict(report.failed)
    assert failing in failed, report.to_dict()
    assert failed[failing].startswith("ConformanceError")


def test_checks_are_lazy_named_and_raise_conformance_errors() -> None:
    built: list[int] = []

    def make() -> WrongLength:
        built.append(1)
        return WrongLength()

    checks = list(check_runtime(make, RECORDS))
    assert [c.name for c in checks] == list(RUNTIME_CHECKS)
    assert built == []
    one = next(c for c in checks if c.name == "one_per_record")
    with pytest.raises(ConformanceError, match="1 predictions for 3 records"):
        one()
    assert isinstance(ConformanceError("x"), AssertionError)


def test_records_are_required() -> None:
    with pytest.raises(ConfigError, match="at least one sample record"):
        list(check_runtime(GoodRuntime, []))


CASES = [
    RuntimeCase("good", GoodRuntime, RECORDS, PROBABILITY),
    RuntimeCase("static", lambda: StaticRuntime.from_value({"items": ["a"]}), [{}], None),
]


@parametrize_with_checks(CASES)
def test_parametrize_with_checks_runs_each_check(check: Check) -> None:
    check()


def test_parametrize_with_checks_ids() -> None:
    mark = parametrize_with_checks({c.id: c for c in CASES})
    ids = [p.id for p in mark.args[1]]
    assert ids[0] == "good-load_idempotent"
    assert len(ids) == 2 * len(RUNTIME_CHECKS)

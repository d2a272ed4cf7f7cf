"""The runtime conformance suite: named checks that any runtime (built-in or plug-in) passes.

Use :func:`check_runtime` to get the checks, :func:`run_checks` for a report, or
:func:`parametrize_with_checks` to run each check as its own pytest test.

The contract the checks enforce:

- ``load()`` is idempotent: loading twice changes nothing;
- ``predict(records)`` returns a list with one prediction per record;
- predicting records one by one equals predicting the batch (numbers within 1e-6);
- predictions are plain Python (``int``, ``float``, ``str``, ``bool``, ``None``, lists and
  dicts of those), survive an orjson round trip, and fit the output spec when one is given;
- ``metadata().to_dict()`` serialises with orjson;
- ``predict([])`` returns ``[]`` (or raises a :class:`~flotilla.errors.FlotillaError`);
- bad input (wrong types, missing fields) gives predictions or a ``FlotillaError``, never
  another exception type, and ``predict`` does not modify the records it is given.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import orjson

from flotilla.errors import ConfigError, FlotillaError
from flotilla.signature import OutputSpec
from flotilla.types import Record

__all__ = [
    "RUNTIME_CHECKS",
    "Check",
    "CheckReport",
    "ConformanceError",
    "RuntimeCase",
    "check_runtime",
    "parametrize_with_checks",
    "run_checks",
]

TOLERANCE = 1e-6
_PLAIN = (int, float, str, bool, type(None))


class ConformanceError(FlotillaError, AssertionError):
    """A runtime breaks the runtime contract; the message says which rule and how."""


@dataclass(frozen=True)
class Check:
    """One named conformance check; call it to run (raises :class:`ConformanceError`)."""

    name: str
    func: Callable[[], None] = field(repr=False)

    def __call__(self) -> None:
        self.func()


@dataclass(frozen=True)
class RuntimeCase:
    """A runtime to check: an id, a factory, sample records and the expected output spec."""

    id: str
    make_runtime: Callable[[], Any]
    records: list[Record]
    output: OutputSpec | None = None


@dataclass(frozen=True)
class CheckReport:
    """The outcome of :func:`run_checks`: passed check names and failures with messages."""

    passed: list[str]
    failed: list[tuple[str, str]]

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "passed": list(self.passed),
            "failed": [{"check": name, "message": msg} for name, msg in self.failed],
        }


def _fail(message: str) -> NoReturn:
    raise ConformanceError(message)


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a == b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        if math.isnan(a) and math.isnan(b):
            return True
        return abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b))
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return bool(a == b)


def _not_plain(value: Any, where: str = "") -> str | None:
    """Where a value holds something that is not plain Python, or None."""
    if type(value) in _PLAIN:
        return None
    if type(value) is list:
        for i, item in enumerate(value):
            found = _not_plain(item, f"{where}[{i}]")
            if found:
                return found
        return None
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                return f"{where} has a key of type {type(key).__name__}"
            found = _not_plain(item, f"{where}[{key!r}]")
            if found:
                return found
        return None
    return f"{where or 'the value'} is a {type(value).__module__}.{type(value).__name__}"


def _bad_records(records: Sequence[Record]) -> list[Record]:
    keys = sorted({k for rec in records for k in rec}) or ["x"]
    weird: list[Any] = [{"nested": [1]}, "not-a-number", -1e300, None, True]
    out: list[Record] = [{}]
    for i in range(len(weird)):
        out.append({k: weird[(i + j) % len(weird)] for j, k in enumerate(keys)})
    return out


class _Checks:
    """The checks for one runtime factory; shares one loaded runtime where possible."""

    def __init__(self, make: Callable[[], Any], records: list[Record], output: OutputSpec | None):
        self.make = make
        self._records = copy.deepcopy(records)
        self.output = output
        self._shared: Any = None

    @property
    def records(self) -> list[Record]:
        """A fresh deep copy of the sample records (a check cannot spoil the next one)."""
        return copy.deepcopy(self._records)

    def runtime(self) -> Any:
        if self._shared is None:
            rt = self.make()
            rt.load()
            self._shared = rt
        return self._shared

    def predict(self, rt: Any, records: list[Record]) -> list[Any]:
        out = rt.predict(records)
        if not isinstance(out, list):
            _fail(f"predict() must return a list, it returned a {type(out).__name__}")
        return list(out)

    def load_idempotent(self) -> None:
        rt = self.make()
        rt.load()
        first = self.predict(rt, self.records)
        rt.load()
        second = self.predict(rt, self.records)
        if not _close(first, second):
            _fail(f"predictions changed after a second load(): {first[:3]} then {second[:3]}")

    def one_per_record(self) -> None:
        n = len(self._records)
        out = self.predict(self.runtime(), self.records)
        if len(out) != n:
            _fail(f"predict() returned {len(out)} predictions for {n} records")

    def batch_invariant(self) -> None:
        rt = self.runtime()
        batch = self.predict(rt, self.records)
        single = [p for rec in self.records for p in self.predict(rt, [rec])]
        for i, (a, b) in enumerate(zip(batch, single, strict=False)):
            if not _close(a, b):
                _fail(f"record {i}: predicted {b!r} alone but {a!r} in the batch")
        if len(batch) != len(single):
            _fail(f"{len(batch)} predictions in batch, {len(single)} one by one")

    def json_plain(self) -> None:
        out = self.predict(self.runtime(), self.records)
        problem = _not_plain(out, "predictions")
        if problem:
            _fail(f"predictions must be plain Python values: {problem}")
        try:
            back = orjson.loads(orjson.dumps(out))
        except TypeError as exc:
            raise ConformanceError(f"predictions are not JSON-serialisable: {exc}") from exc
        if not _close(back, out):
            _fail("predictions change in a JSON round trip (NaN or infinity?)")

    def fits_output(self) -> None:
        if self.output is None:
            return
        out = self.predict(self.runtime(), self.records)
        problem = self.output.check(out, len(self._records))
        if problem:
            _fail(f"predictions do not fit the output spec {self.output.to_dict()}: {problem}")

    def metadata_serialisable(self) -> None:
        meta = self.runtime().metadata()
        to_dict = getattr(meta, "to_dict", None)
        if not callable(to_dict):
            _fail(f"metadata() must return an object with to_dict(); got {type(meta).__name__}")
        try:
            orjson.dumps(to_dict())
        except TypeError as exc:
            raise ConformanceError(f"metadata().to_dict() is not serialisable: {exc}") from exc

    def empty_batch(self) -> None:
        try:
            out = self.runtime().predict([])
        except FlotillaError:
            return
        if out != []:
            _fail(f"predict([]) must return [] (or raise a FlotillaError); got {out!r}")

    def bad_input_typed(self) -> None:
        rt = self.runtime()
        for rec in _bad_records(self.records):
            try:
                out = rt.predict([rec])
            except FlotillaError:
                continue
            except Exception as exc:
                raise ConformanceError(
                    f"bad input {rec!r} raised {type(exc).__name__} ({exc}); runtimes must "
                    "raise FlotillaError subclasses (InputValidationError, PredictionError)"
                ) from exc
            if not isinstance(out, list) or len(out) != 1:
                _fail(f"bad input {rec!r} returned {out!r} instead of one prediction or an error")

    def input_unchanged(self) -> None:
        given = self.records
        self.predict(self.runtime(), given)
        if given != self._records:
            _fail("predict() modified the records it was given")


RUNTIME_CHECKS: tuple[str, ...] = (
    "load_idempotent",
    "one_per_record",
    "batch_invariant",
    "json_plain",
    "fits_output",
    "metadata_serialisable",
    "empty_batch",
    "bad_input_typed",
    "input_unchanged",
)
"""The names of the checks :func:`check_runtime` yields, in order."""


def check_runtime(
    make_runtime: Callable[[], Any],
    records: list[Record],
    *,
    output: OutputSpec | None = None,
) -> Iterator[Check]:
    """Yield the conformance checks for runtimes built by ``make_runtime``.

    Args:
        make_runtime: builds a fresh, unloaded runtime (called lazily, when a check runs).
        records: valid sample records (at least one), e.g. ``signature.sample_records()``.
        output: the output spec predictions must fit, if any.

    Example:
        >>> from flotilla.runtimes import StaticRuntime
        >>> for check in check_runtime(lambda: StaticRuntime.from_value({"value": 1}), [{}]):
        ...     check()
    """
    if not records:
        raise ConfigError(
            "The 'records' of check_runtime must hold at least one sample record. Got [] "
            "instead; pass e.g. signature.sample_records()."
        )
    checks = _Checks(make_runtime, records, output)
    for name in RUNTIME_CHECKS:
        yield Check(name, getattr(checks, name))


def run_checks(
    make_runtime: Callable[[], Any],
    records: list[Record],
    *,
    output: OutputSpec | None = None,
) -> CheckReport:
    """Run every check and collect the results (never raises for a failing check)."""
    passed: list[str] = []
    failed: list[tuple[str, str]] = []
    for check in check_runtime(make_runtime, records, output=output):
        try:
            check()
        except Exception as exc:
            failed.append((check.name, f"{type(exc).__name__}: {exc}"))
        else:
            passed.append(check.name)
    return CheckReport(passed=passed, failed=failed)


def parametrize_with_checks(cases: Sequence[RuntimeCase] | Mapping[str, RuntimeCase]) -> Any:
    """A ``pytest.mark.parametrize`` over every check of every case (ids ``case-check``).

    Example:
        >>> @parametrize_with_checks([RuntimeCase("const", make, [{}])])  # doctest: +SKIP
        ... def test_conformance(check):
        ...     check()
    """
    import pytest

    items = list(cases.values()) if isinstance(cases, Mapping) else list(cases)
    params = [
        pytest.param(check, id=f"{case.id}-{check.name}")
        for case in items
        for check in check_runtime(case.make_runtime, case.records, output=case.output)
    ]
    return pytest.mark.parametrize("check", params)

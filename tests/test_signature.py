from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flotilla.errors import InputValidationError, SignatureError
from flotilla.signature import OutputSpec, Signature

SIG = {
    "inputs": [
        {"name": "age", "type": "float", "nullable": False, "min": 0, "max": 130},
        {"name": "plan", "type": "category", "categories": ["basic", "pro"]},
        {"name": "visits", "type": "int", "nullable": True, "min": 0},
        {"name": "vip", "type": "bool", "nullable": True},
        {"name": "seen", "type": "timestamp", "nullable": True},
        {"name": "note", "type": "string", "nullable": True},
    ],
    "output": {"kind": "probability"},
}


def test_round_trip() -> None:
    sig = Signature.from_dict(SIG)
    assert Signature.from_dict(sig.to_dict()) == sig
    assert sig.field_names == ["age", "plan", "visits", "vip", "seen", "note"]


def test_valid_records_pass() -> None:
    sig = Signature.from_dict(SIG)
    rows = [
        {"age": 31.5, "plan": "pro", "visits": 3, "vip": True, "seen": "2026-01-01T00:00:00"},
        {"age": 0, "plan": "basic"},
    ]
    assert sig.validate(rows) == []
    sig.check(rows)


@pytest.mark.parametrize(
    ("row", "field", "fragment"),
    [
        ({"plan": "pro"}, "age", "is missing"),
        ({"age": None, "plan": "pro"}, "age", "is null"),
        ({"age": "31", "plan": "pro"}, "age", "expected a number"),
        ({"age": math.nan, "plan": "pro"}, "age", "not a finite number"),
        ({"age": 131, "plan": "pro"}, "age", "above the maximum"),
        ({"age": -1, "plan": "pro"}, "age", "below the minimum"),
        ({"age": True, "plan": "pro"}, "age", "expected a number"),
        ({"age": 1, "plan": "gold"}, "plan", "not one of the categories"),
        ({"age": 1, "plan": "pro", "visits": 1.5}, "visits", "expected an integer"),
        ({"age": 1, "plan": "pro", "vip": "yes"}, "vip", "expected true or false"),
        ({"age": 1, "plan": "pro", "seen": "yesterday"}, "seen", "not an ISO-8601"),
        ({"age": 1, "plan": "pro", "note": "x" * 2_000_000}, "note", "longer than the limit"),
        ({"age": 1, "plan": "pro", "extra": 1}, "extra", "not an input"),
    ],
    ids=[
        "missing",
        "null",
        "string-for-float",
        "nan",
        "above-max",
        "below-min",
        "bool-for-float",
        "unknown-category",
        "float-for-int",
        "bad-bool",
        "bad-timestamp",
        "huge-string",
        "extra",
    ],
)
def test_violations_name_row_and_field(row: dict[str, object], field: str, fragment: str) -> None:
    sig = Signature.from_dict(SIG)
    violations = sig.validate([{"age": 1, "plan": "pro"}, row])
    assert violations, "expected a violation"
    assert violations[0].row == 1
    assert violations[0].field == field
    assert fragment in violations[0].problem


def test_check_raises_with_every_violation() -> None:
    sig = Signature.from_dict(SIG)
    with pytest.raises(InputValidationError) as info:
        sig.check([{"age": -1, "plan": "gold"}, "not a dict"])
    assert len(info.value.violations) == 3
    assert info.value.http_status == 422


_F = {"name": "a", "type": "float"}
_SCORE = {"kind": "score"}
BAD_SIGNATURES = {
    "misspelled-type": ({"inputs": [{"name": "a", "type": "flaot"}], "output": _SCORE}, "'float'"),
    "category-no-list": (
        {"inputs": [{"name": "a", "type": "category"}], "output": _SCORE},
        "categories",
    ),
    "no-inputs": ({"inputs": [], "output": _SCORE}, "non-empty 'inputs'"),
    "no-output": ({"inputs": [_F]}, "needs an 'output'"),
    "bad-kind": ({"inputs": [_F], "output": {"kind": "prob"}}, "probability"),
    "min-gt-max": ({"inputs": [{**_F, "min": 2, "max": 1}], "output": _SCORE}, "greater than max"),
    "dupe": ({"inputs": [_F, {"name": "a", "type": "int"}], "output": _SCORE}, "more than once"),
    "unknown-key": ({"inputs": [{**_F, "colour": 1}], "output": _SCORE}, "unknown keys"),
}


@pytest.mark.parametrize(("bad", "fragment"), BAD_SIGNATURES.values(), ids=BAD_SIGNATURES.keys())
def test_bad_signatures_are_explained(bad: dict[str, object], fragment: str) -> None:
    with pytest.raises(SignatureError, match=fragment.replace("(", r"\(")):
        Signature.from_dict(bad)


def test_load_yaml_and_json(tmp_path: Path) -> None:
    y = tmp_path / "sig.yaml"
    y.write_text("inputs:\n  - {name: age, type: float}\noutput: {kind: score}\n")
    j = tmp_path / "sig.json"
    j.write_text('{"inputs": [{"name": "age", "type": "float"}], "output": {"kind": "score"}}')
    assert Signature.load(y) == Signature.load(j)
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs: [\n")
    with pytest.raises(SignatureError, match="not valid YAML"):
        Signature.load(bad)
    with pytest.raises(SignatureError, match="does not exist"):
        Signature.load(tmp_path / "missing.yaml")


def test_sample_records_are_valid() -> None:
    sig = Signature.from_dict(SIG)
    assert sig.validate(sig.sample_records(20)) == []


@pytest.mark.parametrize(
    ("spec", "preds", "ok"),
    [
        ({"kind": "probability"}, [0.1, 1.0], True),
        ({"kind": "probability"}, [1.2, 0.1], False),
        ({"kind": "probability"}, [math.nan, 0.1], False),
        ({"kind": "probability"}, [1, 0.0], True),
        ({"kind": "probability"}, [True, 0.5], False),
        ({"kind": "probability"}, [0.5, -math.inf], False),
        ({"kind": "score"}, [-3.0, 1e9], True),
        ({"kind": "score"}, [math.inf, 1.0], False),
        ({"kind": "label"}, ["yes", 1], True),
        ({"kind": "label"}, [[1], 1], False),
        ({"kind": "items", "k": 2}, [[1, 2], ["a"]], True),
        ({"kind": "items", "k": 2}, [[1, 2, 3], [1]], False),
        ({"kind": "score"}, [1.0], False),
    ],
    ids=["prob", "prob-range", "prob-nan", "prob-int", "prob-bool", "prob-inf", "score",
         "score-inf", "label", "label-list", "items", "items-too-long", "wrong-length"],
)  # fmt: skip
def test_output_check(spec: dict[str, object], preds: list[object], ok: bool) -> None:
    problem = OutputSpec.from_dict(spec).check(preds, 2)
    assert (problem is None) == ok, problem


NUMERIC = Signature.from_dict(
    {
        "inputs": [
            {"name": "x", "type": "float", "min": 0, "max": 10},
            {"name": "n", "type": "int", "nullable": True},
            {"name": "y", "type": "float"},
        ],
        "output": {"kind": "score"},
    }
)

_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.dictionaries(st.sampled_from(["x", "n", "y", "extra"]), _VALUES, max_size=4),
            st.fixed_dictionaries({"x": _VALUES, "n": _VALUES, "y": _VALUES}),
            st.integers(),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_the_fast_numeric_check_agrees_with_every_field_checker(records: list[object]) -> None:
    # a list takes the request path's fast check; an iterator always runs the field checkers
    assert NUMERIC.validate(records) == NUMERIC.validate(iter(records))


UNBOUNDED = Signature.from_dict(  # every field an unbounded float: the sum-based fast check
    {"inputs": [{"name": "a", "type": "float"}, {"name": "b", "type": "float"}],
     "output": {"kind": "score"}}
)  # fmt: skip

_WIDE = st.one_of(
    _VALUES, st.sampled_from([10**400, -(10**400), 1e308, -1e308, math.inf, -math.inf])
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.dictionaries(st.sampled_from(["a", "b", "extra"]), _WIDE, max_size=3),
            st.fixed_dictionaries({"a": _WIDE, "b": _WIDE}),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_the_fast_unbounded_float_check_agrees_with_every_field_checker(
    records: list[object],
) -> None:
    assert UNBOUNDED.validate(records) == UNBOUNDED.validate(iter(records))


def test_finite_values_whose_sum_overflows_are_valid() -> None:
    assert UNBOUNDED.validate([{"a": 1e308, "b": 1e308}]) == []
    assert [v.field for v in UNBOUNDED.validate([{"a": math.nan, "b": 1.0}])] == ["a"]

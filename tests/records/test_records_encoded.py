"""The records helper's DuckDB conversion gives the rows the Python conversion gives."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pyarrow as pa
import pytest

from flotilla.records import PREDICTION_SCHEMA
from flotilla.records._encoded import EncodedConverter
from flotilla.records._schema import encode_prediction, fields_to_table

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
T = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
JSON_COLUMNS = ("inputs", "prediction", "reasons", "feature_ages_s")


def fields(rid: str, **kw: Any) -> tuple[Any, ...]:
    base: dict[str, Any] = {
        "model": "churn",
        "ref": "churn@1",
        "role": "live",
        "inputs": [{"x": 1.5, "plan": "pro"}],
        "predictions": [0.25],
        "ids": None,
        "latency": 0.42,
        "degraded": False,
        "reasons": [],
        "event_time": T,
        "feature_times": None,
    }
    base.update(kw)
    return (
        rid, base["model"], base["ref"], base["role"], base["inputs"], base["predictions"],
        base["ids"], base["latency"], base["degraded"], base["reasons"], base["event_time"],
        base["feature_times"],
    )  # fmt: skip


VARIED = [
    fields("plain"),
    fields("batch", inputs=[{"x": 1}, {"x": 2}, {"x": 3}], predictions=[0.1, 0.2, 0.3]),
    fields("more-inputs", inputs=[{"x": 1}, {"x": 2}], predictions=[0.5]),
    fields("more-predictions", inputs=[{"x": 1}], predictions=[0.5, 0.6]),
    fields("no-rows", inputs=[], predictions=[]),
    fields("ids", inputs=[{}, {}, {}, {}], predictions=[1, 2, 3, 4], ids=["u1", 42, None, True]),
    fields("short-ids", inputs=[{}, {}], predictions=[0.0, 1.0], ids=["only-one"]),
    fields(
        "kinds",
        inputs=[{}] * 7,
        predictions=[True, False, 3, "label", None, [7, 8], {"a": 1.0}],
    ),
    fields("big-numbers", predictions=[1e16], inputs=[{"x": 1e22, "y": -2.5e-300}]),
    fields("int-limits", predictions=[2**63 - 1], inputs=[{"n": 2**64 - 1, "m": -(2**63)}]),
    fields(
        "degraded",
        role="static",
        ref="static:churn",
        degraded=True,
        reasons=[{"ref": "churn@1", "reason": "timeout", "detail": "no answer within 45 ms"}],
    ),
    fields("null-reasons", reasons=None),
    fields(
        "offset-time", event_time=datetime(2026, 3, 1, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    ),
    fields("naive-time", event_time=datetime(2026, 3, 1, 9, 0, 0, 5)),
    fields(
        "unicode \u00e9\u2028\U0001f600", inputs=[{"t": 'h\u00e9 "q" \\ \n\t'}], model="m\u00fc"
    ),
    fields("nan", predictions=[float("nan")], inputs=[{"x": float("inf")}]),
    fields(
        "feature-times",
        inputs=[{"x": 1}, {"x": 2}],
        predictions=[0.1, 0.2],
        feature_times=[{"x": T - timedelta(seconds=30)}, {"x": "2026-03-01T09:00:00"}],
    ),
]


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    rows = table.to_pylist()
    for row in rows:
        for name in JSON_COLUMNS:
            if row[name] is not None:
                row[name] = json.loads(row[name])
    return sorted(rows, key=lambda r: (r["request_id"], r["row"]))


@pytest.fixture
def converter() -> Any:
    conv = EncodedConverter()
    yield conv
    conv.close()


def test_the_same_rows_as_the_python_conversion(converter: EncodedConverter) -> None:
    lines = [encode_prediction(f) for f in VARIED]
    fast, fast_bad = converter.to_table(lines, NOW)
    slow, slow_bad = fields_to_table(lines, NOW)
    assert fast.schema == PREDICTION_SCHEMA
    assert fast_bad == slow_bad == []
    assert fast.num_rows == slow.num_rows == 31
    assert _rows(fast) == _rows(slow)  # JSON texts compared as the values they parse to
    assert (converter.sql_lines, converter.python_lines) == (16, 1)  # feature times: Python


def test_json_texts_are_the_serving_sides_for_usual_values(converter: EncodedConverter) -> None:
    table, _ = converter.to_table([encode_prediction(fields("r"))], NOW)
    row = table.to_pylist()[0]
    assert row["inputs"] == '{"x":1.5,"plan":"pro"}'
    assert (row["prediction"], row["prediction_value"], row["reasons"]) == ("0.25", 0.25, "[]")


def _line(*values: Any) -> bytes:
    return orjson.dumps(list(values))  # written as encode_prediction writes: no spaces


TIME = "2026-03-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("broken", "split", "n_bad"),
    [
        (b'{"not":"an array"}', (3, 1), 1),
        (_line("r", "churn", "churn@1", "live", [], [], None, 1.0, False, [], TIME), (3, 1), 1),
        (
            _line("r", "churn", "c@1", "live", {"x": 1}, [0.5], None, 1.0, False, [], TIME, None),
            (0, 4),
            1,
        ),
        (
            _line(
                "r", "churn", "c@1", "live", [{}], [0.5], None, 1.0, False, [], "yesterday", None
            ),
            (0, 4),
            1,
        ),
        (
            _line("r", "churn", "c@1", "live", [{}], [0.5], None, "slow", False, [], TIME, None),
            (0, 4),
            1,
        ),
        # not broken, but reasons that are not a list are left to Python (it records "[]")
        (
            _line("r", "churn", "c@1", "live", [{}], [0.5], None, 1.0, False, "", TIME, None),
            (0, 4),
            0,
        ),
    ],
    ids=["object", "eleven-fields", "inputs-not-a-list", "bad-time", "bad-latency", "odd-reasons"],
)
def test_a_broken_line_is_converted_and_reported_by_python(
    converter: EncodedConverter, broken: bytes, split: tuple[int, int], n_bad: int
) -> None:
    # a line that does not end like a prediction without feature times goes to Python alone;
    # one that does but that the query refuses sends its whole batch there
    good = [encode_prediction(f) for f in VARIED[:3]]
    lines = [*good, broken]
    fast, fast_bad = converter.to_table(lines, NOW)
    slow, slow_bad = fields_to_table(lines, NOW)
    assert _rows(fast) == _rows(slow)
    assert fast_bad == slow_bad
    assert (converter.sql_lines, converter.python_lines) == split
    assert len(fast_bad) == n_bad


def test_an_empty_batch(converter: EncodedConverter) -> None:
    table, bad = converter.to_table([], NOW)
    assert table.num_rows == 0 and bad == [] and table.schema == PREDICTION_SCHEMA

"""Point-in-time joins: worked examples, bad input, and Hypothesis against a naive oracle."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flotilla.audit import FeatureTable, point_in_time_join
from flotilla.errors import AuditError

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def ts(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def oracle(
    events: list[dict[str, Any]], tables: list[list[dict[str, Any]]], ttl: dt.timedelta | None
) -> list[dict[str, Any]]:
    """Naive PIT join: latest written_at <= event time (within ttl); ties: the later row."""
    out = []
    for ev in events:
        row = dict(ev)
        for i, table in enumerate(tables):
            best: tuple[dt.datetime, int] | None = None
            value = None
            for pos, fr in enumerate(table):
                if ev["entity"] is None or fr["entity"] != ev["entity"] or ev["t"] is None:
                    continue
                if fr["written_at"] > ev["t"]:
                    continue
                if ttl is not None and fr["written_at"] < ev["t"] - ttl:
                    continue
                key = (fr["written_at"], pos)
                if best is None or key > best:
                    best, value = key, fr[f"v{i}"]
            row[f"v{i}"] = value
        out.append(row)
    return out


def test_latest_value_at_or_before_event_time() -> None:
    events = pa.table({"entity": [1, 1, 2, 3], "t": [ts(2), ts(10), ts(5), ts(1)]})
    feats = pa.table(
        {
            "entity": [1, 1, 1, 2, 2],
            "written_at": [ts(1), ts(2), ts(11), ts(5), ts(6)],
            "x": [10.0, 20.0, 30.0, 40.0, 50.0],
        }
    )
    out = point_in_time_join(events, [FeatureTable(feats)], entity="entity", event_time="t")
    assert out.column("x").to_pylist() == [20.0, 20.0, 40.0, None]
    assert out.column("entity").to_pylist() == [1, 1, 2, 3]


def test_ttl_turns_stale_values_into_nulls() -> None:
    events = pa.table({"entity": [1, 1], "t": [ts(3), ts(30)]})
    feats = pa.table({"entity": [1], "written_at": [ts(1)], "x": [1]})
    out = point_in_time_join(
        events, [FeatureTable(feats)], entity="entity", event_time="t", ttl=dt.timedelta(hours=5)
    )
    assert out.column("x").to_pylist() == [1, None]


def test_ties_resolved_by_later_row_and_time_zones_normalised(tmp_path: Any) -> None:
    events = pa.table({"user": ["a"], "t": ["2024-01-01T12:00:00"]})  # naive = UTC
    feats = pa.table(
        {
            "user": ["a", "a", "a"],
            # 13:30+02:00 is 11:30 UTC: before the event; 12:30 UTC is after it
            "written_at": [
                "2024-01-01T13:30:00+02:00",
                "2024-01-01T11:30:00Z",
                "2024-01-01T12:30Z",
            ],
            "x": ["first", "second", "late"],
        }
    )
    path = tmp_path / "f.parquet"
    pq.write_table(feats, path)
    out = point_in_time_join(
        events, [FeatureTable(path)], entity="user", event_time="t", include_written_at=True
    )
    assert out.column("x").to_pylist() == ["second"]
    assert out.column("x__written_at").to_pylist()[0] == dt.datetime(
        2024, 1, 1, 11, 30, tzinfo=dt.UTC
    )


def test_bad_input_names_the_problem() -> None:
    events = pa.table({"entity": [1], "t": ["yesterday"]})
    feats = pa.table({"entity": [1], "written_at": [ts(0)], "x": [1]})
    with pytest.raises(AuditError, match=r"'t'.*'yesterday'"):
        point_in_time_join(events, [FeatureTable(feats)], entity="entity", event_time="t")
    with pytest.raises(AuditError, match="entity column 'user'"):
        point_in_time_join(events, [FeatureTable(feats)], entity="user", event_time="t")
    with pytest.raises(AuditError, match="clashes"):
        point_in_time_join(
            pa.table({"entity": [1], "t": [ts(1)], "x": [0]}),
            [FeatureTable(feats)],
            entity="entity",
            event_time="t",
        )
    with pytest.raises(AuditError, match="positive"):
        point_in_time_join(
            events, [FeatureTable(feats)], entity="entity", event_time="t", ttl=dt.timedelta(0)
        )


hours = st.integers(min_value=0, max_value=12)
entities = st.one_of(st.none(), st.integers(min_value=0, max_value=3))


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]], Any]:
    events = [
        {"entity": draw(entities), "t": draw(st.one_of(st.none(), hours.map(ts)))}
        for _ in range(draw(st.integers(1, 8)))
    ]
    tables = []
    for i in range(draw(st.integers(1, 3))):
        rows = [
            {
                "entity": draw(st.integers(0, 3)),
                "written_at": ts(draw(hours)),
                f"v{i}": draw(st.one_of(st.none(), st.integers(-5, 5))),
            }
            for _ in range(draw(st.integers(1, 10)))
        ]
        tables.append(rows)
    ttl = draw(st.one_of(st.none(), st.integers(1, 6).map(lambda h: dt.timedelta(hours=h))))
    return events, tables, ttl


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_matches_naive_oracle(case: Any) -> None:
    events, tables, ttl = case
    ev_table = pa.Table.from_pylist(
        events, schema=pa.schema([("entity", pa.int64()), ("t", pa.timestamp("us", tz="UTC"))])
    )
    feature_tables = [
        FeatureTable(
            pa.Table.from_pylist(
                rows,
                schema=pa.schema(
                    [
                        ("entity", pa.int64()),
                        ("written_at", pa.timestamp("us", tz="UTC")),
                        (f"v{i}", pa.int64()),
                    ]
                ),
            )
        )
        for i, rows in enumerate(tables)
    ]
    got = point_in_time_join(ev_table, feature_tables, entity="entity", event_time="t", ttl=ttl)
    assert got.to_pylist() == oracle(events, tables, ttl)

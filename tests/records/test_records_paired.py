"""OutcomeStore.paired(): champion/challenger pairs, against pairing joined() by hand."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import T0
from flotilla.records import OutcomeStore, PredictionEvent, RecordWriter
from flotilla.testing import FakeClock

NOW = T0 + timedelta(days=2)
ANSWERS = [("live", "churn@1"), ("live", "churn@0"), ("shadow", "churn@2"), ("shadow", "churn@3")]

Scenario = tuple[list[PredictionEvent], list[list[dict[str, Any]]]]


@st.composite
def _scenario(draw: st.DrawFn) -> Scenario:
    """Requests answered by any roles and versions, some twice; outcomes by request or id
    (one caller id per request row: no ASOF ties), some for the same row (last write wins)."""
    events: list[PredictionEvent] = []
    for r in range(draw(st.integers(1, 5))):
        rows = draw(st.integers(1, 2))
        when = T0 + timedelta(minutes=10 * r)
        for role, ref in draw(st.lists(st.sampled_from(ANSWERS), min_size=1, max_size=4)):
            failed = role == "shadow" and draw(st.booleans())
            values = [draw(st.sampled_from([0.1, 0.5, 0.9, None])) for _ in range(rows)]
            events.append(
                PredictionEvent(
                    request_id=f"r{r}", model="churn", ref=ref, role=role,
                    inputs=[{"x": i} for i in range(rows)], predictions=values,
                    ids=[f"u{r}-{i}" for i in range(rows)], latency_ms=1.0, degraded=failed,
                    reasons=[],
                    event_time=when,
                )
            )  # fmt: skip
    outcome: st.SearchStrategy[dict[str, Any]] = st.one_of(
        st.fixed_dictionaries(
            {"request_id": st.sampled_from(["r0", "r1", "r2"]), "index": st.integers(0, 1)}
        ),
        st.fixed_dictionaries({"id": st.sampled_from(["u0-0", "u0-1", "u1-0", "u9-0"])}),
    )
    batches = draw(st.lists(st.lists(outcome, min_size=1, max_size=4), min_size=1, max_size=3))
    for batch in batches:
        for item in batch:
            item["label"] = draw(st.sampled_from([0, 1, "cat"]))
            minutes = draw(st.sampled_from([30, 45, 60]))  # ties in observed_at
            item["observed_at"] = (T0 + timedelta(minutes=minutes)).isoformat()
    return events, batches


def _by_hand(store: OutcomeStore, numeric: bool) -> list[tuple[Any, list[tuple[Any, ...]]]]:
    """The pairs from joined(): (order key, the rows of that key), in label-arrival order."""
    label, value = ("label_value", "prediction_value") if numeric else ("label", "prediction")
    rows = store.joined("churn").to_arrow_table().to_pylist()
    shadows = [r for r in rows if (r["role"], r["ref"]) == ("shadow", "churn@2")]
    groups: dict[Any, list[tuple[Any, ...]]] = {}
    for c in (r for r in rows if (r["role"], r["ref"]) == ("live", "churn@1")):
        key = (c["observed_at"], c["request_id"], c["row"])
        same = [s for s in shadows if (s["request_id"], s["row"]) == key[1:]]
        for s in [s for s in same if not s["degraded"]] or [None]:
            theirs = None if s is None else s[value]
            out = [c[label], c[value], theirs, c["event_time"].timestamp(), s is not None]
            if not numeric:  # a JSON null prediction is no answer
                out[1:3] = [None if v == "null" else v for v in out[1:3]]
            groups.setdefault(key, []).append(tuple(out))
    return sorted(groups.items())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=_scenario(), numeric=st.booleans())
def test_paired_matches_pairing_joined_by_hand(
    tmp_path_factory: pytest.TempPathFactory, scenario: Scenario, numeric: bool
) -> None:
    events, batches = scenario
    root = tmp_path_factory.mktemp("paired")
    writer = RecordWriter(root)
    for event in events:
        writer.submit(event)
    writer.flush()
    clock = FakeClock(start=NOW)
    store = OutcomeStore(root, clock=clock)
    for batch in batches:
        store.ingest("churn", batch)
        clock.advance(1)
    table = store.paired("churn", champion="churn@1", challenger="churn@2", numeric=numeric)
    assert table.column_names == ["label", "champion", "challenger", "event_s", "paired"]
    got = [tuple(r.values()) for r in table.to_pylist()]
    start = 0
    for _key, want in _by_hand(store, numeric):  # rows of one key may come in any order
        assert sorted(got[start : start + len(want)], key=repr) == sorted(want, key=repr)
        start += len(want)
    assert start == len(got)


def test_paired_without_versions_or_records_is_empty(tmp_path: Path) -> None:
    store = OutcomeStore(tmp_path, clock=FakeClock(start=NOW))
    assert store.paired("churn", champion=None, challenger=None).num_rows == 0
    assert store.paired("churn", champion="churn@1", challenger="churn@2").num_rows == 0

"""OutcomeStore: validation at the boundary, the join semantics, unmatched outcomes."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import T0, MakeEvent
from flotilla.errors import ConfigError, ModelNotFoundError
from flotilla.records import OUTCOME_SCHEMA, OutcomeStore, PredictionEvent, RecordWriter
from flotilla.testing import FakeClock

NOW = T0 + timedelta(days=2)


def _store(root: Path, **kwargs: Any) -> OutcomeStore:
    return OutcomeStore(root, clock=kwargs.pop("clock", FakeClock(start=NOW)), **kwargs)


def _predict(root: Path, *events: PredictionEvent) -> None:
    writer = RecordWriter(root)
    for event in events:
        writer.submit(event)
    writer.flush()


class _Registry:
    def get_model(self, name: str) -> str:
        if name != "churn":
            raise ModelNotFoundError(f"No model named {name!r}.")
        return name


@pytest.mark.parametrize(
    "models", [_Registry(), lambda name: name == "churn"], ids=["registry", "callable"]
)
def test_unknown_model_is_refused_and_nothing_written(tmp_path: Path, models: Any) -> None:
    store = _store(tmp_path, models=models)
    with pytest.raises(ModelNotFoundError, match="No model is named 'chrun'"):
        store.ingest("chrun", [{"id": "u1", "label": 1, "observed_at": T0.isoformat()}])
    assert not (tmp_path / "outcomes").exists()
    assert store.ingest("churn", [{"id": "u1", "label": 1}]).accepted == 1


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        ({"id": "u1", "label": [1]}, "'label' must be a JSON scalar"),
        ({"id": "u1", "label": {"y": 1}}, "'label' must be a JSON scalar"),
        ({"id": "u1", "label": None}, "'label' must be a JSON scalar"),
        ({"id": "u1", "label": math.nan}, "'label' must be a JSON scalar"),
        ({"id": "u1"}, "has no 'label'"),
        ({"label": 1}, "needs a 'request_id'"),
        ({"id": "u1", "label": 1, "observed_at": "last tuesday"}, "must be an ISO-8601 time"),
        ({"id": "u1", "label": 1, "observed_at": 1700000000}, "must be an ISO-8601 time"),
        ({"id": "u1", "label": 1, "observed_at": "2026-03-03T12:10:00Z"}, "lies in the future"),
        ({"request_id": "r1", "index": -1, "label": 1}, "'index' (the row of the request)"),
        ({"request_id": "r1", "index": "0", "label": 1}, "'index' (the row of the request)"),
        ({"request_id": 3.5, "label": 1}, "'request_id' must be a string"),
        ("not an object", "must be an object"),
    ],
    ids=[
        "list-label", "dict-label", "null-label", "nan-label", "no-label", "no-key",
        "bad-time", "epoch-time", "future", "negative-index", "text-index", "float-id",
        "not-a-dict",
    ],
)  # fmt: skip
def test_bad_outcomes_are_rejected_with_their_row(
    tmp_path: Path, outcome: Any, message: str
) -> None:
    good = {"request_id": "r0", "index": 0, "label": 1, "observed_at": T0.isoformat()}
    report = _store(tmp_path).ingest("churn", [good, outcome])
    assert report.accepted == 1
    assert len(report.rejected) == 1 and report.rejected[0]["index"] == 1
    assert report.rejected[0]["error"].startswith("Outcome 1 is invalid")
    assert message in report.rejected[0]["error"]


def test_times_labels_and_skew(tmp_path: Path) -> None:
    store = _store(tmp_path)
    report = store.ingest(
        "churn",
        [
            {"id": "u1", "label": True, "observed_at": "2026-03-01T12:00:00"},  # naive: UTC
            {"id": "u2", "label": "gold", "observed_at": "2026-03-01T13:00:00+01:00"},
            {"id": "u3", "label": 2.5, "observed_at": (NOW + timedelta(minutes=4)).isoformat()},
            {"id": "u4", "label": 0},  # observed_at defaults to now
        ],
    )
    assert report.accepted == 4 and report.rejected == []
    rows = store.outcomes("churn").to_arrow_table().sort_by("caller_id").to_pylist()
    assert [r["observed_at"] for r in rows] == [
        T0,
        T0,
        NOW + timedelta(minutes=4),
        NOW,
    ]
    assert [(r["label"], r["label_value"]) for r in rows] == [
        ("true", 1.0),
        ('"gold"', None),
        ("2.5", 2.5),
        ("0", 0.0),
    ]
    assert {r["written_at"] for r in rows} == {NOW}


def test_join_by_request_covers_every_role(tmp_path: Path, make_event: MakeEvent) -> None:
    live = make_event("r1", inputs=[{"x": 1}, {"x": 2}], predictions=[0.1, 0.9])
    shadow = make_event("r1", role="shadow", ref="churn@2", predictions=[0.2, 0.8])
    fallback = make_event("r2", role="fallback", ref="churn@0", degraded=True)
    _predict(tmp_path, live, shadow, fallback)
    store = _store(tmp_path)
    store.ingest(
        "churn",
        [
            {"request_id": "r1", "index": 1, "label": 1, "observed_at": T0.isoformat()},
            {"request_id": "r2", "label": 0, "observed_at": T0.isoformat()},  # index 0
            {"request_id": "r1", "index": 5, "label": 1},  # no such row
            {"request_id": "nope", "label": 1},
        ],
    )
    joined = store.joined("churn").to_arrow_table().sort_by([("role", "ascending")]).to_pylist()
    assert [(r["request_id"], r["row"], r["role"], r["label"]) for r in joined] == [
        ("r2", 0, "fallback", "0"),
        ("r1", 1, "live", "1"),
        ("r1", 1, "shadow", "1"),
    ]
    assert {r["matched_by"] for r in joined} == {"request"}
    unmatched = store.unmatched("churn").to_arrow_table().to_pylist()
    assert sorted((r["request_id"], r["row"]) for r in unmatched) == [("nope", 0), ("r1", 5)]
    assert store.unmatched("churn").columns == OUTCOME_SCHEMA.names


def test_join_by_id_takes_the_latest_prediction_before(
    tmp_path: Path, make_event: MakeEvent
) -> None:
    _predict(
        tmp_path,
        make_event("early", ids=["u1"], event_time=T0),
        make_event("late", ids=["u1"], event_time=T0 + timedelta(hours=2)),
        make_event("after", ids=["u1"], event_time=T0 + timedelta(hours=5)),
        make_event("other", ids=["u2"], event_time=T0 + timedelta(hours=1)),
    )
    store = _store(tmp_path)
    at = (T0 + timedelta(hours=3)).isoformat()
    store.ingest(
        "churn",
        [
            {"id": "u1", "label": 1, "observed_at": at},
            {"id": "u2", "label": 0, "observed_at": at},
            {"id": "u1", "label": 0, "observed_at": (T0 - timedelta(hours=1)).isoformat()},
        ],
    )
    got = store.joined("churn").to_arrow_table().sort_by("request_id").to_pylist()
    assert [(r["request_id"], r["label"], r["matched_by"]) for r in got] == [
        ("late", "1", "id"),
        ("other", "0", "id"),
    ]
    assert store.unmatched("churn").to_arrow_table().num_rows == 1  # before any prediction
    within = store.joined("churn", horizon=timedelta(hours=1, minutes=30)).to_arrow_table()
    assert within["request_id"].to_pylist() == ["late"]  # u2's prediction is 2 h old
    assert store.unmatched("churn", horizon=timedelta(hours=1, minutes=30)).count(
        "*"
    ).fetchall() == [(2,)]
    since = store.joined("churn", since=T0 + timedelta(hours=1, minutes=30)).to_arrow_table()
    assert since["request_id"].to_pylist() == ["late"]
    with pytest.raises(ConfigError, match="'horizon' must be positive"):
        store.joined("churn", horizon=timedelta(0))


def test_duplicates_last_write_wins(tmp_path: Path, make_event: MakeEvent) -> None:
    _predict(tmp_path, make_event("r1", ids=["u1"]))
    clock = FakeClock(start=NOW)
    store = _store(tmp_path, clock=clock)
    first = {"request_id": "r1", "label": 0, "observed_at": T0.isoformat()}
    store.ingest("churn", [first, {**first, "label": 1}])  # same batch: later in the list wins
    assert store.joined("churn").to_arrow_table()["label"].to_pylist() == ["1"]
    clock.advance(60)
    store.ingest("churn", [{"id": "u1", "label": 7, "observed_at": T0.isoformat()}])
    assert store.joined("churn").to_arrow_table()["label"].to_pylist() == ["7"]
    clock.advance(60)
    store.ingest("churn", [first])
    got = store.joined("churn").to_arrow_table().to_pylist()
    assert [(r["label"], r["label_written_at"]) for r in got] == [("0", clock.now())]
    assert store.outcomes("churn").to_arrow_table().num_rows == 4  # all kept on disk
    assert store.unmatched("churn").to_arrow_table().num_rows == 0  # superseded is not lost


# -- the join against a naive oracle ------------------------------------------------------

_IDS = ["u0", "u1", "u2", "u3"]


@st.composite
def _scenario(draw: st.DrawFn) -> tuple[list[PredictionEvent], list[list[dict[str, Any]]]]:
    n_requests = draw(st.integers(1, 5))
    events: list[PredictionEvent] = []
    for r in range(n_requests):
        rows = draw(st.integers(1, 2))
        ids = draw(st.permutations(_IDS))[:rows]
        when = T0 + timedelta(minutes=10 * r)
        for role in draw(st.sampled_from([["live"], ["live", "shadow"]])):
            events.append(
                PredictionEvent(
                    request_id=f"r{r}", model="churn", ref="churn@1", role=role,
                    inputs=[{"x": i} for i in range(rows)], predictions=[0.5] * rows,
                    ids=list(ids), latency_ms=1.0, degraded=False, reasons=[], event_time=when,
                )
            )  # fmt: skip
    outcome: st.SearchStrategy[dict[str, Any]] = st.one_of(
        st.fixed_dictionaries(
            {"request_id": st.sampled_from(["r0", "r1", "r9"]), "index": st.integers(0, 2)}
        ),
        st.fixed_dictionaries({"id": st.sampled_from([*_IDS, "u9"])}),
    )
    batches = draw(st.lists(st.lists(outcome, min_size=1, max_size=5), min_size=1, max_size=3))
    for batch in batches:
        for item in batch:
            item["label"] = draw(st.integers(0, 1))
            minutes = draw(st.integers(-5, 70))
            item["observed_at"] = (T0 + timedelta(minutes=minutes, seconds=30)).isoformat()
    return events, batches


def _oracle(
    events: list[PredictionEvent], batches: list[list[dict[str, Any]]], horizon: timedelta | None
) -> list[tuple[str, int, str, str]]:
    preds = [(e.request_id, i, e.role, (e.ids or [])[i], e.event_time) for e in events for i in
             range(len(e.inputs))]  # fmt: skip
    winners: dict[tuple[str, int], tuple[tuple[int, datetime, int], int]] = {}
    seq = 0
    for b, batch in enumerate(batches):
        for item in batch:
            seq += 1
            observed = datetime.fromisoformat(item["observed_at"])
            if "request_id" in item:
                key = (item["request_id"], item["index"])
                if not any((p[0], p[1]) == key for p in preds):
                    continue
            else:
                before = [p for p in preds if p[3] == item["id"] and p[4] <= observed]
                if horizon is not None:
                    before = [p for p in before if p[4] >= observed - horizon]
                if not before:
                    continue
                best = max(before, key=lambda p: p[4])
                key = (best[0], best[1])
            rank = (b, observed, seq)
            if key not in winners or rank > winners[key][0]:
                winners[key] = (rank, item["label"])
    return sorted(
        (p[0], p[1], p[2], str(winners[(p[0], p[1])][1])) for p in preds if (p[0], p[1]) in winners
    )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=_scenario(), horizon=st.sampled_from([None, timedelta(minutes=15)]))
def test_join_matches_a_naive_oracle(
    tmp_path_factory: pytest.TempPathFactory,
    scenario: tuple[list[PredictionEvent], list[list[dict[str, Any]]]],
    horizon: timedelta | None,
) -> None:
    events, batches = scenario
    root = tmp_path_factory.mktemp("oracle")
    _predict(root, *events)
    clock = FakeClock(start=NOW)
    store = _store(root, clock=clock)
    for batch in batches:
        store.ingest("churn", batch)
        clock.advance(1)
    table = store.joined("churn", horizon=horizon).to_arrow_table()
    got = sorted(
        zip(*(table[c].to_pylist() for c in ("request_id", "row", "role", "label")), strict=True)
    )
    assert got == _oracle(events, batches, horizon)
    n_outcomes = sum(len(b) for b in batches)
    unmatched = store.unmatched("churn", horizon=horizon).to_arrow_table().num_rows
    matched_outcomes = n_outcomes - unmatched
    assert matched_outcomes >= len({(r, i) for r, i, _, _ in got})  # none lost, none invented


def test_naive_utc_rule_for_datetimes(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.ingest("churn", [{"id": "u1", "label": 1, "observed_at": datetime(2026, 3, 1, 12)}])
    row = store.outcomes("churn").to_arrow_table().to_pylist()[0]
    assert row["observed_at"] == datetime(2026, 3, 1, 12, tzinfo=UTC)

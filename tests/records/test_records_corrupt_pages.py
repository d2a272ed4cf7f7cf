"""Segments damaged inside their pages (footer intact), met by a query before any check."""

from __future__ import annotations

import warnings
from datetime import timedelta
from pathlib import Path

import duckdb
import orjson
import pyarrow.parquet as pq
import pytest

from conftest import T0, MakeEvent
from flotilla.errors import RecordsError
from flotilla.evaluation.compare import compare
from flotilla.records import CorruptSegmentWarning, OutcomeStore, RecordStore, RecordWriter
from flotilla.records._catalog import KNOWN_BAD_FILE, SegmentCatalog
from flotilla.records._segments import list_segments
from flotilla.testing import FakeClock
from segment_damage import damage_page


def _write(root: Path, make_event: MakeEvent, batches: int = 3, per_batch: int = 5) -> None:
    """``batches`` segments per model; ``r<n>`` is churn for odd ``n``, recs for even."""
    writer = RecordWriter(root)
    for b in range(batches):
        for i in range(per_batch):
            n = b * per_batch + i
            model = "churn" if n % 2 else "recs"
            writer.submit(make_event(f"r{n}", model=model, predictions=[float(n)]))
        writer.flush()


def _ids(segments: list[Path]) -> set[str]:
    return {r for s in segments for r in pq.read_table(s).column("request_id").to_pylist()}


@pytest.fixture
def damaged(tmp_path: Path, make_event: MakeEvent) -> tuple[Path, Path, set[str]]:
    """A root whose first recs segment has a damaged page: (root, victim, intact ids)."""
    _write(tmp_path, make_event)
    segments = list_segments(tmp_path, "predictions")
    victim = list_segments(tmp_path, "predictions", "recs")[0]
    intact = _ids([s for s in segments if s != victim])
    damage_page(victim, "header", "role")
    return tmp_path, victim, intact


@pytest.mark.parametrize("where", ["header", "payload"])
def test_query_skips_a_damaged_page_without_a_prior_check(
    tmp_path: Path, make_event: MakeEvent, where: str
) -> None:
    _write(tmp_path, make_event)
    segments = list_segments(tmp_path, "predictions")
    victim = list_segments(tmp_path, "predictions", "recs")[0]
    intact = _ids([s for s in segments if s != victim])
    damage_page(victim, where, "role")
    store = RecordStore(tmp_path)
    with pytest.warns(CorruptSegmentWarning, match=victim.name):
        rows = store.query("SELECT request_id, role FROM predictions").fetchall()
    assert {r for r, _ in rows} == intact  # every row of the intact segments, once
    assert len(rows) == len(intact)
    known = orjson.loads((tmp_path / KNOWN_BAD_FILE).read_bytes())
    assert list(known) == [str(victim)]  # listed as a check would list it
    report = RecordStore(tmp_path).check()
    assert [c["path"] for c in report.corrupted] == [str(victim)]
    assert report.rows == len(intact)


def test_tail_skips_a_damaged_page(damaged: tuple[Path, Path, set[str]]) -> None:
    root, victim, intact = damaged
    with pytest.warns(CorruptSegmentWarning, match=victim.name):
        rows = RecordStore(root).tail("recs", n=50).to_arrow_table().to_pylist()
    assert {r["request_id"] for r in rows} == {i for i in intact if int(i[1:]) % 2 == 0}


def test_later_stores_skip_the_segment_up_front(damaged: tuple[Path, Path, set[str]]) -> None:
    root, victim, intact = damaged
    with pytest.warns(CorruptSegmentWarning):
        RecordStore(root).query("SELECT role FROM predictions").fetchall()
    fresh = RecordStore(root)  # another process: the known-bad list, no failing read
    with pytest.warns(CorruptSegmentWarning, match=victim.name):
        con = fresh.connect()
    assert len(con.sql("SELECT role FROM predictions").fetchall()) == len(intact)


def test_every_damaged_segment_is_skipped(tmp_path: Path, make_event: MakeEvent) -> None:
    _write(tmp_path, make_event)
    victims = list_segments(tmp_path, "predictions", "recs")[:2]
    intact = _ids([s for s in list_segments(tmp_path, "predictions") if s not in victims])
    for victim in victims:
        damage_page(victim, "payload", "role")  # DuckDB names one file per failure
    with pytest.warns(CorruptSegmentWarning) as caught:
        rows = RecordStore(tmp_path).query("SELECT * FROM predictions").fetchall()
    assert {r[0] for r in rows} == intact
    assert all(any(v.name in str(w.message) for w in caught) for v in victims)
    report = RecordStore(tmp_path).check()
    assert sorted(c["path"] for c in report.corrupted) == sorted(str(v) for v in victims)


def test_connection_execute_and_relations_heal(damaged: tuple[Path, Path, set[str]]) -> None:
    root, victim, intact = damaged
    con = RecordStore(root).connect()
    with pytest.warns(CorruptSegmentWarning, match=victim.name):
        rows = con.execute("SELECT request_id, role FROM predictions ORDER BY 1").fetchall()
    assert {r for r, _ in rows} == intact
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # healed once: no second warning, no second read
        rows = con.sql("SELECT role FROM predictions").limit(100).fetchall()
    assert len(rows) == len(intact)
    con.close()


def test_outcome_views_heal(tmp_path: Path, make_event: MakeEvent) -> None:
    writer = RecordWriter(tmp_path)
    for i in range(6):
        writer.submit(make_event(f"r{i}", event_time=T0 + timedelta(seconds=i)))
    writer.flush()
    store = OutcomeStore(tmp_path, clock=FakeClock(start=T0 + timedelta(days=1)))
    for i in range(3):  # one outcome segment each
        store.ingest("churn", [{"request_id": f"r{i}", "index": 0, "label": 1}])
    victim = list_segments(tmp_path, "outcomes", "churn")[0]
    damage_page(victim, "payload", "label")
    with pytest.warns(CorruptSegmentWarning, match=victim.name):
        rows = store.joined("churn").fetchall()  # reads 'outcomes_ordered' as well
    assert len(rows) == 2


def test_compare_skips_a_damaged_page(tmp_path: Path, make_event: MakeEvent) -> None:
    writer = RecordWriter(tmp_path)
    labels = []
    for batch in range(3):  # one segment of 20 requests (live and shadow) each
        for i in range(batch * 20, batch * 20 + 20):
            for role, ref in (("live", "churn@1"), ("shadow", "churn@2")):
                at = T0 + timedelta(minutes=i)
                p = 0.9 if i % 2 else 0.1
                writer.submit(
                    make_event(f"r{i}", role=role, ref=ref, predictions=[p], event_time=at)
                )
            labels.append({"request_id": f"r{i}", "index": 0, "label": i % 2})
        writer.flush()
    store = OutcomeStore(tmp_path, clock=FakeClock(start=T0 + timedelta(days=3)))
    store.ingest("churn", labels)
    victim = list_segments(tmp_path, "predictions", "churn")[0]
    damage_page(victim, "header", "role")
    with pytest.warns(CorruptSegmentWarning, match=victim.name):
        result = compare(store, "churn", champion="churn@1", challenger="churn@2", metric="auc")
    assert result.labeled_pairs == 40  # the 20 requests of the damaged segment are skipped


def test_a_failure_with_nothing_to_skip_says_to_run_check(
    damaged: tuple[Path, Path, set[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _, _ = damaged
    monkeypatch.setattr(SegmentCatalog, "find_corrupted", lambda self, paths: [])
    relation = RecordStore(root).query("SELECT * FROM predictions")
    with pytest.raises(RecordsError, match="flotilla records check"):
        relation.fetchall()
    assert not (root / KNOWN_BAD_FILE).exists()


def test_healthy_queries_read_nothing_extra(
    tmp_path: Path, make_event: MakeEvent, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, make_event)
    full_reads: list[Path] = []
    original = SegmentCatalog.find_corrupted

    def spy(self: SegmentCatalog, paths: list[Path]) -> list[tuple[Path, str]]:
        full_reads.extend(paths)
        return original(self, paths)

    monkeypatch.setattr(SegmentCatalog, "find_corrupted", spy)
    store = RecordStore(tmp_path)
    assert store.query("SELECT count(*) FROM predictions").fetchall() == [(15,)]
    assert store.tail("churn", n=50).to_arrow_table().num_rows == 7
    with pytest.raises(duckdb.Error, match="boom"):  # an error of the SQL, not of a segment
        store.query("SELECT error('boom') FROM predictions").fetchall()
    with pytest.raises(duckdb.Error):
        store.query("SELECT 'x'::INTEGER FROM predictions").fetchall()
    assert full_reads == []
    assert not (tmp_path / KNOWN_BAD_FILE).exists()

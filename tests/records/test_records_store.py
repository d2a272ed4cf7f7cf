"""RecordStore: queries over the views, tail, and corrupted segments."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import T0, MakeEvent
from flotilla.errors import ConfigError, RecordsError
from flotilla.records import CorruptSegmentWarning, RecordStore, RecordWriter
from flotilla.records._segments import list_segments


def _write(root: Path, make_event: MakeEvent, batches: int, per_batch: int = 5) -> None:
    writer = RecordWriter(root)
    for b in range(batches):
        for i in range(per_batch):
            n = b * per_batch + i
            writer.submit(
                make_event(f"r{n}", model="churn" if n % 2 else "recs", predictions=[float(n)])
            )
        writer.flush()


def test_empty_root_has_empty_views(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "nothing-here")
    assert store.query("SELECT count(*) FROM predictions").fetchall() == [(0,)]
    assert store.query("SELECT count(*) FROM outcomes").fetchall() == [(0,)]
    assert store.tail("churn").to_arrow_table().num_rows == 0
    assert store.check().ok
    assert store.models() == [] and store.models("outcomes") == []
    assert not (tmp_path / "nothing-here").exists()  # readers create nothing


def test_query_is_lazy_and_sees_all_segments(tmp_path: Path, make_event: MakeEvent) -> None:
    _write(tmp_path, make_event, batches=3)
    store = RecordStore(tmp_path)
    relation = store.query("SELECT model, count(*) AS n FROM predictions GROUP BY 1 ORDER BY 1")
    assert relation.to_arrow_table().to_pylist() == [
        {"model": "churn", "n": 7},
        {"model": "recs", "n": 8},
    ]
    assert list(relation.df()["n"]) == [7, 8]  # a relation runs again on each call


def test_models_lists_the_models_with_records(tmp_path: Path, make_event: MakeEvent) -> None:
    _write(tmp_path, make_event, batches=1)
    writer = RecordWriter(tmp_path)
    writer.submit(make_event("odd", model="a/b c"))  # a name its folder has to encode
    writer.flush()
    store = RecordStore(tmp_path)
    assert store.models() == ["a/b c", "churn", "recs"]
    assert store.models("outcomes") == []
    with pytest.raises(ConfigError, match="predictions"):
        store.models("labels")


def test_tail_returns_newest_first(tmp_path: Path, make_event: MakeEvent) -> None:
    writer = RecordWriter(tmp_path)
    for i in range(6):
        writer.submit(make_event(f"r{i}", event_time=T0 + timedelta(seconds=i)))
    writer.flush()
    rows = RecordStore(tmp_path).tail("churn", n=2).to_arrow_table().to_pylist()
    assert [r["request_id"] for r in rows] == ["r5", "r4"]
    with pytest.raises(ConfigError, match="'n' of tail"):
        RecordStore(tmp_path).tail("churn", n=0)


def test_bad_sql_names_the_views(tmp_path: Path) -> None:
    with pytest.raises(RecordsError, match="views 'predictions'"):
        RecordStore(tmp_path).query("SELECT nope FROM predictions")


@pytest.mark.parametrize("damage", ["truncated", "random-bytes", "flipped-page"])
def test_corrupted_segment_is_skipped_and_reported(
    tmp_path: Path, make_event: MakeEvent, damage: str
) -> None:
    _write(tmp_path, make_event, batches=3)
    victim = list_segments(tmp_path, "predictions", "recs")[0]
    lost = pq.read_metadata(victim).num_rows
    data = bytearray(victim.read_bytes())
    if damage == "truncated":
        victim.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == "random-bytes":
        victim.write_bytes(os.urandom(len(data)))
    else:  # a byte inside the first data page: the footer still reads
        data[len(data) // 4] ^= 0xFF
        victim.write_bytes(bytes(data))
    store = RecordStore(tmp_path)
    report = store.check()
    assert not report.ok
    assert [c["path"] for c in report.corrupted] == [str(victim)]
    assert report.segments == len(list_segments(tmp_path, "predictions")) - 1
    assert report.rows == 15 - lost
    fresh = RecordStore(tmp_path)  # another process: footer check + the list of the last check
    with pytest.warns(CorruptSegmentWarning, match=victim.name):
        n = fresh.query("SELECT count(*) FROM predictions").fetchall()[0][0]
    assert n == 15 - lost  # nothing else lost
    assert fresh.tail("churn", n=50).to_arrow_table().num_rows == 7  # other models unaffected
    victim.unlink()  # the user moves it away: the next check is clean again
    assert RecordStore(tmp_path).check().ok


def test_connect_refuses_unknown_views(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="predictions"):
        RecordStore(tmp_path).connect(views=("predictions", "labels"))

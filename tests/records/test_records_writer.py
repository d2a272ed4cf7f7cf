"""RecordWriter: buffering, dropping, row expansion, partitioning, atomic segments."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import T0, MakeEvent
from flotilla.errors import ConfigError, RecordsError
from flotilla.records import PREDICTION_SCHEMA, RecordStore, RecordWriter, install_signal_flush
from flotilla.testing import FakeClock


def _rows(root: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for path in sorted(root.rglob("part-*.parquet")):
        rows.extend(pq.read_table(path).to_pylist())
    return rows


def test_flush_expands_events_to_rows(tmp_path: Path, make_event: MakeEvent) -> None:
    clock = FakeClock(start=T0 + timedelta(seconds=3))
    writer = RecordWriter(tmp_path, clock=clock)
    event = make_event(
        "r1",
        inputs=[{"x": 1}, {"x": 2}],
        predictions=[0.25, "b"],
        ids=["u1", "u2"],
        degraded=True,
        reasons=[{"step": "churn@1", "reason": "timeout"}],
        feature_times=[{"x": T0 - timedelta(seconds=30)}, {"x": "2026-03-01T11:59:00"}],
    )
    assert writer.submit(event)
    assert writer.flush() == 2
    rows = _rows(tmp_path)
    assert [(r["request_id"], r["row"], r["caller_id"]) for r in rows] == [
        ("r1", 0, "u1"),
        ("r1", 1, "u2"),
    ]
    assert [r["prediction_value"] for r in rows] == [0.25, None]
    assert json.loads(str(rows[1]["prediction"])) == "b"
    assert json.loads(str(rows[0]["inputs"])) == {"x": 1}
    assert json.loads(str(rows[0]["reasons"])) == [{"step": "churn@1", "reason": "timeout"}]
    assert json.loads(str(rows[0]["feature_ages_s"])) == {"x": 30.0}
    assert json.loads(str(rows[1]["feature_ages_s"])) == {"x": 60.0}
    assert rows[0]["event_time"] == T0 and rows[0]["written_at"] == clock.now()
    assert rows[0]["degraded"] is True
    schema = pq.read_schema(next(tmp_path.rglob("part-*.parquet")))
    assert schema.remove_metadata().equals(PREDICTION_SCHEMA)


def test_segments_are_partitioned_by_model_and_date(tmp_path: Path, make_event: MakeEvent) -> None:
    writer = RecordWriter(tmp_path)
    writer.submit(make_event("a", model="churn"))
    writer.submit(make_event("b", model="churn", event_time=T0 + timedelta(days=1)))
    writer.submit(make_event("c", model="recs"))
    writer.flush()
    folders = sorted(str(p.parent.relative_to(tmp_path)) for p in tmp_path.rglob("*.parquet"))
    assert folders == [
        "predictions/model=churn/date=2026-03-01",
        "predictions/model=churn/date=2026-03-02",
        "predictions/model=recs/date=2026-03-01",
    ]
    assert not list(tmp_path.rglob(".*.tmp"))  # temporary files were renamed into place


def test_full_buffer_drops_counts_and_calls_back(
    tmp_path: Path, make_event: MakeEvent, caplog: pytest.LogCaptureFixture
) -> None:
    drops: list[int] = []
    writer = RecordWriter(tmp_path, capacity=3, on_drop=drops.append)
    with caplog.at_level(logging.WARNING, logger="flotilla.records"):
        accepted = [writer.submit(make_event(f"r{i}")) for i in range(5)]
    assert accepted == [True, True, True, False, False]
    assert writer.dropped == 2 and drops == [1, 1]
    assert "buffer is full" in caplog.text
    assert caplog.text.count("Dropped") == 1  # rate-limited
    writer.close()
    assert len(_rows(tmp_path)) == 3
    assert writer.submit(make_event("late")) is False  # closed writers drop, never raise
    assert writer.dropped == 3


def test_bad_event_is_dropped_not_the_batch(tmp_path: Path, make_event: MakeEvent) -> None:
    writer = RecordWriter(tmp_path)
    writer.submit(make_event("good1"))
    writer.submit(make_event("bad", event_time="yesterday"))
    writer.submit(make_event("good2"))
    assert writer.flush() == 2
    assert writer.dropped == 1
    assert sorted(str(r["request_id"]) for r in _rows(tmp_path)) == ["good1", "good2"]


def test_close_flushes_and_is_idempotent(tmp_path: Path, make_event: MakeEvent) -> None:
    writer = RecordWriter(tmp_path, flush_interval=60.0).start()
    for i in range(10):
        writer.submit(make_event(f"r{i}"))
    writer.close()
    writer.close()
    assert writer.closed and writer.written == 10
    assert len(_rows(tmp_path)) == 10
    with pytest.raises(RecordsError, match="closed"):
        writer.start()


def test_background_thread_flushes_when_max_rows_wait(
    tmp_path: Path, make_event: MakeEvent
) -> None:
    with RecordWriter(tmp_path, flush_interval=30.0, max_rows=5) as writer:
        for i in range(5):
            writer.submit(make_event(f"r{i}"))
        pause = threading.Event()
        for _ in range(1000):  # the 30 s interval is not waited for: max_rows wakes the thread
            if writer.written == 5:
                break
            pause.wait(0.01)
        assert writer.written == 5
    assert RecordStore(tmp_path).query("SELECT count(*) FROM predictions").fetchall() == [(5,)]


def test_failed_write_keeps_rows_for_retry(tmp_path: Path, make_event: MakeEvent) -> None:
    blocker = tmp_path / "records"
    blocker.write_text("a file where the folder should be")
    writer = RecordWriter(blocker)
    writer.submit(make_event("r1"))
    with pytest.raises(RecordsError, match="retried on the next flush"):
        writer.flush()
    blocker.unlink()
    writer.submit(make_event("r2"))
    assert writer.flush() == 2
    assert sorted(str(r["request_id"]) for r in _rows(blocker)) == ["r1", "r2"]


@pytest.mark.parametrize(
    ("option", "value"),
    [("flush_interval", 0), ("max_rows", 0), ("capacity", -1), ("capacity", 2.5)],
    ids=["zero-interval", "zero-max-rows", "negative-capacity", "float-capacity"],
)
def test_invalid_options_are_refused(tmp_path: Path, option: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"The '{option}' of RecordWriter must be"):
        RecordWriter(tmp_path, **{option: value})  # type: ignore[arg-type]


def test_constructor_does_no_io(tmp_path: Path) -> None:
    RecordWriter(tmp_path / "not-yet")
    assert not (tmp_path / "not-yet").exists()


def test_install_signal_flush_closes_then_exits(tmp_path: Path, make_event: MakeEvent) -> None:
    writer = RecordWriter(tmp_path, flush_interval=60.0).start()
    restore = install_signal_flush(writer, signals=(signal.SIGUSR1,))
    try:
        writer.submit(make_event("r1"))
        with pytest.raises(SystemExit) as exit_info:
            os.kill(os.getpid(), signal.SIGUSR1)
            threading.Event().wait(1.0)  # the handler runs between bytecodes
        assert exit_info.value.code == 128 + signal.SIGUSR1
        assert writer.closed and len(_rows(tmp_path)) == 1
    finally:
        restore()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL

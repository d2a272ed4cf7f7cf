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
from flotilla.records._helper import HELPER_NICENESS
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


@pytest.mark.parametrize("helper", [False, True], ids=["thread", "helper"])
def test_failed_write_keeps_rows_for_retry(
    tmp_path: Path, make_event: MakeEvent, helper: bool
) -> None:
    blocker = tmp_path / "records"
    blocker.write_text("a file where the folder should be")
    with RecordWriter(blocker, flush_interval=60.0, helper_process=helper) as writer:
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


def test_record_takes_the_fields_of_an_event(tmp_path: Path, make_event: MakeEvent) -> None:
    event = make_event(
        "r1", inputs=[{"x": 1}, {"x": 2}], predictions=[0.25, [1, 2]], ids=["a", "b"]
    )
    by_event, by_fields = RecordWriter(tmp_path / "a"), RecordWriter(tmp_path / "b")
    assert by_event.submit(event)
    assert by_fields.record(
        event.request_id, event.model, event.ref, event.role, event.inputs, event.predictions,
        event.ids, event.latency_ms, event.degraded, event.reasons, event.event_time,
    )  # fmt: skip
    by_event.flush()
    by_fields.flush()
    rows_a = [{k: v for k, v in r.items() if k != "written_at"} for r in _rows(tmp_path / "a")]
    rows_b = [{k: v for k, v in r.items() if k != "written_at"} for r in _rows(tmp_path / "b")]
    assert rows_a == rows_b and json.loads(str(rows_a[1]["prediction"])) == [1, 2]


def test_an_event_json_cannot_hold_is_dropped_alone(tmp_path: Path, make_event: MakeEvent) -> None:
    writer = RecordWriter(tmp_path)
    assert writer.submit(make_event("huge", predictions=[2**70]))
    assert writer.submit(make_event("fine"))
    assert writer.flush() == 1 and writer.dropped == 1
    helped = RecordWriter(tmp_path / "helped", helper_process=True)  # encodes at submit
    assert helped.submit(make_event("huge", predictions=[2**70])) is False
    assert helped.dropped == 1 and helped.buffered == 0


# -- the helper process (what `flotilla serve` uses) ----------------------------------------


def test_helper_process_writes_what_the_thread_writes(
    tmp_path: Path, make_event: MakeEvent
) -> None:
    clock = FakeClock(start=T0 + timedelta(seconds=3))
    events = [
        make_event(
            "r1", inputs=[{"x": 1}, {"x": 2}], predictions=[0.25, "b"], ids=["u1", "u2"],
            degraded=True, reasons=[{"ref": "churn@1", "reason": "timeout"}],
            feature_times=[{"x": T0 - timedelta(seconds=30)}, {"x": "2026-03-01T11:59:00"}],
        ),
        make_event("bad", event_time="yesterday"),
        make_event("r2", model="recs", event_time=T0 + timedelta(days=1)),
    ]  # fmt: skip
    results = {}
    for mode in ("thread", "helper"):
        writer = RecordWriter(tmp_path / mode, clock=clock, helper_process=mode == "helper")
        with writer:
            assert (writer.helper_pid is not None) == (mode == "helper")
            for event in events:
                writer.submit(event)
            if mode == "helper":  # it keeps its own copy from the moment it accepts
                events[0].inputs[0]["x"] = 99
            assert writer.flush() == 3
        assert writer.dropped == 1 and writer.helper_pid is None
        results[mode] = sorted(_rows(tmp_path / mode), key=lambda r: (r["request_id"], r["row"]))
    assert json.loads(str(results["helper"][0]["inputs"])) == {"x": 1}
    events[0].inputs[0]["x"] = 1
    assert results["helper"] == results["thread"]
    assert results["helper"][0]["written_at"] == clock.now()


def test_a_dead_helper_is_replaced_and_loses_nothing(
    tmp_path: Path, make_event: MakeEvent, caplog: pytest.LogCaptureFixture
) -> None:
    with RecordWriter(tmp_path, flush_interval=60.0, helper_process=True) as writer:
        first = writer.helper_pid
        assert first is not None
        writer.submit(make_event("r1"))
        assert writer.flush() == 1
        os.kill(first, signal.SIGKILL)
        writer.submit(make_event("r2"))
        with caplog.at_level(logging.WARNING, logger="flotilla.records"):
            assert writer.flush() == 1  # written in this process this once
        assert "records helper process" in caplog.text
        second = writer.helper_pid
        assert second is not None and second != first
        writer.submit(make_event("r3"))
        assert writer.flush() == 1  # by the new helper
    assert sorted(str(r["request_id"]) for r in _rows(tmp_path)) == ["r1", "r2", "r3"]
    assert writer.dropped == 0


def test_the_helper_runs_at_a_lower_priority_than_the_serving_process(tmp_path: Path) -> None:
    with RecordWriter(tmp_path, flush_interval=60.0, helper_process=True) as writer:
        pid = writer.helper_pid
        assert pid is not None
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(ours + HELPER_NICENESS, 19)

"""Compaction never loses or double counts a record, wherever it dies."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import T0, MakeEvent
from flotilla.errors import ConfigError
from flotilla.records import (
    CompactStep,
    OutcomeStore,
    PredictionEvent,
    RecordStore,
    RecordWriter,
)
from flotilla.records._compact import STEPS
from flotilla.records._segments import compaction_lock, list_segments

CHILD = Path(__file__).with_name("records_child.py")


class Crash(Exception):
    """Stands for the process dying at a step."""


def _fill(root: Path, make_event: MakeEvent, segments: int = 4) -> None:
    writer = RecordWriter(root)
    for s in range(segments):
        for i in range(3):
            n = s * 3 + i
            writer.submit(
                make_event(
                    f"r{n}",
                    inputs=[{"x": n}, {"x": -n}],
                    predictions=[n, -n],
                    event_time=T0 + timedelta(days=n % 2),
                )
            )
        writer.flush()
    OutcomeStore(root).ingest("churn", [{"request_id": "r1", "label": 1, "observed_at": T0}])
    OutcomeStore(root).ingest("churn", [{"request_id": "r2", "label": 0, "observed_at": T0}])


def _fingerprint(root: Path) -> tuple[int, str, int]:
    """(count, checksum of the sorted keys, outcome count) as every reader sees them."""
    store = RecordStore(root)
    rows = store.query("SELECT request_id, row, prediction FROM predictions").fetchall()
    keys = sorted(rows)
    digest = hashlib.sha256(repr(keys).encode()).hexdigest()
    outcomes = store.query("SELECT count(*) FROM outcomes").fetchall()[0][0]
    assert len(set(keys)) == len(keys), "a record is counted twice"
    return len(keys), digest, outcomes


def test_compact_merges_small_segments(tmp_path: Path, make_event: MakeEvent) -> None:
    _fill(tmp_path, make_event)
    before = _fingerprint(tmp_path)
    assert before[0] == 24
    seen: list[str] = []
    report = RecordStore(tmp_path).compact(progress=lambda s: seen.append(s.step))
    assert report.segments_before == 10 and report.segments_after == 3
    assert report.rows == 26 and len(report.merged) == 3
    assert seen == list(STEPS) * 3
    assert _fingerprint(tmp_path) == before
    again = RecordStore(tmp_path).compact()
    assert again.merged == [] and again.segments_after == 3
    assert not list(tmp_path.rglob("_compact-*.json")) and not list(tmp_path.rglob(".*.tmp"))


def test_compact_one_model_and_target_size(tmp_path: Path, make_event: MakeEvent) -> None:
    _fill(tmp_path, make_event)
    writer = RecordWriter(tmp_path)
    writer.submit(make_event("other", model="recs"))
    writer.flush()
    writer.submit(make_event("other2", model="recs"))
    writer.flush()
    report = RecordStore(tmp_path).compact("recs")
    assert report.partitions == 1 and report.segments_after == 1
    assert len(list_segments(tmp_path, "predictions", "churn")) == 4 * 2  # untouched
    assert RecordStore(tmp_path).compact(target_bytes=1).merged == []  # all too big to merge
    with pytest.raises(ConfigError, match="target_bytes"):
        RecordStore(tmp_path).compact(target_bytes=0)


@pytest.mark.parametrize("step", STEPS[:-1])
def test_crash_at_each_step_then_recovery(tmp_path: Path, make_event: MakeEvent, step: str) -> None:
    _fill(tmp_path, make_event)
    before = _fingerprint(tmp_path)

    def die(event: CompactStep) -> None:
        if event.step == step:
            raise Crash(step)

    with pytest.raises(Crash):
        RecordStore(tmp_path).compact(progress=die)
    # a reader while the dead compaction's files are still there and recovery cannot run
    with compaction_lock(tmp_path):
        assert _fingerprint(tmp_path) == before
    # a reader that may recover, then a full compaction
    assert _fingerprint(tmp_path) == before
    assert not list(tmp_path.rglob("_compact-*.json"))
    RecordStore(tmp_path).compact()
    assert _fingerprint(tmp_path) == before
    assert RecordStore(tmp_path).check().ok


def test_lost_journal_still_never_double_counts(tmp_path: Path, make_event: MakeEvent) -> None:
    _fill(tmp_path, make_event)
    before = _fingerprint(tmp_path)

    def die(event: CompactStep) -> None:
        if event.step == "merged_renamed":
            for journal in event.partition.glob("_compact-*.json"):
                journal.unlink()  # e.g. deleted by hand: the merged file's metadata suffices
            raise Crash(event.step)

    with pytest.raises(Crash):
        RecordStore(tmp_path).compact(progress=die)
    with compaction_lock(tmp_path):
        assert _fingerprint(tmp_path) == before
    assert _fingerprint(tmp_path) == before


@pytest.mark.slow
@pytest.mark.parametrize("step", ["merged_written", "journal_written", "merged_renamed"])
def test_real_process_killed_during_compaction(
    tmp_path: Path, make_event: MakeEvent, step: str
) -> None:
    _fill(tmp_path, make_event)
    before = _fingerprint(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), "compact", str(tmp_path), step],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert line == f"at {step}", proc.stderr.read() if proc.stderr else ""
    assert _fingerprint(tmp_path) == before
    report = RecordStore(tmp_path).compact()
    assert _fingerprint(tmp_path) == before
    assert report.segments_after == 3


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(
        st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 2)), max_size=6),
        min_size=1,
        max_size=5,
    ),
    crash_at=st.sampled_from([None, *STEPS[:-1]]),
)
def test_segments_round_trip_against_a_naive_oracle(
    tmp_path_factory: pytest.TempPathFactory,
    batches: list[list[tuple[str, int]]],
    crash_at: str | None,
) -> None:
    root = tmp_path_factory.mktemp("prop")
    writer = RecordWriter(root)
    oracle: list[tuple[str, str, int]] = []
    n = 0
    for batch in batches:
        for model, rows in batch:
            n += 1
            writer.submit(
                PredictionEvent(
                    request_id=f"q{n}", model=model, ref=f"{model}@1", role="live",
                    inputs=[{"i": i} for i in range(rows)], predictions=list(range(rows)),
                    ids=None, latency_ms=0.0, degraded=False, reasons=[], event_time=T0,
                )
            )  # fmt: skip
            oracle.extend((model, f"q{n}", i) for i in range(rows))
        writer.flush()

    def die(event: CompactStep) -> None:
        if event.step == crash_at:
            raise Crash(event.step)

    try:
        RecordStore(root).compact(progress=die)
    except Crash:
        pass
    got = RecordStore(root).query("SELECT model, request_id, row FROM predictions").fetchall()
    assert sorted(got) == sorted(oracle)


def test_compaction_while_a_writer_writes(tmp_path: Path, make_event: MakeEvent) -> None:
    writer = RecordWriter(tmp_path, flush_interval=0.01).start()
    done = threading.Event()
    total = 800

    def produce() -> None:
        for i in range(total):
            writer.submit(make_event(f"w{i}"))
            if i % 50 == 0:
                done.wait(0.005)
        done.set()

    thread = threading.Thread(target=produce)
    thread.start()
    rounds = 0
    while not done.is_set() or rounds < 2:
        RecordStore(tmp_path).compact()
        rounds += 1
    thread.join()
    writer.close()
    RecordStore(tmp_path).compact()
    rows = RecordStore(tmp_path).query("SELECT request_id FROM predictions").fetchall()
    assert sorted(r[0] for r in rows) == sorted(f"w{i}" for i in range(total))
    assert len(list_segments(tmp_path, "predictions")) == 1

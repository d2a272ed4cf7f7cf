"""Health reports over a prediction segment damaged inside its pages, before any check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flotilla.monitoring.health import health_report
from flotilla.records import CorruptSegmentWarning, PredictionEvent, RecordStore, RecordWriter
from flotilla.records._catalog import KNOWN_BAD_FILE, SegmentCatalog
from flotilla.records._segments import list_segments
from flotilla.testing import FakeClock
from segment_damage import damage_page

T0 = datetime(2026, 3, 1, tzinfo=UTC)
BATCHES, PER_BATCH = 3, 4


def _write(root: Path) -> None:
    """``BATCHES`` prediction segments of ``churn``, ``PER_BATCH`` live requests each."""
    writer = RecordWriter(root, clock=FakeClock(start=T0 + timedelta(days=1)))
    for b in range(BATCHES):
        for i in range(PER_BATCH):
            n = b * PER_BATCH + i
            writer.submit(
                PredictionEvent(
                    request_id=f"r{n}",
                    model="churn",
                    ref="churn@1",
                    role="live",
                    inputs=[{"x": float(n)}],
                    predictions=[0.5],
                    ids=None,
                    latency_ms=1.0 + n,
                    degraded=False,
                    reasons=[],
                    event_time=T0 + timedelta(minutes=n),
                )
            )
        writer.flush()


# ``latency_ms``: the report's first query reads it (percentiles), whereas a constant
# column such as ``role`` is answered from the footer statistics there.
DAMAGED_COLUMN = "latency_ms"


def _report(root: Path) -> Any:
    return health_report(RecordStore(root), "churn", start=T0, end=T0 + timedelta(days=1))


@pytest.mark.parametrize("where", ["header", "payload"])
def test_report_skips_a_damaged_page_without_a_prior_check(tmp_path: Path, where: str) -> None:
    _write(tmp_path)
    victim = list_segments(tmp_path, "predictions", "churn")[1]
    damage_page(victim, where, DAMAGED_COLUMN)
    assert not (tmp_path / KNOWN_BAD_FILE).exists()  # no 'records check' ran
    with pytest.warns(CorruptSegmentWarning, match=victim.name):
        report = _report(tmp_path)
    intact = (BATCHES - 1) * PER_BATCH
    assert report.metrics["traffic"] == intact  # the rows of the intact segments, once
    assert report.metrics["rows"] == intact
    assert report.traffic_by_role == {"live": {"requests": intact, "rows": intact}}
    check = RecordStore(tmp_path).check()
    assert [c["path"] for c in check.corrupted] == [str(victim)]
    assert check.rows == intact


def test_healthy_report_reads_nothing_extra_and_skips_recovery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path)
    full_reads: list[Path] = []
    original = SegmentCatalog.find_corrupted

    def spy(self: SegmentCatalog, paths: list[Path]) -> list[tuple[Path, str]]:
        full_reads.extend(paths)
        return original(self, paths)

    def no_recovery(*args: Any, **kwargs: Any) -> bool:
        raise AssertionError("a health report ran compaction recovery")

    monkeypatch.setattr(SegmentCatalog, "find_corrupted", spy)
    monkeypatch.setattr("flotilla.records._store.recover", no_recovery)
    report = _report(tmp_path)
    assert report.metrics["traffic"] == BATCHES * PER_BATCH
    assert full_reads == []
    assert not (tmp_path / KNOWN_BAD_FILE).exists()

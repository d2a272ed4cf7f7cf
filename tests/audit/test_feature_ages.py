"""Serving feature ages against training ages (issue 6, item 4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from flotilla.audit import compare_feature_ages, merge_reports, training_feature_ages
from flotilla.errors import AuditError
from flotilla.records import PredictionEvent, RecordStore, RecordWriter

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _training(path: Path, n: int = 200) -> Path:
    rng = np.random.default_rng(0)
    events = [T0 + timedelta(hours=i) for i in range(n)]
    table = pa.table(
        {
            "event_time": events,
            "daily": rng.normal(size=n),
            "daily__written_at": [e - timedelta(hours=20) for e in events],  # a daily batch
            "live": rng.normal(size=n),
            "live__written_at": [e - timedelta(seconds=5) for e in events],
            "label": rng.integers(0, 2, n),
        }
    )
    pq.write_table(table, path)
    return path


def test_training_ages_are_event_minus_write_time(tmp_path: Path) -> None:
    ages = training_feature_ages(_training(tmp_path / "t.parquet"), event_time="event_time")
    assert set(ages) == {"daily", "live"}
    assert np.allclose(ages["daily"], 20 * 3600)
    assert np.allclose(ages["live"], 5)


def test_fresher_staler_and_quiet() -> None:
    training = {"daily": [72_000.0] * 50, "live": [5.0] * 50, "steady": [600.0] * 50}
    serving = {"daily": [2.0] * 50, "live": [7200.0] * 50, "steady": [700.0] * 50}
    report = compare_feature_ages(training, serving)
    found = {(f.check, f.feature) for f in report.findings}
    assert found == {("feature_age_fresher", "daily"), ("feature_age_staler", "live")}
    assert report.exit_code == 1
    fresher = next(f for f in report.findings if f.feature == "daily")
    assert fresher.evidence["training_median_age_s"] == 72_000.0
    assert fresher.evidence["serving_median_age_s"] == 2.0


def test_jitter_and_small_samples_stay_quiet() -> None:
    # 5 s against 50 s is 10x fresher but under the 60 s floor: no alarm
    report = compare_feature_ages(
        {"a": [50.0] * 40, "b": [1e6] * 5}, {"a": [1.0] * 40, "b": [1.0] * 5}
    )
    assert report.findings == []
    assert report.summary["skipped"] == ["b"]
    with pytest.raises(AuditError, match="ratio"):
        compare_feature_ages({}, {}, ratio=1.0)


def test_no_write_time_columns_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"event_time": [T0], "x": [1.0]}), path)
    with pytest.raises(AuditError, match="__written_at"):
        training_feature_ages(path, event_time="event_time")


def test_serving_ages_from_records_and_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("FLOTILLA_HOME", str(home))
    writer = RecordWriter(home / "records", flush_interval=0.05)
    writer.start()
    now = datetime.now(UTC)
    for i in range(60):
        writer.submit(
            PredictionEvent(
                request_id=f"r{i}", model="m", ref="m@1", role="live",
                inputs=[{"daily": 1.0, "live": 2.0}], predictions=[0.5], ids=None,
                latency_ms=1.0, degraded=False, reasons=[], event_time=now,
                feature_times=[{"daily": (now - timedelta(seconds=3)).isoformat(),
                                "live": (now - timedelta(hours=6)).isoformat()}],
            )
        )  # fmt: skip
    writer.close()
    ages = RecordStore(home / "records").feature_ages("m")
    assert len(ages["daily"]) == 60 and ages["daily"][0] == pytest.approx(3.0, abs=0.01)
    training = _training(tmp_path / "t.parquet")
    from flotilla.cli.main import app

    args = ["audit", str(training), "--label", "label", "--event-time", "event_time"]
    result = CliRunner().invoke(app, [*args, "--serving-model", "m", "--json"])
    assert result.exit_code in (1, 2), result.output
    assert '"feature_age_fresher"' in result.output and '"feature_age_staler"' in result.output
    merged = merge_reports(
        compare_feature_ages({"x": [1.0] * 40}, {"x": [1.0] * 40}),
        compare_feature_ages({"x": [1e5] * 40}, {"x": [1.0] * 40}),
    )
    assert [f.check for f in merged.findings] == ["feature_age_fresher"]
    assert "feature_ages" in merged.summary

"""The monitor compares serving feature ages with the live version's training ages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flotilla.monitoring import health_report
from flotilla.records import PredictionEvent, RecordStore, RecordWriter
from flotilla.settings import Settings
from flotilla.workspace import Workspace

CODE = "class Model:\n    def predict(self, records):\n        return [0.5 for _ in records]\n"
SIG = {"inputs": [{"name": "daily", "type": "float"}], "output": {"kind": "probability"}}


def test_fresher_serving_ages_are_reported(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    ws = Workspace.open(settings)
    code = tmp_path / "m.py"
    code.write_text(CODE)
    rng = np.random.default_rng(1)
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    events = [t0 + timedelta(hours=i) for i in range(300)]
    training = tmp_path / "train.parquet"
    pq.write_table(
        pa.table(
            {
                "event_time": events,
                "daily": rng.normal(size=300),
                "daily__written_at": [e - timedelta(hours=20) for e in events],
                "label": rng.integers(0, 2, 300),
            }
        ),
        training,
    )
    v = ws.register(
        "m", flavor="python", artifact=code, entry="m:Model", signature=SIG,
        training_data=training, label="label", event_time="event_time",
    )  # fmt: skip
    ages = v.lineage["training_feature_ages"]["daily"]["percentiles"]
    assert len(ages) == 101 and ages[50] == 72_000.0
    writer = RecordWriter(settings.records, flush_interval=0.05)
    writer.start()
    now = datetime.now(UTC)
    for i in range(50):
        writer.submit(
            PredictionEvent(
                request_id=f"r{i}", model="m", ref=v.ref, role="live", inputs=[{"daily": 0.1}],
                predictions=[0.5], ids=None, latency_ms=1.0, degraded=False, reasons=[],
                event_time=now, feature_times=[{"daily": (now - timedelta(seconds=2)).isoformat()}],
            )
        )  # fmt: skip
    writer.close()
    report = health_report(
        RecordStore(settings.records), "m", start=now - timedelta(hours=1),
        end=now + timedelta(minutes=1), registry=ws.registry,
    )  # fmt: skip
    assert [f["check"] for f in report.feature_ages] == ["feature_age_fresher"]
    assert report.to_dict()["feature_ages"][0]["feature"] == "daily"

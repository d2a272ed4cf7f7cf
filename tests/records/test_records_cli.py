"""The records and outcomes commands (in-process with Typer's runner, plus one real process)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import Invoke, MakeEvent, Run, records_cli
from flotilla.errors import ModelNotFoundError
from flotilla.records import RecordStore, RecordWriter
from flotilla.records._segments import list_segments
from flotilla.settings import Settings
from flotilla.workspace import Workspace


@pytest.fixture
def invoke(home: Path) -> Invoke:
    """Run a records/outcomes command in-process; returns click's Result."""
    return records_cli()


def _records_at(root: Path, make_event: MakeEvent, now: datetime) -> None:
    writer = RecordWriter(root)
    for batch in range(3):
        for i in range(4):
            n = batch * 4 + i
            writer.submit(
                make_event(
                    f"r{n}", model="echo", ref="echo@1", ids=[f"u{n}"], predictions=[float(n)],
                    event_time=now - timedelta(minutes=60 - n),
                )
            )  # fmt: skip
        writer.flush()


def test_query_tail_check_compact(invoke: Invoke, home: Path, make_event: MakeEvent) -> None:
    root = home / "records"
    _records_at(root, make_event, datetime.now(UTC))
    sql = "SELECT request_id FROM predictions ORDER BY event_time"
    rows = json.loads(invoke("records", "query", sql, "--limit", "2", "--json").stdout)
    assert rows == [{"request_id": "r0"}, {"request_id": "r1"}]
    assert "12" in invoke("records", "query", "SELECT count(*) AS n FROM predictions").stdout
    tail = invoke("records", "tail", "echo", "-n", "3").stdout
    assert "r11" in tail and "r9" in tail and "r8" not in tail
    tail_json = json.loads(invoke("records", "tail", "echo", "-n", "2", "--json").stdout)
    assert [r["request_id"] for r in tail_json] == ["r11", "r10"]
    none = invoke("records", "tail", "ecko").stdout  # a typo: say which models have records
    assert "No prediction records of 'ecko' yet. Models with records: echo." in none
    assert json.loads(invoke("records", "tail", "ecko", "--json").stdout) == []
    compacted = json.loads(invoke("records", "compact", "--model", "echo", "--json").stdout)
    assert compacted["segments_before"] == 3 and compacted["segments_after"] == 1
    assert "1 → 1 segments, 12 rows" in invoke("records", "compact").stdout  # nothing left
    check = json.loads(invoke("records", "check", "--json").stdout)
    assert check == {"ok": True, "segments": 1, "rows": 12, "corrupted": [], "journals": 0}
    # a corrupted segment: check exits 1, queries warn and keep the rest
    _records_at(root, make_event, datetime.now(UTC) + timedelta(hours=1))
    victim = list_segments(root, "predictions")[-1]
    victim.write_bytes(b"garbage")
    bad = invoke("records", "check")
    assert bad.exit_code == 1 and victim.name in bad.stdout
    assert "3 readable segments, 20 rows" in bad.stdout
    counted = invoke("records", "query", "SELECT 'total:' || count(*) FROM predictions")
    assert "total:20" in counted.stdout
    assert "corrupted record segment" in counted.stderr


def test_outcomes_ingest(invoke: Invoke, home: Path, make_event: MakeEvent) -> None:
    model = home.parent / "echo.py"
    model.write_text(
        "class Echo:\n    def predict(self, records):\n        return [0.5] * len(records)\n"
    )
    Workspace.open(Settings.from_env()).register(
        "echo", flavor="python", artifact=model, entry="echo:Echo",
        signature={"inputs": [{"name": "x", "type": "float"}], "output": {"kind": "score"}},
    )  # fmt: skip
    now = datetime.now(UTC)
    _records_at(home / "records", make_event, now)
    csv = home / "labels.csv"
    csv.write_text(
        "request_id,index,id,label,observed_at\n"
        f"r1,0,,1,{now.isoformat()}\n"
        f",,u5,0,{now.isoformat()}\n"
        f",,u999,1,{now.isoformat()}\n"
    )
    result = invoke("outcomes", "ingest", str(csv), "--model", "echo", "--json")
    report = json.loads(result.stdout)
    assert report["accepted"] == 3 and report["rejected"] == [] and report["unmatched"] == 1
    jsonl = home / "labels.jsonl"
    future = (now + timedelta(days=1)).isoformat()
    jsonl.write_text(
        '{"request_id": "r2", "index": 0, "label": 1}\n'
        '{"request_id": "r3", "index": 0, "label": [1]}\n'
        f'{{"id": "u3", "label": 1, "observed_at": "{future}"}}\n'
    )
    partly = invoke("outcomes", "ingest", str(jsonl), "--model", "echo")
    assert partly.exit_code == 1
    assert "1 accepted, 2 rejected, 0 unmatched" in partly.stdout
    assert "Outcome 1 is invalid" in partly.stderr and "lies in the future" in partly.stderr
    unknown = invoke("outcomes", "ingest", str(csv), "--model", "nope")
    assert isinstance(unknown.exception, ModelNotFoundError)
    stored = RecordStore(home / "records").query("SELECT count(*) FROM outcomes")
    assert stored.fetchall() == [(4,)]


@pytest.mark.slow
def test_errors_through_the_real_entry_point(flotilla_cli: Run, tmp_path: Path) -> None:
    error = flotilla_cli("records", "query", "SELECT nope FROM predictions", check=False)
    assert error.returncode == 1 and "views 'predictions'" in error.stderr
    assert "Traceback" not in error.stderr

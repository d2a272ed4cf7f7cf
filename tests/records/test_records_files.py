"""Outcome files: CSV, Parquet and JSON lines into outcome dicts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flotilla.errors import ConfigError, RecordsError
from flotilla.records import OutcomeStore, read_outcome_file
from flotilla.testing import FakeClock


def test_csv_keeps_ids_as_text_and_mixes_key_kinds(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.csv"
    path.write_text(
        "request_id,index,id,label,observed_at,extra\n"
        "007,1,,1,2026-03-01T12:00:00Z,x\n"
        ",,u42,0,2026-03-01T13:00:00,y\n"
    )
    rows = read_outcome_file(path)
    assert rows == [
        {"request_id": "007", "index": 1, "id": None, "label": 1,
         "observed_at": "2026-03-01T12:00:00Z"},
        {"request_id": None, "index": None, "id": "u42", "label": 0,
         "observed_at": "2026-03-01T13:00:00"},
    ]  # fmt: skip
    clock = FakeClock(start=datetime(2026, 3, 2, tzinfo=UTC))
    report = OutcomeStore(tmp_path / "records", clock=clock).ingest("churn", rows)
    assert report.accepted == 2 and report.rejected == []


def test_parquet_with_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.parquet"
    when = datetime(2026, 3, 1, 12, tzinfo=UTC)
    pq.write_table(
        pa.table({"id": ["u1", "u2"], "label": [1.5, 2.0], "observed_at": [when, when]}), path
    )
    rows = read_outcome_file(path)
    assert rows == [
        {"id": "u1", "label": 1.5, "observed_at": when},
        {"id": "u2", "label": 2.0, "observed_at": when},
    ]


def test_jsonl_and_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.jsonl"
    path.write_text('{"id": "u1", "label": 1}\n\n{"request_id": "r1", "label": [1]}\n')
    assert read_outcome_file(path) == [{"id": "u1", "label": 1}, {"request_id": "r1", "label": [1]}]
    path.write_text('{"id": "u1", "label": 1}\n{"id": oops}\n')
    with pytest.raises(RecordsError, match=r"Line 2 of .* is not valid JSON"):
        read_outcome_file(path)


@pytest.mark.parametrize(
    ("name", "content", "error", "message"),
    [
        ("o.xlsx", "x", ConfigError, "must end in one of"),
        ("missing.csv", None, ConfigError, "does not exist"),
        ("nolabel.csv", "id,value\nu1,1\n", RecordsError, "must have a 'label' column"),
        ("broken.parquet", "not parquet at all", RecordsError, "cannot be read as parquet"),
    ],
    ids=["extension", "missing", "no-label-column", "not-parquet"],
)
def test_unreadable_files_are_refused(
    tmp_path: Path, name: str, content: str | None, error: type[Exception], message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(error, match=message):
        read_outcome_file(path)

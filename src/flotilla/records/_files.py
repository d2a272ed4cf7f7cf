"""Reading outcome files (CSV, Parquet, JSON lines) into outcome dicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from flotilla.errors import ConfigError, RecordsError

__all__ = ["OUTCOME_FILE_FORMATS", "read_outcome_file"]

OUTCOME_FILE_FORMATS = (".csv", ".parquet", ".jsonl", ".ndjson")
_COLUMNS = ("request_id", "index", "id", "label", "observed_at")
_TEXT_COLUMNS = ("request_id", "id", "observed_at")


def _csv(path: Path) -> pa.Table:
    # ids and times stay text so '007' keeps its zeros and times are parsed by one rule
    header = path.open(encoding="utf-8").readline().strip().split(",")
    types = {name.strip(): pa.string() for name in header if name.strip() in _TEXT_COLUMNS}
    options = pacsv.ConvertOptions(column_types=types, strings_can_be_null=True)
    return pacsv.read_csv(path, convert_options=options)


def _jsonl(path: Path) -> list[Any]:
    rows: list[Any] = []
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise RecordsError(
                    f"Line {number} of {path} is not valid JSON ({exc}). Fix or remove it; "
                    "nothing was ingested."
                ) from None
    return rows


def _from_table(table: pa.Table, path: Path) -> list[dict[str, Any]]:
    present = [c for c in _COLUMNS if c in table.column_names]
    if "label" not in present or not ({"request_id", "id"} & set(present)):
        raise RecordsError(
            f"The outcome file {path} must have a 'label' column and a 'request_id' (with "
            f"'index') or 'id' column. Got columns {table.column_names} instead."
        )
    rows: list[dict[str, Any]] = table.select(present).to_pylist()
    return rows


def read_outcome_file(path: Path) -> list[Any]:
    """The outcomes in ``path`` as dicts, ready for :meth:`OutcomeStore.ingest`.

    Formats by extension: ``.csv`` (header row), ``.parquet``, ``.jsonl``/``.ndjson`` (one
    JSON object per line). Columns: ``request_id`` and ``index``, or ``id``; ``label``;
    ``observed_at``. Other columns are ignored.

    Raises:
        ConfigError: unknown extension or missing file.
        RecordsError: the file cannot be parsed (nothing is ingested).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTCOME_FILE_FORMATS:
        raise ConfigError(
            f"The outcome file must end in one of {', '.join(OUTCOME_FILE_FORMATS)}. "
            f"Got {path.name!r} instead."
        )
    if not path.is_file():
        raise ConfigError(f"The outcome file {path} does not exist. Check the path.")
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl(path)
    try:
        table = _csv(path) if suffix == ".csv" else pq.read_table(path)
    except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:
        raise RecordsError(
            f"The outcome file {path} cannot be read as {suffix[1:]} ({exc}). "
            "Check its format; nothing was ingested."
        ) from None
    return _from_table(table, path)

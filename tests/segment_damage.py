"""Damage a Parquet segment inside its pages, leaving its footer readable (records tests)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest


def damage_page(segment: Path, where: str, column: str) -> None:
    """Flip one byte in the pages of ``column``; the footer stays readable.

    Only a query that reads ``column`` fails on it (DuckDB reads only the columns it needs).

    ``header``: the first page header (DuckDB fails without naming the file);
    ``payload``: inside the compressed page data (DuckDB names the file).
    """
    group = pq.read_metadata(segment).row_group(0)
    chunk = next(
        c for c in map(group.column, range(group.num_columns)) if c.path_in_schema == column
    )
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    pos = chunk.data_page_offset if where == "header" else start + chunk.total_compressed_size // 2
    data = bytearray(segment.read_bytes())
    data[pos] ^= 0xFF
    segment.write_bytes(bytes(data))
    pq.read_metadata(segment)  # the footer check at connect time sees nothing wrong
    with pytest.raises(duckdb.Error):  # ... but DuckDB fails reading the pages
        duckdb.connect().read_parquet(str(segment)).select(column).fetchall()

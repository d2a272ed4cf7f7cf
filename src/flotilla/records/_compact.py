"""Compaction: merge small segments of a partition without ever losing or double counting.

The steps for one group of sources in one partition folder, each safe to die after:

1. write the merged file under a temporary name ``.compact-<uuid>.parquet.tmp`` (its Parquet
   metadata lists the sources under ``flotilla.compacted_from``);
2. write the journal ``_compact-<uuid>.json`` (merged name, temporary name, sources),
   atomically;
3. rename the merged file into place (``part-<time>-<uuid>.parquet``);
4. delete the sources;
5. delete the journal.

Readers hide the sources as soon as the merged file is in place (journal or metadata), and
recovery (at the start of every compaction and query) finishes step 4 or undoes steps 1-2.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from flotilla.errors import ConfigError, RecordsError
from flotilla.records._catalog import COMPACTED_FROM_KEY, SegmentCatalog, recover_locked
from flotilla.records._segments import (
    KINDS,
    compaction_lock,
    partitions,
    write_atomic_bytes,
)

__all__ = ["CompactReport", "CompactStep", "compact"]

DEFAULT_TARGET_BYTES = 64 * 1024 * 1024

STEPS = ("merged_written", "journal_written", "merged_renamed", "sources_deleted", "done")
"""The steps reported to ``progress``, in order."""


@dataclass(frozen=True)
class CompactStep:
    """One step of a compaction, reported to the ``progress`` callback."""

    partition: Path
    step: str
    sources: int
    rows: int


@dataclass
class CompactReport:
    """What a compaction did.

    Attributes:
        partitions: partition folders looked at.
        merged: one ``{"partition", "merged", "sources", "rows"}`` per merged group.
        segments_before: segments looked at (good ones) before merging.
        segments_after: segments left afterwards.
        rows: rows in the segments looked at (unchanged by compaction).
        skipped: ``{"path", "error"}`` for segments that could not be read and were left alone.
    """

    partitions: int = 0
    merged: list[dict[str, Any]] = field(default_factory=list)
    segments_before: int = 0
    segments_after: int = 0
    rows: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "partitions": self.partitions,
            "merged": self.merged,
            "segments_before": self.segments_before,
            "segments_after": self.segments_after,
            "rows": self.rows,
            "skipped": self.skipped,
        }


def _groups(paths: list[Path], target_bytes: int) -> list[list[Path]]:
    groups: list[list[Path]] = []
    current: list[Path] = []
    size = 0
    for path in paths:
        length = path.stat().st_size
        if current and size + length > target_bytes:
            groups.append(current)
            current, size = [], 0
        current.append(path)
        size += length
    groups.append(current)
    return [g for g in groups if len(g) >= 2]


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    columns = []
    for f in schema:
        if f.name in table.column_names:
            columns.append(table[f.name].cast(f.type))
        else:
            columns.append(pa.nulls(table.num_rows, f.type))
    return pa.table(columns, schema=schema)


def _write_merged(tmp: Path, sources: list[Path]) -> int:
    schema = pa.unify_schemas([pq.read_schema(p) for p in sources], promote_options="permissive")
    names = [p.name for p in sources]
    schema = schema.remove_metadata().with_metadata({COMPACTED_FROM_KEY: orjson.dumps(names)})
    rows = 0
    with pq.ParquetWriter(tmp, schema, compression="zstd", write_page_checksum=True) as out:
        for source in sources:
            table = pq.ParquetFile(source, page_checksum_verification=True).read()
            out.write_table(_conform(table, schema))
            rows += table.num_rows
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    return rows


def _merge(
    folder: Path,
    sources: list[Path],
    expected_rows: int,
    progress: Callable[[CompactStep], Any] | None,
) -> dict[str, Any]:
    token = uuid.uuid4().hex[:12]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    merged = folder / f"part-{stamp}-{token}.parquet"
    tmp = folder / f".compact-{token}.parquet.tmp"
    journal = folder / f"_compact-{token}.json"

    def report(step: str) -> None:
        if progress is not None:
            progress(CompactStep(folder, step, len(sources), expected_rows))

    try:
        rows = _write_merged(tmp, sources)
        if rows != expected_rows or pq.read_metadata(tmp).num_rows != expected_rows:
            raise RecordsError(
                f"Compacting {folder} produced {rows} rows from sources holding "
                f"{expected_rows}; nothing was changed. Run 'flotilla records check'."
            )
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    report("merged_written")
    body = {"merged": merged.name, "temp": tmp.name, "sources": [p.name for p in sources]}
    write_atomic_bytes(journal, orjson.dumps(body))
    report("journal_written")
    os.replace(tmp, merged)
    report("merged_renamed")
    for source in sources:
        source.unlink(missing_ok=True)
    report("sources_deleted")
    journal.unlink(missing_ok=True)
    report("done")
    return {"partition": str(folder), "merged": merged.name, "sources": len(sources), "rows": rows}


def _compact_folder(
    catalog: SegmentCatalog,
    folder: Path,
    report: CompactReport,
    target_bytes: int,
    progress: Callable[[CompactStep], Any] | None,
) -> None:
    scan = catalog.folder_segments(folder, full=True)
    report.partitions += 1
    report.segments_before += len(scan.good)
    report.rows += scan.rows
    report.skipped.extend({"path": str(p), "error": e} for p, e in scan.corrupted)
    small = [p for p in scan.good if p.stat().st_size < target_bytes]
    after = len(scan.good)
    for group in _groups(small, target_bytes):
        expected = sum(catalog.entry(p, full=True).rows for p in group)
        report.merged.append(_merge(folder, group, expected, progress))
        after -= len(group) - 1
    report.segments_after += after


def compact(
    root: Path,
    *,
    model: str | None = None,
    target_bytes: int = DEFAULT_TARGET_BYTES,
    progress: Callable[[CompactStep], Any] | None = None,
) -> CompactReport:
    """Merge the small segments of every partition (of one model when given).

    Segments smaller than ``target_bytes`` are merged in groups of at most ``target_bytes``.
    Corrupted segments are left alone and listed in ``skipped``. Holds the records root's
    compaction lock, so two compactions never run at once; writers keep writing meanwhile.

    Raises:
        RecordsError: a merge would not preserve the row count (nothing is changed).
    """
    if target_bytes < 1:
        raise ConfigError(
            "The 'target_bytes' of compact must be a positive integer. "
            f"Got {target_bytes!r} instead."
        )
    report = CompactReport()
    catalog = SegmentCatalog(root)
    with compaction_lock(root):
        recover_locked(root, KINDS, model=model, catalog=catalog)
        for kind in KINDS:
            for folder in partitions(root, kind, model):
                _compact_folder(catalog, folder, report, target_bytes, progress)
    return report

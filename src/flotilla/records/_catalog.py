"""Which segments are readable and counted: validation, journal recovery, hiding of sources."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq

from flotilla.records._segments import (
    active_journals,
    compaction_lock,
    partitions,
    read_journal,
    segment_error,
    stale_temps,
    superseded,
    write_atomic_bytes,
)

__all__ = [
    "COMPACTED_FROM_KEY",
    "KNOWN_BAD_FILE",
    "CorruptSegmentWarning",
    "Scan",
    "SegmentCatalog",
    "recover",
]

logger = logging.getLogger("flotilla.records")

_CACHE_LIMIT = 200_000

KNOWN_BAD_FILE = ".corrupted.json"
"""Under the records root: segments the last full check found corrupted (queries skip them)."""

COMPACTED_FROM_KEY = b"flotilla.compacted_from"
"""Parquet key-value metadata of a merged segment: the JSON list of its source file names."""


class CorruptSegmentWarning(UserWarning):
    """A segment on disk cannot be read; it is skipped (run ``flotilla records check``)."""


@dataclass(frozen=True)
class _Entry:
    size: int
    mtime_ns: int
    error: str | None
    rows: int
    sources: tuple[str, ...]


@dataclass
class Scan:
    """The result of looking at the segments of one kind."""

    good: list[Path] = field(default_factory=list)
    corrupted: list[tuple[Path, str]] = field(default_factory=list)
    rows: int = 0


def _stamped(corrupted: list[tuple[Path, str]]) -> dict[str, Any]:
    """``{path: [size, mtime_ns, error]}`` of the segments still on disk (the known-bad list)."""
    known: dict[str, Any] = {}
    for path, error in corrupted:
        with contextlib.suppress(FileNotFoundError):
            stat = path.stat()
            known[str(path)] = [stat.st_size, stat.st_mtime_ns, error]
    return known


def _inspect(path: Path, *, full: bool) -> _Entry:
    stat = path.stat()
    error = segment_error(path, full=full)
    rows = 0
    sources: tuple[str, ...] = ()
    if error is None:
        meta = pq.read_metadata(path)
        rows = meta.num_rows
        raw = (meta.metadata or {}).get(COMPACTED_FROM_KEY)
        if raw:
            with contextlib.suppress(orjson.JSONDecodeError):
                sources = tuple(str(s) for s in orjson.loads(raw))
    return _Entry(stat.st_size, stat.st_mtime_ns, error, rows, sources)


class SegmentCatalog:
    """Validates segments (caching by size and mtime) and lists the ones to read.

    A segment is hidden when a finished compaction replaced it: its name is listed by a
    journal whose merged file is in place, or by the ``compacted_from`` metadata of a merged
    segment in the same folder. So a record is never counted twice, whatever step a
    compaction died at.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[tuple[Path, bool], _Entry] = {}
        self._known_bad: dict[str, Any] = {}
        self._quarantined: dict[str, Any] = {}  # found by reads, kept if the list is unwritable

    @property
    def _known_bad_file(self) -> Path:
        return self.root / KNOWN_BAD_FILE

    def _load_known_bad(self) -> None:
        try:
            data = orjson.loads(self._known_bad_file.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            data = {}
        self._known_bad = {**(data if isinstance(data, dict) else {}), **self._quarantined}

    def remember_corrupted(self, corrupted: list[tuple[Path, str]]) -> None:
        """Record segments a full check found corrupted, so cheap scans skip them too."""
        known = _stamped(corrupted)
        if known:
            write_atomic_bytes(self._known_bad_file, orjson.dumps(known))
        else:
            self._known_bad_file.unlink(missing_ok=True)
        self._known_bad = known
        self._quarantined = {}

    def find_corrupted(self, paths: Iterable[Path]) -> list[tuple[Path, str]]:
        """The segments among ``paths`` that a full read (every page, checksums) fails on.

        Results are cached like :meth:`entry`'s; a segment removed meanwhile is left out.
        """
        found: list[tuple[Path, str]] = []
        for path in paths:
            try:
                error = self.entry(path, full=True).error
            except FileNotFoundError:
                continue
            if error is not None:
                found.append((path, error))
        return found

    def quarantine(self, corrupted: list[tuple[Path, str]]) -> None:
        """Add segments found corrupted while reading them to the list of the last check.

        From then on every scan skips them, as if ``records check`` had found them (the next
        check rewrites the list). When the list cannot be written (a read-only root), this
        catalog still skips them.
        """
        added = _stamped(corrupted)
        self._quarantined.update(added)
        self._load_known_bad()
        try:
            write_atomic_bytes(self._known_bad_file, orjson.dumps(self._known_bad))
        except OSError as exc:
            logger.warning("Could not update %s: %s", self._known_bad_file, exc)

    def entry(self, path: Path, *, full: bool = False) -> _Entry:
        """The (cached) validation result of one segment."""
        stat = path.stat()
        key = (path, full)
        known = self._known_bad.get(str(path))
        if not full and isinstance(known, list) and known[:2] == [stat.st_size, stat.st_mtime_ns]:
            return _Entry(stat.st_size, stat.st_mtime_ns, str(known[2]), 0, ())
        cached = self._cache.get(key)
        if cached is not None and (cached.size, cached.mtime_ns) == (
            stat.st_size,
            stat.st_mtime_ns,
        ):
            return cached
        entry = _inspect(path, full=full)
        if len(self._cache) >= _CACHE_LIMIT:  # long-lived processes: forget deleted files
            self._cache.clear()
        self._cache[key] = entry
        return entry

    def scan(
        self, kind: str, model: str | None = None, *, full: bool = False, warn: bool = True
    ) -> Scan:
        """Good and corrupted segments of ``kind`` (of one model when given).

        ``full=False`` reads footers only (plus the corrupted list of the last full check);
        ``full=True`` reads every page and verifies checksums.
        """
        self._load_known_bad()
        result = Scan()
        for folder in partitions(self.root, kind, model):
            self._scan_folder(folder, result, full=full, warn=warn)
        return result

    def folder_segments(self, folder: Path, *, full: bool = False) -> Scan:
        """Good and corrupted segments of one partition folder (no warnings)."""
        result = Scan()
        self._scan_folder(folder, result, full=full, warn=False)
        return result

    def _scan_folder(self, folder: Path, result: Scan, *, full: bool, warn: bool) -> None:
        hidden = superseded(folder)
        found: list[tuple[Path, _Entry]] = []
        for path in sorted(folder.glob("part-*.parquet")):
            if path.name in hidden:
                continue
            try:
                entry = self.entry(path, full=full)
            except FileNotFoundError:  # removed by a compaction meanwhile
                continue
            found.append((path, entry))
            hidden.update(entry.sources)
        for path, entry in found:
            if path.name in hidden:
                continue
            if entry.error is not None:
                result.corrupted.append((path, entry.error))
                if warn:
                    warnings.warn(
                        f"Skipping the corrupted record segment {path} ({entry.error}). "
                        "Run 'flotilla records check' and move the file away.",
                        CorruptSegmentWarning,
                        stacklevel=4,
                    )
                continue
            result.good.append(path)
            result.rows += entry.rows


def _resolve_journal(folder: Path, journal: Path) -> None:
    data = read_journal(journal)
    if data is None:
        logger.warning("Ignoring the unreadable compaction journal %s.", journal)
        return
    merged = data.get("merged")
    sources = data.get("sources")
    temp = data.get("temp")
    if isinstance(merged, str) and (folder / merged).exists():
        for name in sources if isinstance(sources, list) else []:
            (folder / str(name)).unlink(missing_ok=True)
    elif isinstance(temp, str):
        (folder / temp).unlink(missing_ok=True)
    journal.unlink(missing_ok=True)


def _drop_replaced_sources(catalog: SegmentCatalog, folder: Path) -> None:
    for path in sorted(folder.glob("part-*.parquet")):
        try:
            entry = catalog.entry(path)
        except FileNotFoundError:
            continue
        for name in entry.sources:
            if name != path.name:
                (folder / name).unlink(missing_ok=True)


def recover(
    root: Path,
    kinds: tuple[str, ...],
    *,
    model: str | None = None,
    blocking: bool = False,
    catalog: SegmentCatalog | None = None,
) -> bool:
    """Finish or undo compactions that died halfway; returns whether recovery ran.

    Takes the compaction lock (without waiting unless ``blocking``); when another process
    holds it, nothing is touched and readers rely on the journals instead. With ``model``,
    only that model's partitions are looked at. A missing root is left alone (not created).
    """
    if not root.is_dir():
        return False
    with compaction_lock(root, blocking=blocking) as acquired:
        if not acquired:
            return False
        recover_locked(root, kinds, model=model, catalog=catalog)
    return True


def recover_locked(
    root: Path,
    kinds: tuple[str, ...],
    *,
    model: str | None = None,
    catalog: SegmentCatalog | None = None,
) -> None:
    """Recovery for a caller that already holds the compaction lock."""
    catalog = catalog or SegmentCatalog(root)
    for kind in kinds:
        for folder in partitions(root, kind, model):
            for journal in active_journals(folder):
                _resolve_journal(folder, journal)
            _drop_replaced_sources(catalog, folder)
            for tmp in stale_temps(folder):
                tmp.unlink(missing_ok=True)

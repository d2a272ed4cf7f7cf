"""The on-disk layout of record segments: naming, atomic writes, listing, validation.

Layout under the records root::

    predictions/model=<m>/date=<YYYY-MM-DD>/part-<time>-<uuid>.parquet
    outcomes/model=<m>/date=<YYYY-MM-DD>/part-<time>-<uuid>.parquet
    <kind>/model=<m>/date=<d>/_compact-<uuid>.json   (a compaction in progress)

A segment becomes visible only by ``os.replace`` of a finished temporary file (a name that
starts with ``.``), so a reader never sees half a file. Model names are percent-encoded in
folder names; the ``model`` column inside each file is the truth.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote, unquote

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = [
    "KINDS",
    "active_journals",
    "compaction_lock",
    "list_segments",
    "partition_dir",
    "read_journal",
    "segment_error",
    "write_atomic_bytes",
    "write_partitioned",
    "write_segment",
]

KINDS = ("predictions", "outcomes")
_STALE_TEMP_S = 3600.0


def partition_dir(root: Path, kind: str, model: str, day: date) -> Path:
    """The folder of one (kind, model, date) partition."""
    return root / kind / f"model={quote(model, safe='')}" / f"date={day.isoformat()}"


def model_of_dir(folder: Path) -> str:
    """The model name encoded in a ``model=<m>`` folder name."""
    return unquote(folder.name.partition("=")[2])


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_segment(folder: Path, table: pa.Table, *, now: datetime | None = None) -> Path:
    """Write ``table`` as a new segment in ``folder`` atomically and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%f")
    name = f"part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
    tmp = folder / f".{name}.tmp"
    try:
        pq.write_table(table, tmp, compression="zstd", write_page_checksum=True)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, folder / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    return folder / name


def write_partitioned(
    root: Path, kind: str, table: pa.Table, time_column: str, *, now: datetime | None = None
) -> list[Path]:
    """Split ``table`` by (model, UTC date of ``time_column``) and write one segment each."""
    if table.num_rows == 0:
        return []
    days = pc.cast(table[time_column], pa.date32())
    keyed = table.append_column("__day", days)
    keys = keyed.group_by(["model", "__day"]).aggregate([]).to_pylist()
    paths: list[Path] = []
    for key in keys:
        mask = pc.and_(
            pc.equal(keyed["model"], key["model"]), pc.equal(keyed["__day"], key["__day"])
        )
        part = table.filter(mask)
        folder = partition_dir(root, kind, key["model"], key["__day"])
        paths.append(write_segment(folder, part, now=now))
    return paths


def write_atomic_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def read_journal(path: Path) -> dict[str, object] | None:
    """The content of a compaction journal, or ``None`` when it cannot be read."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _partitions(root: Path, kind: str, model: str | None) -> Iterator[Path]:
    base = root / kind
    if not base.is_dir():
        return
    if model is not None:
        model_dirs = [base / f"model={quote(model, safe='')}"]
    else:
        model_dirs = sorted(p for p in base.glob("model=*") if p.is_dir())
    for model_dir in model_dirs:
        if model_dir.is_dir():
            yield from sorted(p for p in model_dir.glob("date=*") if p.is_dir())


def partitions(root: Path, kind: str, model: str | None = None) -> list[Path]:
    """Every partition folder of ``kind`` (of one model when given), sorted."""
    return list(_partitions(root, kind, model))


def active_journals(folder: Path) -> list[Path]:
    """The compaction journals present in a partition folder."""
    return sorted(folder.glob("_compact-*.json"))


def superseded(folder: Path) -> set[str]:
    """Names of segments that a finished-but-not-cleaned compaction has replaced."""
    out: set[str] = set()
    for journal in active_journals(folder):
        data = read_journal(journal)
        if data is None:
            continue
        merged = data.get("merged")
        sources = data.get("sources")
        if isinstance(merged, str) and (folder / merged).exists() and isinstance(sources, list):
            out.update(str(s) for s in sources)
    return out


def list_segments(root: Path, kind: str, model: str | None = None) -> list[Path]:
    """Every visible segment of ``kind``, honouring compaction journals (never double counts)."""
    out: list[Path] = []
    for folder in _partitions(root, kind, model):
        hidden = superseded(folder)
        out.extend(p for p in sorted(folder.glob("part-*.parquet")) if p.name not in hidden)
    return out


def stale_temps(folder: Path, *, now: float | None = None) -> list[Path]:
    """Temporary files no live writer can still own: compaction temps and old writer temps."""
    moment = time.time() if now is None else now
    out: list[Path] = []
    for tmp in folder.glob(".*.tmp"):
        if tmp.name.startswith((".compact-", "._compact-")):
            out.append(tmp)
            continue
        with contextlib.suppress(FileNotFoundError):
            if moment - tmp.stat().st_mtime > _STALE_TEMP_S:
                out.append(tmp)
    return out


def segment_error(path: Path, *, full: bool = False) -> str | None:
    """Why the segment at ``path`` cannot be read, or ``None`` when it is fine.

    ``full=False`` reads only the footer (cheap: catches truncated files and foreign bytes);
    ``full=True`` also reads every page and verifies the page checksums.
    """
    try:
        if full:
            pq.ParquetFile(path, page_checksum_verification=True).read()
        else:
            pq.read_metadata(path)
    except (OSError, pa.ArrowException, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@contextlib.contextmanager
def compaction_lock(root: Path, *, blocking: bool = True) -> Iterator[bool]:
    """Hold the records root's compaction lock; yields whether it was acquired."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".compact.lock", "a+b") as fh:
        flags = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            fcntl.flock(fh.fileno(), flags)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

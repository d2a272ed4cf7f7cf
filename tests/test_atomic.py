"""Atomic writes leave files as a plain write would: contents, permissions, no leftovers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from flotilla._atomic import write_bytes_atomic, write_text_atomic


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_umask_mode_not_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        target = write_text_atomic(tmp_path / "deep" / "report.html", "<p>hi</p>")
    finally:
        os.umask(old)
    assert target.read_text() == "<p>hi</p>"
    assert _mode(target) == 0o640  # 0o666 less the umask, as open() would give
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]  # no temp file left


def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    target.write_bytes(b"old")
    target.chmod(0o604)
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new" and _mode(target) == 0o604


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    from flotilla._atomic import write_atomic

    target = tmp_path / "keep.txt"
    target.write_text("old")

    def fail(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]

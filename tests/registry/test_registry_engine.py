"""Engines: SQLite pragmas, unreachable PostgreSQL, read-only SQLite, migrations."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from flotilla.errors import ConfigError, StorageError
from flotilla.registry import Registry, make_engine, migrate
from flotilla.settings import Settings


def test_sqlite_engine_creates_its_folder_and_sets_pragmas(tmp_path: Path) -> None:
    db = tmp_path / "deep" / "er" / "registry.db"
    engine = make_engine(f"sqlite:///{db}")
    try:
        assert db.parent.is_dir()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert (conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) >= 1000
    finally:
        engine.dispose()


def test_unreachable_postgres_is_a_storage_error_with_masked_password() -> None:
    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        make_engine("postgresql+psycopg://bob:s3cret@127.0.0.1:1/flotilla")
    message = str(info.value)
    assert "127.0.0.1:1" in message and "s3cret" not in message and "***" in message
    assert "server is running" in message
    assert time.monotonic() - started < 30  # generous: refused connections fail at once


def test_read_only_sqlite_is_a_storage_error(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table t(a)")
    with pytest.raises(StorageError, match=r"read-only.*writable"):
        make_engine(f"sqlite:///file:{db}?mode=ro&uri=true")


def test_read_only_sqlite_folder_is_a_storage_error(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        try:
            (folder / "probe").touch()
        except PermissionError:
            pass
        else:
            pytest.skip("running as root: permission bits do not stop writes")
        with pytest.raises(StorageError, match="registry database"):
            make_engine(f"sqlite:///{folder / 'sub' / 'registry.db'}")
    finally:
        folder.chmod(0o755)


def test_sqlite_path_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="is a folder"):
        make_engine(f"sqlite:///{tmp_path}")


@pytest.mark.parametrize("url", ["mysql://x@y/z", "not a url://"])
def test_unsupported_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match=r"SQLite or PostgreSQL|must look like"):
        make_engine(url)


def test_in_memory_sqlite_works(tmp_path: Path) -> None:
    engine = make_engine("sqlite:///:memory:")
    migrate(engine)
    assert "fl_models" in sa.inspect(engine).get_table_names()


def test_migrate_twice_and_reopen(settings: Settings) -> None:
    engine = make_engine(settings.db_url)
    try:
        migrate(engine)
        migrate(engine)
        with engine.connect() as conn:
            head = conn.exec_driver_sql("select version_num from fl_registry_alembic_version")
            assert [r[0] for r in head] == ["r0002"]
    finally:
        engine.dispose()
    with Registry.open(settings) as reg:
        assert reg.list_models() == []


def test_database_from_a_newer_flotilla_is_refused(settings: Settings) -> None:
    engine = make_engine(settings.db_url)
    try:
        migrate(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("update fl_registry_alembic_version set version_num = 'r9999'")
        with pytest.raises(StorageError, match="newer Flotilla"):
            migrate(engine)
    finally:
        engine.dispose()

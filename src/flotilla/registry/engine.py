"""Database engines for the registry (SQLite by default, PostgreSQL at scale) and migrations.

SQLite runs in WAL mode with foreign keys on and a busy timeout, and every writing
transaction starts with ``BEGIN IMMEDIATE`` so that concurrent writers (threads or processes)
queue for the lock instead of failing halfway. PostgreSQL runs at READ COMMITTED; the registry
serialises what must be serialised with row locks (``UPDATE ... RETURNING``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from flotilla.errors import ConfigError, StorageError

__all__ = ["make_engine", "migrate", "run_read", "run_write"]

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_S = 30.0
PG_CONNECT_TIMEOUT_S = 5
_WRITE_OPTION = "flotilla_write"
_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 0x464C4F54  # "FLOT": serialises concurrent migrations on PostgreSQL
_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock


def _masked(url: sa.URL) -> str:
    return url.render_as_string(hide_password=True)


def _sqlite_path(url: sa.URL) -> Path | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    database = url.database or ""
    if database in ("", ":memory:") or "mode=memory" in str(url):
        return None
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
    return Path(database)


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except Exception:  # a read-only file keeps its mode; the probe reports it
            pass
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _sqlite_engine(url: sa.URL) -> Engine:
    path = _sqlite_path(url)
    if path is None:
        engine = sa.create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        _install_sqlite_hooks(engine)
        return engine
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"Cannot create the folder {str(path.parent)!r} for the registry database: "
            f"{exc.strerror or exc}. Choose a writable FLOTILLA_HOME or FLOTILLA_DB_URL."
        ) from exc
    if path.is_dir():
        raise StorageError(
            f"The registry database path {str(path)!r} is a folder. Point FLOTILLA_DB_URL at "
            f"a file, e.g. 'sqlite:///{path / 'registry.db'}'."
        )
    engine = sa.create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
    )
    _install_sqlite_hooks(engine)
    return engine


def _probe(engine: Engine) -> None:
    """Fail now, with a clear message, when the database cannot be reached or written."""

    def check(conn: Connection) -> None:
        if conn.dialect.name == "sqlite":
            value = conn.exec_driver_sql("PRAGMA user_version").scalar()
            conn.exec_driver_sql(f"PRAGMA user_version={int(value or 0)}")  # a no-op write
        else:
            conn.execute(sa.text("SELECT 1"))

    try:
        with engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin() as tx:
                check(conn)
                tx.rollback()
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        raise storage_error(engine, exc) from exc


def make_engine(url: str) -> Engine:
    """Build a SQLAlchemy engine for the registry and check that it is usable.

    Args:
        url: ``sqlite:///path/registry.db`` (the parent folder is created) or
            ``postgresql+psycopg://user:pass@host:5432/db`` (``postgresql://`` means psycopg).

    Raises:
        ConfigError: the URL cannot be parsed or names an unsupported database.
        StorageError: PostgreSQL is unreachable (the message masks the password and says
            what to check) or the SQLite file/folder is read-only.

    Example:
        >>> engine = make_engine("sqlite:///:memory:")
        >>> engine.dialect.name
        'sqlite'
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(
            f"The registry database URL must look like 'sqlite:///path.db' or "
            f"'postgresql+psycopg://user@host:5432/db'. Got {url!r} instead."
        ) from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = _sqlite_engine(parsed)
    elif backend == "postgresql":
        engine = sa.create_engine(
            parsed,
            pool_pre_ping=True,
            connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S},
        )
    else:
        raise ConfigError(
            f"The registry database must be SQLite or PostgreSQL. Got {_masked(parsed)!r}; "
            f"use 'sqlite:///path.db' or 'postgresql+psycopg://user@host:5432/db'."
        )
    _probe(engine)
    return engine


def storage_error(engine: Engine, exc: BaseException) -> StorageError:
    """Turn a driver error into a :class:`StorageError` that says what to check."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    where = _masked(engine.url)
    if engine.dialect.name == "sqlite":
        path = _sqlite_path(engine.url)
        lowered = text.lower()
        if "readonly" in lowered or "read-only" in lowered:
            return StorageError(
                f"The registry database {str(path)!r} is read-only ({text}). Make the file "
                f"and its folder writable (chmod u+w), or copy it somewhere writable and point "
                f"FLOTILLA_DB_URL there."
            )
        if "unable to open" in lowered:
            return StorageError(
                f"Cannot open the registry database {str(path)!r} ({text}). Check that its "
                f"folder exists and is writable (SQLite also writes -wal/-shm files next to it)."
            )
        return StorageError(f"The registry database {str(path)!r} failed: {text}.")
    return StorageError(
        f"Cannot use the registry database at {where}: {text}. Check that the server is "
        f"running and reachable at that host and port, that the database exists and that the "
        f"user may connect; or unset FLOTILLA_DB_URL to use the embedded SQLite file."
    )


def _retryable(exc: sa.exc.DBAPIError) -> bool:
    if "database is locked" in str(exc.orig).lower():
        return True
    return getattr(exc.orig, "sqlstate", None) in _RETRY_SQLSTATES


def run_write(engine: Engine, fn: Callable[[Connection], T], *, attempts: int = 5) -> T:
    """Run ``fn(conn)`` in one writing transaction, retrying lock timeouts and deadlocks.

    Everything ``fn`` writes commits together or not at all. Errors raised by ``fn`` roll the
    transaction back and propagate; driver failures become :class:`StorageError`.
    """
    for attempt in range(attempts):
        try:
            with engine.connect() as conn:
                conn.execution_options(**{_WRITE_OPTION: True})
                with conn.begin():
                    return fn(conn)
        except (sa.exc.OperationalError, sa.exc.InternalError) as exc:
            if attempt + 1 < attempts and _retryable(exc):
                time.sleep(0.05 * 2**attempt + random.random() * 0.05)
                continue
            raise storage_error(engine, exc) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def run_read(engine: Engine, fn: Callable[[Connection], T]) -> T:
    """Run ``fn(conn)`` in one read transaction; driver failures become StorageError."""
    try:
        with engine.connect() as conn, conn.begin():
            return fn(conn)
    except (sa.exc.OperationalError, sa.exc.InternalError) as exc:
        raise storage_error(engine, exc) from exc


def migrate(engine: Engine) -> None:
    """Bring the registry schema up to date (Alembic ``upgrade head``); idempotent.

    Safe to call from several processes at once: SQLite serialises on its write lock,
    PostgreSQL on an advisory lock.

    Raises:
        StorageError: the database cannot be written, or it was migrated by a newer Flotilla.
    """
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))

    def upgrade(conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")

    try:
        run_write(engine, upgrade)
    except CommandError as exc:
        raise StorageError(
            f"Cannot migrate the registry database at {_masked(engine.url)}: {exc}. If it was "
            f"written by a newer Flotilla, upgrade this installation (pip install -U flotilla)."
        ) from exc

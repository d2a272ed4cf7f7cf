"""Shared fixtures: settings on a temporary home, and registry URLs for SQLite and PostgreSQL.

PostgreSQL tests use the server on 127.0.0.1:5432 (trust auth, user postgres). Each test
session creates its own throw-away database and drops it at the end. Without a server they
skip with a clear message, unless FLOTILLA_REQUIRE_POSTGRES=1 (as in CI), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flotilla.settings import Settings

PG_ADMIN_URL = os.environ.get(
    "FLOTILLA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _pg_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'flotilla[postgres]')"
    try:
        conninfo = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(conninfo, connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:
        return f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; dropped at the end."""
    why = _pg_available()
    if why is not None:
        if os.environ.get("FLOTILLA_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"FLOTILLA_REQUIRE_POSTGRES=1 but {why}")
        pytest.skip(f"PostgreSQL tests skipped: {why}")
    import psycopg

    name = f"flotilla_test_{uuid.uuid4().hex[:10]}"
    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A registry URL; the same test runs on SQLite and on PostgreSQL.

    On PostgreSQL each test gets its own schema-free database state by dropping all tables
    afterwards.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    url: str = request.getfixturevalue("postgres_url")
    yield url
    from sqlalchemy import MetaData, create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        md = MetaData()
        md.reflect(conn)
        for table in reversed(md.sorted_tables):
            conn.execute(text(f'DROP TABLE IF EXISTS "{table.name}" CASCADE'))
    engine.dispose()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Factory: settings rooted in a temporary home (``db_url=`` to pick the database)."""

    def factory(**overrides: object) -> Settings:
        home = overrides.pop("home", tmp_path / "home")
        return Settings(home=home, actor="tester", **overrides)  # type: ignore[arg-type]

    return factory


@pytest.fixture
def settings(make_settings: Callable[..., Settings], db_url: str) -> Settings:
    """Settings on a temporary home, parametrised over SQLite and PostgreSQL."""
    return make_settings(db_url=db_url)

"""Fixtures of the registry tests: a migrated registry on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flotilla.registry import Registry
from flotilla.settings import Settings
from flotilla.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves by hand."""
    return FakeClock()


@pytest.fixture
def registry(settings: Settings, clock: FakeClock) -> Iterator[Registry]:
    """A fresh registry (parametrised over SQLite and PostgreSQL by ``settings``)."""
    reg = Registry.open(settings, clock=clock)
    try:
        yield reg
    finally:
        reg.close()

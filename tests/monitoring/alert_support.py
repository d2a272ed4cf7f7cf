"""Helpers for the alert and incident tests: a fake metrics source and a registry factory."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from flotilla.registry import Registry
from flotilla.settings import Settings
from flotilla.testing import FakeClock

DAY0 = datetime(2026, 3, 2, tzinfo=UTC)
"""Midnight UTC: the first day with traffic in the simulations."""

Numbers = dict[str, float | None]


class FakeSource:
    """Health numbers from a function of (model, day index of the window start)."""

    def __init__(self, numbers: Callable[[str, int], Numbers | None]) -> None:
        self.numbers = numbers
        self.calls: list[tuple[str, datetime, datetime]] = []

    def metrics(self, model: str, start: datetime, end: datetime) -> Mapping[str, float | None]:
        self.calls.append((model, start, end))
        day = (start - DAY0) // timedelta(days=1)
        found = self.numbers(model, day) if day >= 0 else None
        return found if found is not None else {"traffic": 0.0, "fallback_rate": None}


def by_day(model_values: dict[str, list[float]], metric: str = "fallback_rate") -> FakeSource:
    """A source where ``model_values[model][day]`` is ``metric`` (traffic 100 each day)."""

    def numbers(model: str, day: int) -> Numbers | None:
        values = model_values.get(model, [])
        if day >= len(values):
            return None
        return {"traffic": 100.0, metric: values[day]}

    return FakeSource(numbers)


def open_registry(settings: Settings, owners: Mapping[str, str], clock: FakeClock) -> Registry:
    """A migrated registry with one classification model per owner entry."""
    reg = Registry.open(settings, clock=clock)
    for name, owner in owners.items():
        reg.create_model(name, task="classification", owner=owner, actor="tester")
    return reg


def clock_on_day(day: int, hour: int = 1) -> FakeClock:
    """A fake clock at ``hour`` o'clock of day ``day`` (day 0 is :data:`DAY0`)."""
    return FakeClock(start=DAY0 + timedelta(days=day, hours=hour))

"""The circuit breaker's state machine, on an injected clock."""

from __future__ import annotations

import pytest

from flotilla.errors import ConfigError
from flotilla.gateway import BreakerConfig, CircuitBreaker
from flotilla.testing import FakeClock


def make(clock: FakeClock, **config: float) -> tuple[CircuitBreaker, list[str]]:
    changes: list[str] = []
    values = {"failure_rate": 0.5, "min_requests": 4, "window_s": 10.0, "open_s": 5.0, **config}
    breaker = CircuitBreaker(BreakerConfig(**values), clock=clock, on_change=changes.append)  # type: ignore[arg-type]
    return breaker, changes


def test_stays_closed_below_min_requests() -> None:
    breaker, _ = make(FakeClock())
    for _ in range(3):
        assert breaker.allow()
        breaker.record(False)
    assert breaker.state == "closed"


def test_opens_at_the_failure_rate_and_refuses_calls() -> None:
    breaker, changes = make(FakeClock())
    for ok in (True, False, True, False):
        breaker.record(ok)
    assert breaker.state == "open"
    assert not breaker.allow()
    assert changes == ["open"]


def test_stays_closed_under_the_failure_rate() -> None:
    breaker, _ = make(FakeClock())
    for ok in (True, True, True, False, True, True, True, False):
        breaker.record(ok)
    assert breaker.state == "closed"


def test_old_outcomes_leave_the_window() -> None:
    clock = FakeClock()
    breaker, _ = make(clock)
    for _ in range(3):
        breaker.record(False)
    clock.advance(11)
    breaker.record(False)  # the three old failures are gone: 1 call < min_requests
    assert breaker.state == "closed"
    assert breaker.snapshot()["window_calls"] == 1


def test_the_window_keeps_an_outcome_for_0_9_to_1_0_window_s() -> None:
    clock = FakeClock()
    breaker, _ = make(clock, min_requests=1000)
    clock.advance(0.5)
    breaker.record(False)
    clock.advance(8.5)  # 8.5 s later: still in the window
    assert breaker.snapshot()["window_failures"] == 1
    clock.advance(1.0)  # 9.5 s later: its bucket has left
    assert breaker.snapshot()["window_failures"] == 0
    for _ in range(50_000):  # any number of calls, fixed memory, counted exactly
        breaker.record(True)
    clock.advance(3600)
    breaker.record(False)
    assert breaker.snapshot()["window_calls"] == 1


def test_half_open_after_open_s_lets_one_probe_through() -> None:
    clock = FakeClock()
    breaker, changes = make(clock, min_requests=1)
    breaker.record(False)
    clock.advance(4.9)
    assert not breaker.allow()
    clock.advance(0.2)
    assert breaker.state == "half_open"
    assert breaker.allow()
    assert not breaker.allow()  # one probe at a time
    breaker.record(True)
    assert breaker.state == "closed"
    assert changes == ["open", "half_open", "closed"]
    assert (breaker.opened, breaker.closed) == (1, 1)


def test_failed_probe_opens_again_for_open_s() -> None:
    clock = FakeClock()
    breaker, _ = make(clock, min_requests=1)
    breaker.record(False)
    clock.advance(5)
    assert breaker.allow()
    breaker.record(False)
    assert breaker.state == "open"
    clock.advance(4)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()


def test_released_probe_can_be_retried() -> None:
    clock = FakeClock()
    breaker, _ = make(clock, min_requests=1)
    breaker.record(False)
    clock.advance(5)
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()


@pytest.mark.parametrize(
    ("field", "value"),
    [("failure_rate", 0.0), ("failure_rate", 1.5), ("min_requests", 0), ("open_s", -1)],
)
def test_bad_config_is_refused(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        BreakerConfig(**{field: value})  # type: ignore[arg-type]

"""A circuit breaker per chain step: closed, open, half-open with probes, on an injected clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flotilla.errors import ConfigError
from flotilla.types import Clock

__all__ = ["BreakerConfig", "CircuitBreaker"]

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"
_BUCKETS = 10


@dataclass(frozen=True, kw_only=True)
class BreakerConfig:
    """When a breaker opens and for how long.

    Args:
        failure_rate: the share of failed calls (timeout, error, invalid output) in the
            window at or above which the breaker opens, in (0, 1].
        min_requests: the fewest calls in the window before the rate is judged.
        window_s: the length of the sliding window, in seconds.
        open_s: how long the breaker stays open before letting a probe through.
        probes: how many probe calls may be in flight at once while half-open.
    """

    failure_rate: float = 0.5
    min_requests: int = 20
    window_s: float = 10.0
    open_s: float = 5.0
    probes: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < self.failure_rate <= 1.0:
            raise ConfigError(
                "The 'failure_rate' of a breaker must be in (0, 1]. "
                f"Got {self.failure_rate!r} instead."
            )
        for name in ("min_requests", "probes"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"The '{name}' of a breaker must be at least 1. "
                    f"Got {getattr(self, name)!r} instead."
                )
        for name in ("window_s", "open_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(
                    f"The '{name}' of a breaker must be a positive number of seconds. "
                    f"Got {getattr(self, name)!r} instead."
                )


class CircuitBreaker:
    """Stops calling a step that keeps failing, and probes it again after a pause.

    States: ``closed`` (calls pass; outcomes are counted over a sliding window of
    ``window_s`` seconds kept as ten time buckets, so memory stays fixed at any request
    rate and an outcome leaves the window between 0.9 and 1.0 ``window_s`` after it),
    ``open`` (calls are refused for ``open_s``), ``half_open`` (up to ``probes`` calls pass;
    a success closes the breaker, a failure opens it again). Not thread-safe: the gateway
    calls it from the event loop only.

    Args:
        config: thresholds and durations.
        clock: a monotonic clock (inject ``FakeClock`` in tests).
        on_change: called with the new state name on every transition (e.g. a gauge).

    Example:
        >>> from flotilla.testing import FakeClock
        >>> b = CircuitBreaker(BreakerConfig(min_requests=2, open_s=1), clock=FakeClock())
        >>> b.record(False); b.record(False); b.state
        'open'
    """

    def __init__(
        self,
        config: BreakerConfig,
        *,
        clock: Clock,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.on_change = on_change
        self._state = CLOSED
        self._width = config.window_s / _BUCKETS
        self._slot = -_BUCKETS  # the index of the newest bucket, int(now / width)
        self._calls = [0] * _BUCKETS
        self._fails = [0] * _BUCKETS
        self._total = 0
        self._failures = 0
        self._opened_at = 0.0
        self._probes = 0
        self.opened = 0
        self.closed = 0

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open`` (an open breaker past ``open_s`` is half-open)."""
        if self._state == OPEN and self.clock.monotonic() - self._opened_at >= self.config.open_s:
            self._move(HALF_OPEN)
            self._probes = 0
        return self._state

    def allow(self) -> bool:
        """Whether a call may go through now; a half-open breaker takes a probe slot."""
        if self._state == CLOSED:  # the request path's case: no clock read
            return True
        state = self.state
        if state == CLOSED:
            return True
        if state == HALF_OPEN and self._probes < self.config.probes:
            self._probes += 1
            return True
        return False

    def record(self, success: bool) -> None:
        """Count the outcome of a call that :meth:`allow` let through."""
        if self._state == HALF_OPEN:
            self._probes = max(0, self._probes - 1)
            if success:
                self._reset()
                self._move(CLOSED)
            else:
                self._open()
            return
        if self._state == OPEN:
            return  # a call admitted before the breaker opened; its outcome is moot
        slot = int(self.clock.monotonic() / self._width)
        if slot != self._slot:
            self._slide(slot)
        i = slot % _BUCKETS
        self._calls[i] += 1
        self._total += 1
        if success:
            return
        self._fails[i] += 1
        self._failures += 1
        total = self._total
        if total >= self.config.min_requests and self._failures >= (
            self.config.failure_rate * total
        ):
            self._open()

    def release(self) -> None:
        """Give back a probe slot of a call that ended without an outcome (cancelled)."""
        if self._state == HALF_OPEN:
            self._probes = max(0, self._probes - 1)

    def snapshot(self) -> dict[str, object]:
        """State and window counts, for ``GET /v1/models``."""
        state = self.state
        self._slide(int(self.clock.monotonic() / self._width))
        return {
            "state": state,
            "window_calls": self._total,
            "window_failures": self._failures,
            "opened": self.opened,
            "closed": self.closed,
        }

    def _slide(self, slot: int) -> None:
        """Empty the buckets that fell out of the window by ``slot`` (the newest bucket)."""
        for old in range(max(self._slot + 1, slot - _BUCKETS + 1), slot + 1):
            i = old % _BUCKETS
            self._total -= self._calls[i]
            self._failures -= self._fails[i]
            self._calls[i] = self._fails[i] = 0
        self._slot = max(self._slot, slot)

    def _reset(self) -> None:
        self._calls = [0] * _BUCKETS
        self._fails = [0] * _BUCKETS
        self._total = 0
        self._failures = 0

    def _open(self) -> None:
        self._opened_at = self.clock.monotonic()
        self._reset()
        self._probes = 0
        self.opened += 1
        self._move(OPEN)

    def _move(self, state: str) -> None:
        if state == self._state:
            return
        if state == CLOSED:
            self.closed += 1
        self._state = state
        if self.on_change is not None:
            self.on_change(state)

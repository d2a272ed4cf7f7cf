"""How late the event loop runs: the slack the chain keeps so a deadline holds under load.

A step's budget ends with a timer; when the loop is busy (many requests, threads holding the
interpreter lock) that timer fires late, and the fallback answers after the deadline by as
much. :class:`LoopLag` probes the loop with a timer every ``interval_s``, keeps the worst
lateness of the last ``window`` probes, and offers one and a half times that as
:attr:`LoopLag.slack_s` (the timer's own lateness, plus the loop turn after it in which the
chain resumes and the fallback answers); model steps get their
budget shortened by it (at most ``max_share`` of the deadline, see
:meth:`flotilla.gateway.ServedModel.answer`), so the chain answers within the deadline the
caller was promised rather than a loop's lateness after it.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["LoopLag"]

_TURNS = 1.5


class LoopLag:
    """Probe an event loop's timer lateness; :attr:`slack_s` is 1.5x the recent worst.

    Args:
        interval_s: seconds between probes.
        window: probes remembered (``window * interval_s`` seconds of history).

    Example:
        >>> lag = LoopLag()
        >>> lag.slack_s
        0.0
    """

    def __init__(self, interval_s: float = 0.02, window: int = 50) -> None:
        self.interval_s = interval_s
        self.slack_s = 0.0
        self.worst_s = 0.0
        self._samples: deque[float] = deque(maxlen=window)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start probing ``loop`` (call from the loop's thread)."""
        self._loop = loop
        self._schedule(loop.time())

    def stop(self) -> None:
        """Stop probing; :attr:`slack_s` returns to 0."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._samples.clear()
        self.slack_s = self.worst_s = 0.0

    def _schedule(self, now: float) -> None:
        assert self._loop is not None
        self._due = now + self.interval_s
        self._handle = self._loop.call_at(self._due, self._probe)

    def _probe(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        samples = self._samples
        evicted = samples[0] if len(samples) == samples.maxlen else 0.0
        late = max(0.0, now - self._due)
        samples.append(late)
        if late >= self.worst_s:
            self.worst_s = late
        elif evicted >= self.worst_s:  # the worst sample left the window
            self.worst_s = max(samples)
        self.slack_s = _TURNS * self.worst_s
        self._schedule(now)

"""Chain steps as same-signature wrappers: ``async call(records, deadline) -> predictions``.

Every step of a fallback chain is one :class:`StepCall`. A model step is built by folding
wrappers around the call that runs the model in the thread pool, once, in this order
(outermost first)::

    InputCheck -> Bulkhead -> BreakerGuard -> OutputCheck -> PoolCall(runtime)

- :class:`InputCheck` rejects records that break the step's signature (``invalid_input``)
  before they take a slot or touch the breaker.
- :class:`Bulkhead` refuses a call when ``limit`` calls are in flight (``overloaded``,
  no waiting). A call abandoned at its deadline keeps its slot until its thread really ends,
  so a hanging model cannot eat the whole thread pool.
- :class:`BreakerGuard` refuses calls while the breaker is open (``circuit_open``) and feeds
  it the outcome of every call it lets through; ``invalid_input`` and ``overloaded`` never
  count as the model's failures.
- :class:`OutputCheck` turns NaN, infinity, wrong length or kind into ``invalid_output``.
- :class:`PoolCall` runs ``runtime.predict`` in the thread pool and abandons it at the
  deadline (``timeout``; the late result is discarded and counted); exceptions are ``error``.

A step whose version could not be loaded is a :class:`NotLoadedCall` (``not_loaded``); the
final step of a chain is a :class:`StaticCall`, which cannot fail.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
from collections.abc import Callable
from typing import Any, Protocol

from flotilla.errors import PredictionError
from flotilla.gateway._breaker import CircuitBreaker
from flotilla.signature import OutputSpec, Signature
from flotilla.types import FALLBACK_REASONS, Clock, Predictor, Record

__all__ = [
    "BREAKER_FAILURES",
    "REASONS",
    "BreakerGuard",
    "Bulkhead",
    "InlineCall",
    "InputCheck",
    "NotLoadedCall",
    "OutputCheck",
    "PoolCall",
    "Slots",
    "StaticCall",
    "StepCall",
    "StepFailure",
    "format_violations",
]

REASONS = FALLBACK_REASONS
"""The complete vocabulary of fallback reasons (:data:`flotilla.types.FALLBACK_REASONS`)."""

BREAKER_FAILURES = frozenset({"timeout", "error", "invalid_output"})
"""Reasons that count as the model's failure for its circuit breaker."""

_MAX_DETAIL = 500
_MAX_VIOLATIONS_SHOWN = 20


class StepFailure(PredictionError):
    """A step did not answer; the chain goes on with the next one.

    Attributes:
        reason: one of :data:`REASONS`.
        detail: what happened, for the response's ``reasons`` list (may be empty).
        pending: the model call still running in the pool after a timeout, if any.
    """

    def __init__(
        self,
        reason: str,
        detail: str = "",
        *,
        pending: concurrent.futures.Future[Any] | None = None,
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.pending = pending


class StepCall(Protocol):
    """One step of a chain: predict ``records`` before the monotonic time ``deadline``."""

    async def __call__(self, records: list[Record], deadline: float) -> list[Any]:
        """Return one prediction per record or raise :class:`StepFailure`."""
        ...


def format_violations(violations: list[dict[str, object]]) -> str:
    """One line listing violations by row and field (the first 20, then a count)."""
    shown = [
        f"row {v['row']} field {v['field']!r}: {v['problem']}"
        for v in violations[:_MAX_VIOLATIONS_SHOWN]
    ]
    more = len(violations) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


class PoolCall:
    """Runs ``predictor.predict`` in ``executor``; abandons it at the deadline.

    Args:
        predictor: the loaded runtime.
        executor: the thread pool models run in.
        clock: monotonic clock the deadlines are measured on.
        on_late: called (from the worker thread) when an abandoned call finishes anyway.
    """

    def __init__(
        self,
        predictor: Predictor,
        *,
        executor: concurrent.futures.Executor,
        clock: Clock,
        on_late: Callable[[], None] | None = None,
    ) -> None:
        self.predictor = predictor
        self.executor = executor
        self.clock = clock
        self.on_late = on_late

    async def __call__(self, records: list[Record], deadline: float) -> list[Any]:
        budget = deadline - self.clock.monotonic()
        if budget <= 0:
            raise StepFailure("timeout", "no time left in the request's deadline")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        cfut = self.executor.submit(self.predictor.predict, records)
        cfut.add_done_callback(lambda f: _call_soon(loop, _settle, waiter, f))
        timer = loop.call_later(budget, _expire, waiter)
        try:
            result: list[Any] = await waiter
            return result
        except TimeoutError:
            if not cfut.cancel():  # already running: let it finish, count it late
                cfut.add_done_callback(self._late)
            raise StepFailure(
                "timeout", f"no answer within {budget * 1000:.0f} ms", pending=cfut
            ) from None
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"
            raise StepFailure("error", text[:_MAX_DETAIL]) from exc
        finally:
            timer.cancel()

    def _late(self, fut: concurrent.futures.Future[Any]) -> None:
        if not fut.cancelled() and self.on_late is not None:
            self.on_late()


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    """``call_soon_threadsafe`` that does nothing once the loop is closed (shutdown)."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop closed while a model call was still running
        pass


def _settle(waiter: asyncio.Future[Any], done: concurrent.futures.Future[Any]) -> None:
    if waiter.done() or done.cancelled():
        return
    exc = done.exception()
    if exc is not None:
        waiter.set_exception(exc)
    else:
        waiter.set_result(done.result())


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class InlineCall:
    """Runs ``predictor.predict`` on the event loop: no thread hop, no preemption.

    For static versions (always) and, as an experimental opt-in, for native flavors whose
    calls are short and cannot block on I/O (``create_app(inline_flavors={"onnx"})``). A call
    that ends after its deadline cannot be abandoned early; its result is discarded as a
    ``timeout`` (and counted late) so the budget rule still holds for the answer; static
    versions are built with ``enforce_deadline=False``, so the last step always answers.
    """

    def __init__(
        self,
        predictor: Predictor,
        *,
        clock: Clock,
        on_late: Callable[[], None] | None = None,
        enforce_deadline: bool = True,
    ) -> None:
        self.predictor = predictor
        self.clock = clock
        self.on_late = on_late
        self.enforce_deadline = enforce_deadline

    async def __call__(self, records: list[Record], deadline: float) -> list[Any]:
        try:
            out = list(self.predictor.predict(records))
        except Exception as exc:
            raise StepFailure("error", f"{type(exc).__name__}: {exc}"[:_MAX_DETAIL]) from exc
        if self.enforce_deadline and self.clock.monotonic() > deadline:
            if self.on_late is not None:
                self.on_late()
            raise StepFailure("timeout", "answered after its budget (inline call)")
        return out


class OutputCheck:
    """Raises ``invalid_output`` when predictions break ``output`` (or are not finite)."""

    def __init__(self, inner: StepCall, *, output: OutputSpec | None) -> None:
        self.inner = inner
        self.output = output

    async def __call__(self, records: list[Record], deadline: float) -> list[Any]:
        predictions = await self.inner(records, deadline)
        if hasattr(predictions, "tolist") and not isinstance(predictions, list):
            predictions = predictions.tolist()
        problem = (
            _basic_check(predictions, len(records))
            if self.output is None
            else self.output.check(predictions, len(records))
        )
        if problem is not None:
            raise StepFailure("invalid_output", problem[:_MAX_DETAIL])
        return list(predictions)


def _basic_check(predictions: Any, n_rows: int) -> str | None:
    if not isinstance(predictions, list | tuple):
        return f"expected a list of {n_rows} predictions, got {type(predictions).__name__}"
    if len(predictions) != n_rows:
        return f"expected {n_rows} predictions, got {len(predictions)}"
    for i, p in enumerate(predictions):
        if isinstance(p, float) and not math.isfinite(p):
            return f"prediction {i}: not a finite number ({p})"
    return None


class BreakerGuard:
    """Refuses calls while ``breaker`` is open and feeds it every outcome."""

    def __init__(self, inner: StepCall, *, breaker: CircuitBreaker) -> None:
        self.inner = inner
        self.breaker = breaker

    async def __call__(self, records: list[Record], deadline: float) -> list[Any]:
        breaker = self.breaker
        if not breaker.allow():
            raise StepFailure(
                "circuit_open", f"breaker open after {breaker.opened} trip(s); probing later"
            )
        try:
            out = await self.inner(records, deadline)
        except StepFailure as failure:
            if failure.reason in BREAKER_FAILURES:
                breaker.record(False)
            else:
                breaker.release()
            raise
        except BaseException:
            breaker.release()
            raise
        breaker.record(True)
        return out


class Slots:
    """A count of calls in flight, shared by the bulkheads of one step across reloads."""

    def __init__(self) -> None:
        self.in_flight = 0

    def release(self) -> None:
        self.in_flight -= 1


class Bulkhead:
    """At most ``limit`` calls in flight; beyond it ``overloaded`` at once, no waiting."""

    def __init__(self, inner: StepCall, *, limit: int, slots: Slots | None = None) -> None:
        self.inner = inner
        self.limit = limit
        self.slots = slots if slots is not None else Slots()

    async def __call__(self, records: list[Record], deadline: float) -> list[Any]:
        slots = self.slots
        if slots.in_flight >= self.limit:
            raise StepFailure("overloaded", f"{self.limit} calls already in flight")
        slots.in_flight += 1
        pending: concurrent.futures.Future[Any] | None = None
        try:
            return await self.inner(records, deadline)
        except StepFailure as failure:
            pending = failure.pending
            raise
        finally:
            if pending is None or pending.done():
                slots.in_flight -= 1
            else:  # keep the slot until the abandoned thread really ends
                loop = asyncio.get_running_loop()
                pending.add_done_callback(lambda _f: _call_soon(loop, slots.release))


class InputCheck:
    """Raises ``invalid_input`` listing every violation of ``signature`` by the records."""

    def __init__(self, inner: StepCall, *, signature: Signature | None) -> None:
        self.inner = inner
        self.signature = signature

    async def __call__(self, records: list[Record], deadline: float) -> list[Any]:
        if self.signature is not None:
            violations = self.signature.validate(records)
            if violations:
                detail = format_violations([v.to_dict() for v in violations])
                raise StepFailure("invalid_input", detail)
        return await self.inner(records, deadline)


class NotLoadedCall:
    """A step whose version could not be loaded: always ``not_loaded``."""

    def __init__(self, detail: str) -> None:
        self.detail = detail

    async def __call__(self, records: list[Record], deadline: float) -> list[Any]:
        raise StepFailure("not_loaded", self.detail)


class StaticCall:
    """The last step: the same configured answer for every record; it cannot fail.

    Args:
        value: ``{"items": [...]}`` answers the list, ``{"value": x}`` answers ``x``, any
            other value is answered as it is.
    """

    def __init__(self, value: Any) -> None:
        if isinstance(value, dict) and len(value) == 1 and ("items" in value or "value" in value):
            value = value.get("items", value.get("value"))
        self.value = value

    async def __call__(self, records: list[Record], deadline: float) -> list[Any]:
        return [self.value] * len(records)

"""Chain steps as same-signature wrappers: ``async call(records, deadline) -> predictions``.

Every step of a fallback chain is one :class:`StepCall`. A model step is a
:class:`ModelStep`: one coroutine that applies, in this order (outermost first)::

    InputCheck -> Bulkhead -> BreakerGuard -> OutputCheck -> ModelCall(runtime)

The same guards also exist as separate wrappers, each a :class:`StepCall` around another
(for a step of your own, or to test one guard alone); ``ModelStep`` runs them in one frame,
because each awaited layer costs microseconds on every request.

- :class:`InputCheck` rejects records that break the step's signature (``invalid_input``)
  before they take a slot or touch the breaker.
- :class:`Bulkhead` refuses a call when ``limit`` calls are in flight (``overloaded``,
  no waiting). A call abandoned at its deadline keeps its slot until its thread really ends,
  so a hanging model cannot eat the whole thread pool.
- :class:`BreakerGuard` refuses calls while the breaker is open (``circuit_open``) and feeds
  it the outcome of every call it lets through; ``invalid_input`` and ``overloaded`` never
  count as the model's failures.
- :class:`OutputCheck` turns NaN, infinity, wrong length or kind into ``invalid_output``.
- :class:`ModelCall` runs ``runtime.predict``: on the event loop when the call is known to
  be short (native flavors only), else in the thread pool, abandoned at the deadline
  (``timeout``; the late result is discarded and counted); exceptions are ``error``.

A step whose version could not be loaded is a :class:`NotLoadedCall` (``not_loaded``); the
final step of a chain is a :class:`StaticCall`, which cannot fail.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import statistics
import time
from collections.abc import Callable
from typing import Any, Protocol

from flotilla.errors import PredictionError
from flotilla.gateway._breaker import CircuitBreaker
from flotilla.gateway._pool import ModelPool
from flotilla.signature import OutputSpec, Signature
from flotilla.types import FALLBACK_REASONS, Clock, Predictor, Record

__all__ = [
    "BREAKER_FAILURES",
    "REASONS",
    "BreakerGuard",
    "Bulkhead",
    "CallCost",
    "InputCheck",
    "ModelCall",
    "ModelStep",
    "NotLoadedCall",
    "OutputCheck",
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
_COST_ALPHA = 0.2
_CAP_FACTOR = 4.0
_CAP_MIN_S = 0.001
_HOLD_FIRST = 16
_HOLD_MAX = 4096
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


class CallCost:
    """What one call of a model costs per row (seconds), learned from its own calls.

    An exponentially weighted mean of ``seconds / rows``; each sample is capped so one
    pause (a garbage collection, a busy machine) cannot swing it far. ``hold`` counts the
    pool calls left before an inline call may be tried again after inline calls proved too
    slow; every such trip doubles the next hold (16, 32, ... 4096 calls), so a model whose
    cost hovers at the limit cannot flip between the two paths at a high rate. ``last`` is
    the latest (capped) sample per row.
    """

    __slots__ = ("hold", "last", "per_row", "samples", "trips")

    def __init__(self) -> None:
        self.per_row = math.inf
        self.last = math.inf
        self.samples = 0
        self.hold = 0
        self.trips = 0

    def learn(self, seconds: float, rows: int, cap: float) -> None:
        """Fold one call that took ``seconds`` for ``rows`` rows into the estimate."""
        sample = min(seconds, cap) / max(rows, 1)
        self.last = sample
        if self.samples == 0:
            self.per_row = sample
        else:
            self.per_row += _COST_ALPHA * (sample - self.per_row)
        self.samples += 1

    def trip(self) -> None:
        """Inline calls proved too slow: stay in the pool for a while (doubling)."""
        self.trips += 1
        self.hold = min(_HOLD_FIRST << (self.trips - 1), _HOLD_MAX)


class ModelCall:
    """Runs ``predictor.predict``: short calls on the event loop, others in the thread pool.

    A call runs *inline* (on the event loop, no thread hop) when the step may run inline
    (``inline_below_s > 0``: native flavors whose calls are pure computation, never
    ``python``) and its learned :class:`CallCost` times the number of rows is at most
    ``inline_below_s``. Otherwise it runs in ``executor`` and is abandoned at the deadline
    (``timeout``; the late result is discarded and counted). An inline call cannot be
    abandoned: one that ends after its deadline has its answer discarded as ``timeout`` (and
    counted late), and its cost moves the model to the pool. Pool calls of inline-capable
    steps learn the cost too, so a model that became fast again returns inline. What counts
    is the calling thread's CPU time: the wall clock would also count the wait for the GIL
    while another thread (the records writer, a shadow) holds it, and push a microsecond
    model into the pool just when the process is busiest. Reading a thread's CPU clock is a
    system call, though (a tenth of a request's CPU on the loop, measured), so an inline
    call is timed on the wall clock, which is never less than its CPU time: a sample within
    the inline limit is learned as it is (it cannot push the estimate over the limit); a
    longer one is not learned, and the next inline call is timed in CPU time instead. Pool
    calls are always timed in CPU time (their wall time includes the wait for the GIL).
    Exceptions are ``error``.

    Args:
        predictor: the loaded runtime.
        executor: the thread pool models run in.
        clock: monotonic clock the deadlines are measured on.
        on_late: called (from the worker thread) when an abandoned call finishes anyway.
        inline_below_s: the longest estimated call that runs inline (0: always the pool,
            ``math.inf``: always inline).
        cost: the shared cost estimate of this version (kept across reloads).
        enforce_deadline: ``False`` for static versions: their answer is always kept.
    """

    def __init__(
        self,
        predictor: Predictor,
        *,
        executor: concurrent.futures.Executor,
        clock: Clock,
        on_late: Callable[[], None] | None = None,
        inline_below_s: float = 0.0,
        cost: CallCost | None = None,
        enforce_deadline: bool = True,
    ) -> None:
        self.predictor = predictor
        self.executor = executor
        self.clock = clock
        self.on_late = on_late
        self.inline_below_s = inline_below_s
        self.cost = cost if cost is not None else CallCost()
        self.enforce_deadline = enforce_deadline
        self._cap = max(_CAP_FACTOR * inline_below_s, _CAP_MIN_S)
        self._cpu_next = False  # time the next inline call in CPU time

    def calibrate(self, records: list[Record], *, calls: int = 5) -> None:
        """Time ``calls`` calls on ``records`` now (at load, off the event loop).

        One untimed call first: the first calls of a runtime allocate its buffers and can
        cost ten times a warm call, which would start a microsecond model in the pool. The
        estimate starts at the median of the timed calls. Stops at the first call that
        raises (nothing learned) or takes ten times the inline limit; a model that cannot be
        calibrated starts in the pool and learns there.
        """
        if not 0 < self.inline_below_s < math.inf or not records:
            return
        samples: list[float] = []
        for i in range(calls + 1):
            began = time.thread_time()
            try:
                self.predictor.predict(records)
            except Exception:
                return
            took = time.thread_time() - began
            if i > 0:  # the first call warms the runtime up
                samples.append(took)
            if took > 10 * self.inline_below_s:
                break
        if samples:
            self.cost.learn(statistics.median(samples), len(records), self._cap)

    def runs_inline(self, rows: int) -> bool:
        """Whether a call of ``rows`` rows would run on the event loop now."""
        cost = self.cost
        return cost.hold == 0 and cost.per_row * rows <= self.inline_below_s

    async def __call__(self, records: list[Record], deadline: float) -> list[Any]:
        if self.runs_inline(len(records)):
            return self.inline(records, deadline)
        return await self.pooled(records, deadline)

    def inline(self, records: list[Record], deadline: float) -> list[Any]:
        """Run the call on the event loop (the caller checked :meth:`runs_inline`)."""
        if self.enforce_deadline and deadline - self.clock.monotonic() <= 0:
            raise StepFailure("timeout", "no time left in the request's deadline")
        learns = self.inline_below_s < math.inf  # static versions: always inline
        try:
            if not learns:
                out: list[Any] = self.predictor.predict(records)
            elif self._cpu_next:  # until a CPU sample is within the limit again
                out = self._timed(records)
                self._cpu_next = self.cost.last > self.inline_below_s
            else:
                out = self._walled(records)
        except Exception as exc:
            raise StepFailure("error", f"{type(exc).__name__}: {exc}"[:_MAX_DETAIL]) from exc
        finally:
            if learns and self.cost.per_row > self.inline_below_s:
                self.cost.trip()
        if self.enforce_deadline and self.clock.monotonic() > deadline:
            if self.on_late is not None:
                self.on_late()
            raise StepFailure("timeout", "answered after its budget (inline call)")
        return out

    async def pooled(self, records: list[Record], deadline: float) -> list[Any]:
        """Run the call in the pool, abandoned at ``deadline`` (a held step counts one off)."""
        if self.cost.hold:
            self.cost.hold -= 1
        budget = deadline - self.clock.monotonic()
        if budget <= 0:
            raise StepFailure("timeout", "no time left in the request's deadline")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        work = self._timed if self.inline_below_s > 0 else self.predictor.predict
        cfut = self.executor.submit(work, records)
        cfut.add_done_callback(lambda f: _call_soon(loop, _settle, waiter, f))
        timer = loop.call_later(budget, _expire, waiter)
        try:
            result: list[Any] = await waiter
            return result
        except TimeoutError:
            if not cfut.cancel():  # already running: let it finish, count it late
                cfut.add_done_callback(self._late)
                if isinstance(self.executor, ModelPool):
                    self.executor.abandon(cfut)  # its thread no longer counts
            raise StepFailure(
                "timeout", f"no answer within {budget * 1000:.0f} ms", pending=cfut
            ) from None
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"
            raise StepFailure("error", text[:_MAX_DETAIL]) from exc
        finally:
            timer.cancel()

    def _walled(self, records: list[Record]) -> Any:
        """``predict`` on the loop, learning its wall time when within the inline limit."""
        began = time.perf_counter()
        try:
            return self.predictor.predict(records)
        finally:
            took = time.perf_counter() - began
            if took <= self.inline_below_s * max(len(records), 1):
                self.cost.learn(took, len(records), self._cap)
            else:  # waiting or computing? the next call's CPU time will tell
                self._cpu_next = True

    def _timed(self, records: list[Record]) -> Any:
        """``predict``, learning its cost from the calling thread's CPU time."""
        began = time.thread_time()
        try:
            return self.predictor.predict(records)
        finally:
            self.cost.learn(time.thread_time() - began, len(records), self._cap)

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


class OutputCheck:
    """Raises ``invalid_output`` when predictions break ``output`` (or are not finite)."""

    def __init__(self, inner: StepCall, *, output: OutputSpec | None) -> None:
        self.inner = inner
        self.output = output

    async def __call__(self, records: list[Record], deadline: float) -> list[Any]:
        return _checked(await self.inner(records, deadline), len(records), self.output)


def _checked(predictions: Any, n_rows: int, output: OutputSpec | None) -> list[Any]:
    """``predictions`` as a list, or ``invalid_output`` when they break ``output``."""
    if type(predictions) is not list and hasattr(predictions, "tolist"):
        predictions = predictions.tolist()
    problem = (
        _basic_check(predictions, n_rows) if output is None else output.check(predictions, n_rows)
    )
    if problem is not None:
        raise StepFailure("invalid_output", problem[:_MAX_DETAIL])
    return list(predictions)  # a copy: a model may reuse the list it returned


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
            raise _circuit_open(breaker)
        try:
            out = await self.inner(records, deadline)
        except StepFailure as failure:
            _failed(breaker, failure)
            raise
        except BaseException:
            breaker.release()
            raise
        breaker.record(True)
        return out


def _circuit_open(breaker: CircuitBreaker) -> StepFailure:
    return StepFailure(
        "circuit_open", f"breaker open after {breaker.opened} trip(s); probing later"
    )


def _failed(breaker: CircuitBreaker, failure: StepFailure) -> None:
    """Feed a failed call to the breaker: only the model's own failures count."""
    if failure.reason in BREAKER_FAILURES:
        breaker.record(False)
    else:
        breaker.release()


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
            raise _overloaded(self.limit)
        slots.in_flight += 1
        pending: concurrent.futures.Future[Any] | None = None
        try:
            return await self.inner(records, deadline)
        except StepFailure as failure:
            pending = failure.pending
            raise
        finally:
            _free(slots, pending)


def _overloaded(limit: int) -> StepFailure:
    return StepFailure("overloaded", f"{limit} calls already in flight")


def _free(slots: Slots, pending: concurrent.futures.Future[Any] | None) -> None:
    """Give a call's slot back, or, for an abandoned call still running, when it ends."""
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
            _check_input(self.signature, records)
        return await self.inner(records, deadline)


def _check_input(signature: Signature, records: list[Record]) -> None:
    """Raise ``invalid_input`` listing every violation of ``signature`` by ``records``."""
    violations = signature.validate(records)
    if violations:
        raise StepFailure("invalid_input", format_violations([v.to_dict() for v in violations]))


class ModelStep:
    """A model step of a chain: the guards of the module docstring around ``call``, in one frame.

    Behaves exactly as ``InputCheck(Bulkhead(BreakerGuard(OutputCheck(call))))`` (the
    tests hold the two to the same outcomes) without four awaited layers per request.

    Args:
        call: runs the model (inline or in the pool).
        signature: the version's signature (``None``: inputs are not checked).
        output: the output spec the predictions must fit (``None``: a basic check).
        breaker: the step's circuit breaker.
        limit: calls in flight at most (``overloaded`` beyond).
        slots: the in-flight count, shared across reloads.
    """

    __slots__ = ("breaker", "call", "limit", "output", "signature", "slots")

    def __init__(
        self,
        call: ModelCall,
        *,
        signature: Signature | None,
        output: OutputSpec | None,
        breaker: CircuitBreaker,
        limit: int,
        slots: Slots | None = None,
    ) -> None:
        self.call = call
        self.signature = signature
        self.output = output
        self.breaker = breaker
        self.limit = limit
        self.slots = slots if slots is not None else Slots()

    async def __call__(self, records: list[Record], deadline: float) -> list[Any]:
        if self.signature is not None:  # InputCheck
            _check_input(self.signature, records)
        slots = self.slots  # Bulkhead
        if slots.in_flight >= self.limit:
            raise _overloaded(self.limit)
        slots.in_flight += 1
        pending: concurrent.futures.Future[Any] | None = None
        try:
            breaker = self.breaker  # BreakerGuard
            if not breaker.allow():
                raise _circuit_open(breaker)
            try:
                call = self.call
                if call.runs_inline(len(records)):
                    predictions = call.inline(records, deadline)
                else:
                    predictions = await call.pooled(records, deadline)
                predictions = _checked(predictions, len(records), self.output)  # OutputCheck
            except StepFailure as failure:
                pending = failure.pending
                _failed(breaker, failure)
                raise
            except BaseException:
                breaker.release()
                raise
            breaker.record(True)
            return predictions
        finally:
            _free(slots, pending)


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

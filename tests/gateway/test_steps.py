"""The step wrappers and the deadline budget, without HTTP."""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import threading
import time
from typing import Any

import pytest
from gateway_support import SIGNATURE, Behaving

from flotilla.clock import SystemClock
from flotilla.gateway import StepFailure, budget_reserves
from flotilla.gateway._breaker import BreakerConfig, CircuitBreaker
from flotilla.gateway._steps import (
    BreakerGuard,
    Bulkhead,
    CallCost,
    InputCheck,
    ModelCall,
    ModelStep,
    OutputCheck,
    StaticCall,
)
from flotilla.signature import OutputSpec
from flotilla.testing import FakeClock


def test_budget_gives_the_live_step_what_the_chain_does_not_need() -> None:
    reserves = budget_reserves(0.05, ["model", "model", "static"])
    assert reserves == pytest.approx([0.011, 0.001, 0.0])
    # many fallbacks never take more than half of the deadline from the live step
    assert budget_reserves(0.1, ["model"] * 6 + ["static"])[0] == pytest.approx(0.05)
    assert budget_reserves(0.01, ["model", "static"]) == pytest.approx([0.0005, 0.0])


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_pool_call_abandons_a_late_call_and_counts_it() -> None:
    late = threading.Event()
    pool = concurrent.futures.ThreadPoolExecutor(2)
    clock = SystemClock()
    model = Behaving(mode="hang", hang_s=0.2)
    call = ModelCall(model, executor=pool, clock=clock, on_late=late.set)

    async def go() -> StepFailure:
        with pytest.raises(StepFailure) as info:
            await call([{"x": 1}], clock.monotonic() + 0.02)
        return info.value

    failure = run(go())
    assert failure.reason == "timeout"
    assert failure.pending is not None
    assert late.wait(2)
    pool.shutdown()


def test_pool_call_with_no_time_left_does_not_call_the_model() -> None:
    model = Behaving()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    clock = SystemClock()
    call = ModelCall(model, executor=pool, clock=clock)
    with pytest.raises(StepFailure, match="no time left"):
        run(call([{"x": 1}], clock.monotonic() - 1))
    assert model.calls == 0
    pool.shutdown()


def test_bulkhead_refuses_beyond_its_limit_without_waiting() -> None:
    gate = asyncio.Event

    class Slow:
        def __init__(self) -> None:
            self.release: asyncio.Event | None = None

        async def __call__(self, records: list[Any], deadline: float) -> list[Any]:
            assert self.release is not None
            await self.release.wait()
            return [1] * len(records)

    async def go() -> list[Any]:
        inner = Slow()
        inner.release = gate()
        bulkhead = Bulkhead(inner, limit=2)
        first = asyncio.ensure_future(bulkhead([{}], 0.0))
        second = asyncio.ensure_future(bulkhead([{}], 0.0))
        await asyncio.sleep(0)
        with pytest.raises(StepFailure) as info:
            await bulkhead([{}], 0.0)
        assert info.value.reason == "overloaded"
        inner.release.set()
        results = [await first, await second]
        assert bulkhead.slots.in_flight == 0
        return results

    assert run(go()) == [[1], [1]]


def test_batch_is_one_call() -> None:
    model = Behaving()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    clock = SystemClock()
    inner = ModelCall(model, executor=pool, clock=clock)
    call = OutputCheck(inner, output=OutputSpec(kind="score"))
    out = run(call([{"x": i} for i in range(5)], clock.monotonic() + 1))
    assert out == [1.0] * 5
    assert model.batch_sizes == [5]
    pool.shutdown()


@pytest.mark.parametrize(
    ("value", "expected"),
    [({"items": [1, 2]}, [1, 2]), ({"value": 0.3}, 0.3), ("x", "x")],
)
def test_static_call_answers_its_value(value: Any, expected: Any) -> None:
    assert run(StaticCall(value)([{}, {}], 0.0)) == [expected, expected]


def _in_thread(calls: list[str]) -> Behaving:
    class Where(Behaving):
        def predict(self, records: list[dict[str, Any]]) -> list[Any]:
            calls.append(threading.current_thread().name)
            if self.mode == "spin":  # busy for hang_s of CPU time (costs are CPU time)
                began = time.thread_time()
                while time.thread_time() - began < self.hang_s:
                    pass
                return [self.value] * len(records)
            return super().predict(records)

    return Where(0.3)


def test_an_inline_call_discards_an_answer_past_its_deadline() -> None:
    from flotilla.testing import FakeClock

    clock = FakeClock()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    late: list[int] = []
    always = {"executor": pool, "clock": clock, "inline_below_s": math.inf}
    call = ModelCall(Behaving(0.3), on_late=lambda: late.append(1), **always)
    assert run(call([{"x": 1}], clock.monotonic() + 1)) == [0.3]

    class Slow(Behaving):
        def predict(self, records: list[dict[str, Any]]) -> list[Any]:
            clock.advance(0.5)  # the call itself outlives its deadline
            return super().predict(records)

    slow = ModelCall(Slow(0.3), on_late=lambda: late.append(1), **always)
    with pytest.raises(StepFailure) as info:
        run(slow([{"x": 1}], clock.monotonic() + 0.1))
    assert info.value.reason == "timeout"
    assert late == [1]
    static = ModelCall(Slow(0.3), enforce_deadline=False, **always)
    assert run(static([{"x": 1}], clock.monotonic() - 1)) == [0.3]
    with pytest.raises(StepFailure, match="RuntimeError"):
        run(ModelCall(Behaving(mode="raise"), **always)([{"x": 1}], clock.monotonic() + 1))
    pool.shutdown()


def test_calls_run_inline_only_once_known_to_be_short() -> None:
    clock = SystemClock()
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pool")
    threads: list[str] = []
    call = ModelCall(_in_thread(threads), executor=pool, clock=clock, inline_below_s=0.01)
    assert not call.runs_inline(1)  # nothing known yet: the pool
    run(call([{"x": 1}], clock.monotonic() + 1))
    assert threads[-1].startswith("pool")
    assert call.cost.samples == 1  # learned from the worker thread's CPU time
    assert call.runs_inline(1)
    run(call([{"x": 1}], clock.monotonic() + 1))
    assert threads[-1] == threading.current_thread().name  # on the event loop's thread
    # a batch whose estimated cost passes the limit goes to the pool
    call.cost.per_row = 0.001
    assert call.runs_inline(10) and not call.runs_inline(11)
    run(call([{"x": i} for i in range(11)], clock.monotonic() + 1))
    assert threads[-1].startswith("pool")
    pool.shutdown()


def test_a_step_that_never_runs_inline_uses_the_pool_and_learns_nothing() -> None:
    clock = SystemClock()
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pool")
    threads: list[str] = []
    call = ModelCall(_in_thread(threads), executor=pool, clock=clock)
    call.calibrate([{"x": 1}])
    for _ in range(3):
        run(call([{"x": 1}], clock.monotonic() + 1))
    assert all(t.startswith("pool") for t in threads)
    assert call.cost.samples == 0
    pool.shutdown()


def test_calibration_times_calls_at_load_and_stops_on_failure() -> None:
    clock = SystemClock()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    model = Behaving(0.3)
    call = ModelCall(model, executor=pool, clock=clock, inline_below_s=0.01)
    call.calibrate([{"x": 1}], calls=4)
    # one warm-up call, then the estimate starts at the median of four timed ones
    assert model.calls == 5 and call.cost.samples == 1 and call.runs_inline(1)
    broken = ModelCall(Behaving(mode="raise"), executor=pool, clock=clock, inline_below_s=0.01)
    broken.calibrate([{"x": 1}])
    assert broken.cost.samples == 0 and not broken.runs_inline(1)
    pool.shutdown()


def test_inline_calls_that_prove_slow_move_the_step_to_the_pool_for_a_while() -> None:
    clock = SystemClock()
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pool")
    threads: list[str] = []
    model = _in_thread(threads)
    cost = CallCost()
    call = ModelCall(model, executor=pool, clock=clock, inline_below_s=0.002, cost=cost)
    cost.learn(0.0001, 1, cap=1.0)
    model.mode, model.hang_s = "spin", 0.02  # slow inline calls block the loop, and teach
    run(call([{"x": 1}], clock.monotonic() + 1))
    # a wall time over the limit is not learned (waiting or computing?): the next inline
    # call is timed in CPU time, and one slow CPU sample (capped at 4x) is not enough
    assert cost.hold == 0 and cost.per_row == pytest.approx(0.0001)
    run(call([{"x": 1}], clock.monotonic() + 1))
    assert cost.hold == 0 and 0.001 < cost.per_row < 0.002
    run(call([{"x": 1}], clock.monotonic() + 1))
    assert threads[-3:] == [threading.current_thread().name] * 3
    assert cost.per_row > 0.002 and cost.hold == 16 and cost.trips == 1
    model.mode = "answer"
    for _ in range(16):  # held in the pool, even though the pool's samples are cheap again
        run(call([{"x": 1}], clock.monotonic() + 1))
        assert threads[-1].startswith("pool")
    assert cost.hold == 0
    while not call.runs_inline(1):  # the cheap pool samples bring the estimate back down
        run(call([{"x": 1}], clock.monotonic() + 1))
    run(call([{"x": 1}], clock.monotonic() + 1))
    assert threads[-1] == threading.current_thread().name
    cost.trip()
    assert cost.hold == 32  # every trip doubles the hold
    pool.shutdown()


def test_one_pause_does_not_move_a_fast_step_to_the_pool() -> None:
    cost = CallCost()
    for _ in range(20):
        cost.learn(0.00002, 1, cap=0.001)
    cost.learn(0.5, 1, cap=0.001)  # a 500 ms pause counts as the 1 ms cap
    assert cost.per_row < 0.00025


def _known_fast(
    pool: concurrent.futures.Executor, clock: SystemClock
) -> tuple[Behaving, CallCost, ModelCall]:
    """A model known to cost 0.1 ms per row, inline below 2 ms."""
    model = Behaving(0.3)
    cost = CallCost()
    call = ModelCall(model, executor=pool, clock=clock, inline_below_s=0.002, cost=cost)
    cost.learn(0.0001, 1, cap=1.0)
    return model, cost, call


def test_waiting_is_not_cost_only_cpu_time_is() -> None:
    # waiting (for the GIL held by a busy writer thread, here a sleep) must not push a
    # microsecond model into the pool: costs are the calling thread's CPU time
    clock = SystemClock()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    model, cost, call = _known_fast(pool, clock)
    model.mode, model.hang_s = "hang", 0.01
    for _ in range(5):
        run(call([{"x": 1}], clock.monotonic() + 1))
    assert cost.hold == 0 and cost.per_row < 0.002 and call.runs_inline(1)
    pool.shutdown()


def _folded(call: ModelCall, signature: Any, breaker: CircuitBreaker, limit: int) -> Any:
    inner: Any = OutputCheck(call, output=signature.output)
    inner = BreakerGuard(inner, breaker=breaker)
    return InputCheck(Bulkhead(inner, limit=limit), signature=signature)


@pytest.mark.parametrize("build", ["fused", "folded"])
def test_the_fused_model_step_behaves_as_the_folded_wrappers(build: str) -> None:
    # ModelStep (what the gateway serves with) must give the same reasons, breaker states and
    # slot counts as InputCheck(Bulkhead(BreakerGuard(OutputCheck(ModelCall)))).
    clock = FakeClock()
    pool = concurrent.futures.ThreadPoolExecutor(2)
    model = Behaving(0.4)
    breaker = CircuitBreaker(BreakerConfig(min_requests=3, failure_rate=0.5, open_s=5), clock=clock)
    call = ModelCall(model, executor=pool, clock=SystemClock(), inline_below_s=math.inf)
    step: Any
    if build == "fused":
        step = ModelStep(
            call, signature=SIGNATURE, output=SIGNATURE.output, breaker=breaker, limit=2
        )
    else:
        step = _folded(call, SIGNATURE, breaker, 2)
    good = [{"x": 1.0, "plan": "pro"}]

    def outcome(records: list[Any], mode: str = "answer") -> str:
        model.mode = mode
        try:
            run(step(records, SystemClock().monotonic() + 1))
        except StepFailure as failure:
            return failure.reason
        return "ok"

    seen = [
        outcome(good),
        outcome([{"x": "not a number", "plan": "pro"}]),  # invalid_input: not the model's fault
        outcome(good, "short"),
        outcome(good, "raise"),  # two failures of three calls open the breaker
        breaker.state,
        outcome(good),
    ]
    clock.advance(6)  # half-open: one probe passes and closes it again
    seen += [outcome(good), breaker.state]
    assert seen == [
        "ok", "invalid_input", "invalid_output", "error",
        "open", "circuit_open", "ok", "closed",
    ]  # fmt: skip
    slots = step.slots if build == "fused" else step.inner.slots
    assert slots.in_flight == 0
    slots.in_flight = 2  # full: overloaded before the breaker is asked
    assert outcome(good) == "overloaded"
    pool.shutdown()


def test_fast_inline_calls_are_timed_without_reading_the_cpu_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # reading a thread's CPU clock is a system call: an inline call within the limit is
    # learned from the wall clock, and the CPU clock is read only after one that was not
    import flotilla.gateway._steps as steps

    reads = []
    real = time.thread_time
    monkeypatch.setattr(steps.time, "thread_time", lambda: reads.append(1) or real())
    clock = SystemClock()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    model, cost, call = _known_fast(pool, clock)
    for _ in range(20):
        run(call([{"x": 1}], clock.monotonic() + 1))
    assert not reads and cost.samples == 21 and cost.per_row < 0.002
    model.mode, model.hang_s = "hang", 0.01  # waits 10 ms: over the limit on the wall clock
    run(call([{"x": 1}], clock.monotonic() + 1))
    assert not reads and cost.samples == 21  # not learned
    model.mode = "answer"
    run(call([{"x": 1}], clock.monotonic() + 1))
    assert len(reads) == 2 and cost.samples == 22  # this one in CPU time
    run(call([{"x": 1}], clock.monotonic() + 1))
    assert len(reads) == 2 and cost.samples == 23  # and back to the wall clock
    pool.shutdown()

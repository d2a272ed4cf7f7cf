"""The step wrappers and the deadline budget, without HTTP."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

import pytest
from gateway_support import Behaving

from flotilla.clock import SystemClock
from flotilla.gateway import StepFailure, budget_reserves
from flotilla.gateway._steps import Bulkhead, OutputCheck, PoolCall, StaticCall
from flotilla.signature import OutputSpec


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
    call = PoolCall(Behaving(mode="hang", hang_s=0.2), executor=pool, clock=clock, on_late=late.set)

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
    call = PoolCall(model, executor=pool, clock=clock)
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
    call = OutputCheck(PoolCall(model, executor=pool, clock=clock), output=OutputSpec(kind="score"))
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


def test_inline_call_discards_an_answer_past_its_deadline() -> None:
    from flotilla.gateway._steps import InlineCall
    from flotilla.testing import FakeClock

    clock = FakeClock()
    late: list[int] = []
    call = InlineCall(Behaving(0.3), clock=clock, on_late=lambda: late.append(1))
    assert run(call([{"x": 1}], clock.monotonic() + 1)) == [0.3]
    with pytest.raises(StepFailure) as info:
        run(call([{"x": 1}], clock.monotonic() - 0.001))
    assert info.value.reason == "timeout"
    assert late == [1]
    lenient = InlineCall(Behaving(0.3), clock=clock, enforce_deadline=False)
    assert run(lenient([{"x": 1}], clock.monotonic() - 1)) == [0.3]
    with pytest.raises(StepFailure, match="RuntimeError"):
        run(InlineCall(Behaving(mode="raise"), clock=clock)([{"x": 1}], clock.monotonic() + 1))

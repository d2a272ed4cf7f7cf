"""The model pool: abandoned calls stop counting, so hanging models cannot starve the rest."""

from __future__ import annotations

import threading
import time

import pytest

from flotilla.gateway._pool import ModelPool


def _wait_for(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


def test_runs_calls_and_reuses_idle_threads() -> None:
    pool = ModelPool(2)
    assert [pool.submit(pow, 2, i).result(2) for i in range(20)] == [2**i for i in range(20)]
    assert pool.stats()["alive"] <= 2
    with pytest.raises(ZeroDivisionError):
        pool.submit(lambda: 1 / 0).result(2)
    pool.shutdown()


def test_a_full_pool_queues_calls_until_a_thread_frees_up() -> None:
    pool = ModelPool(1)
    gate = threading.Event()
    first = pool.submit(gate.wait, 5)
    second = pool.submit(lambda: "second")
    time.sleep(0.05)
    assert not second.done() and pool.stats()["alive"] == 1
    gate.set()
    assert first.result(2) is True and second.result(2) == "second"
    pool.shutdown()


def test_an_abandoned_call_lets_another_thread_start() -> None:
    pool = ModelPool(1)
    gate = threading.Event()
    hung = pool.submit(gate.wait, 5)
    _wait_for(lambda: hung.running())
    waiting = pool.submit(lambda: "served")
    time.sleep(0.05)
    assert not waiting.done()  # one thread, busy: queued
    pool.abandon(hung)  # the caller gave up on it: capacity 2
    assert waiting.result(2) == "served"
    assert pool.stats()["capacity"] == 2
    gate.set()
    assert hung.result(2) is True
    _wait_for(lambda: pool.stats()["abandoned"] == 0)
    _wait_for(lambda: pool.stats()["alive"] <= 1)  # the extra thread goes away
    assert pool.stats()["capacity"] == 1
    pool.shutdown()


def test_abandoned_threads_are_capped() -> None:
    pool = ModelPool(1, max_abandoned=1)
    gate = threading.Event()
    hung = [pool.submit(gate.wait, 5) for _ in range(2)]
    _wait_for(lambda: hung[0].running())
    pool.abandon(hung[0])
    _wait_for(lambda: hung[1].running())
    pool.abandon(hung[1])
    stuck = pool.submit(lambda: "late")
    time.sleep(0.05)
    assert pool.stats() == {"alive": 2, "idle": 0, "abandoned": 2, "capacity": 2}
    assert not stuck.done()  # beyond the cap calls queue, as in a fixed pool
    gate.set()
    assert stuck.result(2) == "late"
    pool.shutdown()


def test_shutdown_cancels_queued_calls_and_refuses_new_ones() -> None:
    pool = ModelPool(1)
    gate = threading.Event()
    running = pool.submit(gate.wait, 5)
    queued = pool.submit(lambda: "never")
    pool.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled()
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(lambda: 1)
    gate.set()
    assert running.result(2) is True
    _wait_for(lambda: pool.stats()["alive"] == 0)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="threads >= 1"):
        ModelPool(0)

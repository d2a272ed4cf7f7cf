"""The thread pool model calls run in, where a call abandoned at its deadline stops counting.

A plain ``ThreadPoolExecutor`` has a fixed number of threads. A model that hangs keeps its
thread after the gateway abandoned the call (a thread cannot be killed), so a few hanging
models can occupy every thread and every other model's calls then wait in the queue until
their deadlines pass: the bulkheads would no longer isolate anything. :class:`ModelPool`
runs ``threads`` calls at once *not counting abandoned ones*: each abandoned call still
running lets one more thread start, up to ``max_abandoned`` at once (then calls queue as in a
fixed pool). Threads beyond ``threads`` exit when their call ends and they are not needed.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["DEFAULT_MAX_ABANDONED", "ModelPool"]

DEFAULT_MAX_ABANDONED = 256
"""Abandoned calls that may each hold a thread while the pool keeps its full capacity."""


class ModelPool(concurrent.futures.Executor):
    """Runs calls on up to ``threads`` threads, plus one per abandoned call still running.

    Args:
        threads: calls that run at once (abandoned calls excluded).
        max_abandoned: the most abandoned calls the pool replaces with new threads.
        name: the threads' name prefix.

    Example:
        >>> pool = ModelPool(2)
        >>> pool.submit(sum, [1, 2]).result()
        3
        >>> pool.shutdown()
    """

    def __init__(
        self,
        threads: int,
        *,
        max_abandoned: int = DEFAULT_MAX_ABANDONED,
        name: str = "flotilla-model",
    ) -> None:
        if threads < 1 or max_abandoned < 0:
            raise ValueError(
                f"A model pool needs threads >= 1 and max_abandoned >= 0 "
                f"(got {threads} and {max_abandoned})."
            )
        self.threads = threads
        self.max_abandoned = max_abandoned
        self.name = name
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._alive = 0
        self._idle = 0  # threads waiting for a call that no queued call is promised to
        self._backlog = 0  # queued calls no thread was free or startable for
        self._abandoned = 0
        self._started = 0
        self._closed = False

    @property
    def capacity(self) -> int:
        """Threads the pool may run now: ``threads`` plus the abandoned calls it replaces."""
        return self.threads + min(self._abandoned, self.max_abandoned)

    def stats(self) -> dict[str, int]:
        """Threads alive and idle, abandoned calls still running, and the capacity."""
        with self._lock:
            return {
                "alive": self._alive,
                "idle": self._idle,
                "abandoned": self._abandoned,
                "capacity": self.capacity,
            }

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule a model call after the pool shut down")
            self._work.put(_Work(future, fn, args, kwargs))
            if self._idle > 0:
                self._idle -= 1  # that thread takes this call
                return future
            if self._alive >= self.capacity:
                self._backlog += 1  # taken by the next thread that frees up
                return future
            name = self._reserve_thread()
        self._start(name)
        return future

    def abandon(self, future: concurrent.futures.Future[Any]) -> None:
        """The caller gave up on ``future`` while it runs: let one more thread start for it."""
        if future.done():
            return
        name = None
        with self._lock:
            self._abandoned += 1
            if self._backlog and self._alive < self.capacity and not self._closed:
                self._backlog -= 1  # a queued call gets the new thread at once
                name = self._reserve_thread()
        if name is not None:
            self._start(name)
        future.add_done_callback(self._settled)

    def _reserve_thread(self) -> str:
        """Count one more thread (under the lock) and return its name."""
        self._alive += 1
        self._started += 1
        return f"{self.name}_{self._started}"

    def _start(self, name: str) -> None:
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _settled(self, _future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._abandoned -= 1

    def _run(self) -> None:
        while True:
            work = self._work.get()
            if work is None:
                break
            work.run()
            del work
            with self._lock:
                if self._closed or self._alive > self.capacity:
                    break
                if self._backlog:
                    self._backlog -= 1
                else:
                    self._idle += 1
        with self._lock:
            self._alive -= 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking calls; with ``cancel_futures`` cancel the queued ones; idle threads end.

        ``wait`` is accepted for the ``Executor`` interface; threads are daemons and a hung
        model call must not hold up the process's exit, so this never joins them.
        """
        with self._lock:
            self._closed = True
            idle = self._idle
            self._idle = 0
            if cancel_futures:
                self._backlog = 0
        if cancel_futures:
            while True:
                try:
                    work = self._work.get_nowait()
                except queue.Empty:
                    break
                if work is not None:
                    work.future.cancel()
        for _ in range(idle):
            self._work.put(None)


class _Work:
    __slots__ = ("args", "fn", "future", "kwargs")

    def __init__(
        self,
        future: concurrent.futures.Future[Any],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)

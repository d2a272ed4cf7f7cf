"""Worker processes for models that hold the GIL (``python`` flavor), outside the server.

A pure-Python model computes while holding the GIL, so in a thread it slows the event loop
and every other model of the worker down. :class:`ProcessPool` runs such models in
``processes`` worker processes instead (spawned, so they share nothing with the server but
the verified artifact's path). The gateway still calls :meth:`ProcessPredictor.predict` from
its thread pool, so deadlines, abandonment, bulkheads and breakers work exactly as for
threads; that thread only pickles the rows, then waits on a pipe without the GIL.

Each worker loads a version the first time it is asked for it and keeps it. A call that
gets no answer within ``call_timeout_s`` (a model that hangs for good) has its worker killed
and replaced, and fails as an error; a worker that died is replaced the same way. A worker's
first call of a version also loads it, and may wait for the worker to start (importing
Flotilla takes about a second), so it gets two minutes.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from flotilla.errors import PredictionError, RuntimeLoadError
from flotilla.runtimes import RuntimeSpec, load_runtime
from flotilla.types import Record

__all__ = ["DEFAULT_CALL_TIMEOUT_S", "ProcessPool", "ProcessPredictor"]

DEFAULT_CALL_TIMEOUT_S = 30.0
"""A call unanswered this long has its worker process killed and replaced."""

_LOAD_TIMEOUT_S = 120.0


class ProcessPool:
    """``processes`` spawned worker processes that load and run versions on request.

    Args:
        processes: worker processes (calls beyond them wait for a free one).
        call_timeout_s: a call unanswered this long kills and replaces its worker.

    Example:
        >>> pool = ProcessPool(2)                  # doctest: +SKIP
        >>> model = pool.predictor(spec)           # doctest: +SKIP
        >>> model.load(); model.predict([{"x": 1.0}])  # doctest: +SKIP
        >>> pool.close()                           # doctest: +SKIP
    """

    def __init__(self, processes: int, *, call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S) -> None:
        if processes < 1 or not call_timeout_s > 0:
            raise ValueError(
                "A process pool needs processes >= 1 and a positive call_timeout_s "
                f"(got {processes} and {call_timeout_s})."
            )
        self.processes = processes
        self.call_timeout_s = call_timeout_s
        self._context = multiprocessing.get_context("spawn")
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self.restarts = 0
        for _ in range(processes):
            worker = self._spawn()
            self._idle.put(worker)

    def predictor(self, spec: RuntimeSpec) -> ProcessPredictor:
        """A predictor that runs ``spec``'s version in this pool's workers."""
        return ProcessPredictor(self, spec)

    def call(self, spec: RuntimeSpec, kind: str, records: list[Record] | None) -> Any:
        """Run ``kind`` (``load`` or ``predict``) for ``spec`` in a free worker (blocking)."""
        if self._closed:
            raise PredictionError("The model process pool is closed.")
        worker = self._idle.get()
        timeout = _LOAD_TIMEOUT_S if kind == "load" else self.call_timeout_s
        try:
            status, payload = worker.ask(spec, kind, records, timeout)
        except _WorkerLost as lost:
            self._replace(worker)
            raise PredictionError(
                f"The model process running {spec.name} {lost}; it was replaced."
            ) from None
        self._idle.put(worker)
        if status == "ok":
            return payload
        if kind == "load":
            raise RuntimeLoadError(f"{spec.name} could not be loaded in a model process: {payload}")
        raise PredictionError(payload)

    def close(self) -> None:
        """Stop every worker (idempotent)."""
        with self._lock:
            self._closed = True
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()

    def _spawn(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_serve, args=(child,), name="flotilla-model-process", daemon=True
        )
        process.start()
        child.close()
        worker = _Worker(process, parent)
        with self._lock:
            self._workers.append(worker)
        return worker

    def _replace(self, worker: _Worker) -> None:
        worker.stop()
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
            closed = self._closed
            self.restarts += 1
        if not closed:
            self._idle.put(self._spawn())


class ProcessPredictor:
    """A :class:`~flotilla.types.Predictor` whose calls run in a :class:`ProcessPool`."""

    def __init__(self, pool: ProcessPool, spec: RuntimeSpec) -> None:
        self.pool = pool
        self.spec = spec

    def load(self) -> None:
        """Load the version in one worker now, so a broken artifact shows at start."""
        self.pool.call(self.spec, "load", None)

    def predict(self, records: list[Record]) -> list[Any]:
        out: list[Any] = self.pool.call(self.spec, "predict", records)
        return out


class _WorkerLost(Exception):
    pass


class _Worker:
    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.known: set[str] = set()

    def ask(
        self, spec: RuntimeSpec, kind: str, records: list[Record] | None, timeout: float
    ) -> tuple[str, Any]:
        key = spec.name
        first = key not in self.known
        if first:  # the worker loads the version first (and may still be starting up)
            timeout = max(timeout, _LOAD_TIMEOUT_S)
        try:  # the spec travels once per worker; the worker keeps the loaded version
            self.conn.send((kind, key, spec if first else None, records))
            if not self.conn.poll(timeout):
                raise _WorkerLost(f"gave no answer within {timeout:.0f} s")
            status, payload = self.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            raise _WorkerLost("died") from None
        if status == "ok":
            self.known.add(key)
        return status, payload

    def stop(self) -> None:
        try:
            self.conn.close()
        except OSError:
            pass
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)


def _serve(conn: Connection) -> None:  # pragma: no cover - runs in the worker process
    """The worker's loop: load versions on first use, answer calls until the pipe closes."""
    runtimes: dict[str, Any] = {}
    while True:
        try:
            kind, key, spec, records = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        try:
            runtime = runtimes.get(key)
            if runtime is None:
                if spec is None:
                    raise RuntimeLoadError(f"{key} is not loaded in this worker")
                runtime = load_runtime(spec)
                load = getattr(runtime, "load", None)
                if callable(load):
                    load()
                runtimes[key] = runtime
            if kind == "load":
                conn.send(("ok", None))
                continue
            out = runtime.predict(records)
            conn.send(("ok", out.tolist() if hasattr(out, "tolist") else list(out)))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"[:500]))

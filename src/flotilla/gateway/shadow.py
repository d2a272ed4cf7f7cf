"""The shadow mirror: run challengers on copies of live traffic, never on the live path.

:class:`ShadowMirror` owns a bounded queue and ``concurrency`` worker threads. The gateway
calls :meth:`ShadowMirror.offer` *after* the live answer has been sent; ``offer`` never
blocks: it samples the request (deterministically, by request id), then either queues the
job or drops it and counts the drop when the queue is full. A worker hands the shadow's
``predict`` to a pooled call thread (a :class:`~flotilla.gateway._pool.ModelPool`) and
waits at most ``deadline_s``: a shadow that hangs is abandoned (counted as ``timeout``; its
thread is replaced while it hangs), one that raises is recorded as ``error``, and either
way the prediction record goes to the sink with role ``shadow`` and the live request's id.

How the gateway wires it (after ``send_bytes`` of the live response, next to the live
record's ``sink.submit``)::

    for shadow in served.shadows:                     # (ref, sample, predictor) per shadow
        mirror.offer(ShadowJob(request_id=request_id, model=served.name, ref=shadow.ref,
                               predictor=shadow.predictor, records=instances, ids=ids,
                               event_time=event_time, sample=shadow.sample))

``mirror.start()`` runs at startup and ``mirror.close()`` at shutdown *before* the records
writer is closed, so the last shadow records are flushed too.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from flotilla.clock import SystemClock
from flotilla.errors import ConfigError
from flotilla.gateway._pool import ModelPool
from flotilla.records import PredictionEvent
from flotilla.types import Clock, Predictor, Record

__all__ = ["ShadowJob", "ShadowMirror", "ShadowSink", "ShadowStats", "sampled"]

log = logging.getLogger("flotilla.gateway.shadow")

Outcome = Literal["ok", "error", "timeout"]
_SCALE = float(2**64)


class ShadowSink(Protocol):
    """Where shadow predictions go (``flotilla.records.RecordWriter`` is one)."""

    def submit(self, event: PredictionEvent) -> bool:
        """Queue one event without blocking; ``False`` when it was dropped."""
        ...


def sampled(request_id: str, sample: float) -> bool:
    """Whether ``request_id`` falls in a ``sample`` share of traffic (stable across calls).

    The decision hashes the request id only, so a request is always in or always out for a
    given rate, and with the same rate every shadow sees the same requests (which keeps their
    evaluations paired with each other as well as with the live model).

    Example:
        >>> sampled("req-1", 1.0), sampled("req-1", 0.0)
        (True, False)
    """
    if sample >= 1.0:
        return True
    if sample <= 0.0:
        return False
    digest = hashlib.blake2b(request_id.encode("utf-8", "replace"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE < sample


@dataclass(slots=True)  # not frozen: a frozen init costs microseconds on every request
class ShadowJob:
    """One request to mirror to one shadow.

    Args:
        request_id: the live request's id (the shadow record carries the same id).
        model: the model the request was made to.
        ref: the shadow version's exact reference (``"recs@4"``), recorded as ``ref``.
        predictor: the shadow's loaded runtime (anything with ``predict(records)``).
        records: the request's rows, as sent to the live model.
        ids: the caller ids of the rows, if any.
        event_time: when the live request arrived (the shadow record's ``event_time``).
        sample: the share of requests mirrored to this shadow, in [0, 1].
    """

    request_id: str
    model: str
    ref: str
    predictor: Predictor
    records: list[Record]
    ids: list[str] | None
    event_time: datetime
    sample: float = 1.0


@dataclass
class ShadowStats:
    """Counters of a mirror (read them any time). A mirror built by ``create_app`` also
    counts its calls and drops in ``flotilla_shadow_calls_total`` and
    ``flotilla_shadow_dropped_total``.

    Attributes:
        offered: jobs handed to :meth:`ShadowMirror.offer`.
        skipped: jobs not in the sample.
        dropped: jobs dropped (queue full, mirror closed, or too many hung calls).
        completed: shadow calls that answered.
        errors: shadow calls that raised.
        timeouts: shadow calls abandoned at their deadline.
        unrecorded: shadow records the sink refused (its own buffer full).
    """

    offered: int = 0
    skipped: int = 0
    dropped: int = 0
    completed: int = 0
    errors: int = 0
    timeouts: int = 0
    unrecorded: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _check(name: str, value: Any, *, integer: bool) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    if integer:
        ok = ok and isinstance(value, int)
    if not ok:
        kind = "a positive integer" if integer else "a positive number of seconds"
        raise ConfigError(f"The '{name}' of ShadowMirror must be {kind}. Got {value!r} instead.")


class ShadowMirror:
    """Mirror sampled requests to shadow versions on a bounded queue, off the live path.

    Args:
        deadline_s: the most a shadow call may take; a slower one is abandoned and counted.
        sink: receives one :class:`~flotilla.records.PredictionEvent` per shadow call, role
            ``shadow``, the live request's id, ``degraded`` and ``reasons`` set on failure.
        capacity: the most jobs waiting; beyond it :meth:`offer` drops and counts.
        concurrency: worker threads, i.e. shadow calls running at once.
        max_abandoned: hung calls tolerated at once; while that many are still running,
            new jobs are dropped so hung shadows cannot pile up threads (default
            ``4 * concurrency``).
        on_drop: called with each dropped job (e.g. to increment a Prometheus counter).
        on_result: called with ``(job, outcome, seconds)``, outcome ``ok|error|timeout``.
        clock: monotonic clock for latencies (default the system clock).

    Raises:
        ConfigError: a parameter is not positive.

    Example:
        >>> mirror = ShadowMirror(deadline_s=0.5, sink=writer).start()  # doctest: +SKIP
        >>> mirror.offer(job)                                            # doctest: +SKIP
        True
        >>> mirror.close()                                               # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        deadline_s: float,
        sink: ShadowSink,
        capacity: int = 1000,
        concurrency: int = 4,
        max_abandoned: int | None = None,
        on_drop: Callable[[ShadowJob], Any] | None = None,
        on_result: Callable[[ShadowJob, Outcome, float], Any] | None = None,
        clock: Clock | None = None,
    ) -> None:
        _check("deadline_s", deadline_s, integer=False)
        _check("capacity", capacity, integer=True)
        _check("concurrency", concurrency, integer=True)
        if max_abandoned is not None:
            _check("max_abandoned", max_abandoned, integer=True)
        self.deadline_s = float(deadline_s)
        self.sink = sink
        self._sink_record: Callable[..., bool] | None = getattr(sink, "record", None)
        self.capacity = capacity
        self.concurrency = concurrency
        self.max_abandoned = max_abandoned if max_abandoned is not None else 4 * concurrency
        self.on_drop = on_drop
        self.on_result = on_result
        self.clock: Clock = clock or SystemClock()
        self.stats = ShadowStats()
        self._queue: queue.Queue[ShadowJob | None] = queue.Queue(maxsize=capacity)
        self._workers: list[threading.Thread] = []
        # calls run here, so a worker can stop waiting at the deadline; pooled threads, not
        # one new thread per call (about 100 us of interpreter time each)
        self._calls = ModelPool(
            concurrency, max_abandoned=self.max_abandoned, name="flotilla-shadow-call"
        )
        self._lock = threading.Lock()
        self._abandoned = 0
        self._closed = False

    @property
    def pending(self) -> int:
        """Jobs waiting in the queue."""
        return self._queue.qsize()

    @property
    def abandoned(self) -> int:
        """Hung shadow calls still running in abandoned threads."""
        return self._abandoned

    def start(self) -> ShadowMirror:
        """Start the worker threads (idempotent) and return ``self``."""
        if self._closed:
            raise ConfigError("This ShadowMirror is closed. Create a new one to mirror again.")
        while len(self._workers) < self.concurrency:
            worker = threading.Thread(
                target=self._run, name=f"flotilla-shadow-{len(self._workers)}", daemon=True
            )
            worker.start()
            self._workers.append(worker)
        return self

    def offer(self, job: ShadowJob) -> bool:
        """Queue ``job`` if its request is sampled; never blocks.

        Returns:
            ``True`` when queued; ``False`` when not sampled (``stats.skipped``) or dropped
            because the queue is full or the mirror is closed (``stats.dropped``).
        """
        self.stats.offered += 1
        if not sampled(job.request_id, job.sample):
            self.stats.skipped += 1
            return False
        if self._closed or self._queue.qsize() >= self.capacity:  # no exception when full
            self._drop(job)
            return False
        try:
            self._queue.put_nowait(job)
        except queue.Full:  # filled up since the check
            self._drop(job)
            return False
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking jobs, let the workers finish what is queued (up to ``timeout`` s each).

        Jobs still queued after that are dropped and counted. Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        for _ in self._workers:
            try:
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                break
        for worker in self._workers:
            worker.join(timeout)
        self._calls.shutdown(wait=False)
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                self._drop(job)

    def __enter__(self) -> ShadowMirror:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _drop(self, job: ShadowJob) -> None:
        with self._lock:
            self.stats.dropped += 1
        _call(self.on_drop, job)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                self._mirror(job)
            except Exception:  # a worker must survive anything
                log.exception("shadow job of request %s failed unexpectedly", job.request_id)

    def _mirror(self, job: ShadowJob) -> None:
        if self._abandoned >= self.max_abandoned:
            self._drop(job)
            return
        start = self.clock.monotonic()
        future = self._calls.submit(_predict, job.predictor, job.records)
        box: dict[str, Any] | None
        try:
            box = {"out": future.result(timeout=self.deadline_s)}
        except concurrent.futures.TimeoutError:
            box = None
        except BaseException as exc:  # the shadow raised: recorded as ``error``
            box = {"exc": exc}
        elapsed = self.clock.monotonic() - start
        if box is None:
            with self._lock:
                self._abandoned += 1
            self._calls.abandon(future)  # its thread is replaced while it hangs
            future.add_done_callback(self._settled)
        self._record(job, box, elapsed)

    def _settled(self, _future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._abandoned -= 1

    def _record(self, job: ShadowJob, box: dict[str, Any] | None, elapsed: float) -> None:
        n = len(job.records)
        outcome: Outcome
        if box is None:
            outcome, predictions = "timeout", [None] * n
            reasons = [{"ref": job.ref, "reason": "timeout", "detail": _late(self.deadline_s)}]
        elif "exc" in box:
            exc = box["exc"]
            outcome, predictions = "error", [None] * n
            reasons = [{"ref": job.ref, "reason": "error", "detail": _detail(exc)}]
        else:
            outcome, predictions, reasons = "ok", box["out"], []
        with self._lock:
            if outcome == "ok":
                self.stats.completed += 1
            elif outcome == "error":
                self.stats.errors += 1
            else:
                self.stats.timeouts += 1
        _call(self.on_result, job, outcome, elapsed)
        try:
            record = self._sink_record
            if record is not None:  # a RecordWriter: no event object
                accepted = record(
                    job.request_id, job.model, job.ref, "shadow", job.records, predictions,
                    job.ids, elapsed * 1000.0, outcome != "ok", reasons, job.event_time,
                )  # fmt: skip
            else:
                accepted = self.sink.submit(
                    PredictionEvent(
                        request_id=job.request_id,
                        model=job.model,
                        ref=job.ref,
                        role="shadow",
                        inputs=job.records,
                        predictions=predictions,
                        ids=job.ids,
                        latency_ms=elapsed * 1000.0,
                        degraded=outcome != "ok",
                        reasons=reasons,
                        event_time=job.event_time,
                    )
                )
        except Exception:
            log.exception("could not submit the shadow record of %s", job.request_id)
            accepted = False
        if not accepted:
            with self._lock:
                self.stats.unrecorded += 1


def _predict(predictor: Predictor, records: list[Record]) -> list[Any]:
    return list(predictor.predict(records))


def _call(callback: Callable[..., Any] | None, *args: Any) -> None:
    if callback is None:
        return
    try:
        callback(*args)
    except Exception:
        log.exception("a ShadowMirror callback failed")


def _late(deadline_s: float) -> str:
    return f"no answer within the shadow deadline of {deadline_s * 1000:.0f} ms; abandoned"


def _detail(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."

"""The buffered, batched, durable prediction-record writer."""

from __future__ import annotations

import atexit
import logging
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import pyarrow as pa

from flotilla.clock import SystemClock
from flotilla.errors import ConfigError, RecordsError
from flotilla.records._event import PredictionEvent
from flotilla.records._helper import HelperGone, RecordsHelper
from flotilla.records._schema import encode_prediction, event_fields, fields_to_table
from flotilla.records._segments import write_partitioned
from flotilla.types import Clock

__all__ = ["RecordWriter", "install_signal_flush"]

logger = logging.getLogger("flotilla.records")

_LOG_EVERY_S = 10.0


def _positive(name: str, value: float, *, integer: bool = False) -> None:
    ok = value > 0 and (not integer or (isinstance(value, int) and not isinstance(value, bool)))
    if not ok:
        kind = "a positive integer" if integer else "a positive number of seconds"
        raise ConfigError(f"The '{name}' of RecordWriter must be {kind}. Got {value!r} instead.")


class RecordWriter:
    """Buffer prediction events and flush them to Parquet segments from a background thread.

    ``submit`` never blocks the request path: it appends the event's fields to a bounded
    in-memory buffer (with a helper process, their JSON bytes: a copy the garbage collector
    never scans) and returns ``False`` (counting the drop in ``dropped`` and calling
    ``on_drop``) when the buffer holds ``capacity`` events or, with a helper process, when
    the event cannot be written as JSON. A daemon thread started by
    :meth:`start` flushes every ``flush_interval`` seconds, or sooner when ``max_rows`` events
    wait, into segments
    ``predictions/model=<m>/date=<YYYY-MM-DD>/part-<time>-<uuid>.parquet`` written atomically.
    :meth:`close` drains everything (call it on shutdown, or use
    :func:`install_signal_flush`); a process killed with SIGKILL loses at most the events
    submitted since the last flush began (one ``flush_interval`` plus one write).

    Args:
        root: the records root folder (``Settings.records``).
        flush_interval: seconds between flushes.
        max_rows: flush early when this many events wait; also the most events per segment.
        capacity: the most events the buffer holds before ``submit`` drops.
        clock: wall clock for ``written_at`` and file names (default the system clock).
        on_drop: called with the number of events dropped (e.g. a Prometheus counter's ``inc``).
        helper_process: convert and write the segments in a spawned helper process (started
            by :meth:`start`), so this process spends no interpreter time on them: what a
            server wants (``flotilla serve`` turns it on). :meth:`start` waits until the
            helper is ready (about a second); if it cannot start, records are written here.
            When the helper dies, that flush is written here and a new helper is started
            for the next one.

    Attributes:
        dropped: events dropped so far (buffer full, writer closed, or not expandable; after
            repeated write failures, events beyond ``capacity`` waiting for a retry).
        written: rows written to disk so far.

    Example:
        >>> writer = RecordWriter(tmp_path, flush_interval=1.0)  # doctest: +SKIP
        >>> writer.start()                                       # doctest: +SKIP
        >>> writer.submit(event)                                 # doctest: +SKIP
        True
        >>> writer.close()                                       # doctest: +SKIP
    """

    def __init__(
        self,
        root: Path,
        *,
        flush_interval: float = 1.0,
        max_rows: int = 50_000,
        capacity: int = 200_000,
        clock: Clock | None = None,
        on_drop: Callable[[int], Any] | None = None,
        helper_process: bool = False,
    ) -> None:
        _positive("flush_interval", flush_interval)
        _positive("max_rows", max_rows, integer=True)
        _positive("capacity", capacity, integer=True)
        self.root = Path(root)
        self.flush_interval = flush_interval
        self.max_rows = max_rows
        self.capacity = capacity
        self.clock: Clock = clock or SystemClock()
        self.on_drop = on_drop
        self.dropped = 0
        self.written = 0
        self.helper_process = helper_process
        self._helper: RecordsHelper | None = None
        self._buffer: deque[Any] = deque()  # field tuples, or their JSON bytes for a helper
        self._pending: list[Any] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._last_log = -_LOG_EVERY_S
        self._unlogged = 0

    @property
    def buffered(self) -> int:
        """Events waiting in the buffer."""
        return len(self._buffer)

    @property
    def helper_pid(self) -> int | None:
        """The helper process's id while one runs (``helper_process=True``), else ``None``."""
        return None if self._helper is None else self._helper.pid

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def submit(self, event: PredictionEvent) -> bool:
        """Queue one event for writing; never blocks. Returns ``False`` when it was dropped."""
        return self.record(*event_fields(event))

    def record(
        self,
        request_id: str,
        model: str,
        ref: str,
        role: str,
        inputs: list[Any],
        predictions: list[Any],
        ids: list[Any] | None,
        latency_ms: float,
        degraded: bool,
        reasons: list[Any],
        event_time: datetime,
        feature_times: list[Any] | None = None,
    ) -> bool:
        """:meth:`submit` for the fields of a :class:`PredictionEvent`, without building one.

        What the gateway calls once per answered request: no event object is built (with a
        helper process, the fields are encoded to JSON bytes here, a microsecond or so for
        one row). Never blocks; ``False`` when dropped.
        """
        buffer = self._buffer
        if self._closed or len(buffer) >= self.capacity:
            self._drop(1, "the writer is closed" if self._closed else "the buffer is full")
            return False
        fields = (
            request_id, model, ref, role, inputs, predictions, ids, latency_ms, degraded,
            reasons, event_time, feature_times,
        )  # fmt: skip
        if self.helper_process:
            try:
                buffer.append(encode_prediction(fields))
            except TypeError as exc:  # orjson's JSONEncodeError, e.g. an int beyond 64 bits
                self._drop(1, f"event {request_id!r} could not be recorded ({exc})")
                return False
        else:
            buffer.append(fields)
        if len(buffer) >= self.max_rows and not self._wake.is_set():
            self._wake.set()
        return True

    def start(self) -> RecordWriter:
        """Start the background flush thread (idempotent) and return ``self``."""
        if self._closed:
            raise RecordsError("This RecordWriter is closed. Create a new one to write again.")
        if self.helper_process and self._helper is None:
            self._helper = _restart(self.root)  # None (writing here) if it cannot start
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="flotilla-records-writer", daemon=True
            )
            self._thread.start()
            atexit.register(self.close)
        return self

    def flush(self) -> int:
        """Write every buffered event now; returns the number of rows written.

        Raises:
            RecordsError: the segment could not be written (the rows are kept and retried
                by the next flush).
        """
        written = 0
        with self._flush_lock:
            remaining = len(self._buffer)  # events that arrive meanwhile wait for the next one
            while remaining > 0 or self._pending:
                events = self._take(min(self.max_rows, remaining))
                remaining -= len(events)
                written += self._write(events)
        return written

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop the thread and write everything still buffered (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        atexit.unregister(self.close)
        try:
            self.flush()
        finally:
            if self._helper is not None:
                self._helper.close()
                self._helper = None

    def __enter__(self) -> RecordWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _take(self, limit: int) -> list[Any]:
        buffer = self._buffer
        n = min(limit, len(buffer))
        return [buffer.popleft() for _ in range(n)]

    def _write(self, items: list[Any]) -> int:
        now = self.clock.now()
        if self._pending:
            items, self._pending = self._pending + items, []
        try:
            rows, bad = self._convert_and_write(items, now)
        except (OSError, pa.ArrowException, RecordsError) as exc:
            self._keep_for_retry(items)
            raise RecordsError(
                f"Prediction records could not be written under {self.root} ({exc}). "
                "Check that the folder is writable and the disk is not full; the rows are "
                "kept in memory and retried on the next flush."
            ) from exc
        for message in bad:
            self._drop(1, message)
        self.written += rows
        return rows

    def _convert_and_write(self, items: list[Any], now: datetime) -> tuple[int, list[str]]:
        helper = self._helper
        if helper is not None:
            try:
                return helper.write(items, now)
            except HelperGone as exc:
                logger.warning("%s Writing this flush here and starting a new helper.", exc)
                self._helper = None if self._closed else _restart(self.root)
        table, bad = fields_to_table(items, now)
        write_partitioned(self.root, "predictions", table, "event_time", now=now)
        return int(table.num_rows), bad

    def _keep_for_retry(self, items: list[Any]) -> None:
        excess = len(items) - self.capacity
        if excess > 0:
            items = items[excess:]
            self._drop(excess, "writes keep failing and the retry buffer is full")
        self._pending = items

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.flush()
            except RecordsError as exc:
                logger.error("%s", exc)
            except Exception:  # the thread must survive anything
                logger.exception("Unexpected error while flushing prediction records.")

    def _drop(self, n: int, why: str) -> None:
        self.dropped += n
        if self.on_drop is not None:
            try:
                self.on_drop(n)
            except Exception:
                logger.exception("The on_drop callback of RecordWriter failed.")
        self._unlogged += n
        now = self.clock.monotonic()
        if now - self._last_log >= _LOG_EVERY_S:
            logger.warning(
                "Dropped %d prediction record event(s) since the last warning: %s. "
                "Raise 'capacity' or lower 'flush_interval' if this persists.",
                self._unlogged,
                why,
            )
            self._last_log = now
            self._unlogged = 0


def _restart(root: Path) -> RecordsHelper | None:
    try:
        return RecordsHelper(root).start()
    except Exception:  # e.g. no more processes allowed: write in this process from now on
        logger.exception("Could not start a records helper process; writing here instead.")
        return None


def install_signal_flush(
    writers: RecordWriter | Iterable[RecordWriter],
    signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT),
) -> Callable[[], None]:
    """Close (and so flush) ``writers`` when one of ``signals`` arrives, then go on as before.

    After closing, the previous handler runs; when there was none, SIGINT raises
    ``KeyboardInterrupt`` and other signals exit with status ``128 + signum``. Call it from
    the main thread. Servers run by uvicorn do not need it: their lifespan shutdown calls
    :meth:`RecordWriter.close`. Returns a function that restores the previous handlers.
    """
    targets = [writers] if isinstance(writers, RecordWriter) else list(writers)
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        for writer in targets:
            try:
                writer.close()
            except RecordsError as exc:
                logger.error("%s", exc)
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)
        elif before == signal.SIG_IGN:
            return
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            raise SystemExit(128 + signum)

    for sig in signals:
        previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, before in previous.items():
            signal.signal(sig, before if before is not None else signal.SIG_DFL)

    return restore

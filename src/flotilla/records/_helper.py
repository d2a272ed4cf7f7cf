"""The records helper process: converts encoded events to Parquet segments off the GIL.

A serving process that converts its own records shares one interpreter lock between the
event loop and that conversion (several microseconds of Python per record), and a busy
converter delays the loop's next turn. :class:`RecordsHelper` moves the conversion and the
Parquet writing into a spawned child: the serving process only sends the bytes it buffered.

Protocol over one duplex pipe, one message per ``send_bytes``:

- ``E`` + encoded events, one per line (orjson never writes a raw newline): add them to the
  pending batch;
- ``F`` + an ISO time: write the pending batch stamped ``written_at`` = that time, then answer
  ``K`` + ``{"rows": n, "bad": [message, ...]}`` or ``X`` + ``{"error": text}`` (the batch is
  discarded either way: the parent keeps its copy for a retry);
- ``Q``: exit.

When the parent dies (even with SIGKILL) the pipe reaches end of file and the child writes what
it holds, then exits. It ignores SIGINT and SIGTERM, which a terminal or a supervisor may send
to the whole process group: the parent decides when it stops, after its last flush.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
from collections.abc import Sequence
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from flotilla.errors import RecordsError

__all__ = ["HelperGone", "RecordsHelper"]

logger = logging.getLogger("flotilla.records")

_CHUNK_BYTES = 1 << 20
_REPLY_TIMEOUT_S = 300.0
_START_TIMEOUT_S = 60.0
HELPER_NICENESS = 10
"""How much the helper lowers its scheduling priority (``os.nice``): its flushes come in
bursts, and at the serving process's priority a burst took the core from a request (or from
the load client on a small machine) and showed in the gateway's p99."""


class HelperGone(RecordsError):
    """The helper process died or stopped answering; the batch was not written."""


class RecordsHelper:
    """A spawned process that writes batches of encoded events under ``root``.

    Args:
        root: the records root folder.

    Example:
        >>> helper = RecordsHelper(tmp_path).start()          # doctest: +SKIP
        >>> helper.write([encode_prediction(fields)], datetime.now(UTC))  # doctest: +SKIP
        (1, [])
        >>> helper.close()                                     # doctest: +SKIP
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._conn: Connection | None = None
        self._process: Any = None

    @property
    def alive(self) -> bool:
        """Whether the child is running."""
        return self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        """The child's process id, when started."""
        return None if self._process is None else int(self._process.pid)

    def start(self) -> RecordsHelper:
        """Spawn the child and wait until it is ready (it imports the records package, about
        a second); returns self.

        Raises:
            HelperGone: the child died or did not get ready within a minute.
        """
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe(duplex=True)
        process = context.Process(
            target=_serve, args=(child, str(self.root)), name="flotilla-records", daemon=True
        )
        process.start()
        child.close()
        self._conn, self._process = parent, process
        # Wait for its imports, so the first flushes are written in time, not queued in the
        # pipe while the helper starts (kill -9 of the parent would then lose more than one
        # flush interval's worth).
        try:
            ready = parent.poll(_START_TIMEOUT_S) and parent.recv_bytes() == b"R"
        except (OSError, EOFError):
            ready = False
        if not ready:
            self.kill()
            raise HelperGone(
                f"The records helper process did not start within {_START_TIMEOUT_S:.0f} s."
            )
        return self

    def write(self, items: Sequence[bytes], now: datetime) -> tuple[int, list[str]]:
        """Write ``items`` as one flush stamped ``now``; returns (rows written, problems).

        Raises:
            HelperGone: the child is dead or did not answer (nothing is known to be written).
            RecordsError: the child could not write the segment (nothing was written).
        """
        conn = self._conn
        if conn is None or not self.alive:
            raise HelperGone("The records helper process is not running.")
        try:
            for chunk in _chunks(items):
                conn.send_bytes(chunk)
            conn.send_bytes(b"F" + now.isoformat().encode())
            if not conn.poll(_REPLY_TIMEOUT_S):
                self.kill()
                raise HelperGone(
                    f"The records helper process did not answer within {_REPLY_TIMEOUT_S:.0f} s."
                )
            reply = conn.recv_bytes()
        except (OSError, EOFError) as exc:
            self.kill()
            raise HelperGone(f"The records helper process is gone ({exc}).") from exc
        body = orjson.loads(reply[1:])
        if reply[:1] == b"K":
            return int(body["rows"]), [str(m) for m in body["bad"]]
        raise RecordsError(str(body["error"]))

    def close(self, timeout: float = 30.0) -> None:
        """Ask the child to exit and wait for it (killed after ``timeout``); idempotent."""
        conn, process = self._conn, self._process
        self._conn = self._process = None
        if conn is not None:
            try:
                conn.send_bytes(b"Q")
            except OSError:
                pass
            conn.close()
        if process is not None:
            process.join(timeout)
            if process.is_alive():
                process.kill()
                process.join(5)

    def kill(self) -> None:
        """Stop the child at once (used when it stopped answering)."""
        process, conn = self._process, self._conn
        self._conn = self._process = None
        if process is not None and process.is_alive():
            process.kill()
            process.join(5)
        if conn is not None:
            conn.close()


def _chunks(items: Sequence[bytes]) -> list[bytes]:
    """``E`` messages of about ``_CHUNK_BYTES`` each (so one message never needs GBs)."""
    out: list[bytes] = []
    start = size = 0
    for i, item in enumerate(items):
        size += len(item) + 1
        if size >= _CHUNK_BYTES:
            out.append(b"E" + b"\n".join(items[start : i + 1]))
            start, size = i + 1, 0
    if start < len(items):
        out.append(b"E" + b"\n".join(items[start:]))
    return out


def _lower_priority() -> None:
    """Yield the CPU to the serving process: the helper's work is never urgent."""
    try:
        os.nice(HELPER_NICENESS)
    except (AttributeError, OSError):  # not on this platform, or not allowed: run as is
        pass


def _serve(conn: Connection, root: str) -> None:  # pragma: no cover - runs in the child
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _lower_priority()
    from flotilla.records._encoded import EncodedConverter
    from flotilla.records._segments import write_partitioned

    converter = EncodedConverter()  # DuckDB: a third of the Python conversion's CPU

    # Decoded batches are acyclic JSON values freed by reference counting; a collector left
    # on would rescan a whole batch many times while it is converted (twice the cost).
    gc.collect()
    gc.freeze()
    gc.disable()
    conn.send_bytes(b"R")  # ready: start() returns
    folder = Path(root)
    pending: list[bytes] = []

    def write(now: datetime) -> tuple[int, list[str]]:
        items: list[bytes] = []
        for message in pending:
            items.extend(message.split(b"\n"))
        pending.clear()
        try:
            table, bad = converter.to_table(items, now)
            if table.num_rows:
                write_partitioned(folder, "predictions", table, "event_time", now=now)
        finally:
            del items
            gc.collect()  # whatever cycles a library made meanwhile, then only the new
            gc.freeze()  # survivors are scanned next time
        return int(table.num_rows), bad

    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):  # the parent is gone: keep what it sent
            if pending:
                try:
                    write(datetime.now(UTC))
                except Exception:
                    logger.exception("the records helper could not write its last batch")
            return
        kind, body = message[:1], message[1:]
        if kind == b"E":
            pending.append(body)
        elif kind == b"F":
            try:
                rows, bad = write(datetime.fromisoformat(body.decode()))
                reply = b"K" + orjson.dumps({"rows": rows, "bad": bad})
            except Exception as exc:
                reply = b"X" + orjson.dumps({"error": f"{type(exc).__name__}: {exc}"})
            conn.send_bytes(reply)
        elif kind == b"Q":
            return

"""A child process for the durability tests (run as a script, never imported by pytest).

Usage::

    python records_child.py flag ROOT [helper]     # SIGTERM sets a flag; the loop closes
    python records_child.py handler ROOT [helper]  # install_signal_flush closes the writer
    python records_child.py kill ROOT [helper]     # writes until killed with SIGKILL
    python records_child.py compact ROOT STEP      # compacts, hangs at STEP until killed

``helper`` makes the writer convert and write in its helper process.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from flotilla.records import (
    CompactStep,
    PredictionEvent,
    RecordStore,
    RecordWriter,
    install_signal_flush,
)


def _event(i: int) -> PredictionEvent:
    return PredictionEvent(
        request_id=str(i),
        model="churn",
        ref="churn@1",
        role="live",
        inputs=[{"x": float(i)}],
        predictions=[0.5],
        ids=None,
        latency_ms=1.0,
        degraded=False,
        reasons=[],
        event_time=datetime.now(UTC),
    )


def _writer(root: Path, helper: bool) -> RecordWriter:
    return RecordWriter(root, flush_interval=0.2, helper_process=helper).start()


def _flag(root: Path, helper: bool) -> None:
    # A plain flag: Event.set() in a handler can deadlock with an Event.wait() it interrupts.
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    writer = _writer(root, helper)
    print("ready", flush=True)
    submitted = 0
    while not stop:
        if writer.submit(_event(submitted)):
            submitted += 1
        time.sleep(0.0005)
    writer.close()
    print(submitted, flush=True)


def _handler(root: Path, helper: bool) -> None:
    writer = _writer(root, helper)
    install_signal_flush(writer)
    print("ready", flush=True)
    attempted = 0
    pause = threading.Event()
    try:
        while True:
            attempted += 1
            writer.submit(_event(attempted - 1))
            pause.wait(0.0005)
    except KeyboardInterrupt:
        print(attempted, flush=True)


def _kill(root: Path, helper: bool) -> None:
    writer = _writer(root, helper)
    print("ready", flush=True)
    print(writer.helper_pid, flush=True)
    pause = threading.Event()
    i = 0
    while True:
        writer.submit(_event(i))
        i += 1
        pause.wait(0.001)


def _compact(root: Path, step: str) -> None:
    def progress(event: CompactStep) -> None:
        if event.step == step:
            print(f"at {step}", flush=True)
            threading.Event().wait(120)

    RecordStore(root).compact(progress=progress)


if __name__ == "__main__":
    mode, folder = sys.argv[1], Path(sys.argv[2])
    with_helper = sys.argv[3:] == ["helper"]
    if mode == "flag":
        _flag(folder, with_helper)
    elif mode == "handler":
        _handler(folder, with_helper)
    elif mode == "kill":
        _kill(folder, with_helper)
    else:
        _compact(folder, sys.argv[3])

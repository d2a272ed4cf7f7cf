"""A child process for the durability tests (run as a script, never imported by pytest).

Usage::

    python records_child.py flag ROOT     # SIGTERM sets a flag; the loop closes the writer
    python records_child.py handler ROOT  # install_signal_flush closes it from the handler
    python records_child.py kill ROOT     # writes until killed with SIGKILL
    python records_child.py compact ROOT STEP  # compacts, hangs at STEP until killed
"""

from __future__ import annotations

import signal
import sys
import threading
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


def _flag(root: Path) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    writer = RecordWriter(root, flush_interval=0.2).start()
    print("ready", flush=True)
    submitted = 0
    while not stop.is_set():
        if writer.submit(_event(submitted)):
            submitted += 1
        stop.wait(0.0005)
    writer.close()
    print(submitted, flush=True)


def _handler(root: Path) -> None:
    writer = RecordWriter(root, flush_interval=0.2).start()
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


def _kill(root: Path) -> None:
    writer = RecordWriter(root, flush_interval=0.2).start()
    print("ready", flush=True)
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
    if mode == "flag":
        _flag(folder)
    elif mode == "handler":
        _handler(folder)
    elif mode == "kill":
        _kill(folder)
    else:
        _compact(folder, sys.argv[3])

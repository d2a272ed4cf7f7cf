"""Records: writer throughput on one core, and gateway p99/throughput with records on vs off.

Run: ``.venv/bin/python bench/records.py [--events 200000] [--seconds 5] [--skip-gateway]``.

Part 1 (writer only): the process is pinned to one CPU; ``--events`` prepared events of one
row with ten input fields are submitted to a started :class:`flotilla.records.RecordWriter`
(flush interval 1 s) and the clock stops when :meth:`close` returns, i.e. when every record
is on disk in Parquet. It runs twice: converting in the writer's thread (the library's
default) and in its helper process (what ``flotilla serve`` uses; the helper shares the
core). Reports records/s against the target (>= 50,000 records/s, issue 4) and the cost of
one ``submit`` in microseconds. Bounded: submission stops after
``--max-submit-seconds``.

Part 2 (gateway): when :func:`flotilla.gateway.create_app` takes ``sink=`` (the records
writer), the same tiny model is served with ``flotilla serve --records`` and
``--no-records`` in turn (``--rounds`` interleaved rounds, best of each) and loaded from a
separate process: p99 at concurrency 1 from the Python closed-loop client (each request's own
latency; target: records on at most 10% higher) and throughput at concurrency 32 from wrk
when installed, else the same Python client (target: records on at least 0.9x of off). Otherwise it
prints "skipped: gateway not integrated". It also reads the CPU the server and its records
helper used during each concurrency-32 phase (from ``/proc``, until the helper wrote the
phase's last flush) and reports the median per request, records on against off: on a small
machine where the load client shares the cores, that figure is what records cost, steadier
than the throughput ratio.

Both parts run side by side in one invocation; results also go to ``bench/out/records.json``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rich.console import Console
from rich.table import Table

OUT = Path(__file__).resolve().parent / "out"
TARGET_RECORDS_PER_S = 50_000.0
_SETTLE_S = 1.5
console = Console()


def _pin_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity on this platform)"


def writer_bench(n_events: int, max_submit_s: float, *, helper: bool) -> dict[str, Any]:
    """Submit ``n_events`` one-row events and time until all are on disk.

    ``helper``: the writer converts in its helper process (as ``flotilla serve`` does; the
    helper inherits the pinning, so both share the one core).
    """
    import gc

    from flotilla.records import PredictionEvent, RecordStore, RecordWriter

    now = datetime.now(UTC)
    events = [
        PredictionEvent(
            request_id=f"req-{i}", model="bench", ref="bench@1", role="live",
            inputs=[{f"f{k}": float(i + k) for k in range(10)}], predictions=[0.5],
            ids=[f"user-{i % 1000}"], latency_ms=1.25, degraded=False, reasons=[],
            event_time=now,
        )
        for i in range(n_events)
    ]  # fmt: skip
    gc.collect()  # the prepared events are the bench's, not the writer's: out of the
    gc.freeze()  # collector's scans, as `flotilla serve` freezes its loaded heap
    with tempfile.TemporaryDirectory(prefix="flotilla-records-bench-") as tmp:
        root = Path(tmp)
        writer = RecordWriter(root, flush_interval=1.0, helper_process=helper).start()
        time.sleep(2.0 if helper else 0.0)  # the helper's start-up is not the writer's speed
        start = time.perf_counter()
        submitted = 0
        deadline = start + max_submit_s
        for event in events:
            writer.submit(event)
            submitted += 1
            if submitted % 10_000 == 0 and time.perf_counter() > deadline:
                break
        submit_s = time.perf_counter() - start
        writer.close()
        total_s = time.perf_counter() - start
        on_disk = RecordStore(root).query("SELECT count(*) FROM predictions").fetchall()[0][0]
    gc.unfreeze()
    return {
        "mode": "helper process" if helper else "thread",
        "events": submitted,
        "on_disk": int(on_disk),
        "dropped": writer.dropped,
        "submit_us": submit_s / submitted * 1e6,
        "seconds": total_s,
        "records_per_s": on_disk / total_s,
    }


# -- part 2: gateway with records on and off ------------------------------------------------

MODEL_PY = (
    "class Echo:\n    def predict(self, records):\n        return [r['x'] for r in records]\n"
)
BODY = json.dumps({"instances": [{"x": 1.0}]})
PATH = "/v1/models/echo:predict"


def _gateway_integrated() -> bool:
    try:
        from flotilla.gateway import create_app
    except ImportError:
        return False
    return "sink" in inspect.signature(create_app).parameters


def _setup(home: Path) -> None:
    from flotilla.settings import Settings
    from flotilla.workspace import Workspace

    code = home.parent / "bench_echo.py"
    code.write_text(MODEL_PY)
    ws = Workspace.open(Settings(home=home, actor="bench"))
    ws.register(
        "echo", flavor="python", artifact=code, entry="bench_echo:Echo",
        signature={"inputs": [{"name": "x", "type": "float"}], "output": {"kind": "score"}},
    )  # fmt: skip
    spec = {
        "model": "echo",
        "live": "echo@1",
        "deadline_ms": 1000,
        "fallbacks": [{"static": {"value": 0.0}}],
        "max_concurrency": 64,
    }
    ws.registry.put_deployment("echo", spec, actor="bench", reason="records bench")


def _phase(home: Path, records: bool, seconds: float) -> dict[str, Any]:
    from _load import (
        free_port,
        python_load,
        start_server,
        stop_server,
        summarize,
        tree_cpu_s,
        wrk_load,
    )

    env = {**os.environ, "FLOTILLA_HOME": str(home)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    port = free_port()
    call = "from flotilla.cli.main import main; main()"
    flag = "--records" if records else "--no-records"
    proc = start_server([sys.executable, "-c", call, "serve", "--port", str(port), flag], port,
                        env=env)  # fmt: skip
    try:
        requests = [{"path": PATH, "body": BODY}]
        warm = python_load(port, requests, concurrency=2, seconds=1.0)
        c1 = summarize(python_load(port, requests, concurrency=1, seconds=seconds))
        # throughput from wrk when installed: the Python client would take a core itself
        before = tree_cpu_s(proc.pid)
        heavy = wrk_load(port, PATH, BODY, concurrency=32, seconds=seconds)
        if heavy is None:
            heavy = python_load(port, requests, concurrency=32, seconds=seconds)
        # the CPU of the server and its records helper, until the helper has written the
        # last flush of the phase (flushes come every second)
        time.sleep(_SETTLE_S)
        after = tree_cpu_s(proc.pid)
        heavy["cpu_s"] = None if before is None or after is None else after - before
        c32 = summarize(heavy)
        return {
            "c1": c1,
            "c32": c32,
            "answered": warm["requests"] + c1["requests"] + c32["requests"],
        }
    finally:
        stop_server(proc)


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Best of the rounds: the lowest p99 at c=1 and the highest throughput at c=32; the
    median CPU per request at c=32 over the rounds."""
    cpu = [r["c32"]["cpu_us_per_request"] for r in runs]
    return {
        "c1": min((r["c1"] for r in runs), key=lambda x: x["p99_ms"]),
        "c32": max((r["c32"] for r in runs), key=lambda x: x["rps"]),
        "cpu_us_per_request": None if None in cpu else statistics.median(cpu),
    }


def gateway_bench(seconds: float, rounds: int) -> dict[str, Any]:
    """Serve one model with records off and on (interleaved); p99 at c=1, req/s at c=32."""
    if not _gateway_integrated():
        return {"skipped": "gateway not integrated"}
    with tempfile.TemporaryDirectory(prefix="flotilla-records-gw-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        _setup(home)
        runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
        for round_ in range(1, rounds + 1):  # interleaved, so drift hits both alike
            for mode in ("off", "on"):
                console.print(f"gateway round {round_}/{rounds}: records {mode} ...")
                runs[mode].append(_phase(home, mode == "on", seconds))
        off, on = _best(runs["off"]), _best(runs["on"])
        from flotilla.records import RecordStore
        from flotilla.settings import Settings

        store = RecordStore(Settings(home=home).records)
        written = store.query("SELECT count(*) FROM predictions").fetchall()[0][0]
    answered = sum(r["answered"] for r in runs["on"])
    return {"off": off, "on": on, "records_written": int(written), "answered_on": answered}


def _report(writers: list[dict[str, Any]], gateway: dict[str, Any], pinned: str) -> None:
    table = Table(title=f"bench/records.py (writer {pinned})")
    for col in ("measure", "records off / baseline", "records on / measured", "ratio", "target"):
        table.add_column(col)
    for writer in writers:
        ratio = writer["records_per_s"] / TARGET_RECORDS_PER_S
        table.add_row(
            f"writer records/s (1 core, {writer['mode']})", f"{TARGET_RECORDS_PER_S:,.0f}",
            f"{writer['records_per_s']:,.0f}", f"{ratio:.2f}x", ">= 1.00x",
        )  # fmt: skip
        table.add_row(
            f"submit cost (µs/event, {writer['mode']})", "", f"{writer['submit_us']:.2f}", "",
            "a few µs",
        )  # fmt: skip
    if "skipped" in gateway:
        console.print(table)
        console.print(f"gateway p99 on/off: skipped: {gateway['skipped']}")
        return
    off, on = gateway["off"], gateway["on"]
    p99 = on["c1"]["p99_ms"] / off["c1"]["p99_ms"] if off["c1"]["p99_ms"] else float("nan")
    rps = on["c32"]["rps"] / off["c32"]["rps"] if off["c32"]["rps"] else float("nan")
    table.add_row(
        "gateway p99 ms (c=1)", f"{off['c1']['p99_ms']:.2f}", f"{on['c1']['p99_ms']:.2f}",
        f"{p99:.3f}x", "<= 1.10x",
    )  # fmt: skip
    table.add_row(
        "gateway req/s (c=32)", f"{off['c32']['rps']:,.0f}", f"{on['c32']['rps']:,.0f}",
        f"{rps:.3f}x", ">= 0.90x",
    )  # fmt: skip
    gateway["p99_ratio"], gateway["throughput_ratio"] = p99, rps
    cpu_off, cpu_on = off["cpu_us_per_request"], on["cpu_us_per_request"]
    if cpu_off and cpu_on:
        table.add_row(
            "server + helper CPU µs/request (c=32, median)", f"{cpu_off:.1f}", f"{cpu_on:.1f}",
            f"{cpu_on / cpu_off:.3f}x", "(what records cost)",
        )  # fmt: skip
        gateway["cpu_ratio"] = cpu_on / cpu_off
    console.print(table)
    written, answered = gateway["records_written"], gateway["answered_on"]
    lost = max(answered - written, 0)  # wrk does not count answers in flight at its end
    console.print(
        f"records written by the gateway: {written:,} for {answered:,} answers the clients "
        f"counted with records on: {lost:,} lost (target 0); non-2xx: "
        f"{off['c32']['non_2xx'] + on['c32']['non_2xx']} (client: {on['c32']['client']})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events for the writer")
    parser.add_argument("--max-submit-seconds", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=5.0, help="each gateway load phase")
    parser.add_argument("--rounds", type=int, default=2, help="off/on rounds (best of)")
    parser.add_argument("--skip-gateway", action="store_true", help="only the writer part")
    args = parser.parse_args()
    gateway: dict[str, Any] = {"skipped": "--skip-gateway"}
    if not args.skip_gateway:  # before pinning: the server and the client need the cores
        gateway = gateway_bench(args.seconds, args.rounds)
    pinned = _pin_one_core()
    console.print(f"writer: {args.events:,} events, {pinned} ...")
    writers = [
        writer_bench(args.events, args.max_submit_seconds, helper=helper)
        for helper in (False, True)
    ]
    _report(writers, gateway, pinned)
    OUT.mkdir(exist_ok=True)
    result = {"writers": writers, "gateway": gateway, "pinned": pinned}
    (OUT / "records.json").write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()

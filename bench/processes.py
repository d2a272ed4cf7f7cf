"""Processes for GIL-holding models: a fast ONNX model's latency beside a busy python model.

Run: ``.venv/bin/python bench/processes.py [--seconds 8] [--busy-ms 2]``. One invocation
registers a 100-tree GBM exported to ONNX (``gbm``, runs inline on the event loop) and a
pure-Python model that computes for ``--busy-ms`` holding the GIL (``busy``), and serves both
from one ``flotilla serve`` worker (records off) in two ways:

- threads: the python model runs in the thread pool (the default);
- processes: ``--processes 2``, the python model runs in two worker processes.

In each, load comes from two separate client processes at once: ``busy`` at concurrency 4
and ``gbm`` at concurrency 1 (each request's own latency). The question is how much the busy
python model slows the fast one down (``gbm`` p50/p99) and what each way serves of ``busy``.
Prints a table and the ratios; writes ``bench/out/processes.json``. Both servers run the
same code; only ``--processes`` differs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import overhead
from _load import free_port, python_load, start_server, stop_server, summarize

OUT = Path(__file__).resolve().parent / "out"

BUSY_PY = """
import time


class Busy:
    def __init__(self, ms=2.0):
        self.seconds = ms / 1000.0

    def predict(self, records):
        began = time.thread_time()
        n = 0
        while time.thread_time() - began < self.seconds:  # pure Python: holds the GIL
            n += 1
        return [0.5 for _ in records]
"""


def setup(home: Path, busy_ms: float) -> None:
    """Register and deploy ``gbm`` (ONNX) and ``busy`` (python)."""
    from flotilla.settings import Settings
    from flotilla.workspace import Workspace

    gbm, lite = overhead.build_models(home.parent)
    overhead.setup_flotilla(home, gbm, lite)
    code = home.parent / "bench_busy.py"
    code.write_text(BUSY_PY)
    ws = Workspace.open(Settings(home=home, actor="bench"))
    sig = {"inputs": [{"name": "x", "type": "float"}], "output": {"kind": "score"}}
    ws.register(
        "busy",
        flavor="python",
        artifact=code,
        entry="bench_busy:Busy",
        params={"ms": busy_ms},
        signature=sig,
    )
    spec = {"live": "busy@1", "deadline_ms": 1000, "fallbacks": [{"static": {"value": 0.0}}]}
    ws.registry.put_deployment("busy", spec, actor="bench", reason="processes bench")


def run_way(home: Path, extra: list[str], seconds: float) -> dict[str, Any]:
    """Serve with ``extra`` args; load ``busy`` (c4) and ``gbm`` (c1) at the same time."""
    env = {**os.environ, "FLOTILLA_HOME": str(home)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    port = free_port()
    call = "from flotilla.cli.main import main; main()"
    cmd = [sys.executable, "-c", call, "serve", "--port", str(port), "--no-records", *extra]
    proc = start_server(cmd, port, env=env, ready_path="/readyz")
    results: dict[str, Any] = {}
    busy_spec = [{"path": "/v1/models/busy:predict", "body": json.dumps({"instances": [{"x": 1}]})}]
    gbm_spec = [{"path": "/v1/models/gbm:predict", "body": overhead.BODY}]
    try:
        python_load(port, busy_spec, concurrency=4, seconds=1.0)  # warm-up: workers load
        busy = threading.Thread(
            target=lambda: results.update(
                busy=summarize(python_load(port, busy_spec, concurrency=4, seconds=seconds))
            )
        )
        busy.start()
        results["gbm"] = summarize(python_load(port, gbm_spec, concurrency=1, seconds=seconds))
        busy.join()
    finally:
        stop_server(proc)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds of load per way")
    parser.add_argument("--busy-ms", type=float, default=2.0, help="CPU ms per busy call")
    args = parser.parse_args()
    from rich.console import Console
    from rich.table import Table

    console = Console()
    out: dict[str, Any] = {"seconds": args.seconds, "busy_ms": args.busy_ms}
    with tempfile.TemporaryDirectory(prefix="flotilla-processes-") as tmp:
        home = Path(tmp) / "home"
        console.print("building the models and the Flotilla home ...")
        setup(home, args.busy_ms)
        for name, extra in (("threads", []), ("processes", ["--processes", "2"])):
            console.print(f"serving with {name} ...")
            out[name] = run_way(home, extra, args.seconds)
    table = Table(title=f"A {args.busy_ms:g} ms pure-Python model beside a fast ONNX model")
    for col in ("way", "gbm req/s", "gbm p50 ms", "gbm p99 ms", "busy req/s", "busy p99 ms"):
        table.add_column(col)
    for name in ("threads", "processes"):
        gbm, busy = out[name]["gbm"], out[name]["busy"]
        table.add_row(
            name,
            f"{gbm['rps']:.0f}",
            f"{gbm['p50_ms']:.3f}",
            f"{gbm['p99_ms']:.3f}",
            f"{busy['rps']:.0f}",
            f"{busy['p99_ms']:.2f}",
        )
    console.print(table)
    ratios = {
        "gbm p99, processes / threads": out["processes"]["gbm"]["p99_ms"]
        / out["threads"]["gbm"]["p99_ms"],
        "gbm req/s, processes / threads": out["processes"]["gbm"]["rps"]
        / out["threads"]["gbm"]["rps"],
        "busy req/s, processes / threads": out["processes"]["busy"]["rps"]
        / out["threads"]["busy"]["rps"],
    }
    out["ratios"] = ratios
    for label, value in ratios.items():
        console.print(f"{label}: {value:.2f}x")
    OUT.mkdir(exist_ok=True)
    (OUT / "processes.json").write_text(json.dumps(out, indent=2))
    console.print(f"written to {OUT / 'processes.json'}")


if __name__ == "__main__":
    main()

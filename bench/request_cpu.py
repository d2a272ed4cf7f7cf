"""CPU per request of the serving thread, in-process: Flotilla against its floors, no sockets.

Run: ``.venv/bin/python bench/request_cpu.py [--requests 5000] [--rounds 7]``. One invocation
builds the ONNX GBM of ``bench/overhead.py`` and the same Flotilla home, then drives uvicorn's
own HTTP protocol (``HttpToolsProtocol``, httptools parser, on a uvloop loop) with a fake
transport, one keep-alive connection, for each app in turn:

- a raw ASGI app answering a constant (uvicorn's own cost: the ceiling);
- the Starlette + onnxruntime floor and, when FastAPI is installed, the FastAPI one;
- Flotilla (``gbm@1 -> gbm-lite@1 -> static``), records off and on (helper process), with
  uvicorn configured as ``flotilla serve`` configures it (no proxy-headers middleware; the
  floors keep uvicorn's defaults, as a minimal app would).

Each round gives every app ``--requests`` requests; the CPU time of the serving thread
(``time.thread_time()``: the kernel's network work and other threads are left out) is
divided by the requests. The apps are interleaved over ``--rounds`` rounds in one process,
so that the machine's drift touches all of them alike; the table shows the median and the
best round. This is the steady figure to compare code changes with; ``bench/overhead.py``
gives the end-to-end throughput. Results also go to ``bench/out/request_cpu.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import BODY, FIELDS, build_models, fastapi_floor_app, floor_app, setup_flotilla

OUT = Path(__file__).resolve().parent / "out"


def http_request(path: str) -> bytes:
    """One keep-alive POST of the overhead bench's body."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    )
    return head.encode() + BODY.encode()


class FakeTransport:
    """Collects what the protocol writes; never blocks, never closes by itself."""

    def __init__(self) -> None:
        self.written = 0
        self.closing = False
        self.first = b""  # the start of the first response, to check its status

    def write(self, data: bytes) -> None:
        if not self.written:
            self.first = bytes(data[:64])
        self.written += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A constant answer: what uvicorn itself costs per request."""
    if scope["type"] != "http":
        return
    await receive()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"predictions":[0.5]}'})


class Driven:
    """One app behind uvicorn's httptools protocol, one keep-alive connection."""

    def __init__(self, app: Any, path: str, *, proxy_headers: bool = True) -> None:
        from uvicorn.config import Config
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        from uvicorn.server import ServerState

        config = Config(
            app,
            http="httptools",
            loop="none",
            lifespan="off",
            log_level="error",
            proxy_headers=proxy_headers,
        )
        config.load()
        self.protocol = HttpToolsProtocol(config, ServerState(), {})
        self.transport = FakeTransport()
        self.protocol.connection_made(self.transport)  # type: ignore[arg-type]
        self.request = http_request(path)

    async def one(self) -> None:
        before = self.transport.written
        self.protocol.data_received(self.request)
        while True:  # the app runs as a task: let it finish the response
            await asyncio.sleep(0)
            cycle = self.protocol.cycle
            if self.transport.written > before and (cycle is None or cycle.response_complete):
                return

    async def cpu_us(self, n: int) -> float:
        began = time.thread_time()
        for _ in range(n):
            await self.one()
        return (time.thread_time() - began) / n * 1e6


class ModelAlone:
    """``session.run`` on the same row, one intra-op thread (as Flotilla's sessions): the
    model's own share of a request."""

    def __init__(self, model: Path) -> None:
        import numpy as np
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self.feed = {
            self.session.get_inputs()[0].name: np.array(
                [[0.1 * (i + 1) for i in range(len(FIELDS))]], dtype=np.float32
            )
        }

    async def one(self) -> None:
        self.session.run(None, self.feed)

    async def cpu_us(self, n: int) -> float:
        began = time.thread_time()
        for _ in range(n):
            self.session.run(None, self.feed)
        return (time.thread_time() - began) / n * 1e6


async def run(
    apps: dict[str, Driven | ModelAlone], requests: int, rounds: int
) -> dict[str, list[float]]:
    for name, driven in apps.items():  # warm up: imports, caches, the model's cost estimate
        for _ in range(500):
            await driven.one()
        if isinstance(driven, Driven) and not driven.transport.first.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"{name} does not answer 200: {driven.transport.first!r}")
    samples: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(rounds):
        for name, driven in apps.items():
            samples[name].append(await driven.cpu_us(requests))
    return samples


async def main_async(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from flotilla.gateway import create_app
    from flotilla.records import RecordWriter
    from flotilla.settings import Settings

    gbm, lite = build_models(folder)
    settings = Settings(home=folder / "home", actor="bench")
    setup_flotilla(settings.home, gbm, lite)
    writer = RecordWriter(settings.records, helper_process=True)
    writer.start()
    gateways = {
        "flotilla (records off)": create_app(settings, freeze_gc=True),
        "flotilla (records on)": create_app(settings, sink=writer, freeze_gc=True),
    }
    loop = asyncio.get_running_loop()
    for gateway in gateways.values():
        await loop.run_in_executor(None, gateway.start)
    apps: dict[str, Driven | ModelAlone] = {
        "onnxruntime alone (session.run, one thread)": ModelAlone(gbm),
        "raw ASGI (constant answer)": Driven(raw_app, "/predict"),
        "floor (starlette+onnxruntime)": Driven(floor_app(gbm), "/predict"),
    }
    if importlib.util.find_spec("fastapi") is not None:
        apps["floor (fastapi+onnxruntime)"] = Driven(fastapi_floor_app(gbm), "/predict")
    for name, gateway in gateways.items():
        # as `flotilla serve` runs it: without uvicorn's proxy-headers middleware
        apps[name] = Driven(gateway, "/v1/models/gbm:predict", proxy_headers=False)
    try:
        samples = await run(apps, args.requests, args.rounds)
    finally:
        for gateway in gateways.values():
            gateway.stop()  # closes the writer too
    return {
        name: {
            "median_us": statistics.median(values),
            "best_us": min(values),
            "rounds_us": values,
        }
        for name, values in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per app and round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    args = parser.parse_args()
    import uvloop
    from rich.console import Console
    from rich.table import Table

    with tempfile.TemporaryDirectory(prefix="flotilla-bench-") as tmp:
        results = uvloop.run(main_async(args, Path(tmp)))
    console = Console()
    table = Table(title="CPU of the serving thread per request (uvicorn + app, in-process)")
    for col in ("app", "median us", "best us", "median / Flotilla records on"):
        table.add_column(col)
    ours = results["flotilla (records on)"]["median_us"]
    for name, r in results.items():
        table.add_row(
            name, f"{r['median_us']:.1f}", f"{r['best_us']:.1f}", f"{r['median_us'] / ours:.2f}x"
        )
    console.print(table)
    console.print(
        f"{args.rounds} interleaved rounds of {args.requests} requests per app; one row per "
        "request; the kernel's network work and other threads are not counted (the floors "
        "keep onnxruntime's default thread pool, which may take part of the model's work)."
    )
    OUT.mkdir(exist_ok=True)
    (OUT / "request_cpu.json").write_text(json.dumps(results, indent=2))
    console.print(f"written to {OUT / 'request_cpu.json'}")


if __name__ == "__main__":
    main()

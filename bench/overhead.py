"""Gateway overhead: Flotilla (three-step chain) against a floor app on the same ONNX model.

Run: ``.venv/bin/python bench/overhead.py [--seconds 12] [--rounds 4]``. One invocation builds a
100-tree gradient-boosting model, exports it to ONNX, and serves it in turn with

- the floor: a minimal Starlette + onnxruntime app written here (parse JSON, run the model,
  answer JSON; raw Starlette is itself cheaper per request than FastAPI);
- the issue's floor, a minimal FastAPI + onnxruntime app written here, when FastAPI is
  installed (the optional ``bench`` extra), else skipped and said so;
- the Starlette floor again with one onnxruntime thread, as Flotilla runs its models (for
  reference, no target): onnxruntime's default thread pool busy-waits between calls, which
  costs CPU but keeps a virtual machine's vCPUs from idling, and that shows at concurrency 1;
- Flotilla: ``flotilla serve`` (one worker, uvloop + httptools) with the chain
  ``gbm@1 -> gbm-lite@1 -> static``, with prediction records on and off (the model's
  microsecond calls run on the event loop, as learned at load), and with
  ``--inline-below-ms 0`` (every call through the thread pool, for comparison);
- mlflow's scoring server (``mlflow models serve --env-manager local``) on the same ONNX
  model wrapped as a pyfunc, when mlflow is installed (the optional ``bench`` extra; it is not
  a dependency), else skipped and said so.

All servers run at once (idle when not measured) and the load visits them in interleaved
rounds (``--rounds``), so a noisy, shared machine slows every server alike. Load comes from a
separate process on 127.0.0.1: concurrency 1 with the Python closed-loop client (each
request's own latency), concurrency 32 with wrk when installed (else the Python client).
Prints a table and the ratios, writes ``bench/out/overhead.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import (
    free_port,
    python_load,
    start_server,
    stop_server,
    summarize,
    tree_cpu_s,
    wrk_load,
)

N_FEATURES = 8
FIELDS = [f"f{i}" for i in range(N_FEATURES)]
SIGNATURE = {
    "inputs": [{"name": f, "type": "float"} for f in FIELDS],
    "output": {"kind": "probability"},
}
ROW = {f: round(0.1 * (i + 1), 3) for i, f in enumerate(FIELDS)}
BODY = json.dumps({"instances": [ROW]})
OUT = Path(__file__).resolve().parent / "out"
FLOOR = "floor (starlette+onnxruntime)"
FASTAPI_FLOOR = "floor (fastapi+onnxruntime)"
ONE_THREAD_FLOOR = "floor (starlette+onnxruntime, 1 ORT thread)"


def build_models(folder: Path) -> tuple[Path, Path]:
    """A 100-tree GBM and a logistic regression, exported to ONNX (no zipmap)."""
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, N_FEATURES)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int)
    paths = []
    for name, model in [
        ("gbm", GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0)),
        ("lite", LogisticRegression()),
    ]:
        model.fit(x, y)
        onx = to_onnx(model, x[:1], options={id(model): {"zipmap": False}})
        path = folder / f"{name}.onnx"
        path.write_bytes(onx.SerializeToString())
        paths.append(path)
    return paths[0], paths[1]


def setup_flotilla(home: Path, gbm: Path, lite: Path) -> None:
    """Register both versions and deploy the three-step chain."""
    from flotilla.settings import Settings
    from flotilla.workspace import Workspace

    ws = Workspace.open(Settings(home=home, actor="bench"))
    ws.register("gbm", flavor="onnx", artifact=gbm, signature=SIGNATURE)
    ws.register("gbm-lite", flavor="onnx", artifact=lite, signature=SIGNATURE)
    spec = {
        "live": "gbm@1",
        "deadline_ms": 100,
        "fallbacks": ["gbm-lite@1", {"static": {"value": 0.5}}],
        "max_concurrency": 64,
    }
    ws.registry.put_deployment("gbm", spec, actor="bench", reason="overhead bench")


def _floor_model(model: Path, ort_threads: int | None = None) -> Any:
    """What both floor apps do per request: JSON body in, onnxruntime (its default session
    options, or ``ort_threads`` intra-op threads and no spinning pool), JSON answer out."""
    import numpy as np
    import onnxruntime as ort
    import orjson

    options = None
    if ort_threads is not None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = ort_threads
        options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def answer(raw: bytes) -> bytes:
        data = orjson.loads(raw)
        x = np.array([[r[f] for f in FIELDS] for r in data["instances"]], dtype=np.float32)
        probs = session.run(None, {input_name: x})[1][:, 1]
        return orjson.dumps({"predictions": probs.tolist()})

    return answer


def floor_app(model: Path, ort_threads: int | None = None) -> Any:
    """The floor app: parse JSON, run onnxruntime, answer JSON. Nothing else (Starlette)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    answer = _floor_model(model, ort_threads)

    async def predict(request: Request) -> Response:
        return Response(answer(await request.body()), media_type="application/json")

    async def health(request: Request) -> Response:
        return Response(b"ok")

    return Starlette(
        routes=[Route("/predict", predict, methods=["POST"]), Route("/healthz", health)]
    )


def fastapi_floor_app(model: Path) -> Any:
    """The issue's floor: the same app as :func:`floor_app`, written with FastAPI."""
    from fastapi import FastAPI, Request, Response

    answer = _floor_model(model)
    app = FastAPI()

    async def predict(request: Request) -> Response:
        return Response(answer(await request.body()), media_type="application/json")

    async def health() -> Response:
        return Response(b"ok")

    # This module's annotations are strings (``from __future__ import annotations``) and
    # FastAPI resolves them in the module's globals, where these local imports are not:
    # without the real classes it takes ``request`` for a query parameter and answers 422.
    predict.__annotations__ = {"request": Request, "return": Response}
    health.__annotations__ = {"return": Response}
    app.post("/predict")(predict)
    app.get("/healthz")(health)
    return app


def serve_app(app: Any, port: int) -> None:
    """Serve a floor app as ``flotilla serve`` serves (uvicorn, uvloop, httptools)."""
    import uvicorn

    uvicorn.run(
        app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_level="error"
    )


def metrics_cost_us(n: int = 50_000) -> float:
    """CPU microseconds of the metric updates one request makes (measured in-process)."""
    from flotilla.monitoring.metrics import GatewayMetrics, step_label

    m = GatewayMetrics().for_model("gbm")
    step = m.step(step_label(0, static=False))
    began = time.perf_counter()
    for _ in range(n):
        m.in_flight.inc()
        step.duration.observe(0.0003)
        m.in_flight.dec()
        m.served("live")
        m.duration.observe(0.0004)
    return (time.perf_counter() - began) / n * 1e6


MLFLOW = "mlflow models serve (pyfunc + onnxruntime)"
MLFLOW_BODY = json.dumps({"dataframe_records": [ROW]})
MLFLOW_WRAPPER = """
import mlflow.pyfunc
import numpy as np


class OnnxGbm(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        import onnxruntime as ort

        self.session = ort.InferenceSession(
            context.artifacts["model"], providers=["CPUExecutionProvider"]
        )
        self.input = self.session.get_inputs()[0].name

    def predict(self, context, model_input, params=None):
        x = np.asarray(model_input[%r].to_numpy(), dtype=np.float32)
        return self.session.run(None, {self.input: x})[1][:, 1]
"""


def save_mlflow_model(folder: Path, gbm: Path) -> Path:
    """The ONNX GBM as an mlflow pyfunc model (the wrapper's code travels with it)."""
    import mlflow.pyfunc

    code = folder / "mlflow_onnx_gbm.py"
    code.write_text(MLFLOW_WRAPPER % (FIELDS,))
    sys.path.insert(0, str(folder))
    from mlflow_onnx_gbm import OnnxGbm  # type: ignore[import-not-found]

    target = folder / "mlflow-model"
    mlflow.pyfunc.save_model(
        str(target),
        python_model=OnnxGbm(),
        artifacts={"model": str(gbm)},
        code_paths=[str(code)],
    )
    return target


def _phase(
    port: int, path: str, concurrency: int, seconds: float, body: str = BODY, pid: int = 0
) -> dict[str, Any]:
    """One load run; ``cpu_s``: the CPU the server (process tree ``pid``) used meanwhile."""
    spec = [{"path": path, "body": body}]
    before = tree_cpu_s(pid) if pid else None
    found = None
    if concurrency > 1:
        found = wrk_load(port, path, body, concurrency=concurrency, seconds=seconds)
    if found is None:
        found = python_load(port, spec, concurrency=concurrency, seconds=seconds)
    after = tree_cpu_s(pid) if pid else None
    found["cpu_s"] = None if before is None or after is None else after - before
    return found


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of one (server, concurrency) together: rates add up, latencies pool."""
    merged: dict[str, Any] = {
        "requests": sum(p["requests"] for p in parts),
        "seconds": sum(p["seconds"] for p in parts),
        "non_2xx": sum(p["non_2xx"] for p in parts),
        "client": parts[0]["client"],
    }
    cpu = [p.get("cpu_s") for p in parts]
    merged["cpu_s"] = None if None in cpu else sum(c for c in cpu if c is not None)
    if "latencies_ms" in parts[0]:
        merged["latencies_ms"] = [x for p in parts for x in p["latencies_ms"]]
    else:  # wrk gives percentiles per round: keep the median round's
        for key in ("p50_ms", "p99_ms"):
            merged[key] = sorted(p[key] for p in parts)[len(parts) // 2]
    return merged


def measure(
    servers: dict[str, tuple[int, str, str, int]], seconds: float, rounds: int
) -> dict[str, dict[str, Any]]:
    """Interleave short phases of every server, ``rounds`` times, so machine noise is shared.

    ``servers``: name -> (port, path, body, pid of the server process).
    """
    parts: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {"c1": [], "c32": []} for name in servers
    }
    step = max(2.0, seconds / rounds)
    for r in range(rounds):
        for name, (port, path, body, pid) in servers.items():
            parts[name]["c1"].append(_phase(port, path, 1, step, body, pid))
            parts[name]["c32"].append(_phase(port, path, 32, step, body, pid))
        print(f"  round {r + 1}/{rounds} done")
    return {
        name: {conc: summarize(_merge(runs)) for conc, runs in by_conc.items()}
        for name, by_conc in parts.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=12.0, help="seconds per server and concurrency"
    )
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds")
    parser.add_argument("--serve-floor", nargs=2, metavar=("PORT", "MODEL"), help=argparse.SUPPRESS)
    parser.add_argument("--ort-threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--serve-fastapi-floor", nargs=2, metavar=("PORT", "MODEL"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_floor:
        app = floor_app(Path(args.serve_floor[1]), args.ort_threads)
        serve_app(app, int(args.serve_floor[0]))
        return
    if args.serve_fastapi_floor:
        model = Path(args.serve_fastapi_floor[1])
        serve_app(fastapi_floor_app(model), int(args.serve_fastapi_floor[0]))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    results: dict[str, Any] = {
        "seconds_per_server_and_concurrency": args.seconds,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory(prefix="flotilla-bench-") as tmp:
        folder = Path(tmp)
        console.print("building the ONNX models and the Flotilla home ...")
        gbm, lite = build_models(folder)
        home = folder / "home"
        setup_flotilla(home, gbm, lite)
        env = {**os.environ, "FLOTILLA_HOME": str(home)}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        servers = [
            (
                "floor (starlette+onnxruntime)",
                [sys.executable, __file__, "--serve-floor"],
                "/predict",
                True,
            ),
        ]
        if importlib.util.find_spec("fastapi") is not None:
            fastapi_cmd = [sys.executable, __file__, "--serve-fastapi-floor"]
            servers.append((FASTAPI_FLOOR, fastapi_cmd, "/predict", True))
        else:
            results[FASTAPI_FLOOR] = "skipped: FastAPI is not installed (pip install fastapi)"
        one_thread = [sys.executable, __file__, "--ort-threads", "1", "--serve-floor"]
        servers.append((ONE_THREAD_FLOOR, one_thread, "/predict", True))
        servers += [
            ("flotilla (records on)", ["serve"], "/v1/models/gbm:predict", False),
            ("flotilla (records off)", ["serve", "--no-records"], "/v1/models/gbm:predict", False),
            (
                "flotilla (records off, every call in the thread pool)",
                ["serve", "--no-records", "--inline-below-ms", "0"],
                "/v1/models/gbm:predict",
                False,
            ),
        ]
        procs = []
        ports: dict[str, tuple[int, str, str, int]] = {}
        try:
            for name, cmd, path, is_floor in servers:
                port = free_port()
                if is_floor:
                    full = [*cmd, str(port), str(gbm)]
                else:
                    main_call = "from flotilla.cli.main import main; main()"
                    full = [sys.executable, "-c", main_call, *cmd, "--port", str(port)]
                procs.append(start_server(full, port, env=env))
                ports[name] = (port, path, BODY, procs[-1].pid)
            if importlib.util.find_spec("mlflow") is None:
                results["mlflow"] = "skipped: mlflow is not installed (pip install mlflow)"
            else:
                console.print("saving the model for mlflow's scoring server ...")
                model_dir = save_mlflow_model(folder, gbm)
                port = free_port()
                cmd = [
                    *(sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_dir)),
                    *("--env-manager", "local", "--host", "127.0.0.1", "-p", str(port)),
                ]
                # mlflow starts its server by name (uvicorn or gunicorn) from PATH
                bin_dir = str(Path(sys.executable).parent)
                ml_env = {**env, "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}
                procs.append(start_server(cmd, port, env=ml_env, ready_path="/ping"))
                ports[MLFLOW] = (port, "/invocations", MLFLOW_BODY, procs[-1].pid)
            results.update(measure(ports, args.seconds, args.rounds))
        finally:
            for proc in procs:
                stop_server(proc)
    results["metrics_cost_us_per_request"] = metrics_cost_us()
    report(console, results, Table)


def _errors(server: dict[str, Any]) -> int:
    """Non-2xx answers of one server over both concurrencies."""
    return int(server["c1"]["non_2xx"] + server["c32"]["non_2xx"])


def report(console: Any, results: dict[str, Any], table_cls: Any) -> None:
    table = table_cls(title="Gateway overhead: one ONNX GBM (100 trees), 1 row per request")
    for col in ("server", "conc.", "req/s", "p50 ms", "p99 ms", "CPU us/req", "non-2xx", "client"):
        table.add_column(col)
    names = [k for k, v in results.items() if isinstance(v, dict)]
    for name in names:
        if "c1" not in results[name]:
            continue
        for conc in ("c1", "c32"):
            r = results[name][conc]
            table.add_row(
                name,
                conc[1:],
                f"{r['rps']:.0f}",
                f"{r['p50_ms']:.3f}",
                f"{r['p99_ms']:.3f}",
                "-" if r["cpu_us_per_request"] is None else f"{r['cpu_us_per_request']:.0f}",
                str(r["non_2xx"]),
                "wrk" if r["client"].startswith("wrk") else "python",
            )
    console.print(table)
    console.print(
        "client python: closed loop, each request's own latency; "
        "wrk: latency percentiles corrected for coordinated omission by wrk 4. "
        "CPU us/req: user + system CPU of the server's processes and threads per request "
        "(from /proc; the floors' onnxruntime sessions keep their default thread pools)."
    )
    failing = [n for n in names if "c1" in results[n] and _errors(results[n])]
    for name in failing:
        console.print(f"[red]{name} answered errors (non-2xx): left out of the ratios.[/red]")
    usable = [n for n in names if n not in failing]
    floors = [f for f in (FLOOR, FASTAPI_FLOOR, ONE_THREAD_FLOOR) if f in usable]
    shorts = {FLOOR: "floor", FASTAPI_FLOOR: "fastapi floor", ONE_THREAD_FLOOR: "1-thread floor"}
    ratios = {}
    for name in usable:
        if not name.startswith("flotilla"):
            continue
        for floor in floors:
            short = shorts[floor]
            for conc in ("c1", "c32"):
                ratios[f"{name} / {short} req/s at c{conc[1:]}"] = (
                    results[name][conc]["rps"] / results[floor][conc]["rps"]
                )
    if MLFLOW in usable:
        for name in usable:
            if name.startswith("flotilla") or name in floors:
                ratios[f"{name} / mlflow req/s at c32 (target >= 30x)"] = (
                    results[name]["c32"]["rps"] / results[MLFLOW]["c32"]["rps"]
                )
    results["ratios"] = ratios
    for label, value in ratios.items():
        console.print(f"{label}: {value:.2f}x")
    if not isinstance(results.get(MLFLOW), dict):
        console.print(f"mlflow: {results.get('mlflow', 'not measured')}")
    if not isinstance(results.get(FASTAPI_FLOOR), dict):
        console.print(f"{FASTAPI_FLOOR}: {results.get(FASTAPI_FLOOR, 'not measured')}")
    console.print(
        f"metric updates per request: {results['metrics_cost_us_per_request']:.2f} us (in-process)"
    )
    OUT.mkdir(exist_ok=True)
    (OUT / "overhead.json").write_text(json.dumps(results, indent=2))
    console.print(f"written to {OUT / 'overhead.json'}")


if __name__ == "__main__":
    main()

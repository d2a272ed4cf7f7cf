"""Shadow cost: live p99 with no shadow against live p99 with a 10x slower shadow at sample 1.0.

Run: ``.venv/bin/python bench/shadow_cost.py [--seconds 8]``. One invocation registers two
tiny python models, ``live`` (sleeps ``--live-ms``, default 2 ms) and ``slow`` (sleeps ten
times as long), and serves the live model with one ``flotilla serve`` (records on) whose
deployment flips, ``--rounds`` times, between

- baseline: deployment ``live@1 -> static``, no shadow;
- shadowed: the same chain plus ``shadows: [{ref: live@2, sample: 1.0}]`` (live@2 is the slow
  model registered as a second version of the same model).

Load comes from a separate process (closed loop, concurrency 1 and 8, each request's own
latency), pooled per mode over the interleaved rounds so that the machine's drift hits both.
Target (issue 4): live p99 with the shadow at most 5% higher than without.

It also runs an in-process check that needs no gateway support: a loop that calls the live
model and then ``ShadowMirror.offer`` (as the gateway would after answering), against the same
loop without a mirror; it reports the loop's p50/p99 and how much shadow work was dropped.

The bench first checks that the gateway really mirrors: after a short warm-up it counts
records with role ``shadow``. When there are none (the gateway does not wire
:class:`flotilla.gateway.shadow.ShadowMirror` yet), it prints that the comparison is
SKIPPED and why, and exits 0. Writes ``bench/out/shadow_cost.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import free_port, python_load, start_server, stop_server, summarize

OUT = Path(__file__).resolve().parent / "out"
SIGNATURE = {"inputs": [{"name": "x", "type": "float"}], "output": {"kind": "score"}}
BODY = json.dumps({"instances": [{"x": 1.0}]})
PATH = "/v1/models/live:predict"
MODEL_PY = """
import time


class Sleeper:
    def __init__(self, ms=2.0):
        self.seconds = ms / 1000.0

    def predict(self, records):
        time.sleep(self.seconds)
        return [float(r["x"]) for r in records]
"""


def setup(home: Path, live_ms: float) -> None:
    """Register live@1 (fast) and live@2 (10x slower) and deploy the baseline."""
    from flotilla.settings import Settings
    from flotilla.workspace import Workspace

    code = home.parent / "bench_sleeper.py"
    code.write_text(MODEL_PY)
    ws = Workspace.open(Settings(home=home, actor="bench"))
    for ms in (live_ms, 10 * live_ms):
        ws.register(
            "live",
            flavor="python",
            artifact=code,
            entry="bench_sleeper:Sleeper",
            params={"ms": ms},
            signature=SIGNATURE,
        )
    deploy(home, shadow=False)


def deploy(home: Path, *, shadow: bool) -> None:
    """Write the baseline or the shadowed deployment as a new revision."""
    from flotilla.settings import Settings
    from flotilla.workspace import Workspace

    ws = Workspace.open(Settings(home=home, actor="bench"))
    spec: dict[str, Any] = {
        "model": "live",
        "live": "live@1",
        "deadline_ms": 1000,
        "fallbacks": [{"static": {"value": 0.0}}],
        "max_concurrency": 64,
        "shadows": [{"ref": "live@2", "sample": 1.0}] if shadow else [],
    }
    ws.registry.put_deployment("live", spec, actor="bench", reason="shadow cost bench")


def shadow_records(home: Path, role: str = "shadow") -> int:
    """Records with ``role`` written so far."""
    from flotilla.records import RecordStore
    from flotilla.settings import Settings

    store = RecordStore(Settings(home=home).records)
    sql = f"SELECT count(*) FROM predictions WHERE role = '{role}'"
    rows = store.query(sql).fetchall()
    return int(rows[0][0]) if rows else 0


def serving(home: Path, env: dict[str, str]) -> tuple[Any, int]:
    """Start ``flotilla serve`` (records on) on a free port."""
    port = free_port()
    call = "from flotilla.cli.main import main; main()"
    cmd = [sys.executable, "-c", call, "serve", "--port", str(port)]
    return start_server(cmd, port, env=env), port


def gateway_mirrors(home: Path, env: dict[str, str]) -> bool:
    """Preflight: with the shadow deployed, does a short burst leave shadow records?"""
    deploy(home, shadow=True)
    proc, port = serving(home, env)
    try:
        python_load(port, [{"path": PATH, "body": BODY}], concurrency=2, seconds=1.0)
        time.sleep(2.5)  # more than one records flush interval
    finally:
        stop_server(proc)  # SIGTERM: the records writer flushes
    return shadow_records(home) > 0


def interleaved(home: Path, env: dict[str, str], seconds: float, rounds: int) -> dict[str, Any]:
    """One server; the deployment flips between no shadow and shadow ``rounds`` times.

    Each flip is a new deployment revision, picked up by the running server within 2 s
    (waited for). Latencies of the same mode and concurrency are pooled over the rounds, so
    the machine's drift during the run hits both modes alike.
    """
    proc, port = serving(home, env)
    spec = [{"path": PATH, "body": BODY}]
    pooled: dict[str, dict[str, list[dict[str, Any]]]] = {
        mode: {"c1": [], "c8": []} for mode in ("no_shadow", "shadow")
    }
    step = max(2.0, seconds / rounds)
    try:
        python_load(port, spec, concurrency=2, seconds=1.0)  # warm-up
        for r in range(rounds):
            for mode in ("no_shadow", "shadow"):
                deploy(home, shadow=mode == "shadow")
                time.sleep(2.5)  # the server follows new revisions within 2 s
                for c in (1, 8):
                    pooled[mode][f"c{c}"].append(
                        python_load(port, spec, concurrency=c, seconds=step)
                    )
            print(f"  round {r + 1}/{rounds} done", flush=True)
    finally:
        stop_server(proc)
    return {
        mode: {conc: summarize(_pool(runs)) for conc, runs in by_conc.items()}
        for mode, by_conc in pooled.items()
    }


def _pool(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "requests": sum(r["requests"] for r in runs),
        "seconds": sum(r["seconds"] for r in runs),
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "client": runs[0]["client"],
        "latencies_ms": [x for r in runs for x in r["latencies_ms"]],
    }


class _CountingSink:
    def __init__(self) -> None:
        self.events = 0

    def submit(self, event: Any) -> bool:
        self.events += 1
        return True


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"n": len(ordered), "p50_ms": pick(0.5), "p99_ms": pick(0.99)}


def in_process(seconds: float, live_ms: float) -> dict[str, Any]:
    """The live loop's latency without and with a 10x slower shadow at sample 1.0."""
    from datetime import UTC, datetime

    from flotilla.gateway.shadow import ShadowJob, ShadowMirror

    namespace: dict[str, Any] = {}
    exec(MODEL_PY, namespace)
    sleeper: Callable[[float], Any] = namespace["Sleeper"]
    live, slow = sleeper(live_ms), sleeper(10 * live_ms)
    records = [{"x": 1.0}]
    out: dict[str, Any] = {}
    for phase in ("no_shadow", "shadow"):
        sink = _CountingSink()
        mirror = ShadowMirror(deadline_s=1.0, sink=sink) if phase == "shadow" else None
        if mirror is not None:
            mirror.start()
        latencies: list[float] = []
        end = time.perf_counter() + seconds
        i = 0
        while time.perf_counter() < end:
            began = time.perf_counter()
            live.predict(records)
            if mirror is not None:
                job = ShadowJob(
                    request_id=str(i), model="live", ref="live@2", predictor=slow,
                    records=records, ids=None, event_time=datetime.now(UTC),
                )  # fmt: skip
                mirror.offer(job)
            latencies.append(time.perf_counter() - began)
            i += 1
        out[phase] = _percentiles(latencies)
        if mirror is not None:
            mirror.close()
            out[phase]["mirror"] = mirror.stats.to_dict()
    out["p99_ratio"] = out["shadow"]["p99_ms"] / out["no_shadow"]["p99_ms"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="seconds per mode and concurrency, all rounds"
    )
    parser.add_argument("--live-ms", type=float, default=2.0, help="the live model's latency")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds per mode")
    args = parser.parse_args()
    results: dict[str, Any] = {"seconds_per_phase": args.seconds, "live_ms": args.live_ms}
    with tempfile.TemporaryDirectory(prefix="flotilla-shadow-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        setup(home, args.live_ms)
        print("in-process: live loop without and with ShadowMirror.offer ...", flush=True)
        results["in_process"] = in_process(min(args.seconds, 4.0), args.live_ms)
        env = {**os.environ, "FLOTILLA_HOME": str(home)}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        print("preflight: does the gateway mirror to shadows? ...", flush=True)
        if not gateway_mirrors(home, env):
            results["shadow_records"] = 0
            results["live_records"] = shadow_records(home, "live")
            report(results)
            return
        print(
            f"serving; {args.rounds} rounds of no shadow / shadow at sample 1.0, 10x slower "
            "than live ...",
            flush=True,
        )
        results.update(interleaved(home, env, args.seconds, args.rounds))
        results["shadow_records"] = shadow_records(home)
    report(results)


def report(results: dict[str, Any]) -> None:
    OUT.mkdir(exist_ok=True)
    local = results.get("in_process")
    if local is not None:
        stats = local["shadow"]["mirror"]
        print(
            f"in-process live loop p99: {local['no_shadow']['p99_ms']:.2f} ms without, "
            f"{local['shadow']['p99_ms']:.2f} ms with the mirror: x{local['p99_ratio']:.3f} "
            f"(shadow calls done {stats['completed']}, dropped {stats['dropped']}, "
            f"timed out {stats['timeouts']})"
        )
    if results["shadow_records"] == 0:
        results["skipped"] = (
            "the gateway wrote no shadow records in the preflight: it does not wire "
            "flotilla.gateway.shadow.ShadowMirror into the request path yet, so there is no "
            "shadow cost to measure"
        )
        print(f"SKIPPED: {results['skipped']} ({results['live_records']} live records).")
    else:
        for c in ("c1", "c8"):
            base = results["no_shadow"][c]["p99_ms"]
            shadowed = results["shadow"][c]["p99_ms"]
            ratio = shadowed / base if base else float("nan")
            results[f"p99_ratio_{c}"] = ratio
            verdict = "OK" if ratio <= 1.05 else "ABOVE TARGET"
            print(
                f"{c}: live p99 {base:.2f} ms without shadow, {shadowed:.2f} ms with shadow: "
                f"x{ratio:.3f} (target <= 1.05: {verdict})"
            )
        print(f"shadow records written: {results['shadow_records']}")
    (OUT / "shadow_cost.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Chaos: 100 python-flavor models that answer, raise, hang, return NaN or get corrupted input.

Run: ``.venv/bin/python bench/chaos.py [--seconds 6] [--concurrency 32]``. One invocation
registers 100 models (one ``.py`` artifact; each reads its behaviour from a control file on
every call), deploys each as ``mNN@1 -> static`` with a 50 ms deadline, starts
``flotilla serve`` and drives concurrent load from a separate process through three phases
whose shares of broken models change (the control files are rewritten between phases). It
reports the non-2xx count (target 0), the degraded share against the injected share, the
reasons seen, p50/p99 of degraded answers against the deadline, breakers opening and
closing, and the prediction records: the server runs as ``flotilla serve`` does by default
(records on, helper process), so the run shows whether the default buffer drops any
(``flotilla_records_dropped_total``; target 0) and counts the records written against the
requests answered. ``--serve-args --no-records`` runs without them. Results also go to
``bench/out/chaos.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from _load import free_port, percentile, python_load, start_server, stop_server

N_MODELS = 100
DEADLINE_MS = 50
HANG_S = 0.2
OUT = Path(__file__).resolve().parent / "out"

MODEL_CODE = """
import math
import time


class Model:
    def __init__(self, control, hang_s=0.2):
        self.control, self.hang_s = control, hang_s

    def predict(self, records):
        try:
            with open(self.control) as fh:
                mode = fh.read().strip()
        except OSError:
            mode = "answer"
        if mode == "raise":
            raise RuntimeError("injected failure")
        if mode == "hang":
            time.sleep(self.hang_s)
        if mode == "nan":
            return [math.nan for _ in records]
        return [r["x"] / 10.0 for r in records]
"""

SIGNATURE = {
    "inputs": [{"name": "x", "type": "float", "min": 0, "max": 10}],
    "output": {"kind": "score"},
}

PHASES: list[dict[str, Any]] = [
    {"name": "A", "answer": 0.7, "raise": 0.1, "hang": 0.1, "nan": 0.1, "corrupt": 0.05},
    {"name": "B", "answer": 0.5, "raise": 0.2, "hang": 0.2, "nan": 0.1, "corrupt": 0.10},
    {"name": "C (recovery)", "answer": 0.9, "raise": 0.0, "hang": 0.05, "nan": 0.05, "corrupt": 0},
]
MODES = ("answer", "raise", "hang", "nan")


def setup(home: Path, controls: Path) -> None:
    """Register and deploy the 100 models."""
    from flotilla.settings import Settings
    from flotilla.workspace import Workspace

    code = controls / "chaos_model.py"
    code.write_text(MODEL_CODE)
    ws = Workspace.open(Settings(home=home, actor="chaos"))
    for i in range(N_MODELS):
        name = f"m{i:03d}"
        params = {"control": str(controls / f"{name}.mode"), "hang_s": HANG_S}
        ws.register(
            name,
            flavor="python",
            artifact=code,
            entry="chaos_model:Model",
            params=params,
            signature=SIGNATURE,
        )
        spec = {
            "live": f"{name}@1",
            "deadline_ms": DEADLINE_MS,
            "fallbacks": [{"static": {"value": 0.0}}],
            "max_concurrency": 4,
            "breaker": {"failure_rate": 0.5, "min_requests": 10, "window_s": 5, "open_s": 1},
        }
        ws.registry.put_deployment(name, spec, actor="chaos", reason="chaos bench")


def assign(controls: Path, phase: dict[str, Any], rng: random.Random) -> dict[str, str]:
    """Give each model a behaviour with the phase's shares; write the control files."""
    modes: list[str] = []
    for mode in MODES:
        modes += [mode] * round(phase[mode] * N_MODELS)
    modes = (modes + ["answer"] * N_MODELS)[:N_MODELS]
    rng.shuffle(modes)
    out = {}
    for i, mode in enumerate(modes):
        name = f"m{i:03d}"
        tmp = controls / f"{name}.mode.tmp"
        tmp.write_text(mode)
        os.replace(tmp, controls / f"{name}.mode")
        out[name] = mode
    return out


def requests_for(phase: dict[str, Any]) -> list[dict[str, Any]]:
    """One request spec per (model, corrupt?) in the phase's corrupt share (of 20 slots)."""
    specs = []
    corrupt_slots = round(phase["corrupt"] * 20)
    for i in range(N_MODELS):
        path = f"/v1/models/m{i:03d}:predict"
        for slot in range(20):
            row: dict[str, Any] = {"x": 5.0}
            if slot < corrupt_slots:
                row = {"x": "corrupted", "junk": 1}
            specs.append({"path": path, "body": json.dumps({"instances": [row]})})
    return specs


def breakers(url: str) -> tuple[int, int]:
    """Total breaker openings and closings of the live steps so far."""
    models = httpx.get(f"{url}/v1/models", timeout=10).json()["models"]
    opened = sum(m["chain"][0].get("breaker", {}).get("opened", 0) for m in models)
    closed = sum(m["chain"][0].get("breaker", {}).get("closed", 0) for m in models)
    return opened, closed


def analyse(
    result: dict[str, Any], specs: list[dict[str, Any]], modes: dict[str, str]
) -> dict[str, Any]:
    """Injected vs observed for one phase."""
    injected: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    degraded_ms: list[float] = []
    by_first: dict[str, list[float]] = collections.defaultdict(list)
    server_by_first: dict[str, list[float]] = collections.defaultdict(list)
    degraded = 0
    for r in result["responses"]:
        spec = specs[r["index"]]
        model = spec["path"].split("/")[3].split(":")[0]
        corrupt = "corrupted" in spec["body"]
        injected["corrupt" if corrupt else modes[model]] += 1
        body = r["body"]
        if r["status"] == 200 and body.get("degraded"):
            degraded += 1
            degraded_ms.append(r["ms"])
            first = body["reasons"][0]["reason"]
            reasons[first] += 1
            by_first[first].append(r["ms"])
            if r.get("server_ms") is not None:
                server_by_first[first].append(r["server_ms"])
    total = max(1, len(result["responses"]))
    broken = total - injected["answer"]
    return {
        "requests": len(result["responses"]),
        "rps": len(result["responses"]) / result["seconds"],
        "non_2xx": result["non_2xx"],
        "injected_share": {k: v / total for k, v in sorted(injected.items())},
        "injected_broken_share": broken / total,
        "degraded_share": degraded / total,
        "first_reason_counts": dict(reasons.most_common()),
        "degraded_p50_ms": percentile(degraded_ms, 50),
        "degraded_p99_ms": percentile(degraded_ms, 99),
        "p99_ms_by_reason": {k: percentile(v, 99) for k, v in sorted(by_first.items())},
        "server_p99_ms_by_reason": {
            k: percentile(v, 99) for k, v in sorted(server_by_first.items())
        },
        "deadline_ms": DEADLINE_MS,
    }


def server_side(text: str) -> dict[str, float]:
    """From /metrics: share of requests answered within 50/100 ms server-side, late results,
    records dropped."""
    buckets: collections.Counter[str] = collections.Counter()
    late = dropped = 0.0
    for line in text.splitlines():
        if line.startswith("flotilla_request_duration_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[le] += float(line.rsplit(" ", 1)[1])
        elif line.startswith("flotilla_late_results_total"):
            late += float(line.rsplit(" ", 1)[1])
        elif line.startswith("flotilla_records_dropped_total"):
            dropped += float(line.rsplit(" ", 1)[1])
    total = buckets["+Inf"] or 1.0
    return {
        "requests": buckets["+Inf"],
        "share_within_50ms": buckets["0.05"] / total,
        "share_within_100ms": buckets["0.1"] / total,
        "late_results_discarded": late,
        "records_dropped": dropped,
    }


def records_written(home: Path) -> int | None:
    """Live-path records on disk after the server stopped (``None`` when records were off)."""
    from flotilla.records import RecordStore
    from flotilla.settings import Settings

    store = RecordStore(Settings(home=home).records)
    try:
        sql = "SELECT count(DISTINCT request_id) FROM predictions WHERE role <> 'shadow'"
        return int(store.query(sql).fetchall()[0][0])
    except Exception:  # no segment at all: records were off
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each phase")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--serve-args", default="", help="extra 'flotilla serve' arguments, e.g. '--threads 16'"
    )
    args = parser.parse_args()
    from rich.console import Console
    from rich.table import Table

    console = Console()
    rng = random.Random(7)
    results: dict[str, Any] = {"phases": [], "cpus": os.cpu_count(), "models": N_MODELS}
    with tempfile.TemporaryDirectory(prefix="flotilla-chaos-") as tmp:
        folder = Path(tmp)
        home, controls = folder / "home", folder / "controls"
        controls.mkdir()
        console.print(f"registering and deploying {N_MODELS} models ...")
        setup(home, controls)
        port = free_port()
        env = {**os.environ, "FLOTILLA_HOME": str(home)}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        main_call = "from flotilla.cli.main import main; main()"
        cmd = [sys.executable, "-c", main_call, "serve", "--port", str(port)]
        cmd += args.serve_args.split()
        proc = start_server(cmd, port, env=env, ready_path="/readyz")
        url = f"http://127.0.0.1:{port}"
        try:
            for phase in PHASES:
                modes = assign(controls, phase, rng)
                specs = requests_for(phase)
                before = breakers(url)
                run = python_load(
                    port, specs, concurrency=args.concurrency, seconds=args.seconds, keep=True
                )
                after = breakers(url)
                row = analyse(run, specs, modes)
                row["phase"] = phase["name"]
                row["breakers_opened"] = after[0] - before[0]
                row["breakers_closed"] = after[1] - before[1]
                results["phases"].append(row)
                console.print(f"  phase {phase['name']}: {row['requests']} requests")
            results["server_side"] = server_side(httpx.get(f"{url}/metrics", timeout=10).text)
        finally:
            stop_server(proc)  # SIGTERM: the server flushes its last records
        records_on = "--no-records" not in args.serve_args.split()
        results["records_written"] = records_written(home) if records_on else None
    report(console, results, Table)


def report(console: Any, results: dict[str, Any], table_cls: Any) -> None:
    table = table_cls(title=f"Chaos: {N_MODELS} models, deadline {DEADLINE_MS} ms, one worker")
    cols = (
        "phase",
        "req/s",
        "non-2xx",
        "injected broken",
        "degraded",
        "degraded p50/p99 ms",
        "breakers open/close",
    )
    for col in cols:
        table.add_column(col)
    for row in results["phases"]:
        table.add_row(
            row["phase"],
            f"{row['rps']:.0f}",
            str(row["non_2xx"]),
            f"{row['injected_broken_share']:.1%}",
            f"{row['degraded_share']:.1%}",
            f"{row['degraded_p50_ms']:.1f} / {row['degraded_p99_ms']:.1f}",
            f"{row['breakers_opened']} / {row['breakers_closed']}",
        )
    console.print(table)
    total_bad = sum(r["non_2xx"] for r in results["phases"])
    console.print(f"non-2xx over the whole run: {total_bad} (target 0)")
    side = results.get("server_side", {})
    if side:
        console.print(
            f"server-side (histogram): {side['share_within_50ms']:.1%} of "
            f"{side['requests']:.0f} requests answered within 50 ms, "
            f"{side['share_within_100ms']:.1%} within 100 ms; "
            f"late results discarded: {side['late_results_discarded']:.0f}"
        )
    written = results.get("records_written")
    if written is None:
        console.print("prediction records: off")
    else:
        console.print(
            f"prediction records: {written:.0f} requests recorded of "
            f"{side.get('requests', 0):.0f} answered; dropped (the default buffer): "
            f"{side.get('records_dropped', 0):.0f} (target 0)"
        )
    for row in results["phases"]:
        counts = ", ".join(f"{k} {v}" for k, v in row["first_reason_counts"].items())
        by = ", ".join(f"{k} {v:.1f}" for k, v in row["p99_ms_by_reason"].items())
        console.print(f"phase {row['phase']}: first reasons: {counts}")
        console.print(f"phase {row['phase']}: p99 ms of degraded answers by first reason: {by}")
        server = ", ".join(f"{k} {v:.1f}" for k, v in row["server_p99_ms_by_reason"].items())
        console.print(
            f"phase {row['phase']}: the same, server-side (Server-Timing, arrival to answer): "
            f"{server}"
        )
    OUT.mkdir(exist_ok=True)
    (OUT / "chaos.json").write_text(json.dumps(results, indent=2))
    console.print(f"written to {OUT / 'chaos.json'}")


if __name__ == "__main__":
    main()

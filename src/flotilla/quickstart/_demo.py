"""The serving part of ``make demo``: a real server, curl examples, traffic, delayed labels.

Starts ``flotilla serve`` in a child process, shows a normal answer, a degraded one
(corrupted input) and ``/metrics``, simulates churn traffic (mirrored to the challenger in
the shadows), posts the delayed outcomes, stops the server (SIGTERM flushes every record)
and compares champion and challenger on the labeled pairs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from flotilla.errors import FlotillaError
from flotilla.quickstart._train import CHURN_FEATURES, churn_holdout
from flotilla.workspace import Workspace

__all__ = ["run_demo"]

CORRUPTED = {"tenure_months": -5, "monthly_spend": "lots", "support_tickets": None}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(url: str, body: Any | None = None, rid: str | None = None) -> tuple[int, Any, str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("Content-Type", "application/json")
    if rid:
        req.add_header("X-Request-Id", rid)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read().decode()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read().decode(), exc.code
    try:
        return status, json.loads(raw), raw
    except json.JSONDecodeError:
        return status, None, raw


def _start(ws: Workspace, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FLOTILLA_HOME": str(ws.settings.home),
        "FLOTILLA_DB_URL": ws.settings.db_url,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    cmd = [
        sys.executable,
        "-m",
        "flotilla",
        "serve",
        "--port",
        str(port),
        "--flush-interval",
        "0.2",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    began = time.monotonic()
    while time.monotonic() - began < 120:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise FlotillaError(f"flotilla serve exited during start-up: {err[-2000:]}")
        try:
            if _call(f"http://127.0.0.1:{port}/readyz")[0] == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise FlotillaError("flotilla serve did not become ready within 120 s")


def _examples(base: str) -> list[dict[str, Any]]:
    row = {"tenure_months": 3.0, "monthly_spend": 80.0, "support_tickets": 4.0, "is_premium": 0.0}
    shown = []
    for title, path, body in (
        ("a normal answer", "/v1/models/churn:predict", {"instances": [row]}),
        ("a degraded answer (corrupted input)", "/v1/models/churn:predict",
         {"instances": [CORRUPTED]}),
        ("a recommendation", "/v1/models/recs:predict",
         {"instances": [{"segment": "loyal", "last_item": 7}]}),
    ):  # fmt: skip
        status, answer, _ = _call(base + path, body)
        curl = (
            f"curl -s -X POST {base}{path} -H 'Content-Type: application/json' "
            f"-d '{json.dumps(body)}'"
        )
        shown.append({"title": title, "curl": curl, "status": status, "answer": answer})
    status, _, text = _call(base + "/metrics")
    lines = [ln for ln in text.splitlines() if ln.startswith("flotilla_fallbacks_total")]
    shown.append(
        {"title": "/metrics", "curl": f"curl -s {base}/metrics", "status": status,
         "answer": "\n".join(lines[:6])}
    )  # fmt: skip
    return shown


def _traffic(base: str, n: int) -> dict[str, Any]:
    rows = churn_holdout().head(n)
    degraded = 0
    outcomes = []
    for i, row in enumerate(rows.to_dict("records")):
        record = {f: float(row[f]) for f in CHURN_FEATURES}
        rid = f"demo-{i:05d}"
        body = {"instances": [record], "ids": [str(row["customer_id"])]}
        status, answer, _ = _call(base + "/v1/models/churn:predict", body, rid)
        degraded += bool(status == 200 and answer and answer["degraded"])
        outcomes.append({"request_id": rid, "index": 0, "label": int(row["churned"]),
                         "observed_at": datetime.now(UTC).isoformat()})  # fmt: skip
    status, answer, _ = _call(base + "/v1/models/churn/outcomes", {"outcomes": outcomes})
    return {"requests": n, "degraded": degraded, "outcomes": answer, "outcomes_status": status}


def run_demo(ws: Workspace, *, requests: int = 800, keep_serving: bool = False) -> dict[str, Any]:
    """Serve the deployed portfolio, show it working, and compare churn's challenger."""
    from flotilla.evaluation.compare import compare
    from flotilla.portfolio import DeploymentSpec
    from flotilla.records import OutcomeStore

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(ws, port)
    try:
        examples = _examples(base)
        traffic = _traffic(base, requests)
        if keep_serving:
            print(f"Serving on {base}; press Ctrl-C to stop.", flush=True)
            proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # graceful: every record is flushed
            proc.wait(timeout=60)
    deployment = ws.registry.current_deployment("churn")
    policy = None
    if deployment is not None:
        policy = DeploymentSpec.from_dict(deployment.spec, model="churn").promotion
    store = OutcomeStore(ws.settings.records, models=ws.registry)
    comparison = compare(store, "churn", policy=policy)
    return {"base": base, "examples": examples, "traffic": traffic,
            "comparison": comparison.to_dict()}  # fmt: skip

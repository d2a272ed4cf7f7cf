"""A real ``flotilla serve`` process: records survive SIGTERM and kill -9, outcomes route."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from flotilla.records import OutcomeStore, RecordStore
from flotilla.settings import Settings
from flotilla.workspace import Workspace

CODE = "class Model:\n    def predict(self, records):\n        return [0.25 for _ in records]\n"
SIGNATURE = {"inputs": [{"name": "x", "type": "float"}], "output": {"kind": "probability"}}
FLUSH_S = 0.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes], Settings]]:
    settings = make_settings()
    code = tmp_path / "const.py"
    code.write_text(CODE)
    ws = Workspace.open(settings)
    ws.register("const", flavor="python", artifact=code, entry="const:Model", signature=SIGNATURE)
    ws.registry.put_deployment(
        "const", {"live": "const@1", "fallbacks": [{"static": {"value": 0.0}}]}, actor="t"
    )
    port = _free_port()
    env = {**os.environ, "FLOTILLA_HOME": str(settings.home)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    cmd = [sys.executable, "-m", "flotilla", "serve", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--flush-interval", str(FLUSH_S)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    began = time.monotonic()
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert proc.poll() is None, "the server exited during start-up"
        assert time.monotonic() - began < 120, "the server did not become ready in 120 s"
        time.sleep(0.2)
    try:
        yield url, proc, settings
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def _send(url: str, n: int) -> list[tuple[str, float]]:
    sent = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(n):
            rid = f"req-{i}"
            body = {
                "instances": [{"x": float(i)}],
                "ids": [f"user-{i}"],
                "feature_times": [{"x": "2026-01-01T00:00:00Z"}],
            }
            r = client.post("/v1/models/const:predict", json=body, headers={"X-Request-Id": rid})
            assert r.status_code == 200
            sent.append((rid, time.monotonic()))
    return sent


def _recorded(settings: Settings) -> set[str]:
    rel = RecordStore(settings.records).query("select request_id from predictions")
    return {str(r) for r in rel.to_arrow_table().column("request_id").to_pylist()}


@pytest.mark.slow
def test_sigterm_flushes_every_record(
    server: tuple[str, subprocess.Popen[bytes], Settings],
) -> None:
    url, proc, settings = server
    sent = _send(url, 60)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises after shutdown
    assert _recorded(settings) == {rid for rid, _ in sent}
    ages = RecordStore(settings.records).query(
        "select feature_ages_s from predictions where request_id = 'req-1'"
    )
    assert '"x"' in str(ages.to_arrow_table().column(0).to_pylist()[0])


@pytest.mark.slow
def test_sigint_flushes_every_record(
    server: tuple[str, subprocess.Popen[bytes], Settings],
) -> None:
    url, proc, settings = server
    sent = _send(url, 60)
    proc.send_signal(signal.SIGINT)  # Ctrl-C in the terminal running `flotilla serve`
    assert proc.wait(timeout=60) in (0, -signal.SIGINT)  # a clean shutdown, not a traceback
    assert _recorded(settings) == {rid for rid, _ in sent}


@pytest.mark.slow
def test_kill_9_loses_at_most_one_flush_interval(
    server: tuple[str, subprocess.Popen[bytes], Settings],
) -> None:
    url, proc, settings = server
    sent = _send(url, 60)
    time.sleep(FLUSH_S * 3)  # everything so far has had time to flush
    late = _send(url, 5)
    killed_at = time.monotonic()
    proc.kill()
    proc.wait(timeout=30)
    recorded = _recorded(settings)
    assert {rid for rid, _ in sent} <= recorded, "records older than a flush interval were lost"
    lost = [rid for rid, at in late if rid not in recorded]
    assert all(killed_at - at <= FLUSH_S + 1.0 for rid, at in late if rid in lost)


@pytest.mark.slow
def test_outcomes_route(server: tuple[str, subprocess.Popen[bytes], Settings]) -> None:
    url, _, settings = server
    _send(url, 3)
    with httpx.Client(base_url=url, timeout=10) as client:
        ok = client.post(
            "/v1/models/const/outcomes",
            json={
                "outcomes": [
                    {"request_id": "req-0", "index": 0, "label": 1,
                     "observed_at": "2026-01-02T00:00:00Z"},
                    {"id": "user-1", "label": 0},
                ]
            },
        )  # fmt: skip
        assert ok.status_code == 200, ok.text
        assert ok.json()["accepted"] == 2
        bad = client.post(
            "/v1/models/const/outcomes", json={"outcomes": [{"id": "u", "label": [1]}]}
        )
        assert bad.status_code == 422 and "label" in bad.json()["rejected"][0]["error"]
        unknown = client.post("/v1/models/nope/outcomes", json={"outcomes": []})
        assert unknown.status_code == 404
        assert client.post("/v1/models/const/outcomes", content=b"[1]").status_code == 400
        assert client.get("/v1/models/const/outcomes").status_code == 405
        zipped = client.post(  # a compressed body, as a batch uploader would send it
            "/v1/models/const/outcomes",
            content=gzip.compress(
                json.dumps({"outcomes": [{"request_id": "req-2", "index": 0, "label": 1}]}).encode()
            ),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
        assert zipped.status_code == 200 and zipped.json()["accepted"] == 1
    time.sleep(FLUSH_S * 3)
    joined = OutcomeStore(settings.records).joined("const").to_arrow_table()
    assert sorted(joined.column("request_id").to_pylist()) == ["req-0", "req-1", "req-2"]

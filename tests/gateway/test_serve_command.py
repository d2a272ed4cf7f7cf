"""``flotilla serve`` in a subprocess: two workers, one metrics view, graceful stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from flotilla.settings import Settings
from flotilla.workspace import Workspace

CODE = "class Model:\n    def predict(self, records):\n        return [0.25 for _ in records]\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_with_two_workers(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings()
    code = tmp_path / "const.py"
    code.write_text(CODE)
    ws = Workspace.open(settings)
    signature = {"inputs": [{"name": "x", "type": "float"}], "output": {"kind": "score"}}
    ws.register("const", flavor="python", artifact=code, entry="const:Model", signature=signature)
    ws.registry.put_deployment(
        "const", {"live": "const@1", "fallbacks": [{"static": {"value": 0.0}}]}, actor="t"
    )
    port = _free_port()
    env = {**os.environ, "FLOTILLA_HOME": str(settings.home)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    main = "from flotilla.cli.main import main; main()"
    cmd = [sys.executable, "-c", main, "serve", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--workers", "2", "--no-records"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        began = time.monotonic()
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() - began < 60, "the server did not become ready"
            time.sleep(0.2)
        with httpx.Client(base_url=url) as client:
            for _ in range(20):
                r = client.post("/v1/models/const:predict", json={"instances": [{"x": 1.0}]})
                assert r.json()["predictions"] == [0.25]
            # uvicorn as `serve` configures it: the Date header, no Server banner
            assert "date" in r.headers and "server" not in r.headers
            text = client.get("/metrics").text
        assert 'flotilla_requests_total{model="const",role="live"} 20.0' in text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

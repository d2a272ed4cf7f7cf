"""``serve --monitor``: the alert loop runs beside serving and its gauges reach /metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from flotilla.gateway import Gateway, create_app
from flotilla.records import RecordWriter
from flotilla.settings import Settings
from flotilla.workspace import Workspace

CODE = "class Model:\n    def predict(self, records):\n        return [0.5 for _ in records]\n"


def test_monitor_loop_runs_in_the_gateway(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    serve: Callable[[Gateway], httpx.Client],
) -> None:
    settings = make_settings()
    code = tmp_path / "half.py"
    code.write_text(CODE)
    ws = Workspace.open(settings)
    sig = {"inputs": [{"name": "x", "type": "float"}], "output": {"kind": "probability"}}
    ws.register("half", flavor="python", artifact=code, entry="half:Model", signature=sig)
    ws.registry.put_deployment(
        "half", {"live": "half@1", "fallbacks": [{"static": {"value": 0.1}}]}, actor="t"
    )
    writer = RecordWriter(settings.records, flush_interval=0.1)
    writer.start()
    app = create_app(ws, sink=writer, monitor_interval_s=0.5)
    client = serve(app)
    assert client.post("/v1/models/half:predict", json={"instances": [{"x": 1.0}]}).is_success
    assert app.monitor is not None
    deadline = time.monotonic() + 60
    while app.monitor.runs < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert app.monitor.runs >= 2, "the monitor loop did not run twice within 60 s"
    text = client.get("/metrics").text
    assert "flotilla_incidents_open" in text
    assert "flotilla_requests_total" in text

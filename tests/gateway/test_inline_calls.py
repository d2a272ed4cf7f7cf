"""Where model calls run: short native calls on the event loop, python models in the pool."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_support import XY_SIGNATURE, linear_onnx

from flotilla.gateway import Gateway, create_app
from flotilla.settings import Settings
from flotilla.workspace import Workspace

CODE = """
import threading


class Where:
    def predict(self, records):
        in_pool = threading.current_thread().name.startswith("flotilla-model")
        return [1.0 if in_pool else 0.0 for _ in records]
"""

SIG = XY_SIGNATURE


def _deploy(ws: Workspace, name: str, ref: str) -> None:
    # a generous deadline: these tests are about where calls run, not about timing
    spec = {"live": ref, "deadline_ms": 5000, "fallbacks": [{"static": {"value": -1.0}}]}
    ws.registry.put_deployment(name, spec, actor="t")


@pytest.fixture
def workspace(make_settings: Callable[..., Settings], tmp_path: Path) -> Workspace:
    ws = Workspace.open(make_settings())
    code = tmp_path / "where.py"
    code.write_text(CODE)
    ws.register("where", flavor="python", artifact=code, entry="where:Where", signature=SIG)
    ws.register("lin", flavor="onnx", artifact=linear_onnx(tmp_path / "lin.onnx"), signature=SIG)
    _deploy(ws, "where", "where@1")
    _deploy(ws, "lin", "lin@1")
    return ws


def _live(client: httpx.Client, name: str) -> dict[str, Any]:
    chain: list[dict[str, Any]] = client.get(f"/v1/models/{name}").json()["chain"]
    return chain[0]


def test_a_fast_onnx_model_runs_inline_and_python_models_never_do(
    workspace: Workspace, serve: Callable[[Gateway], httpx.Client]
) -> None:
    client = serve(create_app(workspace))
    live = _live(client, "lin")
    assert live["inline"] is True  # calibrated at load: microseconds per row
    assert 0 < live["call_cost_us"] < 250
    answer = client.post("/v1/models/lin:predict", json={"instances": [{"x": 1.0, "y": 2.0}]})
    assert answer.json()["predictions"] == pytest.approx([5.0], abs=1e-4)
    where = _live(client, "where")
    assert where["inline"] is False and where["call_cost_us"] is None
    body = {"instances": [{"x": 1.0, "y": 2.0}]}
    for _ in range(3):  # a python model stays in the pool, however cheap its calls
        answer = client.post("/v1/models/where:predict", json=body).json()
        assert answer["served_by"]["role"] == "live", answer
        assert answer["predictions"] == [1.0]


def test_inline_below_zero_sends_every_call_to_the_pool(
    workspace: Workspace, serve: Callable[[Gateway], httpx.Client]
) -> None:
    client = serve(create_app(workspace, inline_below_ms=0))
    assert _live(client, "lin")["inline"] is False
    answer = client.post("/v1/models/lin:predict", json={"instances": [{"x": 1.0, "y": 2.0}]})
    assert answer.json()["served_by"]["role"] == "live"


def test_a_negative_inline_limit_is_refused(workspace: Workspace) -> None:
    from flotilla.errors import ConfigError

    with pytest.raises(ConfigError, match="inline_below_ms"):
        create_app(workspace, inline_below_ms=-1)

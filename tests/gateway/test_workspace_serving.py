"""End to end: python-flavor models registered from .py files, deployed, served over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from flotilla.gateway import REASONS, Gateway, create_app
from flotilla.settings import Settings
from flotilla.workspace import Workspace

MODEL_CODE = """
import math
import time


class Model:
    # behaves as the control file says (answer, raise, hang, nan, short), read per call

    def __init__(self, control="", value=0.9, hang_s=0.5):
        self.control, self.value, self.hang_s = control, value, hang_s

    @property
    def mode(self):
        try:
            with open(self.control) as fh:
                return fh.read().strip()
        except OSError:
            return "answer"

    def predict(self, records):
        mode = self.mode
        if mode == "raise":
            raise ValueError("broken on purpose")
        if mode == "hang":
            time.sleep(self.hang_s)
        if mode == "nan":
            return [math.nan for _ in records]
        if mode == "short":
            return [self.value for _ in records][1:]
        return [self.value for _ in records]
"""

SIGNATURE = {
    "inputs": [{"name": "x", "type": "float", "min": 0, "max": 10}],
    "output": {"kind": "score"},
}
ROW = {"x": 1.0}
STATIC = {"static": {"value": 0.0}}


@pytest.fixture
def workspace(make_settings: Callable[..., Settings], tmp_path: Path) -> Workspace:
    code = tmp_path / "behaviour.py"
    code.write_text(MODEL_CODE)
    other = tmp_path / "other" / "behaviour.py"  # different bytes: its own artifact
    other.parent.mkdir()
    other.write_text(MODEL_CODE + "# another artifact\n")
    ws = Workspace.open(make_settings())

    def register(name: str, mode: str = "answer", artifact: Path = code, **params: Any) -> None:
        control = tmp_path / f"{name}.mode"
        params["control"] = str(control)
        ws.register(
            name,
            flavor="python",
            artifact=artifact,
            entry="behaviour:Model",
            params=params,
            signature=SIGNATURE,
        )
        control.write_text(mode)  # after registration, which test-predicts the model

    register("lite", value=0.5)
    for mode in ("answer", "raise", "hang", "nan", "short"):
        register(mode, mode=mode)
    register("trip", mode="raise")
    register("gone", artifact=other)
    register("answer", value=0.7)  # answer@2
    ws.set_alias("answer@1", "champion")
    return ws


def deploy(ws: Workspace, model: str, live: str, *steps: Any, **spec: Any) -> None:
    chain = list(steps) or ["lite@1", STATIC]
    ws.registry.put_deployment(
        model, {"model": model, "live": live, "fallbacks": chain, **spec}, actor="tester"
    )


def predict(client: httpx.Client, model: str, row: dict[str, Any] = ROW) -> dict[str, Any]:
    r = client.post(f"/v1/models/{model}:predict", json={"instances": [row]})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_registered_models_produce_every_reason(
    workspace: Workspace, serve: Callable[[Gateway], httpx.Client]
) -> None:
    ws = workspace
    deploy(ws, "answer", "answer@champion")
    deploy(ws, "raise", "raise@1")
    deploy(ws, "hang", "hang@1", STATIC, deadline_ms=80, max_concurrency=1)
    deploy(ws, "nan", "nan@1")
    deploy(ws, "short", "short@1")
    deploy(ws, "trip", "trip@1", breaker={"min_requests": 1, "open_s": 60})
    deploy(ws, "gone", "gone@1")
    ws.artifacts.blob_path(ws.resolve("gone@1").sha256 or "").unlink()  # deleted after deploy
    client = serve(create_app(ws.settings, poll_interval_s=0.2))

    seen: dict[str, dict[str, Any]] = {}

    def note(body: dict[str, Any]) -> None:
        for reason in body["reasons"]:
            seen.setdefault(reason["reason"], body)

    ok = predict(client, "answer")
    assert ok["served_by"] == {"role": "live", "ref": "answer@1"}
    assert ok["degraded"] is False
    note(predict(client, "answer", {"x": 99.0}))
    note(predict(client, "raise"))
    note(predict(client, "hang"))
    note(predict(client, "hang"))  # the abandoned call still holds the only slot
    note(predict(client, "nan"))
    note(predict(client, "short"))
    note(predict(client, "trip"))
    note(predict(client, "trip"))
    note(predict(client, "gone"))
    assert sorted(seen) == sorted(REASONS)
    assert seen["error"]["served_by"] == {"role": "fallback", "ref": "lite@1"}
    assert seen["not_loaded"]["reasons"][0]["ref"] == "gone@1"
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert {f["ref"] for f in ready.json()["failures"]} == {"gone@1"}


def test_deploy_and_alias_moves_are_served_without_restart(
    workspace: Workspace, serve: Callable[[Gateway], httpx.Client]
) -> None:
    ws = workspace
    deploy(ws, "answer", "answer@champion")
    client = serve(create_app(ws.settings))  # default 1 s poll
    assert predict(client, "answer")["served_by"]["ref"] == "answer@1"

    ws.set_alias("answer@2", "champion")
    began = time.monotonic()
    while predict(client, "answer")["served_by"]["ref"] != "answer@2":
        assert time.monotonic() - began < 2.0, "the alias move was not picked up within 2 s"
        time.sleep(0.05)

    deploy(ws, "answer", "lite@1")
    began = time.monotonic()
    while predict(client, "answer")["served_by"]["ref"] != "lite@1":
        assert time.monotonic() - began < 2.0, "the new revision was not picked up within 2 s"
        time.sleep(0.05)
    assert client.get("/v1/models/answer").json()["revision"] == 2


def test_incidents_route_is_mounted(
    workspace: Workspace, serve: Callable[[Gateway], httpx.Client]
) -> None:
    deploy(workspace, "answer", "answer@1")
    client = serve(create_app(workspace.settings))
    r = client.get("/v1/incidents")
    assert r.status_code == 200
    assert r.json() == []

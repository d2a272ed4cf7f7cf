"""``tier: gpu`` loads a deployment's versions on the GPU; without one they are not_loaded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import onnxruntime as ort
from gateway_support import XY_SIGNATURE, linear_onnx

from flotilla.gateway import Gateway, create_app
from flotilla.settings import Settings
from flotilla.workspace import Workspace

SIG = XY_SIGNATURE


def test_each_deployment_loads_on_its_tier(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    serve: Callable[[Gateway], httpx.Client],
) -> None:
    ws = Workspace.open(make_settings())
    artifact = linear_onnx(tmp_path / "lin.onnx")
    for name, tier in (("on-cpu", "cpu"), ("on-gpu", "gpu")):
        ws.register(name, flavor="onnx", artifact=artifact, signature=SIG)
        spec = {
            "live": f"{name}@1",
            "deadline_ms": 5000,
            "tier": tier,
            "fallbacks": [{"static": {"value": -1.0}}],
        }
        ws.registry.put_deployment(name, spec, actor="t")
    client = serve(create_app(ws))
    body = {"instances": [{"x": 1.0, "y": 2.0}]}
    on_cpu = client.post("/v1/models/on-cpu:predict", json=body).json()
    assert on_cpu["served_by"]["role"] == "live", on_cpu
    on_gpu = client.post("/v1/models/on-gpu:predict", json=body).json()
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert on_gpu["served_by"]["role"] == "live", on_gpu
        return
    # no GPU here: the same artifact is served on the CPU tier, and not_loaded on the GPU tier
    assert on_gpu["served_by"]["role"] == "static"
    assert on_gpu["reasons"][0]["reason"] == "not_loaded"
    assert "tier 'cpu'" in on_gpu["reasons"][0]["detail"]
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert [f["model"] for f in ready.json()["failures"]] == ["on-gpu"]

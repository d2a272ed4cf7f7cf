"""``inline_flavors`` (experimental): named flavors run on the event loop, others in the pool."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

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


@pytest.mark.parametrize(
    ("inline", "expected"), [(set(), 1.0), ({"python"}, 0.0)], ids=["pool", "inline"]
)
def test_inline_flavors_skip_the_thread_pool(
    inline: set[str],
    expected: float,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    serve: Callable[[Gateway], httpx.Client],
) -> None:
    ws = Workspace.open(make_settings())
    code = tmp_path / "where.py"
    code.write_text(CODE)
    sig = {"inputs": [{"name": "x", "type": "float"}], "output": {"kind": "score"}}
    ws.register("where", flavor="python", artifact=code, entry="where:Where", signature=sig)
    ws.registry.put_deployment(
        "where", {"live": "where@1", "fallbacks": [{"static": {"value": -1.0}}]}, actor="t"
    )
    client = serve(create_app(ws, inline_flavors=inline))
    answer = client.post("/v1/models/where:predict", json={"instances": [{"x": 1.0}]}).json()
    assert answer["served_by"]["role"] == "live"
    assert answer["predictions"] == [expected]

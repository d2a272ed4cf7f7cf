"""python-flavor models in worker processes: answers, errors, hangs, load failures."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from flotilla.errors import PredictionError, RuntimeLoadError
from flotilla.gateway import Gateway, create_app
from flotilla.gateway._process import ProcessPool
from flotilla.runtimes import RuntimeSpec
from flotilla.settings import Settings
from flotilla.workspace import Workspace

CODE = """
import os
import time


class Model:
    def __init__(self, mode="pid"):
        self.mode = mode

    def predict(self, records):
        if self.mode == "raise" or records[0]["x"] == 13.0:
            raise RuntimeError("boom")
        if self.mode == "sleep":
            time.sleep(records[0]["x"])
        return [float(os.getpid()) for _ in records]
"""

SIG = {"inputs": [{"name": "x", "type": "float"}], "output": {"kind": "score"}}


def _spec(tmp_path: Path, mode: str) -> RuntimeSpec:
    code = tmp_path / "proc_model.py"
    code.write_text(CODE)
    return RuntimeSpec(
        flavor="python",
        path=code,
        signature=None,
        entry="proc_model:Model",
        params={"mode": mode},
        label=f"proc@{mode}",
    )


@pytest.fixture
def pool() -> Iterator[ProcessPool]:
    started = ProcessPool(1, call_timeout_s=1.0)
    yield started
    started.close()


def test_a_model_runs_in_another_process(pool: ProcessPool, tmp_path: Path) -> None:
    model = pool.predictor(_spec(tmp_path, "pid"))
    model.load()
    pids = model.predict([{"x": 0.0}, {"x": 0.0}])
    assert len(pids) == 2 and pids[0] == pids[1] != float(os.getpid())


def test_errors_come_back_as_prediction_errors(pool: ProcessPool, tmp_path: Path) -> None:
    with pytest.raises(PredictionError, match="RuntimeError: boom"):
        pool.predictor(_spec(tmp_path, "raise")).predict([{"x": 0.0}])
    broken = RuntimeSpec(flavor="python", path=tmp_path / "missing.py", signature=None, entry="m:C")
    with pytest.raises(RuntimeLoadError, match="could not be loaded in a model process"):
        pool.predictor(broken).load()


def test_a_call_that_never_answers_replaces_its_worker(pool: ProcessPool, tmp_path: Path) -> None:
    sleeper = pool.predictor(_spec(tmp_path, "sleep"))
    sleeper.load()  # loaded: the next call gets call_timeout_s
    with pytest.raises(PredictionError, match="gave no answer within 1 s; it was replaced"):
        sleeper.predict([{"x": 30.0}])
    assert pool.restarts == 1
    assert sleeper.predict([{"x": 0.0}]) == [pytest.approx(sleeper.predict([{"x": 0.0}])[0])]


def test_serve_with_processes_runs_python_models_outside_the_server(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    serve: Callable[[Gateway], httpx.Client],
) -> None:
    ws = Workspace.open(make_settings())
    code = tmp_path / "proc_model.py"
    code.write_text(CODE)
    ws.register("m", flavor="python", artifact=code, entry="proc_model:Model", signature=SIG)
    spec = {"live": "m@1", "deadline_ms": 5000, "fallbacks": [{"static": {"value": -1.0}}]}
    ws.registry.put_deployment("m", spec, actor="t")
    client = serve(create_app(ws, processes=2))
    body = {"instances": [{"x": 0.0}]}
    answer = client.post("/v1/models/m:predict", json=body).json()
    assert answer["served_by"]["role"] == "live", answer
    assert answer["predictions"][0] != float(os.getpid())
    failed = client.post("/v1/models/m:predict", json={"instances": [{"x": 13.0}]}).json()
    assert failed["served_by"]["role"] == "static"
    assert failed["reasons"][0]["reason"] == "error"
    assert "RuntimeError: boom" in failed["reasons"][0]["detail"]


def test_a_negative_process_count_is_refused(make_settings: Callable[..., Settings]) -> None:
    from flotilla.errors import ConfigError

    with pytest.raises(ConfigError, match="processes"):
        create_app(make_settings(), processes=-1)

"""Fixtures of the records tests: event factories and a real ``flotilla`` runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from flotilla.cli import _records
from flotilla.cli._groups import Groups
from flotilla.records import PredictionEvent

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

MakeEvent = Callable[..., PredictionEvent]
Invoke = Callable[..., Result]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh Flotilla home in the environment (SQLite, default records root, wide output)."""
    monkeypatch.setenv("FLOTILLA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLOTILLA_DB_URL", raising=False)
    monkeypatch.delenv("FLOTILLA_RECORDS_ROOT", raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    return tmp_path / "home"


def records_cli() -> Invoke:
    """Run a ``records``/``outcomes`` command in-process; returns click's Result."""
    app = typer.Typer()
    groups = Groups.create()
    app.add_typer(groups.records, name="records")
    app.add_typer(groups.outcomes, name="outcomes")
    _records.register(app, groups)
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args))

    return run


@pytest.fixture
def make_event() -> MakeEvent:
    """Factory: a prediction event with sensible defaults (override any field)."""

    def factory(request_id: str = "r0", **fields: Any) -> PredictionEvent:
        values: dict[str, Any] = {
            "request_id": request_id,
            "model": "churn",
            "ref": "churn@1",
            "role": "live",
            "inputs": [{"x": 1.0}],
            "predictions": [0.5],
            "ids": None,
            "latency_ms": 1.5,
            "degraded": False,
            "reasons": [],
            "event_time": T0,
        }
        values.update(fields)
        return PredictionEvent(**values)

    return factory


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def flotilla_cli(tmp_path: Path) -> Run:
    """Run the real ``flotilla`` command in a subprocess with a temporary home."""
    home = tmp_path / "home"

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "FLOTILLA_HOME": str(home), "FLOTILLA_ACTOR": "records-tester"}
        env["COLUMNS"] = "250"  # rich tables without wrapped cells
        env.pop("FLOTILLA_DB_URL", None)
        env.pop("FLOTILLA_RECORDS_ROOT", None)
        proc = subprocess.run(
            [sys.executable, "-m", "flotilla", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"flotilla {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run

"""``flotilla monitor report``: portfolio screen, one model's report, JSON and HTML."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner, Result

from flotilla.cli import _health
from flotilla.cli._groups import Groups
from flotilla.cli._health import parse_end, parse_window
from flotilla.errors import ConfigError
from flotilla.monitoring import build_profile
from flotilla.records import PredictionEvent, RecordWriter
from flotilla.settings import Settings
from flotilla.workspace import Workspace

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SIG = {"inputs": [{"name": "x", "type": "float"}], "output": {"kind": "probability"}}
MODEL_PY = """
class Model:
    def predict(self, records):
        return [0.5 for _ in records]
"""


def _app() -> typer.Typer:
    app = typer.Typer(rich_markup_mode=None)
    groups = Groups.create()
    app.add_typer(groups.monitor, name="monitor")
    _health.register(app, groups)
    return app


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """churn (40% timeouts, x shifted vs its profile) and quiet (traffic only the day before)."""
    home = tmp_path / "home"
    monkeypatch.setenv("FLOTILLA_HOME", str(home))
    monkeypatch.delenv("FLOTILLA_DB_URL", raising=False)
    settings = Settings(home=home, actor="setup")
    ws = Workspace.open(settings)
    code = tmp_path / "tiny_health_cli_model.py"
    code.write_text(MODEL_PY)
    for name in ("churn", "quiet"):
        ws.register(name, flavor="python", artifact=code, entry="tiny_health_cli_model:Model",
                    signature=SIG)  # fmt: skip
    rng = np.random.default_rng(4)
    ref = rng.normal(size=3000)
    pq.write_table(pa.table({"x": ref}), tmp_path / "train.parquet")
    profile = build_profile(tmp_path / "train.parquet", progress=False)
    ws.registry.set_profile("churn", 1, profile, actor="setup")
    with RecordWriter(settings.records) as writer:
        for i in range(200):
            timeout = i % 5 < 2
            writer.submit(
                PredictionEvent(
                    request_id=f"r{i}",
                    model="churn",
                    ref="churn@1",
                    role="fallback" if timeout else "live",
                    inputs=[{"x": float(rng.normal(2))}],
                    predictions=[float(rng.uniform())],
                    ids=None,
                    latency_ms=5.0 + i % 10,
                    degraded=timeout,
                    reasons=[{"ref": "churn@1", "reason": "timeout"}] if timeout else [],
                    event_time=T0 + timedelta(minutes=5 * i),
                )
            )
        writer.submit(
            PredictionEvent(
                request_id="q1",
                model="quiet",
                ref="quiet@1",
                role="live",
                inputs=[{"x": 0.0}],
                predictions=[0.5],
                ids=None,
                latency_ms=1.0,
                degraded=False,
                reasons=[],
                event_time=T0 - timedelta(hours=3),
            )
        )
    return home


def _run(*args: str) -> Result:
    return CliRunner().invoke(_app(), ["monitor", "report", *args])


def test_model_report_as_json(home: Path) -> None:
    result = _run("churn", "--window", "1d", "--end", "2026-03-02T00:00:00Z", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["metrics"]["traffic"] == 200
    assert data["metrics"]["fallback_rate"] == pytest.approx(0.4)
    assert data["metrics"]["fallback_rate_timeout"] == pytest.approx(0.4)
    assert data["drift"][0]["name"] == "x" and data["drift"][0]["drifted"] is True
    assert data["cbpe"] is not None and data["metrics"]["estimated_performance"] is not None
    assert data["status"] == "trouble"


def test_model_report_tables_and_html(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "report" / "churn.html"
    result = _run("churn", "--end", "2026-03-02", "--html", str(out), "--step", "2h")
    assert result.exit_code == 0, result.output
    assert "Drifted fields" in result.stdout and "CBPE" in result.stdout
    assert "calibrated" in result.stdout
    page = out.read_text()
    assert "<svg" in page and "<polyline" in page and "fallback rate" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_portfolio_screen_sorted_by_trouble(home: Path) -> None:
    result = _run("--end", "2026-03-02T00:00:00Z", "--json")
    assert result.exit_code == 0, result.output
    models = json.loads(result.stdout)["models"]
    assert [m["model"] for m in models] == ["churn", "quiet"]
    quiet = models[1]
    assert quiet["status"] == "no traffic" and quiet["metrics"]["traffic"] == 0
    table = _run("--end", "2026-03-01T12:00:00Z", "--window", "12h")
    assert table.exit_code == 0, table.output
    assert "quiet" in table.stdout and "churn" in table.stdout


def test_bad_arguments(home: Path) -> None:
    for bad in ("1x", "0d", "d", "1.5h"):
        with pytest.raises(ConfigError, match="--window"):
            parse_window(bad)
    assert parse_window("30m") == timedelta(minutes=30)
    assert parse_window("7d") == timedelta(days=7)
    assert parse_end("2026-03-01") == T0
    with pytest.raises(ConfigError, match="--end"):
        parse_end("yesterday")
    result = _run("churn", "--window", "soon")
    assert isinstance(result.exception, ConfigError)
    result = _run("--html", "x.html")
    assert isinstance(result.exception, ConfigError)

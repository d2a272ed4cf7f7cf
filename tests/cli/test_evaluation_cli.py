"""``flotilla compare`` and ``flotilla promote`` through the real command line."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from flotilla.cli._evaluation import parse_since
from flotilla.cli.main import app
from flotilla.errors import ConfigError
from flotilla.records import OutcomeStore, PredictionEvent, RecordWriter
from flotilla.settings import Settings
from flotilla.testing import FakeClock
from flotilla.workspace import Workspace
from shadow_support import T0, deploy_churn, register_tiny

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def home(tmp_path: Path) -> Settings:
    """The CLI's home: churn@1 live with churn@2 in the shadows, and 400 labeled pairs."""
    settings = Settings(home=tmp_path / "home", actor="setup")
    ws = Workspace.open(settings)
    register_tiny(ws, tmp_path, [("churn", 0.4), ("churn", 0.6)], module="tiny_cli_model")
    policy = {"min_labeled": 200, "min_days": 1, "metric": "logloss"}
    deploy_churn(ws, promotion=policy, sample=0.5, actor="setup")
    rng = np.random.default_rng(7)
    writer = RecordWriter(settings.records, clock=FakeClock(start=T0 + timedelta(days=3)))
    outcomes = []
    for i in range(400):
        t = T0 + timedelta(minutes=10 * i)
        y = int(rng.integers(0, 2))
        for role, ref, signal in (("live", "churn@1", 0.2), ("shadow", "churn@2", 2.0)):
            p = float(1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal()))))
            writer.submit(
                PredictionEvent(
                    request_id=f"q{i}", model="churn", ref=ref, role=role, inputs=[{"x": 1.0}],
                    predictions=[p], ids=None, latency_ms=3.0, degraded=False, reasons=[],
                    event_time=t,
                )
            )  # fmt: skip
        outcomes.append({"request_id": f"q{i}", "label": y, "observed_at": t.isoformat()})
    writer.flush()
    OutcomeStore(settings.records, clock=FakeClock(start=T0 + timedelta(days=4))).ingest(
        "churn", outcomes
    )
    return settings


def invoke(settings: Settings, *args: str) -> Result:
    """Run the CLI in this process (fast); errors stay in ``result.exception``."""
    env = {"FLOTILLA_HOME": str(settings.home), "FLOTILLA_ACTOR": "cli-tester"}
    return CliRunner().invoke(app, list(args), env=env)


def _error(result: Result) -> str:
    return str(result.exception) if result.exception else result.output


def test_compare_json_and_html(flotilla: Run, home: Settings, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    out = flotilla("compare", "churn", "--json", "--html", str(report))  # the real command
    data = json.loads(out.stdout)
    assert (data["champion"], data["challenger"], data["metric"]) == (
        "churn@1",
        "churn@2",
        "logloss",
    )
    assert data["labeled_pairs"] == 400 and data["verdict"] == "promote"
    for key in ("champion_metric", "challenger_metric", "difference"):
        assert set(data[key]) == {"value", "ci_low", "ci_high"}
    assert data["sequential"]["n"] == 400 and data["sequential"]["reject"] is True
    assert set(data["latency"]) == set(data["rates"]) == {"champion", "challenger"}
    assert [r["date"] for r in data["label_coverage"]] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert "<svg" in report.read_text(encoding="utf-8")
    table = invoke(home, "compare", "churn", "--metric", "auc", "--since", "2026-03-02")
    assert table.exit_code == 0, _error(table)
    assert "verdict:" in table.stdout and "label coverage per day" in table.stdout
    assert "2026-03-01" not in table.stdout


def test_compare_bad_input(home: Settings) -> None:
    bad = invoke(home, "compare", "churn", "--metric", "precision")
    assert bad.exit_code != 0 and "must be one of" in _error(bad)
    bad = invoke(home, "compare", "churn", "--since", "last tuesday")
    assert bad.exit_code != 0 and "--since" in _error(bad)
    bad = invoke(home, "compare", "nope")
    assert bad.exit_code != 0 and "nope" in _error(bad)


def test_promote_refusal_force_and_rollback(home: Settings) -> None:
    out = invoke(home, "promote", "churn", "--to", "churn@2", "--force", "--json")
    assert out.exit_code == 1 and "reason" in json.loads(out.stdout)["error"]
    out = invoke(home, "promote", "churn", "--to", "churn@2", "--json")
    assert out.exit_code == 0, _error(out)
    data = json.loads(out.stdout)
    assert data["ok"] is True and data["revision"] == 2 and data["spec"]["live"] == "churn@2"
    assert invoke(home, "rollback", "churn").exit_code == 0
    ws = Workspace.open(home)
    entries = ws.registry.audit_trail(model="churn")
    promoted = [e for e in entries if e.action == "promote"]
    assert len(promoted) == 1 and promoted[0].actor == "cli-tester"
    assert [e.action for e in entries].count("deployment.put") == 3
    current = ws.registry.current_deployment("churn")
    assert current is not None and current.spec["live"] == "churn@1"
    again = invoke(home, "promote", "churn", "--to", "churn@1")
    assert again.exit_code != 0 and "already the live" in _error(again)


def test_parse_since() -> None:
    now = datetime(2026, 3, 10, tzinfo=UTC)
    assert parse_since("7d", now=now) == datetime(2026, 3, 3, tzinfo=UTC)
    assert parse_since("12h", now=now) == datetime(2026, 3, 9, 12, tzinfo=UTC)
    assert parse_since("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_since("2026-03-01T12:00:00Z") == datetime(2026, 3, 1, 12, tzinfo=UTC)
    with pytest.raises(ConfigError, match="relative window"):
        parse_since("yesterday")

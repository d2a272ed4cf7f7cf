"""``flotilla incidents list|ack|resolve`` and ``flotilla monitor run|rules|alerts|ack``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from flotilla.cli import _alerts
from flotilla.cli._groups import Groups
from flotilla.errors import ConflictError
from flotilla.monitoring._alert_state import AlertStateStore, GroupState
from flotilla.monitoring.incidents import IncidentNotFoundError, IncidentStore
from flotilla.registry import Registry
from flotilla.settings import Settings


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[typer.Typer, Settings]:
    monkeypatch.setenv("FLOTILLA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FLOTILLA_ACTOR", "oncall")
    monkeypatch.delenv("FLOTILLA_DB_URL", raising=False)
    app = typer.Typer()
    groups = Groups.create()
    for name, sub in groups.items():
        app.add_typer(sub, name=name)
    _alerts.register(app, groups)
    return app, Settings.from_env()


def _seed(settings: Settings) -> int:
    with Registry.open(settings) as reg:
        reg.create_model("churn", task="classification", owner="ana", actor="tester")
        inc = IncidentStore(reg).open(
            rule="fallback-streak",
            group="model=churn",
            models=["churn"],
            severity="critical",
            owner="ana",
            title="fallback-streak on churn",
            renotify=timedelta(hours=24),
        )
        return inc.id


def test_list_ack_resolve(cli: tuple[typer.Typer, Settings]) -> None:
    app, settings = cli
    incident_id = _seed(settings)
    runner = CliRunner()
    listed = runner.invoke(app, ["incidents", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.stdout)
    assert (row["id"], row["state"], row["owner"]) == (incident_id, "open", "ana")
    table = runner.invoke(app, ["incidents", "list"])
    assert "fallback-streak" in table.stdout and "churn" in table.stdout

    acked = runner.invoke(app, ["incidents", "ack", str(incident_id), "--note", "looking"])
    assert acked.exit_code == 0, acked.output
    assert f"Incident {incident_id} acknowledged by oncall" in acked.stdout
    again = runner.invoke(app, ["incidents", "ack", str(incident_id), "--note", "again"])
    assert isinstance(again.exception, ConflictError)

    done = runner.invoke(
        app, ["incidents", "resolve", str(incident_id), "--note", "fixed", "--json"]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["resolve_note"] == "fixed"
    assert json.loads(runner.invoke(app, ["incidents", "list", "--json"]).stdout) == []
    assert runner.invoke(app, ["incidents", "list"]).stdout.strip() == "No open incidents."
    everything = json.loads(runner.invoke(app, ["incidents", "list", "--all", "--json"]).stdout)
    assert [r["state"] for r in everything] == ["resolved"]

    missing = runner.invoke(app, ["incidents", "resolve", "77", "--note", "x"])
    assert isinstance(missing.exception, IncidentNotFoundError)
    no_note = runner.invoke(app, ["incidents", "ack", str(incident_id)])
    assert no_note.exit_code != 0 and "--note" in no_note.output

    with Registry.open(settings) as reg:
        trail = [e.action for e in reg.audit_trail(model="churn")]
    assert trail[-3:] == ["incident.open", "incident.ack", "incident.resolve"]


def test_monitor_run_on_an_empty_window(cli: tuple[typer.Typer, Settings], tmp_path: Path) -> None:
    app, settings = cli
    _seed(settings)
    runner = CliRunner()
    out = tmp_path / "notes.jsonl"
    result = runner.invoke(app, ["monitor", "run", "--json", "--notify-file", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["models"] == 1 and summary["rules"] == 5
    assert summary["failed_sends"] == 0
    text = runner.invoke(app, ["monitor", "run"])
    assert text.exit_code == 0, text.output
    assert "Evaluated 5 rule(s) on 1 model(s)" in text.stdout


def test_monitor_rules_from_the_home_and_alert_ack(cli: tuple[typer.Typer, Settings]) -> None:
    app, settings = cli
    Path(settings.home).mkdir(parents=True, exist_ok=True)
    (Path(settings.home) / "alerts.yaml").write_text(
        "rules:\n  - {name: busy, metric: traffic, op: '>=', threshold: 0, window: 1h}\n"
    )
    runner = CliRunner()
    shown = json.loads(runner.invoke(app, ["monitor", "rules", "--json"]).stdout)
    assert [r["name"] for r in shown["rules"]] == ["busy"]
    assert shown["source"].endswith("alerts.yaml")
    assert "busy" in runner.invoke(app, ["monitor", "rules"]).stdout
    assert runner.invoke(app, ["monitor", "alerts"]).stdout.strip() == "No alert fires."
    ack = runner.invoke(app, ["monitor", "ack", "busy", "model=x", "--note", "known"])
    assert isinstance(ack.exception, ConflictError)

    with Registry.open(settings) as reg:
        reg.create_model("x", task="regression", owner="bo", actor="tester")
        now = datetime.now(UTC)
        AlertStateStore(reg.engine).save_group(
            GroupState("busy", "model=x", "firing", "warning", ("x",), now, now, now)
        )
    firing = json.loads(runner.invoke(app, ["monitor", "alerts", "--json"]).stdout)
    assert [(a["rule"], a["group"], a["acknowledged_by"]) for a in firing] == [
        ("busy", "model=x", None)
    ]
    assert "busy" in runner.invoke(app, ["monitor", "alerts"]).stdout
    ack = runner.invoke(app, ["monitor", "ack", "busy", "model=x", "--note", "known"])
    assert ack.exit_code == 0, ack.output
    firing = json.loads(runner.invoke(app, ["monitor", "alerts", "--json"]).stdout)
    assert firing[0]["acknowledged_by"] == "oncall"
    with Registry.open(settings) as reg:
        [entry] = [e for e in reg.audit_trail(model="x") if e.action == "alert.ack"]
    assert entry.reason == "known" and entry.subject == "alert:busy:model=x"

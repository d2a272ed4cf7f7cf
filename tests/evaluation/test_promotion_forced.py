"""A forced promotion goes through when no comparison can be computed, and says why."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from flotilla.cli import _evaluation
from flotilla.cli._groups import Groups
from flotilla.errors import ConfigError
from flotilla.evaluation.promotion import promote
from flotilla.records import OutcomeStore, PredictionEvent, RecordWriter
from flotilla.settings import Settings
from flotilla.testing import FakeClock
from flotilla.workspace import Workspace
from shadow_support import T0, deploy_churn, register_tiny


@pytest.fixture
def ws(make_settings: Callable[..., Settings], tmp_path: Path) -> Workspace:
    """churn@1 live, churn@2 in the shadows (auc policy), with labels auc cannot use."""
    workspace = Workspace.open(make_settings())
    register_tiny(workspace, tmp_path, [("churn", 0.5), ("churn", 0.5)], module="half_churn")
    deploy_churn(workspace, promotion={"min_labeled": 10, "min_days": 0, "metric": "auc"})
    root = workspace.settings.records
    writer = RecordWriter(root, clock=FakeClock(start=T0))
    for i in range(4):
        for role, ref in (("live", "churn@1"), ("shadow", "churn@2")):
            writer.submit(
                PredictionEvent(
                    request_id=f"r{i}", model="churn", ref=ref, role=role, inputs=[{"x": 1.0}],
                    predictions=[0.2 * (i + 1)], ids=None, latency_ms=1.0, degraded=False,
                    reasons=[], event_time=T0 + timedelta(minutes=i),
                )
            )  # fmt: skip
    writer.flush()
    # stored without a model check (as before labels were typed): 2.5 is no binary label
    OutcomeStore(root, clock=FakeClock(start=T0 + timedelta(days=1))).ingest(
        "churn", [{"request_id": f"r{i}", "label": [0, 1, 2.5, 1][i]} for i in range(4)]
    )
    return workspace


def _clock() -> FakeClock:
    return FakeClock(start=T0 + timedelta(days=2))


def test_unforced_promotion_still_fails_on_the_comparison(ws: Workspace) -> None:
    with pytest.raises(ConfigError, match="binary labels"):
        promote(ws, "churn", to="churn@2", clock=_clock())
    assert [r.revision for r in ws.registry.deployment_history("churn")] == [1]


def test_forced_promotion_records_why_there_is_no_comparison(ws: Workspace) -> None:
    rev = promote(
        ws, "churn", to="churn@2", force=True, reason="incident 7", actor="bob", clock=_clock()
    )
    assert rev.revision == 2 and rev.spec["live"] == "churn@2" and rev.spec["shadows"] == []
    reason = rev.reason or ""
    assert reason.startswith("forced promotion of churn@2 without a comparison (ConfigError: ")
    assert "binary labels 0/1. Got also [2.5]." in reason and reason.endswith("): incident 7")
    entry = [e for e in ws.registry.audit_trail(model="churn") if e.action == "promote"][-1]
    assert entry.actor == "bob" and entry.reason == rev.reason
    assert entry.after is not None and entry.after["forced"] is True
    assert entry.after["comparison"] is None
    assert entry.after["comparison_error"].startswith("ConfigError: The metric 'auc' cannot")


def test_forced_promotion_keeps_a_comparison_that_can_be_computed(ws: Workspace) -> None:
    # labels of the other rows last written win: every label binary again
    OutcomeStore(ws.settings.records, clock=FakeClock(start=T0 + timedelta(days=1))).ingest(
        "churn", [{"request_id": "r2", "label": 0}]
    )
    rev = promote(ws, "churn", to="churn@2", force=True, reason="incident 8", clock=_clock())
    assert "over verdict 'keep_shadowing'" in (rev.reason or "")
    entry = [e for e in ws.registry.audit_trail(model="churn") if e.action == "promote"][-1]
    assert entry.after is not None and "comparison_error" not in entry.after
    assert entry.after["comparison"]["labeled_pairs"] == 4


def test_cli_forced_promotion_without_a_comparison(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOTILLA_HOME", str(ws.settings.home))
    monkeypatch.delenv("FLOTILLA_DB_URL", raising=False)
    monkeypatch.delenv("FLOTILLA_RECORDS_ROOT", raising=False)
    app = typer.Typer()
    _evaluation.register(app, Groups.create())
    runner = CliRunner()
    refused = runner.invoke(app, ["promote", "churn", "--to", "churn@2", "--json"])
    assert refused.exit_code == 1 and json.loads(refused.stdout)["kind"] == "ConfigError"
    forced = runner.invoke(
        app, ["promote", "churn", "--to", "churn@2", "--force", "--reason", "incident 9", "--json"]
    )
    assert forced.exit_code == 0, forced.output
    done = json.loads(forced.stdout)
    assert done["ok"] is True and done["spec"]["live"] == "churn@2"
    assert "without a comparison" in done["reason"] and done["reason"].endswith("incident 9")

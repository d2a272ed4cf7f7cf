"""``promotion: {auto: true}``: the monitor loop promotes by itself when the verdict says so.

``test_promotion.py`` calls ``auto_promote()`` directly; these tests go through the two real
callers instead: ``flotilla monitor run`` (cron) and the gateway's background monitor loop
(``serve --monitor``, wired in ``gateway/_app.py``). Both judge with the system clock, so the
traffic lies in the past (from 2026-03-01) and ``min_days`` is met by the time they run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flotilla.cli.main import app
from flotilla.gateway import create_app
from flotilla.settings import Settings
from flotilla.workspace import Workspace
from shadow_support import deploy_churn, register_tiny, shadow_traffic


@pytest.fixture
def make_home(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> Callable[..., tuple[Settings, Workspace]]:
    """Factory: churn@1 live, churn@2 shadowing under ``promotion.auto``, and 600 labeled
    pairs over 3 days in which churn@2 is clearly better (the verdict is ``promote``)."""

    def build(*, auto: bool) -> tuple[Settings, Workspace]:
        settings = make_settings()
        ws = Workspace.open(settings)
        register_tiny(ws, tmp_path, [("churn", 0.4), ("churn", 0.6)], module="tiny_auto_model")
        policy = {"min_labeled": 300, "min_days": 2, "metric": "logloss", "auto": auto}
        deploy_churn(ws, promotion=policy)
        shadow_traffic(settings.records, n=600, days=3, chall=2.0, seed=4)
        return settings, ws

    return build


def _monitor_run(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("FLOTILLA_HOME", str(settings.home))
    monkeypatch.setenv("FLOTILLA_ACTOR", "cron")
    monkeypatch.delenv("FLOTILLA_DB_URL", raising=False)
    result = CliRunner().invoke(app, ["monitor", "run", "--json"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _assert_promoted(ws: Workspace, revision: int) -> None:
    """The challenger is live in ``revision`` and the audit entry carries the comparison."""
    current = ws.registry.current_deployment("churn")
    assert current is not None and current.revision == revision
    assert current.spec["live"] == "churn@2" and current.spec["shadows"] == []
    assert current.spec["fallbacks"] == [{"static": {"value": 0.5}}]
    assert "verdict promote on 600 labeled pairs" in (current.reason or "")
    (entry,) = [e for e in ws.registry.audit_trail(model="churn") if e.action == "promote"]
    assert entry.actor == "flotilla-auto" and entry.subject == "churn@2"
    assert entry.before == {"live": "churn@1", "resolved": "churn@1", "revision": 1}
    assert entry.after is not None
    assert entry.after["live"] == "churn@2" and entry.after["revision"] == revision
    assert entry.after["forced"] is False
    evidence = entry.after["comparison"]
    assert (evidence["champion"], evidence["challenger"]) == ("churn@1", "churn@2")
    assert evidence["verdict"] == "promote" and evidence["labeled_pairs"] == 600
    assert evidence["metric"] == "logloss" and evidence["policy"]["auto"] is True
    assert evidence["sequential"]["reject"] is True
    assert evidence["improvement"]["ci_low"] > 0
    assert "over_time" not in evidence  # the per-day series stays out of the audit trail


def _revisions(ws: Workspace) -> list[int]:
    return [r.revision for r in ws.registry.deployment_history("churn")]


def test_monitor_run_promotes_the_challenger_with_auto(
    make_home: Callable[..., tuple[Settings, Workspace]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, ws = make_home(auto=True)
    data = _monitor_run(settings, monkeypatch)
    (done,) = data["auto_promotions"]
    assert done == {
        "model": "churn",
        "challenger": "churn@2",
        "verdict": "promote",
        "revision": 2,
        "error": None,
    }
    assert _revisions(ws) == [1, 2]
    _assert_promoted(ws, revision=2)
    # the next cron run finds no shadow left to judge and writes nothing
    assert _monitor_run(settings, monkeypatch)["auto_promotions"] == []
    assert _revisions(ws) == [1, 2]


def test_monitor_run_leaves_a_manual_policy_alone(
    make_home: Callable[..., tuple[Settings, Workspace]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, ws = make_home(auto=False)
    data = _monitor_run(settings, monkeypatch)
    assert data["auto_promotions"] == []
    assert _revisions(ws) == [1]
    current = ws.registry.current_deployment("churn")
    assert current is not None and current.spec["live"] == "churn@1"
    assert not [e for e in ws.registry.audit_trail(model="churn") if e.action == "promote"]


def _run_gateway_monitor(ws: Workspace, *, until: Callable[[], bool], runs: int) -> int:
    """Start the gateway with its monitor loop (``serve --monitor``) until ``until()`` holds
    and the loop has completed at least ``runs`` runs; returns the runs completed."""
    gateway = create_app(ws, monitor_interval_s=0.2, poll_interval_s=0.2)
    gateway.start()
    try:
        assert gateway.monitor is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (until() and gateway.monitor.runs >= runs):
            time.sleep(0.05)
        return gateway.monitor.runs
    finally:
        gateway.stop()


@pytest.mark.parametrize("auto", [True, False], ids=["auto", "manual"])
def test_the_gateway_monitor_loop_promotes_only_with_auto(
    make_home: Callable[..., tuple[Settings, Workspace]], auto: bool
) -> None:
    _settings, ws = make_home(auto=auto)

    def promoted() -> bool:
        current = ws.registry.current_deployment("churn")
        return current is not None and current.revision > 1

    # a run completes only after its promotion step (the loop's after_run), so two runs
    # mean a manual policy has been looked at at least twice
    runs = _run_gateway_monitor(ws, until=promoted if auto else lambda: True, runs=2)
    assert runs >= 2, "the monitor loop did not complete two runs within 60 s"
    if auto:
        assert _revisions(ws) == [1, 2]  # later runs found nothing left to promote
        _assert_promoted(ws, revision=2)
    else:
        assert _revisions(ws) == [1]
        assert not [e for e in ws.registry.audit_trail(model="churn") if e.action == "promote"]

"""The quickstart trains, audits and registers a real portfolio (what `make demo` runs)."""

from __future__ import annotations

from pathlib import Path

from flotilla.quickstart import run_quickstart
from flotilla.settings import Settings
from flotilla.workspace import Workspace


def test_quickstart_registers_a_working_portfolio(tmp_path: Path) -> None:
    ws = Workspace.open(Settings(home=tmp_path / "home", actor="demo"))
    result = run_quickstart(ws)
    refs = {r["ref"] for r in result.registered}
    assert {"churn@1", "churn-lite@1", "fraud@1", "recs@1", "recs-popular@1"} <= refs
    assert result.audit["leaky"]["exit_code"] == 2
    assert any("days_since_login" in f for f in result.audit["leaky"]["findings"])
    assert result.audit["clean"]["exit_code"] in (0, 1)
    for ref in ("churn@champion", "fraud@champion", "recs@champion", "recs-popular@champion"):
        assert ws.check(ref).ok, ref
    recs = ws.load("recs@champion").predict([{"segment": "loyal", "last_item": None}])
    assert len(recs[0]) == 10
    churn = ws.load("churn@champion").predict(
        [{"tenure_months": 3.0, "monthly_spend": 80.0, "support_tickets": 4.0, "is_premium": 0.0}]
    )
    assert 0.0 <= churn[0] <= 1.0


def test_quickstart_deploys_and_the_demo_serves(tmp_path: Path) -> None:
    from flotilla.quickstart import run_demo

    ws = Workspace.open(Settings(home=tmp_path / "home", actor="demo"))
    result = run_quickstart(ws)
    assert {d["model"] for d in result.deployed} == {"churn", "fraud", "recs"}
    demo = run_demo(ws, requests=120)
    normal, corrupted, recs, metrics = demo["examples"]
    assert normal["status"] == 200 and normal["answer"]["degraded"] is False
    assert corrupted["answer"]["degraded"] is True
    assert corrupted["answer"]["reasons"][0]["reason"] == "invalid_input"
    assert len(recs["answer"]["predictions"][0]) == 10
    assert "flotilla_fallbacks_total" in metrics["answer"]
    assert demo["traffic"]["outcomes"]["accepted"] == 120
    comparison = demo["comparison"]
    assert comparison["labeled_pairs"] == 120
    assert comparison["challenger"] == "churn@2"
    assert comparison["verdict"] in ("keep_shadowing", "promote", "reject")

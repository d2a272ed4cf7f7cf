"""promote() and auto_promote(): evidence-gated revisions with an audit trail; rollback."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flotilla.errors import ConfigError, DeploymentError
from flotilla.evaluation.compare import compare
from flotilla.evaluation.promotion import PromotionRefusedError, auto_promote, promote
from flotilla.portfolio import DeploymentSpec, rollback
from flotilla.records import OutcomeStore
from flotilla.settings import Settings
from flotilla.testing import FakeClock
from flotilla.workspace import Workspace
from shadow_support import T0, deploy_churn, register_tiny, shadow_traffic


@pytest.fixture
def ws(make_settings: Callable[..., Settings], tmp_path: Path) -> Workspace:
    """Versions churn@1, churn@2, churn@3 (tiny python models) and other@1."""
    workspace = Workspace.open(make_settings())
    versions = [("churn", 0.4), ("churn", 0.6), ("churn", 0.7), ("other", 0.1)]
    register_tiny(workspace, tmp_path, versions, module="tiny_churn")
    return workspace


def deploy(ws: Workspace, *, auto: bool = False, shadows: tuple[str, ...] = ("churn@2",)) -> None:
    policy = {"min_labeled": 300, "min_days": 2, "metric": "logloss", "auto": auto}
    deploy_churn(ws, shadows=shadows, promotion=policy)


def traffic(root: Path, *, n: int, days: float, chall: float, champ: float = 0.3) -> None:
    """Live churn@1 and shadow churn@2 predictions with labels an hour later."""
    shadow_traffic(root, n=n, days=days, chall=chall, champ=champ)


def _clock(days: float) -> FakeClock:
    return FakeClock(start=T0 + timedelta(days=days))


def _revisions(ws: Workspace) -> list[int]:
    return [r.revision for r in ws.registry.deployment_history("churn")]


def test_promotion_is_refused_without_a_promote_verdict(ws: Workspace) -> None:
    deploy(ws)
    traffic(ws.settings.records, n=100, days=1, chall=1.5)  # too few pairs, too few days
    with pytest.raises(PromotionRefusedError, match="keep_shadowing") as info:
        promote(ws, "churn", to="churn@2", clock=_clock(1))
    assert "more labeled pairs" in str(info.value) and "--force" in str(info.value)
    assert _revisions(ws) == [1]
    with pytest.raises(ConfigError, match="reason"):
        promote(ws, "churn", to="churn@2", force=True, reason="  ")
    assert _revisions(ws) == [1]


def test_forced_promotion_records_the_reason(ws: Workspace) -> None:
    deploy(ws)
    rev = promote(
        ws, "churn", to="churn@2", force=True, reason="incident 42", actor="bob", clock=_clock(0)
    )
    assert rev.revision == 2 and rev.spec["live"] == "churn@2" and rev.spec["shadows"] == []
    assert rev.spec["fallbacks"] == [{"static": {"value": 0.5}}]
    assert "incident 42" in (rev.reason or "") and "forced" in (rev.reason or "")
    entry = [e for e in ws.registry.audit_trail(model="churn") if e.action == "promote"][-1]
    assert entry.actor == "bob" and entry.subject == "churn@2"
    assert entry.after is not None and entry.after["forced"] is True
    assert entry.after["comparison"]["verdict"] == "keep_shadowing"
    assert entry.before == {"live": "churn@1", "resolved": "churn@1", "revision": 1}


def test_promote_then_rollback_leaves_both_in_the_audit_trail(ws: Workspace) -> None:
    deploy(ws)
    traffic(ws.settings.records, n=600, days=3, chall=2.0)
    comparison = compare(
        OutcomeStore(ws.settings.records), "churn", challenger="churn@2",
        policy=DeploymentSpec.from_dict(ws.registry.current_deployment("churn").spec).promotion,  # type: ignore[union-attr]
        clock=_clock(3),
    )  # fmt: skip
    assert comparison.verdict == "promote"
    rev = promote(ws, "churn", to="churn@2", comparison=comparison, actor="ana")
    assert rev.spec["live"] == "churn@2" and "verdict promote" in (rev.reason or "")
    entry = [e for e in ws.registry.audit_trail(model="churn") if e.action == "promote"][-1]
    assert entry.after is not None
    assert entry.after["comparison"]["labeled_pairs"] == 600
    assert entry.after["comparison"]["challenger"] == "churn@2"
    back = rollback(ws.registry, "churn", actor="ana")
    assert back.revision == 3 and back.spec["live"] == "churn@1"
    assert back.spec["shadows"] == [{"ref": "churn@2", "sample": 1.0}]
    actions = [e.action for e in ws.registry.audit_trail(model="churn")]
    assert "promote" in actions and actions.count("deployment.put") == 3
    with pytest.raises(DeploymentError, match="already the live"):
        promote(ws, "churn", to="churn@1", force=True, reason="x")


def test_comparison_of_another_challenger_is_refused(ws: Workspace) -> None:
    deploy(ws, shadows=("churn@2", "churn@3"))
    traffic(ws.settings.records, n=600, days=3, chall=2.0)
    comparison = compare(
        OutcomeStore(ws.settings.records), "churn", challenger="churn@2", metric="logloss",
        policy=None, clock=_clock(10),
    )  # fmt: skip
    with pytest.raises(PromotionRefusedError, match="judged 'churn@2', not 'churn@3'"):
        promote(ws, "churn", to="churn@3", comparison=comparison)
    with pytest.raises(ConfigError, match="belong to model"):
        promote(ws, "churn", to="other@1", force=True, reason="x")


def test_not_deployed_model_cannot_be_promoted(ws: Workspace) -> None:
    with pytest.raises(DeploymentError, match="not deployed"):
        promote(ws, "churn", to="churn@2", force=True, reason="x")


@pytest.mark.parametrize("auto", [True, False], ids=["auto", "manual"])
def test_auto_promote(ws: Workspace, auto: bool) -> None:
    deploy(ws, auto=auto)
    traffic(ws.settings.records, n=600, days=3, chall=2.0)
    done: list[Any] = auto_promote(ws, clock=_clock(3))
    if not auto:
        assert done == [] and _revisions(ws) == [1]
        return
    (result,) = done
    assert (result.model, result.challenger, result.verdict) == ("churn", "churn@2", "promote")
    assert result.revision == 2 and result.error is None
    current = ws.registry.current_deployment("churn")
    assert current is not None and current.spec["live"] == "churn@2"
    assert any(e.action == "promote" for e in ws.registry.audit_trail(model="churn"))
    # nothing left to shadow: a second run considers nothing
    assert auto_promote(ws, clock=_clock(3)) == []

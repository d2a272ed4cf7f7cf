"""plan / apply / rollback against a real registry: revisions, diffs and the audit trail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from flotilla.errors import DeploymentError, ModelNotFoundError
from flotilla.portfolio import (
    DeploymentSpec,
    Portfolio,
    PortfolioError,
    apply,
    plan,
    rollback,
)
from flotilla.registry import ModelVersion, Registry, RevisionNotFoundError

Register = Callable[..., ModelVersion]
TOP = {"static": {"items": [101, 7, 42]}}


def _portfolio(**models: dict[str, Any]) -> Portfolio:
    return Portfolio.from_dict({"models": models}, source="portfolio.yaml")


RECS = {"live": "recs@champion", "deadline_ms": 50, "fallbacks": ["recs-lite@2", TOP]}
CHURN = {"live": "churn@1", "fallbacks": [{"static": {"value": 0.1}}]}


def test_apply_writes_one_revision_per_changed_model(
    registry: Registry, recs_world: Register
) -> None:
    first = apply(_portfolio(recs=RECS, churn=CHURN), registry, actor="ana")
    assert [(c.model, c.action, c.before, c.revision) for c in first] == [
        ("recs", "create", None, 1),
        ("churn", "create", None, 1),
    ]
    stored = registry.current_deployment("recs")
    assert stored is not None and stored.actor == "ana"
    assert stored.reason == "deploy portfolio.yaml"
    assert DeploymentSpec.from_dict(stored.spec) == DeploymentSpec.from_dict(RECS, model="recs")

    changed = {**RECS, "deadline_ms": 80, "breaker": {"open_s": 2}}
    second = apply(_portfolio(recs=changed, churn=CHURN), registry, actor="bo", reason="slower")
    assert [(c.model, c.action, c.before, c.revision) for c in second] == [
        ("recs", "update", 1, 2),
        ("churn", "unchanged", 1, None),
    ]
    assert second[0].diff == {
        "deadline_ms": {"before": 50.0, "after": 80.0},
        "breaker.open_s": {"before": 5.0, "after": 2.0},
    }
    assert [r.revision for r in registry.deployment_history("churn")] == [1]

    trail = [e for e in registry.audit_trail(model="recs") if e.action == "deployment.put"]
    latest = max(trail, key=lambda e: e.id)
    assert latest.actor == "bo" and latest.reason == "slower"
    assert latest.before is not None and latest.before["revision"] == 1
    assert latest.after is not None and latest.after["diff"] == second[0].diff


def test_dry_run_and_plan_write_nothing(registry: Registry, recs_world: Register) -> None:
    version = registry.deployments_version()
    changes = apply(_portfolio(recs=RECS), registry, actor="ana", dry_run=True)
    assert [(c.model, c.action, c.revision) for c in changes] == [("recs", "create", None)]
    assert plan(_portfolio(recs=RECS), registry)[0].action == "create"
    assert registry.current_deployment("recs") is None
    assert registry.deployments_version() == version


def test_invalid_portfolio_writes_nothing(registry: Registry, recs_world: Register) -> None:
    bad = {**CHURN, "fallbacks": []}
    with pytest.raises(PortfolioError) as info:
        apply(_portfolio(recs={**RECS, "live": "recs@9"}, churn=bad), registry, actor="ana")
    assert len(info.value.problems) == 2
    assert registry.current_deployments() == []


def test_models_missing_from_the_file_are_left_untouched(
    registry: Registry, recs_world: Register
) -> None:
    apply(_portfolio(recs=RECS, churn=CHURN), registry, actor="ana")
    changes = apply(_portfolio(recs=RECS), registry, actor="ana")
    assert [(c.model, c.action) for c in changes] == [("recs", "unchanged"), ("churn", "untouched")]
    assert registry.current_deployment("churn") is not None


def test_rollback_reapplies_an_earlier_revision(registry: Registry, recs_world: Register) -> None:
    apply(_portfolio(recs=RECS), registry, actor="ana")
    apply(_portfolio(recs={**RECS, "deadline_ms": 70}), registry, actor="ana")
    apply(_portfolio(recs={**RECS, "deadline_ms": 90}), registry, actor="ana")

    back = rollback(registry, "recs", actor="cy")
    assert back.revision == 4 and back.actor == "cy"
    assert back.reason == "rollback to revision 2"
    assert back.spec["deadline_ms"] == 70.0
    assert back.diff == {"deadline_ms": {"before": 90.0, "after": 70.0}}

    again = rollback(registry, "recs", to=1, actor="cy", reason="incident 12")
    assert (again.revision, again.spec["deadline_ms"], again.reason) == (5, 50.0, "incident 12")
    entry = max(registry.audit_trail(model="recs"), key=lambda e: e.id)
    assert entry.action == "deployment.put" and entry.reason == "incident 12"


def test_rollback_refusals(registry: Registry, recs_world: Register) -> None:
    with pytest.raises(ModelNotFoundError):
        rollback(registry, "nope", actor="cy")
    with pytest.raises(DeploymentError, match="never been deployed"):
        rollback(registry, "recs", actor="cy")
    apply(_portfolio(recs=RECS), registry, actor="ana")
    with pytest.raises(DeploymentError, match="only revision 1"):
        rollback(registry, "recs", actor="cy")
    with pytest.raises(RevisionNotFoundError, match="no deployment revision 7"):
        rollback(registry, "recs", to=7, actor="cy")
    with pytest.raises(DeploymentError, match="already the current revision"):
        rollback(registry, "recs", to=1, actor="cy")
    apply(_portfolio(recs={**RECS, "tier": "gpu"}), registry, actor="ana")
    apply(_portfolio(recs=RECS), registry, actor="ana")
    with pytest.raises(DeploymentError, match="same spec as the current revision 3"):
        rollback(registry, "recs", to=1, actor="cy")
    assert len(registry.deployment_history("recs")) == 3


def test_rollback_revalidates_against_the_registry(
    registry: Registry, recs_world: Register
) -> None:
    # a revision written straight to the registry whose fallback does not exist (any more)
    stale = DeploymentSpec.from_dict({**RECS, "fallbacks": ["recs-lite@9", TOP]}, model="recs")
    registry.put_deployment("recs", stale.to_dict(), actor="api")
    apply(_portfolio(recs=RECS), registry, actor="ana")
    with pytest.raises(PortfolioError) as info:
        rollback(registry, "recs", actor="cy")
    assert "Revision 1 of model 'recs' cannot be re-applied" in str(info.value)
    assert "'recs-lite@9'" in info.value.problems[0]
    assert "Its versions are 1, 2" in info.value.problems[0]
    assert len(registry.deployment_history("recs")) == 2


def test_unreadable_stored_spec_counts_as_changed(registry: Registry, recs_world: Register) -> None:
    registry.put_deployment("recs", {"live": "recs@1", "legacy": True}, actor="old-tool")
    (change,) = apply(_portfolio(recs=RECS), registry, actor="ana")
    assert (change.action, change.before, change.revision) == ("update", 1, 2)
    assert change.diff["legacy"] == {"before": True, "after": None}

"""Deployment revisions and the change counter the gateway polls."""

from __future__ import annotations

import pytest

from flotilla.errors import ConfigError, ModelNotFoundError
from flotilla.registry import Registry, RevisionNotFoundError
from flotilla.testing import FakeClock


@pytest.fixture
def reg(registry: Registry) -> Registry:
    for name in ("churn", "fraud"):
        registry.create_model(name, task="classification", actor="ana")
        registry.register_version(name, flavor="static", artifact=None, actor="ana")
    return registry


def test_revisions_count_per_model_and_keep_history(reg: Registry, clock: FakeClock) -> None:
    assert reg.current_deployment("churn") is None
    first = reg.put_deployment("churn", {"live": "churn@1"}, actor="ana", reason="first")
    clock.advance(10)
    second = reg.put_deployment(
        "churn", {"live": "churn@1", "deadline_ms": 50}, actor="bob", diff={"deadline_ms": 50}
    )
    other = reg.put_deployment("fraud", {"live": "fraud@1"}, actor="ana")
    assert (first.revision, second.revision, other.revision) == (1, 2, 1)
    assert second.created_at == clock.now() and second.diff == {"deadline_ms": 50}
    assert reg.current_deployment("churn") == second
    assert reg.deployment_history("churn") == [first, second]
    assert reg.get_deployment("churn", 1) == first
    assert reg.current_deployments() == [second, other]
    entry = [e for e in reg.audit_trail(model="churn") if e.action == "deployment.put"][-1]
    assert entry.subject == "churn#2" and entry.actor == "bob"
    assert entry.before == {"revision": 1, "spec": {"live": "churn@1"}}
    assert entry.after == {
        "revision": 2,
        "spec": {"live": "churn@1", "deadline_ms": 50},
        "diff": {"deadline_ms": 50},
    }


def test_deployment_errors(reg: Registry) -> None:
    reg.put_deployment("churn", {"live": "churn@1"}, actor="ana")
    with pytest.raises(RevisionNotFoundError, match="revisions are 1 to 1"):
        reg.get_deployment("churn", 4)
    with pytest.raises(RevisionNotFoundError, match="never deployed"):
        reg.get_deployment("fraud", 1)
    with pytest.raises(ModelNotFoundError):
        reg.put_deployment("nope", {}, actor="ana")
    with pytest.raises(ModelNotFoundError):
        reg.current_deployment("nope")
    with pytest.raises(ConfigError, match="deployment spec must be a mapping"):
        reg.put_deployment("churn", ["x"], actor="ana")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="JSON"):
        reg.put_deployment("churn", {"deadline": float("inf")}, actor="ana")
    assert [r.revision for r in reg.deployment_history("churn")] == [1]


def test_deployments_version_moves_on_deployments_and_aliases(reg: Registry) -> None:
    seen = [reg.deployments_version()]
    reg.put_deployment("churn", {"live": "churn@1"}, actor="ana")
    seen.append(reg.deployments_version())
    reg.set_alias("churn", "champion", 1, actor="ana")
    seen.append(reg.deployments_version())
    reg.set_alias("churn", "champion", 1, actor="ana")  # no move
    reg.register_version("churn", flavor="static", artifact=None, actor="ana")
    seen.append(reg.deployments_version())
    assert seen[0] < seen[1] < seen[2] == seen[3]

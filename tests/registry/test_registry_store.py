"""Models, versions, aliases, profiles and the audit trail, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from flotilla.errors import (
    AliasNotFoundError,
    ArtifactNotFoundError,
    ConfigError,
    ConflictError,
    ModelNotFoundError,
    VersionNotFoundError,
)
from flotilla.registry import Registry, StoredArtifact
from flotilla.registry import tables as t
from flotilla.signature import Signature
from flotilla.testing import FakeClock

SIG = Signature.from_dict(
    {"inputs": [{"name": "age", "type": "float", "min": 0}], "output": {"kind": "probability"}}
)


def _static(reg: Registry, name: str = "churn") -> int:
    version = reg.register_version(
        name, flavor="static", artifact=None, params={"value": 0.5}, actor="ana"
    )
    return version.version


def test_create_get_and_list_models(registry: Registry, clock: FakeClock) -> None:
    made = registry.create_model(
        "churn", task="classification", signature=SIG, description="d", owner="o", actor="ana"
    )
    registry.create_model("fraud", task="regression", actor="ana")
    got = registry.get_model("churn")
    assert got == made
    assert got.signature == SIG
    assert got.created_at == clock.now()
    assert got.created_at.tzinfo is not None
    assert [m.name for m in registry.list_models()] == ["churn", "fraud"]


@pytest.mark.parametrize("bad", ["Churn", "-x", "", "a" * 64, "a/b"])
def test_invalid_model_names_are_rejected(registry: Registry, bad: str) -> None:
    with pytest.raises(ConfigError, match="lowercase"):
        registry.create_model(bad, task="classification", actor="ana")
    assert registry.list_models() == []


def test_unknown_model_suggests_close_names(registry: Registry) -> None:
    registry.create_model("churn", task="classification", actor="ana")
    with pytest.raises(ModelNotFoundError, match="Did you mean 'churn'"):
        registry.get_model("chrun")


def test_same_name_other_task_conflicts(registry: Registry) -> None:
    registry.create_model("churn", task="classification", actor="ana")
    with pytest.raises(ConflictError, match="already exists"):
        registry.create_model("churn", task="classification", actor="ana")
    assert registry.ensure_model("churn", task="classification", actor="ana").name == "churn"
    with pytest.raises(ConflictError, match=r"exists with task 'classification'.*another"):
        registry.ensure_model("churn", task="regression", actor="ana")
    assert registry.ensure_model("new", task="ranking", actor="ana").task == "ranking"


def test_update_model_is_audited(registry: Registry) -> None:
    registry.create_model("churn", task="classification", actor="ana")
    updated = registry.update_model("churn", owner="team-a", signature=SIG, actor="bob")
    assert (updated.owner, updated.signature) == ("team-a", SIG)
    last = registry.audit_trail(model="churn")[-1]
    assert (last.action, last.actor) == ("model.update", "bob")
    assert last.before == {"signature": None, "owner": ""}
    assert last.after == {"signature": SIG.to_dict(), "owner": "team-a"}


def test_versions_increment_and_are_never_reused(registry: Registry) -> None:
    registry.create_model("churn", task="classification", actor="ana")
    registry.create_model("other", task="classification", actor="ana")
    assert [_static(registry) for _ in range(3)] == [1, 2, 3]
    assert _static(registry, "other") == 1
    with registry.engine.begin() as conn:  # even a deleted row's number stays used
        conn.execute(
            t.model_versions.delete().where(
                (t.model_versions.c.model == "churn") & (t.model_versions.c.version == 3)
            )
        )
    assert _static(registry) == 4
    assert [v.version for v in registry.list_versions("churn")] == [1, 2, 4]
    assert registry.get_version("churn").version == 4


def test_version_fields_round_trip(registry: Registry, tmp_path: Path) -> None:
    registry.create_model("churn", task="classification", signature=SIG, actor="ana")
    (tmp_path / "m.onnx").write_bytes(b"onnx-bytes")
    art = registry.artifacts.put(tmp_path / "m.onnx")
    made = registry.register_version(
        "churn",
        flavor="onnx",
        artifact=art,
        entry="predict",
        params={"k": (1, 2)},
        metrics={"auc": 1},
        tags={"team": "a"},
        lineage={"git": "abc"},
        actor="ana",
    )
    got = registry.get_version("churn@1")
    assert got == made
    assert (got.sha256, got.size, got.artifact_kind, got.filename) == (
        art.sha256,
        art.size,
        "file",
        "m.onnx",
    )
    assert got.params == {"k": [1, 2]} and got.metrics == {"auc": 1.0}
    assert got.signature == SIG  # the model's signature at registration time
    assert got.created_by == "ana" and got.created_at.tzinfo == UTC


def test_register_checks_inputs(registry: Registry) -> None:
    registry.create_model("churn", task="classification", actor="ana")
    with pytest.raises(ModelNotFoundError):
        registry.register_version("nope", flavor="static", artifact=None, actor="ana")
    with pytest.raises(ConfigError, match="finite numbers"):
        registry.register_version(
            "churn", flavor="static", artifact=None, metrics={"auc": float("nan")}, actor="ana"
        )
    with pytest.raises(ConfigError, match="flavor"):
        registry.register_version("churn", flavor="ONNX!", artifact=None, actor="ana")
    with pytest.raises(ConfigError, match="JSON"):
        registry.register_version(
            "churn", flavor="static", artifact=None, params={"x": object()}, actor="ana"
        )
    missing = StoredArtifact("0" * 64, 1, "file", "m.onnx")
    with pytest.raises(ArtifactNotFoundError, match="not in the artifact store"):
        registry.register_version("churn", flavor="onnx", artifact=missing, actor="ana")
    assert registry.list_versions("churn") == []
    assert _static(registry) == 1


class _FailingClock(FakeClock):
    """Fails on the n-th call of now(): midway through a transaction."""

    def __init__(self, fail_on: int) -> None:
        super().__init__()
        self.calls = 0
        self.fail_on = fail_on

    def now(self) -> datetime:
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("boom")
        return super().now()


def test_failed_register_rolls_back_everything(registry: Registry) -> None:
    registry.create_model("churn", task="classification", actor="ana")
    broken = Registry(registry.engine, registry.artifacts, clock=_FailingClock(fail_on=2))
    with pytest.raises(RuntimeError, match="boom"):  # version row written, audit fails
        broken.register_version("churn", flavor="static", artifact=None, actor="ana")
    assert registry.list_versions("churn") == []
    assert [e.action for e in registry.audit_trail()] == ["model.create"]
    assert _static(registry) == 1


def test_get_version_errors_list_what_exists(registry: Registry) -> None:
    registry.create_model("churn", task="classification", actor="ana")
    with pytest.raises(VersionNotFoundError, match="no versions yet"):
        registry.get_version("churn")
    _static(registry)
    _static(registry)
    with pytest.raises(VersionNotFoundError, match=r"no version 7\. Its versions are 1, 2"):
        registry.get_version("churn@7")
    with pytest.raises(AliasNotFoundError, match="no aliases yet"):
        registry.get_version("churn@gold")
    registry.set_alias("churn", "champion", 1, actor="ana")
    with pytest.raises(AliasNotFoundError, match="aliases are champion"):
        registry.get_version("churn@gold")
    with pytest.raises(ModelNotFoundError):
        registry.get_version("fraud@1")
    with pytest.raises(ConfigError):
        registry.get_version("churn@")


def test_aliases_move_and_keep_history(registry: Registry, clock: FakeClock) -> None:
    registry.create_model("churn", task="classification", actor="ana")
    for _ in range(3):
        _static(registry)
    registry.set_alias("churn", "champion", 1, actor="ana")
    clock.advance(60)
    registry.set_alias("churn", "champion", 3, actor="bob")
    registry.set_alias("churn", "champion", 3, actor="bob")  # no move, nothing recorded
    registry.set_alias("churn", "challenger", 2, actor="bob")
    assert registry.aliases("churn") == {"challenger": 2, "champion": 3}
    assert registry.get_version("churn@champion").version == 3
    history = registry.alias_history("churn")
    assert [(h["alias"], h["from_version"], h["to_version"], h["actor"]) for h in history] == [
        ("champion", None, 1, "ana"),
        ("champion", 1, 3, "bob"),
        ("challenger", None, 2, "bob"),
    ]
    assert history[1]["at"] == clock.now().isoformat()
    moves = [e for e in registry.audit_trail(model="churn") if e.action == "alias.set"]
    assert [(e.subject, e.before, e.after) for e in moves] == [
        ("churn@champion", None, {"version": 1}),
        ("churn@champion", {"version": 1}, {"version": 3}),
        ("churn@challenger", None, {"version": 2}),
    ]


def test_alias_needs_an_existing_version_and_a_good_name(registry: Registry) -> None:
    registry.create_model("churn", task="classification", actor="ana")
    _static(registry)
    with pytest.raises(VersionNotFoundError, match="no version 5"):
        registry.set_alias("churn", "champion", 5, actor="ana")
    with pytest.raises(ConfigError, match="all digits"):
        registry.set_alias("churn", "7", 1, actor="ana")
    with pytest.raises(ModelNotFoundError):
        registry.set_alias("nope", "champion", 1, actor="ana")
    assert registry.aliases("churn") == {}


def test_profiles_annotate_versions(registry: Registry) -> None:
    registry.create_model("churn", task="classification", actor="ana")
    _static(registry)
    assert registry.get_profile("churn", 1) is None
    registry.set_profile("churn", 1, {"age": {"mean": 3.5}}, actor="ana")
    registry.set_profile("churn", 1, {"age": {"mean": 4.0}}, actor="bob")
    assert registry.get_profile("churn", 1) == {"age": {"mean": 4.0}}
    with pytest.raises(VersionNotFoundError):
        registry.set_profile("churn", 9, {}, actor="ana")
    with pytest.raises(VersionNotFoundError):
        registry.get_profile("churn", 9)
    entries = [e for e in registry.audit_trail() if e.action == "profile.set"]
    assert entries[0].before is None and entries[1].before == {"sha256": entries[0].after["sha256"]}  # type: ignore[index]


def test_audit_trail_is_ordered_filtered_and_limited(registry: Registry, clock: FakeClock) -> None:
    registry.create_model("churn", task="classification", actor="ana")
    registry.create_model("fraud", task="classification", actor="ana")
    _static(registry)
    clock.advance(5)
    entry = registry.record_event(
        "promote",
        model="churn",
        subject="churn@1",
        before={"live": None},
        after={"live": 1},
        reason="shadow won",
        actor="carol",
    )
    trail = registry.audit_trail()
    assert [e.action for e in trail] == [
        "model.create",
        "model.create",
        "version.register",
        "promote",
    ]
    assert trail[-1] == entry
    assert (entry.reason, entry.before, entry.after, entry.at) == (
        "shadow won",
        {"live": None},
        {"live": 1},
        clock.now(),
    )
    assert [e.subject for e in registry.audit_trail(model="fraud")] == ["fraud"]
    assert [e.action for e in registry.audit_trail(limit=2)] == ["version.register", "promote"]
    with pytest.raises(ConfigError, match="actor"):
        registry.record_event(
            "x", model=None, subject="s", before=None, after=None, reason=None, actor=""
        )
    assert not hasattr(registry, "delete_audit")


def test_migrate_is_idempotent(registry: Registry) -> None:
    from flotilla.registry import migrate

    registry.create_model("churn", task="classification", actor="ana")
    migrate(registry.engine)
    migrate(registry.engine)
    assert registry.get_model("churn").name == "churn"
    tables = set(sa.inspect(registry.engine).get_table_names())
    assert {"fl_models", "fl_model_versions", "fl_audit", "fl_deployments"} <= tables

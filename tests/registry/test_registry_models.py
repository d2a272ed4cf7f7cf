"""Value objects: names, tasks, references and their JSON forms."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from flotilla.errors import ConfigError
from flotilla.registry import AuditEntry, DeploymentRevision, Model, ModelRef, ModelVersion
from flotilla.registry.models import check_alias, check_name, check_task
from flotilla.signature import Signature

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SIG = Signature.from_dict(
    {"inputs": [{"name": "age", "type": "float"}], "output": {"kind": "probability"}}
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("churn", ModelRef("churn")),
        ("churn@3", ModelRef("churn", version=3)),
        ("churn@champion", ModelRef("churn", alias="champion")),
        ("a-b_c9@v2", ModelRef("a-b_c9", alias="v2")),
    ],
)
def test_model_ref_parses_and_round_trips(text: str, expected: ModelRef) -> None:
    ref = ModelRef.parse(text)
    assert ref == expected
    assert str(ref) == text
    assert ModelRef.parse(ref) is ref


@pytest.mark.parametrize(
    "junk", ["", "@3", "churn@", "churn@0", "Churn", "churn@a@b", "churn@-1", "ch urn", "x" * 64]
)
def test_model_ref_rejects_junk_with_a_clear_message(junk: str) -> None:
    with pytest.raises(ConfigError) as info:
        ModelRef.parse(junk)
    assert repr(junk) in str(info.value) or "start at 1" in str(info.value)


def test_name_rule_is_stated_with_the_bad_name() -> None:
    with pytest.raises(ConfigError, match=r"lowercase letters.*Got 'Bad Name'"):
        check_name("Bad Name")
    assert check_name("ok-1_2") == "ok-1_2"


def test_alias_must_not_be_all_digits() -> None:
    with pytest.raises(ConfigError, match="all digits"):
        check_alias("42")
    assert check_alias("v42") == "v42"


def test_task_must_be_known() -> None:
    with pytest.raises(ConfigError, match="classification, regression, ranking"):
        check_task("clustering")


def test_to_dict_is_json_friendly() -> None:
    model = Model("churn", "classification", "d", "team", SIG, NOW)
    version = ModelVersion(
        model="churn",
        version=2,
        flavor="onnx",
        sha256="ab" * 32,
        size=10,
        artifact_kind="file",
        entry=None,
        params={"k": [1]},
        metrics={"auc": 0.9},
        tags={"t": "x"},
        lineage={},
        trust_pickle=False,
        created_by="ana",
        created_at=NOW,
        signature=SIG,
        filename="m.onnx",
    )
    audit = AuditEntry(1, NOW, "ana", "alias.set", "churn", "churn@x", None, {"v": 1}, None)
    rev = DeploymentRevision("churn", 1, {"live": "churn@2"}, "ana", NOW, "why", 7)
    for obj in (model, version, audit, rev):
        data = obj.to_dict()
        assert orjson.loads(orjson.dumps(data)) == data
    assert version.ref == "churn@2"
    assert version.to_dict()["created_at"] == "2026-01-02T03:04:05+00:00"
    assert model.to_dict()["signature"] == SIG.to_dict()

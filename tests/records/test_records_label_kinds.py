"""Outcome labels typed by the model's output kind: store, files, HTTP route and CLI."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import T0, Invoke, records_cli
from flotilla.errors import AliasNotFoundError
from flotilla.gateway.outcomes_route import post_outcomes
from flotilla.portfolio import DeploymentSpec, Portfolio, apply
from flotilla.records import OutcomeStore, RecordStore, read_outcome_file
from flotilla.settings import Settings
from flotilla.signature import Signature
from flotilla.testing import FakeClock
from flotilla.workspace import Workspace

NOW = T0 + timedelta(days=2)
MODEL_PY = "class Model:\n    def predict(self, records):\n        return [0.5] * len(records)\n"


def _signature(kind: str) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "type": "float"}], "output": {"kind": kind}}


@dataclass
class _Found:
    signature: Signature | None


class _Registry:
    """``get_model`` and, when ``live`` is given, a deployment whose live version has it."""

    def __init__(self, kind: str | None, live: str | None = None) -> None:
        self.kind, self.live = kind, live

    def get_model(self, name: str) -> _Found:
        return _Found(None if self.kind is None else Signature.from_dict(_signature(self.kind)))

    def current_deployment(self, name: str) -> Any:
        return None if self.live is None else type("Rev", (), {"spec": {"live": "churn@live"}})

    def get_version(self, ref: str) -> _Found:
        if self.live == "gone":
            raise AliasNotFoundError("No alias 'live'.")
        return _Found(None if self.live is None else Signature.from_dict(_signature(self.live)))


def _store(root: Path, models: Any) -> OutcomeStore:
    return OutcomeStore(root, models=models, clock=FakeClock(start=NOW))


def _rows(*labels: Any) -> list[dict[str, Any]]:
    return [{"id": f"u{i}", "label": label} for i, label in enumerate(labels)]


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("probability", [0, 1, True, False, 1.0, "1", "0", " true ", "FALSE", "1.0"],
         [2.5, 2, -1, "gold", "yes", math.inf, "nan"]),
        ("score", [2.5, -3, 0, 1e9, "2.5", " 7 "], [True, "gold", "nan", "inf", "1_0"]),
        ("label", ["gold", 3, True, 2.0], [2.5, math.inf]),
        ("items", ["a", 7, 7.5, ["a", "b"], [], [1, 2]], [True, ["a", ["b"]], [None], [False]]),
    ],
    ids=["probability", "score", "label", "items"],
)  # fmt: skip
def test_labels_must_fit_the_output_kind(
    tmp_path: Path, kind: str, good: list[Any], bad: list[Any]
) -> None:
    store = _store(tmp_path, _Registry(kind))
    report = store.ingest("churn", _rows(*good, *bad))
    assert report.accepted == len(good)
    assert [r["index"] for r in report.rejected] == list(range(len(good), len(good) + len(bad)))
    for item, label in zip(report.rejected, bad, strict=True):
        assert f"Outcome {item['index']} is invalid: its 'label' must be" in item["error"]
        assert f"model 'churn' has output kind {kind!r}" in item["error"]
        assert f"Got {label!r} ({type(label).__name__}) instead." in item["error"]


def test_probability_message_names_row_value_kind_and_expectation(tmp_path: Path) -> None:
    report = _store(tmp_path, _Registry("probability")).ingest("churn", _rows(1, 2.5))
    assert report.rejected == [
        {
            "index": 1,
            "error": "Outcome 1 is invalid: its 'label' must be a binary outcome: 0 or 1, true "
            "or false, as model 'churn' has output kind 'probability'. Got 2.5 (float) instead.",
        }
    ]


def test_labels_are_stored_normalised(tmp_path: Path) -> None:
    store = _store(tmp_path, _Registry("probability"))
    assert store.ingest("churn", _rows("1", "0", True, 1.0, " false ")).accepted == 5
    rows = store.outcomes("churn").to_arrow_table().sort_by("caller_id").to_pylist()
    assert [(r["label"], r["label_value"]) for r in rows] == [
        ("1", 1.0), ("0", 0.0), ("true", 1.0), ("1", 1.0), ("false", 0.0),
    ]  # fmt: skip
    items = _store(tmp_path, _Registry("items"))
    assert items.ingest("recs", [{"id": "u1", "label": ["a", 7]}]).accepted == 1
    (row,) = items.outcomes("recs").to_arrow_table().to_pylist()
    assert (row["label"], row["label_value"]) == ('["a",7]', None)


@pytest.mark.parametrize(
    ("registry", "accepted"),
    [
        (_Registry("probability", live="score"), 2),  # the live version's kind wins
        (_Registry("probability", live="gone"), 1),  # unresolvable live: the model's kind
        (_Registry(None, live="probability"), 1),  # the model has no signature
        (_Registry(None), 2),  # no kind known anywhere: any scalar, as before
    ],
    ids=["live-version", "live-gone", "model-unsigned", "unknown"],
)
def test_the_kind_comes_from_the_live_version(
    tmp_path: Path, registry: _Registry, accepted: int
) -> None:
    report = _store(tmp_path, registry).ingest("churn", _rows(1, 2.5))
    assert report.accepted == accepted


def test_unknown_kind_keeps_every_scalar(tmp_path: Path) -> None:
    for models in (None, lambda name: True, lambda name: "churn"):
        report = _store(tmp_path, models).ingest("churn", _rows(2.5, "gold", True))
        assert report.accepted == 3 and report.rejected == []


def test_refused_batch_leaves_stored_outcomes_alone(tmp_path: Path) -> None:
    loose = _store(tmp_path, None)
    assert loose.ingest("churn", _rows(1, 2.5)).accepted == 2  # stored before any check
    strict = _store(tmp_path, _Registry("probability"))
    report = strict.ingest("churn", _rows("gold", 7))
    assert report.accepted == 0 and len(report.rejected) == 2
    labels = sorted(r["label"] for r in strict.outcomes("churn").to_arrow_table().to_pylist())
    assert labels == ["1", "2.5"]


def test_csv_of_mixed_labels_keeps_the_good_rows(tmp_path: Path) -> None:
    # one word in the column makes CSV read every label as text: '1' and '0' still count
    csv = tmp_path / "labels.csv"
    csv.write_text("id,label\nu1,1\nu2,0\nu3,gold\nu4,2.5\nu5,true\n")
    rows = read_outcome_file(csv)
    assert [r["label"] for r in rows] == ["1", "0", "gold", "2.5", "true"]
    store = _store(tmp_path / "records", _Registry("probability"))
    report = store.ingest("churn", rows)
    assert report.accepted == 3 and [r["index"] for r in report.rejected] == [2, 3]
    assert "Got 'gold' (str) instead" in report.rejected[0]["error"]
    values = store.outcomes("churn").to_arrow_table().column("label_value").to_pylist()
    assert sorted(values) == [0.0, 1.0, 1.0]


def test_parquet_and_jsonl_labels(tmp_path: Path) -> None:
    parquet = tmp_path / "labels.parquet"
    pq.write_table(pa.table({"id": ["u1", "u2", "u3"], "label": [1.0, 0.0, 0.5]}), parquet)
    jsonl = tmp_path / "labels.jsonl"
    jsonl.write_text('{"id": "u1", "label": ["a", "b"]}\n{"id": "u2", "label": {"a": 1}}\n')
    binary = _store(tmp_path / "records", _Registry("probability"))
    report = binary.ingest("churn", read_outcome_file(parquet))
    assert report.accepted == 2 and "Got 0.5 (float)" in report.rejected[0]["error"]
    ranked = _store(tmp_path / "records", _Registry("items"))
    report = ranked.ingest("recs", read_outcome_file(jsonl))
    assert report.accepted == 1 and "Got {'a': 1} (dict)" in report.rejected[0]["error"]


# -- a real registry: the HTTP route and the CLI ---------------------------------------------


@pytest.fixture
def workspace(tmp_path: Path, home: Path) -> Workspace:
    """``churn`` (probability, deployed) and ``echo`` (score, not deployed)."""
    code = tmp_path / "half.py"
    code.write_text(MODEL_PY)
    ws = Workspace.open(Settings.from_env())
    for name, kind in (("churn", "probability"), ("echo", "score")):
        ws.register(
            name, flavor="python", artifact=code, entry="half:Model", signature=_signature(kind)
        )
    spec = {"live": "churn@1", "fallbacks": [{"static": {"value": 0.5}}]}
    apply(
        Portfolio({"churn": DeploymentSpec.from_dict(spec, model="churn")}), ws.registry, actor="t"
    )
    return ws


def _post(store: OutcomeStore, model: str, body: Any) -> httpx.Response:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await post_outcomes(store, scope, receive, send, model, 1 << 20)

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post(f"/v1/models/{model}/outcomes", json=body)

    return asyncio.run(go())


def test_http_route_refuses_a_wrong_type_label(workspace: Workspace) -> None:
    # the store as the gateway builds it: models=registry
    store = OutcomeStore(workspace.settings.records, models=workspace.registry)
    bad = _post(store, "churn", {"outcomes": [{"id": "u1", "label": "gold"}]})
    assert bad.status_code == 422
    assert bad.json()["rejected"] == [
        {
            "index": 0,
            "error": "Outcome 0 is invalid: its 'label' must be a binary outcome: 0 or 1, true "
            "or false, as model 'churn' has output kind 'probability'. Got 'gold' (str) instead.",
        }
    ]
    mixed = _post(store, "churn", {"outcomes": _rows(1, 2.5, False)})
    assert mixed.status_code == 200
    assert mixed.json()["accepted"] == 2 and [r["index"] for r in mixed.json()["rejected"]] == [1]
    score = _post(store, "echo", {"outcomes": _rows(2.5)})
    assert score.status_code == 200 and score.json() == {"accepted": 1, "rejected": []}
    assert _post(store, "nope", {"outcomes": _rows(1)}).status_code == 404


@pytest.fixture
def invoke(workspace: Workspace) -> Invoke:
    return records_cli()


def test_cli_refuses_a_wrong_type_label(
    invoke: Invoke, workspace: Workspace, tmp_path: Path
) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("id,label\nu1,1\nu2,2.5\nu3,0\n")
    result = invoke("outcomes", "ingest", str(csv), "--model", "churn")
    assert result.exit_code == 1
    assert "2 accepted, 1 rejected" in result.stdout
    assert (
        "Outcome 1 is invalid: its 'label' must be a binary outcome: 0 or 1, true or false, as "
        "model 'churn' has output kind 'probability'. Got 2.5 (float) instead." in result.stderr
    )
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": "u4", "label": true}\n{"id": "u5", "label": 0}\n')
    ok = invoke("outcomes", "ingest", str(good), "--model", "churn", "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["accepted"] == 2
    score = invoke("outcomes", "ingest", str(csv), "--model", "echo", "--json")
    assert score.exit_code == 0
    assert json.loads(score.stdout)["accepted"] == 3 and json.loads(score.stdout)["rejected"] == []
    stored = RecordStore(workspace.settings.records).query(
        "SELECT model, count(*) FROM outcomes GROUP BY 1 ORDER BY 1"
    )
    assert stored.fetchall() == [("churn", 4), ("echo", 3)]

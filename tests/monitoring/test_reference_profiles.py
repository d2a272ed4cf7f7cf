"""Reference profiles: streaming summaries, signature checks, drift against a profile, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from flotilla.cli.main import main
from flotilla.errors import ConfigError
from flotilla.monitoring import build_profile, compare_columns, profile_to_reference
from flotilla.monitoring._accumulators import NumericAccumulator
from flotilla.settings import Settings
from flotilla.signature import Signature

SIG = Signature.from_dict(
    {
        "inputs": [
            {"name": "age", "type": "float", "nullable": True},
            {"name": "plan", "type": "category", "categories": ["basic", "pro", "team"]},
            {"name": "active", "type": "bool"},
        ],
        "output": {"kind": "probability"},
    }
)


def _table(n: int, seed: int, shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    age = rng.normal(40 + shift, 10, n)
    return pa.table(
        {
            "age": pa.array([None if i % 10 == 0 else float(v) for i, v in enumerate(age)]),
            "plan": rng.choice(["basic", "pro", "team"], n, p=[0.6, 0.3, 0.1]),
            "active": rng.choice([True, False], n),
            "score": rng.uniform(0, 1, n),
            "extra": rng.integers(0, 5, n),
        }
    )


@pytest.fixture
def train(tmp_path: Path) -> tuple[Path, pa.Table]:
    table = _table(5000, seed=1)
    path = tmp_path / "train.parquet"
    pq.write_table(table, path, row_group_size=700)
    return path, table


def test_profile_is_exact_for_counts_moments_and_small_quantiles(
    train: tuple[Path, pa.Table],
) -> None:
    path, table = train
    profile = build_profile(path, signature=SIG, output_column="score", progress=False,
                            batch_rows=333)  # fmt: skip
    json.dumps(profile, allow_nan=False)  # storable
    assert profile["rows"] == 5000 and set(profile["fields"]) == {"age", "plan", "active", "score"}
    age = profile["fields"]["age"]
    values = np.array([v for v in table.column("age").to_pylist() if v is not None])
    assert age["null_count"] == 500 and age["null_rate"] == pytest.approx(0.1)
    assert age["mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert age["std"] == pytest.approx(values.std(), rel=1e-9)
    assert (age["min"], age["max"]) == (values.min(), values.max())
    assert age["quantiles"][500] == pytest.approx(np.median(values), rel=1e-12)
    assert sum(age["histogram"]["counts"]) == values.size
    plan = profile["fields"]["plan"]
    counts = dict(zip(*np.unique(table.column("plan").to_numpy(), return_counts=True), strict=True))
    assert plan["frequencies"] == {k: int(v) for k, v in counts.items()}
    assert profile["fields"]["score"]["role"] == "output"
    assert profile["fields"]["active"]["kind"] == "categorical"


def test_csv_streams_to_the_same_profile(tmp_path: Path, train: tuple[Path, pa.Table]) -> None:
    path, table = train
    csv = tmp_path / "train.csv"
    pacsv.write_csv(table, csv)
    a = build_profile(path, signature=SIG, progress=False)["fields"]
    b = build_profile(csv, signature=SIG, progress=False)["fields"]
    assert b["age"]["null_count"] == a["age"]["null_count"]
    assert b["age"]["mean"] == pytest.approx(a["age"]["mean"], rel=1e-12)
    assert b["plan"]["frequencies"] == a["plan"]["frequencies"]


def test_sample_is_bounded_and_quantiles_are_close() -> None:
    acc = NumericAccumulator(sample_size=2000, seed=3)
    rng = np.random.default_rng(0)
    data = rng.exponential(1.0, 50_000)
    for chunk in np.array_split(data, 37):
        acc.add(pa.array(chunk))
    summary = acc.summary()
    assert summary["sample_size"] == 2000 and summary["count"] == 50_000
    assert summary["mean"] == pytest.approx(data.mean(), rel=1e-12)
    assert summary["quantiles"][500] == pytest.approx(np.median(data), rel=0.1)
    assert summary["max"] == data.max()


def test_signature_mismatch_lists_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"age": ["x", "y"], "active": [True, False]}), path)
    with pytest.raises(ConfigError) as err:
        build_profile(path, signature=SIG, progress=False)
    text = str(err.value)
    assert "'plan' is missing" in text and "'age' has type string" in text


def test_unreadable_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        build_profile(tmp_path / "none.parquet", progress=False)
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ConfigError, match="Parquet"):
        build_profile(tmp_path / "x.json", progress=False)


def test_entirely_null_column_profiles_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"a": pa.nulls(50, pa.float64()), "b": pa.nulls(50)}), path)
    profile = build_profile(path, progress=False)
    json.dumps(profile, allow_nan=False)
    assert profile["fields"]["a"]["null_rate"] == 1.0 and profile["fields"]["a"]["mean"] is None


def test_drift_against_a_profile(train: tuple[Path, pa.Table]) -> None:
    path, _ = train
    profile = build_profile(path, progress=False)
    reference = profile_to_reference(profile)
    assert reference.num_rows == 5000
    assert reference.column("age").null_count == 500
    same = compare_columns(profile, _table(2000, seed=9), fields=["age", "plan", "active"])
    assert same.drifted_fields == [] and same.notes
    shifted = compare_columns(profile, _table(2000, seed=9, shift=5.0), fields=["age", "plan"])
    assert shifted.drifted_fields == ["age"]
    with pytest.raises(ConfigError, match="Not a Flotilla profile"):
        profile_to_reference({"fields": {}})


def test_models_profile_command_stores_the_profile(
    tmp_path: Path, train: tuple[Path, pa.Table], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from flotilla.workspace import Workspace

    path, _ = train
    monkeypatch.setenv("FLOTILLA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FLOTILLA_ACTOR", "tester")
    monkeypatch.delenv("FLOTILLA_DB_URL", raising=False)
    ws = Workspace.open(Settings.from_env())
    model = tmp_path / "const.py"
    model.write_text(
        "class Const:\n    def predict(self, records):\n        return [0.5 for _ in records]\n"
    )
    ws.register("churn", flavor="python", artifact=model, entry="const:Const", signature=SIG)
    with pytest.raises(SystemExit) as exc:
        main(["models", "profile", "churn@1", str(path), "--output-column", "score", "--json",
              "--no-progress"])  # fmt: skip
    assert exc.value.code == 0
    printed = json.loads(capsys.readouterr().out)
    stored = ws.registry.get_profile("churn", 1)
    assert stored is not None and stored["fields"]["age"] == printed["fields"]["age"]
    assert stored["model"] == "churn" and stored["version"] == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("age,plan\n1,basic\n")
    with pytest.raises(SystemExit) as exc:
        main(["models", "profile", "churn@1", str(bad), "--no-progress"])
    assert exc.value.code == 1
    assert "'active' is missing" in capsys.readouterr().err
    assert ws.registry.get_profile("churn", 1) == stored  # nothing damaged

"""Health reports computed from real records with known shares, latencies, drift and labels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from flotilla.errors import ConfigError
from flotilla.gateway._steps import REASONS
from flotilla.monitoring import build_profile
from flotilla.monitoring.cbpe import estimate_performance
from flotilla.monitoring.health import (
    FALLBACK_REASONS,
    METRIC_NAMES,
    NO_PROFILE,
    health_report,
    health_series,
    portfolio_health,
    trouble_score,
)
from flotilla.records import OutcomeStore, PredictionEvent, RecordStore, RecordWriter
from flotilla.settings import Settings
from flotilla.testing import FakeClock
from flotilla.workspace import Workspace

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
N = 1000
PLANS = ["basic", "plus", "pro"]
MODEL_PY = """
class Model:
    def predict(self, records):
        return [0.5 for _ in records]
"""


@dataclass
class Generated:
    store: RecordStore
    root: Path
    latencies: np.ndarray
    rows: int
    live: list[tuple[str, float]]  # (request_id, probability) of live answers


def _reasons(i: int) -> tuple[str, list[dict[str, str]]]:
    """Role and reasons of request i: 30% timeout, 10% invalid_input, 10% with an error."""
    k = i % 20
    if k in (0, 1, 2, 10, 11, 12):
        return "fallback", [{"ref": "churn@1", "reason": "timeout"}]
    if k in (3, 13):
        return "static", [{"ref": "churn@1", "reason": "invalid_input"}]
    if k == 5:
        return "fallback", [{"ref": "churn@1", "reason": "error"}]
    if k == 15:  # live timed out, then the fallback failed: static answered
        reasons = [{"ref": "churn@1", "reason": "timeout"}, {"ref": "churn@0", "reason": "error"}]
        return "static", reasons
    return "live", []


def _generate(root: Path, *, shift: float = 1.0, model: str = "churn") -> Generated:
    rng = np.random.default_rng(11)
    writer = RecordWriter(root, clock=FakeClock(start=T0 + 2 * DAY))
    latencies = rng.lognormal(3.0, 0.6, size=N)
    rows, live = 0, []
    for i in range(N):
        role, reasons = _reasons(i)
        n_rows = 2 if i % 7 == 0 else 1
        rows += n_rows
        inputs: list[dict[str, Any]] = [
            {"x": float(rng.normal(shift, 1.0)), "plan": PLANS[i % 3], "z": None}
            for _ in range(n_rows)
        ]
        probs = [float(1 / (1 + np.exp(-r["x"]))) for r in inputs]
        if role == "live":
            live.append((f"r{i}", probs[0]))
        event = PredictionEvent(
            request_id=f"r{i}", model=model, ref="churn@1" if role == "live" else "churn@0",
            role=role, inputs=inputs, predictions=probs if role == "live" else [0.5] * n_rows,
            ids=None, latency_ms=float(latencies[i]), degraded=bool(reasons), reasons=reasons,
            event_time=T0 + timedelta(minutes=i),
        )  # fmt: skip
        writer.submit(event)
        if i % 5 == 0:  # a shadow for every fifth request: never counted as traffic
            writer.submit(
                PredictionEvent(
                    request_id=f"r{i}",
                    model=model,
                    ref="churn@2",
                    role="shadow",
                    inputs=inputs,
                    predictions=probs,
                    ids=None,
                    latency_ms=999.0,
                    degraded=False,
                    reasons=[],
                    event_time=T0 + timedelta(minutes=i),
                )
            )
    for j in range(50):  # the previous day
        writer.submit(
            PredictionEvent(
                request_id=f"p{j}",
                model=model,
                ref="churn@1",
                role="live",
                inputs=[{"x": 0.0, "plan": "basic", "z": 1.0}],
                predictions=[0.5],
                ids=None,
                latency_ms=1.0,
                degraded=False,
                reasons=[],
                event_time=T0 - DAY + timedelta(hours=1),
            )
        )
    writer.close()
    return Generated(RecordStore(root), root, latencies, rows, live)


def _profile(tmp_path: Path) -> dict[str, Any]:
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 1.0, size=5000)
    table = pa.table(
        {
            "x": x,
            "plan": [PLANS[i % 3] for i in range(x.size)],
            "z": rng.normal(size=x.size),
            "p": 1 / (1 + np.exp(-x)),
        }
    )
    path = tmp_path / "train.parquet"
    pq.write_table(table, path)
    return build_profile(path, output_column="p", progress=False)


@pytest.fixture
def generated(tmp_path: Path) -> Generated:
    return _generate(tmp_path / "records")


def test_metric_names_and_reasons_follow_the_contract() -> None:
    assert FALLBACK_REASONS == REASONS
    for reason in REASONS:
        assert f"fallback_rate_{reason}" in METRIC_NAMES
    assert len(set(METRIC_NAMES)) == len(METRIC_NAMES)


def test_traffic_rates_and_latency_are_exact(generated: Generated) -> None:
    report = health_report(generated.store, "churn", start=T0, end=T0 + DAY)
    m = report.metrics
    assert set(m) == set(METRIC_NAMES)
    assert m["traffic"] == N and m["rows"] == generated.rows
    assert m["previous_traffic"] == 50 and report.previous_traffic == 50
    assert report.traffic_by_role["shadow"]["requests"] == N // 5
    assert m["fallback_rate"] == pytest.approx(0.5)
    assert m["fallback_rate_timeout"] == pytest.approx(0.35)  # first reason counts
    assert m["fallback_rate_invalid_input"] == pytest.approx(0.10)
    assert m["fallback_rate_error"] == pytest.approx(0.05)
    assert m["fallback_rate_circuit_open"] == 0.0
    assert m["error_rate"] == pytest.approx(0.10)  # an error anywhere in the chain
    # DuckDB quantile_cont interpolates linearly, as numpy.percentile's default
    assert m["latency_p50_ms"] == pytest.approx(np.percentile(generated.latencies, 50), rel=1e-9)
    assert m["latency_p99_ms"] == pytest.approx(np.percentile(generated.latencies, 99), rel=1e-9)
    assert m["shadow_dropped"] is None
    assert report.drift_note == NO_PROFILE and m["drift_share"] is None
    assert report.live_ref == "churn@1" and report.output_kind == "probability"


def test_drift_against_a_profile_ranks_the_shifted_field_and_sees_the_null_field(
    generated: Generated, tmp_path: Path
) -> None:
    profile = _profile(tmp_path)
    report = health_report(
        generated.store, "churn", start=T0, end=T0 + DAY, reference=profile, shadow_dropped=7
    )
    m = report.metrics
    assert report.drift[0]["name"] == "x" and report.drift[0]["drifted"] is True
    by_name = {d["name"]: d for d in report.drift}
    assert by_name["plan"]["drifted"] is False
    assert by_name["z"]["null_rate_current"] == 1.0 and by_name["z"]["drifted"] is None
    assert m["null_rate_max_change"] == pytest.approx(1.0)
    assert m["drifted_fields"] == 1 and m["drift_share"] == pytest.approx(0.5)  # x of x, plan
    assert report.prediction is not None and m["prediction_drift"] is not None
    assert m["prediction_drift"] > 0.1  # the output moved with x
    assert m["shadow_dropped"] == 7
    assert report.trouble_score == pytest.approx(trouble_score(m))
    assert report.status == "trouble"


def test_no_drift_when_the_traffic_matches_the_reference(tmp_path: Path) -> None:
    gen = _generate(tmp_path / "records", shift=0.0)
    report = health_report(gen.store, "churn", start=T0, end=T0 + DAY, reference=_profile(tmp_path))
    by_name = {d["name"]: d for d in report.drift}
    assert by_name["x"]["drifted"] is False and by_name["plan"]["drifted"] is False
    assert report.metrics["drift_share"] == 0.0
    sampled = health_report(
        gen.store, "churn", start=T0, end=T0 + DAY, reference=_profile(tmp_path), sample_rows=200
    )
    assert any("200 sampled rows" in note for note in sampled.notes)
    assert sampled.drift[0]["n_current"] == 200
    assert sampled.metrics["fallback_rate"] == report.metrics["fallback_rate"]  # exact, not sampled


def test_performance_on_labels_and_cbpe_on_the_rest(generated: Generated) -> None:
    rng = np.random.default_rng(5)
    labeled = generated.live[: len(generated.live) * 2 // 5]
    labels = [int(rng.uniform() < p) for _, p in labeled]
    outcomes = OutcomeStore(generated.root, clock=FakeClock(start=T0 + 2 * DAY))
    ingest = outcomes.ingest(
        "churn",
        [
            {"request_id": rid, "index": 0, "label": y, "observed_at": (T0 + DAY).isoformat()}
            for (rid, _), y in zip(labeled, labels, strict=True)
        ],
    )
    assert ingest.accepted == len(labeled)
    report = health_report(generated.store, "churn", start=T0, end=T0 + DAY, outcomes=outcomes)
    m = report.metrics
    assert m["labeled"] == len(labeled)
    expected_auc = roc_auc_score(labels, [p for _, p in labeled])
    assert report.performance == {"metric": "auc", "value": pytest.approx(expected_auc, abs=1e-12),
                                  "labeled": len(labeled)}  # fmt: skip
    assert m["performance"] == pytest.approx(expected_auc, abs=1e-12)
    # CBPE on the live rows without an outcome (row 1 of a labeled request has none)
    labeled_ids = {rid for rid, _ in labeled}
    rows = generated.store.query(
        "SELECT request_id, row, prediction_value FROM predictions WHERE role = 'live' "
        "AND event_time >= TIMESTAMPTZ '2026-03-01 00:00:00+00'"
    ).fetchall()
    probs = [v for rid, row, v in rows if not (rid in labeled_ids and row == 0)]
    direct = estimate_performance(probs)
    assert report.cbpe is not None
    assert report.cbpe["rows"] == direct.rows == len(rows) - len(labeled)
    assert m["estimated_performance"] == pytest.approx(direct.roc_auc, abs=1e-12)
    assert report.cbpe["accuracy"] == pytest.approx(direct.accuracy, abs=1e-12)
    assert "calibrated" in " ".join(report.cbpe["assumptions"])
    # a handful of unlabeled rows gives no estimate (too noisy to alert on)
    few = health_report(
        generated.store, "churn", start=T0, end=T0 + timedelta(minutes=30), outcomes=outcomes
    )
    assert few.cbpe is None and few.metrics["estimated_performance"] is None


def test_regression_rmse_on_labels(tmp_path: Path) -> None:
    root = tmp_path / "records"
    rng = np.random.default_rng(9)
    preds, labels = rng.normal(size=200), rng.normal(size=200)
    with RecordWriter(root) as writer:
        for i in range(200):
            writer.submit(
                PredictionEvent(
                    request_id=f"q{i}",
                    model="price",
                    ref="price@1",
                    role="live",
                    inputs=[{"a": 1.0}],
                    predictions=[float(preds[i])],
                    ids=None,
                    latency_ms=1.0,
                    degraded=False,
                    reasons=[],
                    event_time=T0 + timedelta(minutes=i),
                )
            )
    outcomes = OutcomeStore(root, clock=FakeClock(start=T0 + 2 * DAY))
    outcomes.ingest(
        "price",
        [{"request_id": f"q{i}", "label": float(labels[i]), "observed_at": T0.isoformat()}
         for i in range(200)],
    )  # fmt: skip
    report = health_report(RecordStore(root), "price", start=T0, end=T0 + DAY, outcomes=outcomes)
    assert report.output_kind == "score" and report.cbpe is None
    expected = float(np.sqrt(np.mean((preds - labels) ** 2)))
    assert report.metrics["performance"] == pytest.approx(expected, abs=1e-12)


def test_no_traffic_keeps_the_previous_window(generated: Generated) -> None:
    report = health_report(generated.store, "churn", start=T0 - DAY, end=T0 - DAY / 2)
    assert report.metrics["traffic"] == 50
    quiet = health_report(generated.store, "churn", start=T0 + 3 * DAY, end=T0 + 4 * DAY)
    assert quiet.metrics["traffic"] == 0 and quiet.metrics["fallback_rate"] is None
    assert quiet.status == "no traffic" and quiet.drift_note == "no traffic"
    gap = health_report(generated.store, "churn", start=T0 + DAY, end=T0 + 2 * DAY)
    assert gap.metrics["previous_traffic"] == N and gap.trouble_score >= 1.0


def test_portfolio_sorts_by_trouble_and_lists_silent_models(tmp_path: Path) -> None:
    root = tmp_path / "records"
    _generate(root)
    with RecordWriter(root) as writer:
        writer.submit(
            PredictionEvent(
                request_id="h1",
                model="healthy",
                ref="healthy@1",
                role="live",
                inputs=[{"a": 1}],
                predictions=[0.3],
                ids=None,
                latency_ms=2.0,
                degraded=False,
                reasons=[],
                event_time=T0 + timedelta(hours=1),
            )
        )
    reports = portfolio_health(
        RecordStore(root), ["healthy", "churn", "ghost"], start=T0, end=T0 + DAY
    )
    assert [r.model for r in reports] == ["churn", "ghost", "healthy"]
    assert reports[1].status == "no traffic" and reports[1].metrics["traffic"] == 0
    everything = portfolio_health(RecordStore(root), None, start=T0, end=T0 + DAY, workers=2)
    assert {r.model for r in everything} == {"churn", "healthy"}
    assert [r.metrics for r in everything] == [
        r.metrics for r in reports if r.model != "ghost"
    ]  # threads give the same numbers
    with pytest.raises(ConfigError, match="workers"):
        portfolio_health(RecordStore(root), None, start=T0, end=T0 + DAY, workers=0)
    assert everything[0].to_dict()["metrics"]["traffic"] == N


def test_series_per_step(generated: Generated, tmp_path: Path) -> None:
    series = health_series(
        generated.store, "churn", start=T0, end=T0 + DAY, step=timedelta(hours=6),
        reference=_profile(tmp_path),
    )  # fmt: skip
    assert len(series) == 4
    assert [s["traffic"] for s in series] == [360, 360, 280, 0]
    assert series[0]["fallback_rate"] == pytest.approx(0.5)
    assert series[0]["drift_share"] == pytest.approx(0.5)
    assert series[3]["fallback_rate"] is None and series[3]["drift_share"] is None
    with pytest.raises(ConfigError, match="steps"):
        health_series(generated.store, "churn", start=T0, end=T0 + DAY, step=timedelta(seconds=1))


def test_profile_comes_from_the_registry_for_the_live_version(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", actor="tester")
    ws = Workspace.open(settings)
    sig = {"inputs": [{"name": "x", "type": "float"}], "output": {"kind": "probability"}}
    code = tmp_path / "tiny_health_model.py"
    code.write_text(MODEL_PY)
    for _ in range(2):
        ws.register(
            "churn", flavor="python", artifact=code, entry="tiny_health_model:Model",
            signature=sig,
        )  # fmt: skip
    ws.registry.set_profile("churn", 1, _profile(tmp_path), actor="tester")
    gen = _generate(settings.records)
    report = health_report(gen.store, "churn", start=T0, end=T0 + DAY, registry=ws.registry)
    assert report.drift and report.drift[0]["name"] == "x"
    assert any("churn@1" in note for note in report.notes)


def test_bad_windows_are_refused(generated: Generated) -> None:
    with pytest.raises(ConfigError, match="end after it starts"):
        health_report(generated.store, "churn", start=T0, end=T0)
    with pytest.raises(ConfigError, match="sample_rows"):
        health_report(generated.store, "churn", start=T0, end=T0 + DAY, sample_rows=0)

"""compare(): live vs shadow on the same labeled requests, numbers checked against sklearn."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from flotilla.errors import ConfigError
from flotilla.evaluation.compare import _by_day, _per_day, compare
from flotilla.evaluation.report_html import render_html, write_html
from flotilla.portfolio import PromotionPolicy
from flotilla.records import OutcomeStore, PredictionEvent, RecordWriter
from flotilla.testing import FakeClock

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def write_traffic(
    root: Path,
    *,
    n: int,
    days: float,
    champ: float,
    chall: float,
    seed: int = 0,
    labeled: float = 1.0,
    shadow_errors: int = 0,
    scale: float = 1.0,
) -> tuple[OutcomeStore, dict[str, Any]]:
    """Live (churn@1) and shadow (churn@2) probabilities for ``n`` requests, and outcomes.

    ``champ``/``chall`` is each model's signal strength (0: coin flips). Requests are spread
    evenly over ``days`` from ``T0``; a ``labeled`` share gets its label an hour later.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)

    def probs(signal: float) -> np.ndarray:
        z = signal * (2 * y - 1) + rng.normal(0, 1, n)
        return 1 / (1 + np.exp(-z))

    pc, ps = probs(champ) * scale, probs(chall) * scale
    end = T0 + timedelta(days=days)
    writer = RecordWriter(root, clock=FakeClock(start=end))
    outcomes, labeled_idx = [], []
    for i in range(n):
        t = T0 + timedelta(seconds=i * days * 86_400 / n)
        failed = i < shadow_errors
        for role, ref, p, ms in (
            ("live", "churn@1", pc[i], 2.0),
            ("shadow", "churn@2", ps[i], 9.0),
        ):
            bad = failed and role == "shadow"
            writer.submit(
                PredictionEvent(
                    request_id=f"r{i}", model="churn", ref=ref, role=role, inputs=[{"x": 1.0}],
                    predictions=[None if bad else float(p)], ids=None, latency_ms=ms + i % 3,
                    degraded=bad, reasons=[{"ref": ref, "reason": "error"}] if bad else [],
                    event_time=t,
                )
            )  # fmt: skip
        if rng.random() < labeled:
            labeled_idx.append(i)
            outcomes.append(
                {"request_id": f"r{i}", "index": 0, "label": int(y[i]),
                 "observed_at": (t + timedelta(hours=1)).isoformat()}
            )  # fmt: skip
    writer.flush()
    store = OutcomeStore(root, clock=FakeClock(start=end + timedelta(days=1)))
    if outcomes:
        store.ingest("churn", outcomes)
    idx = np.array(labeled_idx, dtype=int)
    ok = idx[idx >= shadow_errors]
    return store, {"y": y[ok], "pc": pc[ok], "ps": ps[ok], "n_labeled": len(idx)}


def _clock(days: float) -> FakeClock:
    return FakeClock(start=T0 + timedelta(days=days))


POLICY = PromotionPolicy(min_labeled=500, min_days=7)


def test_better_challenger_is_promoted_after_enough_pairs_and_days(tmp_path: Path) -> None:
    store, data = write_traffic(tmp_path, n=1200, days=8, champ=0.4, chall=1.5)
    c = compare(store, "churn", policy=POLICY, clock=_clock(8))
    assert (c.champion, c.challenger, c.metric) == ("churn@1", "churn@2", "auc")
    assert c.labeled_pairs == 1200
    assert c.champion_metric.value == pytest.approx(skm.roc_auc_score(data["y"], data["pc"]))
    assert c.challenger_metric.value == pytest.approx(skm.roc_auc_score(data["y"], data["ps"]))
    assert c.champion_metric.ci_low < c.champion_metric.value < c.champion_metric.ci_high
    diff = skm.roc_auc_score(data["y"], data["ps"]) - skm.roc_auc_score(data["y"], data["pc"])
    assert c.difference.value == pytest.approx(diff)
    assert 0 < c.difference.ci_low < diff < c.difference.ci_high
    assert c.sequential["reject"] is True and c.sequential["n"] == 1200
    assert c.verdict == "promote"
    named = compare(store, "churn", champion="churn@1", challenger="churn@2", policy=POLICY,
                    clock=_clock(8))  # fmt: skip
    assert named.to_dict() == c.to_dict()  # the same evidence without looking up the versions
    # the same evidence one day too early: keep shadowing, with the days still needed
    early = compare(store, "churn", policy=POLICY, clock=_clock(6.5))
    assert early.verdict == "keep_shadowing"
    assert early.needed["days"] == pytest.approx(0.5)
    assert any("days" in r for r in early.reasons)


@pytest.mark.parametrize(
    ("metric", "oracle"),
    [
        ("logloss", lambda y, p: skm.log_loss(y, p, labels=[0, 1])),
        ("accuracy", lambda y, p: skm.accuracy_score(y, p >= 0.5)),
        ("f1", lambda y, p: skm.f1_score(y, p >= 0.5)),
        ("rmse", lambda y, p: math.sqrt(skm.mean_squared_error(y, p))),
        ("mae", skm.mean_absolute_error),
    ],
    ids=["logloss", "accuracy", "f1", "rmse", "mae"],
)
def test_metrics_agree_with_scikit_learn(tmp_path: Path, metric: str, oracle: Any) -> None:
    store, data = write_traffic(tmp_path, n=400, days=2, champ=0.8, chall=1.2, labeled=0.7)
    c = compare(store, "churn", metric=metric, policy=POLICY, clock=_clock(2))
    assert c.labeled_pairs == data["n_labeled"]
    assert c.champion_metric.value == pytest.approx(oracle(data["y"], data["pc"]))
    assert c.challenger_metric.value == pytest.approx(oracle(data["y"], data["ps"]))
    want = oracle(data["y"], data["ps"]) - oracle(data["y"], data["pc"])
    assert c.difference.value == pytest.approx(want)
    assert c.difference.ci_low <= c.difference.value <= c.difference.ci_high


def test_worse_challenger_is_rejected(tmp_path: Path) -> None:
    store, _ = write_traffic(tmp_path, n=800, days=3, champ=1.5, chall=0.2)
    c = compare(store, "churn", metric="logloss", policy=POLICY, clock=_clock(3))
    assert c.verdict == "reject"
    assert c.improvement.value < 0 and c.improvement.ci_high < 0
    assert c.sequential["champion_better"]["reject"] is True


def test_equal_models_keep_shadowing(tmp_path: Path) -> None:
    store, _ = write_traffic(tmp_path, n=800, days=9, champ=1.0, chall=1.0, seed=3)
    c = compare(store, "churn", metric="logloss", policy=POLICY, clock=_clock(9))
    assert c.verdict == "keep_shadowing"
    assert c.sequential["reject"] is False
    assert c.difference.ci_low < 0 < c.difference.ci_high


def test_no_labels_is_not_enough_evidence(tmp_path: Path) -> None:
    store, _ = write_traffic(tmp_path, n=50, days=1, champ=1.0, chall=1.0, labeled=0.0)
    c = compare(store, "churn", policy=POLICY, clock=_clock(1))
    assert c.labeled_pairs == 0 and c.verdict == "keep_shadowing"
    assert any("not enough evidence" in r.lower() for r in c.reasons)
    assert c.needed["labeled_pairs"] >= 2
    out = c.to_dict()
    assert out["champion_metric"] == {"value": None, "ci_low": None, "ci_high": None}
    assert out["label_coverage"][0]["coverage"] == 0.0 and out["over_time"] == []
    assert "<svg" in render_html(c)


def test_scores_that_are_not_probabilities(tmp_path: Path) -> None:
    store, data = write_traffic(tmp_path, n=300, days=8, champ=0.3, chall=2.0, scale=10.0)
    c = compare(store, "churn", policy=POLICY, clock=_clock(8))
    assert c.challenger_metric.value == pytest.approx(skm.roc_auc_score(data["y"], data["ps"]))
    assert c.verdict == "keep_shadowing" and c.needed == {"labeled_pairs": None, "days": None}
    assert "sequential test cannot use these predictions" in c.reasons[0]


def test_a_metric_that_does_not_suit_the_labels_is_a_clear_error(tmp_path: Path) -> None:
    store, _ = write_traffic(tmp_path, n=60, days=1, champ=1.0, chall=1.0)
    late = (T0 + timedelta(days=2)).isoformat()  # the latest observation wins
    store.ingest("churn", [{"request_id": "r3", "label": 2.5, "observed_at": late}])
    with pytest.raises(ConfigError, match="'auc' cannot be computed on the labeled pairs"):
        compare(store, "churn", metric="auc", clock=_clock(1))
    assert compare(store, "churn", metric="rmse", clock=_clock(1)).labeled_pairs == 60


def test_no_records_at_all_is_not_an_error(tmp_path: Path) -> None:
    c = compare(OutcomeStore(tmp_path), "churn", policy=POLICY, clock=_clock(1))
    assert (c.champion, c.challenger, c.labeled_pairs, c.verdict) == (
        None,
        None,
        0,
        "keep_shadowing",
    )
    assert any("No shadow predictions" in r for r in c.reasons)


def test_coverage_latency_rates_and_the_window(tmp_path: Path) -> None:
    store, data = write_traffic(
        tmp_path, n=300, days=3, champ=1.0, chall=1.0, labeled=0.5, shadow_errors=30
    )
    c = compare(store, "churn", metric="logloss", policy=POLICY, clock=_clock(3))
    days = [row["date"] for row in c.label_coverage]
    assert days == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert sum(row["predictions"] for row in c.label_coverage) == 300
    assert sum(row["labeled"] for row in c.label_coverage) == data["n_labeled"]
    assert all(0.3 < row["coverage"] < 0.7 for row in c.label_coverage)
    assert sum(row["pairs"] for row in c.label_coverage) == c.labeled_pairs == len(data["y"])
    assert c.rates["champion"] == {"requests": 300, "error_rate": 0.0, "fallback_rate": 0.0}
    assert c.rates["challenger"]["error_rate"] == pytest.approx(0.1)
    lat = np.array([2.0 + i % 3 for i in range(300)])
    assert c.latency["champion"]["p50_ms"] == pytest.approx(np.percentile(lat, 50))
    assert c.latency["champion"]["p99_ms"] == pytest.approx(np.percentile(lat, 99))
    assert [row["date"] for row in c.over_time] == days
    later = compare(store, "churn", metric="logloss", since=T0 + timedelta(days=2), clock=_clock(3))
    assert [row["date"] for row in later.label_coverage] == ["2026-03-03"]
    assert later.days == pytest.approx(1.0)


def test_html_report_is_self_contained(tmp_path: Path) -> None:
    store, _ = write_traffic(tmp_path / "rec", n=200, days=4, champ=0.5, chall=1.0, labeled=0.8)
    c = compare(store, "churn", metric="logloss", policy=POLICY, clock=_clock(4))
    path = write_html(c, tmp_path / "out" / "report.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.count("<svg") == 2
    assert "<polyline" in text and "<rect" in text and "keep_shadowing" in text
    assert "<script" not in text and "<link" not in text and "src=" not in text
    assert list((tmp_path / "out").iterdir()) == [path]  # no temporary file left behind


def test_ranking_metrics_agree_with_scikit_learn(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n, items = 300, 10
    labels = rng.integers(0, items, n)
    writer = RecordWriter(tmp_path, clock=FakeClock(start=T0 + timedelta(days=1)))
    ranked: dict[str, list[list[int]]] = {"churn@1": [], "churn@2": []}
    for i in range(n):
        for role, ref, hit in (("live", "churn@1", 0.2), ("shadow", "churn@2", 0.7)):
            order = [int(v) for v in rng.permutation(items)[:5]]
            if rng.random() < hit and int(labels[i]) not in order[:3]:
                order = [int(labels[i]), *[v for v in order if v != labels[i]]][:5]
            ranked[ref].append(order)
            writer.submit(
                PredictionEvent(
                    request_id=f"r{i}", model="recs", ref=ref, role=role, inputs=[{"u": i}],
                    predictions=[order], ids=None, latency_ms=1.0, degraded=False, reasons=[],
                    event_time=T0 + timedelta(minutes=i),
                )
            )  # fmt: skip
    writer.flush()
    store = OutcomeStore(tmp_path, clock=FakeClock(start=T0 + timedelta(days=2)))
    store.ingest(
        "recs",
        [{"request_id": f"r{i}", "label": int(labels[i]),
          "observed_at": (T0 + timedelta(hours=12)).isoformat()} for i in range(n)],
    )  # fmt: skip
    relevance = np.eye(items)[labels]

    def scores(lists: list[list[int]]) -> np.ndarray:
        out = np.zeros((n, items))
        for row, order in enumerate(lists):
            out[row, order] = np.arange(len(order), 0, -1)
        return out

    for metric in ("ndcg@3", "hit_rate@3"):
        c = compare(store, "recs", metric=metric, clock=_clock(2))
        assert c.labeled_pairs == n
        for ref, got in (("churn@1", c.champion_metric), ("churn@2", c.challenger_metric)):
            if metric == "ndcg@3":
                want = skm.ndcg_score(relevance, scores(ranked[ref]), k=3)
            else:
                want = np.mean([labels[i] in ranked[ref][i][:3] for i in range(n)])
            assert got.value == pytest.approx(want)
        assert c.improvement.value > 0


@pytest.mark.parametrize("span", [9, 40_000], ids=["short-span", "long-span"])
def test_rows_grouped_by_day_keep_their_order(span: int) -> None:
    days = np.random.default_rng(span).integers(20_000, 20_000 + span, 5_000)
    groups = _by_day(days)
    assert [d for d, _ in groups] == sorted(set(days.tolist()))
    for day, idx in groups:
        assert idx.tolist() == np.flatnonzero(days == day).tolist()
    per_day = _per_day(days)
    assert sum(per_day.values()) == days.size and len(per_day) == len(groups)
    assert per_day.get("2024-10-04", 0) == int((days == 20_000).sum())

"""Metrics against scikit-learn, intervals, paired bootstrap and per-row losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from flotilla.errors import ConfigError
from flotilla.evaluation import (
    delong,
    evaluate,
    higher_is_better,
    metric_value,
    paired_bootstrap,
    parse_metric,
    per_row_loss,
)

TOL = 1e-9


@pytest.fixture
def binary() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 400), 0, 1)
    return y, p


def test_classification_metrics_match_sklearn(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    labels = (p >= 0.5).astype(int)
    assert metric_value("auc", y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=TOL)
    assert metric_value("logloss", y, p) == pytest.approx(skm.log_loss(y, p), abs=TOL)
    assert metric_value("accuracy", y, p) == pytest.approx(skm.accuracy_score(y, labels), abs=TOL)
    assert metric_value("f1", y, p) == pytest.approx(skm.f1_score(y, labels), abs=TOL)
    assert metric_value("accuracy", y, labels) == pytest.approx(
        skm.accuracy_score(y, labels), abs=TOL
    )


def test_auc_with_ties_matches_sklearn() -> None:
    y = np.array([0, 0, 1, 1, 0, 1, 1, 0])
    s = np.array([0.1, 0.4, 0.4, 0.8, 0.8, 0.8, 0.2, 0.1])
    assert metric_value("auc", y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=TOL)


def test_regression_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(5)
    y, pred = rng.normal(size=300), rng.normal(size=300)
    rmse = math.sqrt(skm.mean_squared_error(y, pred))
    assert metric_value("rmse", y, pred) == pytest.approx(rmse, abs=TOL)
    assert metric_value("mae", y, pred) == pytest.approx(skm.mean_absolute_error(y, pred), abs=TOL)


def test_multiclass_accuracy_with_string_labels() -> None:
    y = ["a", "b", "c", "a"]
    pred = ["a", "b", "a", "a"]
    assert metric_value("accuracy", y, pred) == skm.accuracy_score(y, pred)


def _ranking_data(
    n_rows: int, n_items: int, seed: int
) -> tuple[list, list, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels, preds = [], []
    y_true = np.zeros((n_rows, n_items))
    y_score = np.zeros((n_rows, n_items))
    for i in range(n_rows):
        ranking = rng.permutation(n_items).tolist()
        relevant = rng.choice(n_items, size=int(rng.integers(1, 4)), replace=False).tolist()
        labels.append(relevant if len(relevant) > 1 else relevant[0])
        preds.append(ranking)
        y_true[i, relevant] = 1
        y_score[i, ranking] = np.arange(n_items, 0, -1)
    return labels, preds, y_true, y_score


@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_ndcg_matches_sklearn(k: int) -> None:
    labels, preds, y_true, y_score = _ranking_data(120, 12, seed=k)
    expected = skm.ndcg_score(y_true, y_score, k=k)
    assert metric_value(f"ndcg@{k}", labels, preds) == pytest.approx(expected, abs=TOL)


def test_hit_rate_by_direct_computation() -> None:
    labels, preds, _, _ = _ranking_data(100, 10, seed=2)
    expected = np.mean(
        [bool(set(lab if isinstance(lab, list) else [lab]) & set(p[:3])) for lab, p in
         zip(labels, preds, strict=True)]
    )  # fmt: skip
    assert metric_value("hit_rate@3", labels, preds) == pytest.approx(expected, abs=TOL)


def test_ranking_edge_cases() -> None:
    assert metric_value("ndcg@3", [[]], [["a", "b"]]) == 0.0  # no relevant item
    assert metric_value("ndcg@3", ["a"], [["a", "a", "b"]]) == 1.0  # duplicates count once
    assert metric_value("hit_rate@2", ["c"], [["a", "b", "c"]]) == 0.0
    with pytest.raises(ConfigError, match="lists of item ids"):
        metric_value("ndcg@3", ["a"], ["a"])


def test_parse_metric_and_direction() -> None:
    assert str(parse_metric("NDCG@10")) == "ndcg@10"
    assert higher_is_better("auc") and not higher_is_better("rmse")
    for bad in ("ndcg", "ndcg@0", "precision", "auc@3"):
        with pytest.raises(ConfigError, match="must be one of"):
            parse_metric(bad)


def test_bad_inputs_are_clear() -> None:
    with pytest.raises(ConfigError, match="binary labels"):
        metric_value("auc", [0, 2], [0.1, 0.2])
    with pytest.raises(ConfigError, match="pair up"):
        metric_value("rmse", [1.0], [1.0, 2.0])
    with pytest.raises(ConfigError, match="probabilities"):
        metric_value("logloss", [0, 1], [0.5, 3.0])
    with pytest.raises(ConfigError, match="NaN"):
        metric_value("mae", [1.0, float("nan")], [1.0, 2.0])


def test_auc_undefined_with_one_class_is_nan_not_crash() -> None:
    assert math.isnan(metric_value("auc", [1, 1, 1], [0.2, 0.3, 0.4]))
    result = evaluate("auc", [1, 1], [0.2, 0.3])
    assert math.isnan(result.value) and result.to_dict()["lo"] is None
    empty = evaluate("rmse", [], [])
    assert math.isnan(empty.value) and empty.n == 0


def test_bootstrap_interval_is_seeded_and_covers_value(
    binary: tuple[np.ndarray, np.ndarray],
) -> None:
    y, p = binary
    a = evaluate("logloss", y, p, n_boot=300, seed=1)
    b = evaluate("logloss", y, p, n_boot=300, seed=1)
    assert a == b and a.method == "bootstrap"
    assert a.lo < a.value < a.hi
    # the percentile interval of a mean is close to the normal interval
    rows = per_row_loss("logloss", y, p)
    se = rows.std(ddof=1) / math.sqrt(len(rows))
    assert a.hi - a.lo == pytest.approx(2 * 1.96 * se, rel=0.25)


def test_f1_bootstrap_and_auc_bootstrap_run(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    f1 = evaluate("f1", y, p, n_boot=200)
    assert f1.lo <= f1.value <= f1.hi
    boot = evaluate("auc", y, p, n_boot=100, method="bootstrap")
    assert boot.method == "bootstrap" and boot.lo < boot.value < boot.hi


def test_delong_matches_direct_formula(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    value, _lo, hi = delong(y, p)
    pos, neg = p[y == 1], p[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    var = v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)
    assert value == pytest.approx(psi.mean(), abs=TOL)
    assert hi - value == pytest.approx(1.959963984540054 * math.sqrt(var), abs=1e-9)
    assert evaluate("auc", y, p).method == "delong"


@settings(max_examples=60, deadline=None)
@given(
    y=st.lists(st.integers(0, 1), min_size=2, max_size=40),
    levels=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_sorted_auc_and_delong_match_the_pairwise_formula_with_ties(
    y: list[int], levels: int, seed: int
) -> None:
    """The sort-and-count AUC/DeLong against all (positive, negative) pairs, many ties."""
    labels = np.array(y)
    scores = np.random.default_rng(seed).integers(0, levels, labels.size) / 2 - 0.5  # -0.0 too
    pos, neg = scores[labels == 1], scores[labels == 0]
    if pos.size == 0 or neg.size == 0:
        assert math.isnan(metric_value("auc", labels, scores))
        return
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    assert metric_value("auc", labels, scores) == pytest.approx(psi.mean(), abs=TOL)
    assert metric_value("auc", labels, scores) == pytest.approx(
        skm.roc_auc_score(labels, scores), abs=TOL
    )
    value, lo, hi = delong(labels, scores)
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    var = (v10.var(ddof=1) if pos.size > 1 else 0.0) / pos.size
    var += (v01.var(ddof=1) if neg.size > 1 else 0.0) / neg.size
    half = 1.959963984540054 * math.sqrt(var)
    assert value == pytest.approx(psi.mean(), abs=TOL)
    assert (lo, hi) == pytest.approx((max(0.0, value - half), min(1.0, value + half)), abs=1e-9)


def test_paired_bootstrap_detects_a_better_model(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    rng = np.random.default_rng(0)
    worse = np.clip(p + rng.normal(0, 0.3, len(p)), 0, 1)
    diff, lo, hi = paired_bootstrap("logloss", y, worse, p, n=300, seed=3)
    assert diff == pytest.approx(metric_value("logloss", y, worse) - metric_value("logloss", y, p))
    assert 0 < lo <= diff <= hi
    same = paired_bootstrap("auc", y, p, p, n=50)
    assert same == (0.0, 0.0, 0.0)


def test_per_row_losses() -> None:
    y = np.array([1, 0, 1])
    p = np.array([0.9, 0.2, 0.4])
    assert per_row_loss("auc", y, p) == pytest.approx(-np.log([0.9, 0.8, 0.4]))
    assert per_row_loss("accuracy", y, p).tolist() == [0.0, 0.0, 1.0]
    assert per_row_loss("rmse", [1.0, 2.0], [2.0, 2.0]).tolist() == [1.0, 0.0]
    assert per_row_loss("mae", [1.0, 2.0], [3.0, 2.0]).tolist() == [2.0, 0.0]
    assert per_row_loss("hit_rate@1", ["a", "b"], [["a"], ["c"]]).tolist() == [0.0, 1.0]
    losses = per_row_loss("ndcg@2", ["b"], [["a", "b"]])
    assert losses[0] == pytest.approx(1 - 1 / math.log2(3))

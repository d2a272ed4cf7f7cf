"""CBPE: the expected confusion matrix, expected AUC, and agreement with realized metrics."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from flotilla.errors import ConfigError
from flotilla.monitoring.cbpe import CBPE_ASSUMPTIONS, estimate_performance, expected_roc_auc


def _direct_auc(p: np.ndarray) -> float:
    """The weighted Mann-Whitney double sum: row i positive (weight p_i), j negative (1-p_j)."""
    pos, neg = p[:, None], (1.0 - p)[None, :]
    wins = (p[:, None] > p[None, :]) + 0.5 * (p[:, None] == p[None, :])
    return float((pos * neg * wins).sum() / (p.sum() * (1.0 - p).sum()))


def test_expected_confusion_matrix_and_metrics_match_a_direct_computation() -> None:
    p = np.random.default_rng(0).uniform(size=500)
    est = estimate_performance(p)
    predicted = p >= 0.5
    tp, fp = p[predicted].sum(), (1 - p[predicted]).sum()
    fn, tn = p[~predicted].sum(), (1 - p[~predicted]).sum()
    assert est.accuracy == pytest.approx(np.maximum(p, 1 - p).mean(), abs=1e-12)
    assert (est.tp, est.fp, est.fn, est.tn) == pytest.approx((tp, fp, fn, tn), abs=1e-9)
    assert est.precision == pytest.approx(tp / (tp + fp), abs=1e-12)
    assert est.recall == pytest.approx(tp / (tp + fn), abs=1e-12)
    assert est.f1 == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-12)
    assert est.rows == 500 and est.assumptions == CBPE_ASSUMPTIONS


def test_expected_auc_matches_the_weighted_double_sum_and_sklearn_with_weights() -> None:
    p = np.round(np.random.default_rng(1).beta(2, 3, size=300), 2)  # rounded: many ties
    direct = _direct_auc(p)
    weighted = roc_auc_score(
        np.r_[np.ones(p.size), np.zeros(p.size)], np.r_[p, p], sample_weight=np.r_[p, 1 - p]
    )
    assert expected_roc_auc(p) == pytest.approx(direct, abs=1e-12)
    assert expected_roc_auc(p) == pytest.approx(weighted, abs=1e-12)


def test_estimate_agrees_with_realized_metrics_on_calibrated_data() -> None:
    rng = np.random.default_rng(2)
    p = rng.beta(1.5, 1.5, size=40_000)
    y = (rng.uniform(size=p.size) < p).astype(int)  # calibrated by construction
    est = estimate_performance(p)
    assert est.accuracy == pytest.approx(accuracy_score(y, p >= 0.5), abs=0.01)
    assert est.f1 == pytest.approx(f1_score(y, p >= 0.5), abs=0.01)
    assert est.roc_auc == pytest.approx(roc_auc_score(y, p), abs=0.01)


def test_undefined_and_bad_inputs() -> None:
    empty = estimate_performance([])
    assert empty.accuracy is None and empty.roc_auc is None and empty.rows == 0
    assert expected_roc_auc([1.0, 1.0]) is None  # no expected negatives
    assert estimate_performance([0.2, np.nan]).rows == 1
    with pytest.raises(ConfigError, match=r"probabilities in \[0, 1\]"):
        estimate_performance([0.5, 1.5])
    with pytest.raises(ConfigError, match="threshold"):
        estimate_performance([0.5], threshold=1.0)

"""The audit's numpy-only statistics agree with scipy and scikit-learn."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata, spearmanr
from sklearn.metrics import roc_auc_score

from flotilla.audit._stats import auc, average_ranks, indicator_auc, spearman

values = st.lists(st.integers(-5, 5), min_size=3, max_size=60)


@settings(max_examples=80, deadline=None)
@given(values, st.integers(0, 2**31))
def test_ranks_auc_and_spearman_match_references(xs: list[int], seed: int) -> None:
    x = np.asarray(xs, dtype=np.float64)
    y = np.random.default_rng(seed).random(x.size) < 0.5
    np.testing.assert_allclose(average_ranks(x), rankdata(x))
    if 0 < y.sum() < y.size:
        assert np.isclose(auc(x, y), roc_auc_score(y, x))
    other = np.random.default_rng(seed + 1).normal(size=x.size)
    if np.unique(x).size > 1:
        assert np.isclose(spearman(x, other), spearmanr(x, other).statistic)


def test_indicator_auc_matches_the_auc_of_a_binary_score() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.3
    ind = np.where(y, rng.random(500) < 0.8, rng.random(500) < 0.1)
    value, low, high = indicator_auc(
        int((ind & y).sum()), int(y.sum()), int((ind & ~y).sum()), int((~y).sum())
    )
    assert np.isclose(value, roc_auc_score(y, ind))
    assert low < value < high

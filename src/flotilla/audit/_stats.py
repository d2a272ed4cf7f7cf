"""Small statistics for the audit: rank AUC, proportion intervals, out-of-fold target encoding."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "auc",
    "average_ranks",
    "indicator_auc",
    "oof_target_encoding",
    "spearman",
    "symmetric_auc",
]

Z95 = 1.959963984540054


def average_ranks(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """1-based ranks with ties given their average rank (as ``scipy.stats.rankdata``)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], ordered.size]
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def auc(scores: NDArray[np.float64], positive: NDArray[np.bool_]) -> float:
    """ROC AUC of ``scores`` for ``positive`` (Mann-Whitney, average ranks); nan if one class."""
    n_pos = int(positive.sum())
    n_neg = int(positive.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = average_ranks(scores)
    u = float(ranks[positive].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def symmetric_auc(scores: NDArray[np.float64], positive: NDArray[np.bool_]) -> float:
    """max(AUC, 1 - AUC): how well the values separate the classes in either direction."""
    value = auc(scores, positive)
    return value if math.isnan(value) else max(value, 1.0 - value)


def indicator_auc(
    pos_hit: int, pos_total: int, neg_hit: int, neg_total: int
) -> tuple[float, float, float]:
    """AUC of a 0/1 indicator and its 95% interval, oriented so that AUC >= 0.5.

    For a binary score the AUC is ``0.5 * (1 + TPR - FPR)``; the interval is the Agresti-Caffo
    interval of the difference of the two proportions (one success and one failure added to
    each group, so it stays honest at 0% and 100%), mapped the same way.
    """
    if pos_total == 0 or neg_total == 0:
        return math.nan, math.nan, math.nan
    tpr, fpr = pos_hit / pos_total, neg_hit / neg_total
    diff = abs(tpr - fpr)
    at, af = (pos_hit + 1) / (pos_total + 2), (neg_hit + 1) / (neg_total + 2)
    se = math.sqrt(at * (1 - at) / (pos_total + 2) + af * (1 - af) / (neg_total + 2))
    low, high = max(0.0, diff - Z95 * se), min(1.0, diff + Z95 * se)
    return 0.5 * (1 + diff), 0.5 * (1 + low), 0.5 * (1 + high)


def oof_target_encoding(
    codes: NDArray[np.int64], positive: NDArray[np.bool_], *, folds: int = 5, seed: int = 0
) -> NDArray[np.float64]:
    """Each row's category scored by the positive rate of that category in the other folds.

    Out-of-fold, so that a category seen once cannot score itself (which would make every id
    look perfectly predictive). Unseen categories get the overall rate of the other folds.
    """
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, folds, size=codes.size)
    out = np.empty(codes.size, dtype=np.float64)
    n_codes = int(codes.max()) + 1 if codes.size else 0
    y = positive.astype(np.float64)
    for k in range(folds):
        train, test = fold != k, fold == k
        hits = np.bincount(codes[train], weights=y[train], minlength=n_codes)
        counts = np.bincount(codes[train], minlength=n_codes).astype(np.float64)
        prior = float(y[train].mean()) if train.any() else 0.5
        rate = np.where(counts > 0, hits / np.maximum(counts, 1.0), prior)
        out[test] = rate[codes[test]]
    return out


def spearman(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Spearman's rho, nan when either side is constant or there are fewer than 3 rows."""
    if a.size < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return math.nan
    return float(np.corrcoef(average_ranks(a), average_ranks(b))[0, 1])

"""Confidence-based performance estimation (CBPE) of a binary classifier without labels.

This follows NannyML's CBPE (``MONITORING.md`` Appendix B). For predicted probabilities
``p`` of the positive class and the decision threshold ``t`` (default 0.5), each row's
expected confusion-matrix entries are

* predicted positive (``p >= t``): expected TP ``p``, expected FP ``1 - p``;
* predicted negative (``p < t``): expected FN ``p``, expected TN ``1 - p``.

Summed over the rows they give the expected confusion matrix, from which the expected
accuracy (``mean(max(p, 1 - p))`` at ``t = 0.5``), precision, recall and F1 follow. The
expected ROC AUC is the area under the expected ROC curve: at each distinct probability,
the expected TPR is ``sum(p over rows at or above it) / sum(p)`` and the expected FPR
``sum(1 - p over rows at or above it) / sum(1 - p)`` (NannyML's ``_calculate_cbpe_roc_auc``),
joined by trapezoids. Equivalently, it is the weighted Mann-Whitney statistic in which each
row counts as a positive with weight ``p`` and as a negative with weight ``1 - p``.

Assumptions, stated in every report that shows an estimate:

* the probabilities are calibrated: among rows given ``p``, a share ``p`` is positive;
* no concept drift: ``P(y | x)`` is unchanged since the model was calibrated (covariate
  shift alone is fine).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from flotilla.errors import ConfigError

__all__ = ["CBPE_ASSUMPTIONS", "CbpeEstimate", "estimate_performance", "expected_roc_auc"]

CBPE_ASSUMPTIONS = (
    "the predicted probabilities are calibrated (among rows given p, a share p is positive)",
    "no concept drift: P(y | x) is unchanged since the model was calibrated",
)
"""The assumptions every CBPE estimate rests on (shown with the estimate)."""


@dataclass(frozen=True)
class CbpeEstimate:
    """Expected performance of a binary classifier from its probabilities alone.

    Attributes:
        rows: rows the estimate is computed on.
        threshold: the decision threshold (predicted positive when ``p >= threshold``).
        accuracy, precision, recall, f1, roc_auc: the expected metrics (``None`` when
            undefined, e.g. precision with no predicted positive).
        tp, fp, fn, tn: the expected confusion matrix (sums of probabilities).
        assumptions: :data:`CBPE_ASSUMPTIONS`.
    """

    rows: int
    threshold: float
    accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    roc_auc: float | None
    tp: float
    fp: float
    fn: float
    tn: float
    assumptions: tuple[str, ...] = CBPE_ASSUMPTIONS

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["assumptions"] = list(self.assumptions)
        return out


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _probabilities(probabilities: ArrayLike) -> NDArray[np.float64]:
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    p = p[~np.isnan(p)]
    if p.size and (p.min() < 0.0 or p.max() > 1.0 or not np.isfinite(p).all()):
        raise ConfigError(
            "CBPE needs probabilities in [0, 1]. Got values from "
            f"{p.min():g} to {p.max():g} instead; CBPE applies to probability outputs only."
        )
    return p


def expected_roc_auc(probabilities: ArrayLike) -> float | None:
    """The expected ROC AUC of calibrated ``probabilities`` (``None`` when undefined).

    Example:
        >>> round(expected_roc_auc([0.1, 0.9]), 4)
        0.9
    """
    p = np.sort(_probabilities(probabilities))[::-1]  # descending: thresholds from the top
    pos, neg = float(p.sum()), float((1.0 - p).sum())
    if p.size == 0 or pos <= 0.0 or neg <= 0.0:
        return None
    last = np.r_[np.flatnonzero(np.diff(p) != 0), p.size - 1]  # last row of each distinct p
    tpr = np.r_[0.0, np.cumsum(p)[last] / pos]
    fpr = np.r_[0.0, np.cumsum(1.0 - p)[last] / neg]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def estimate_performance(probabilities: ArrayLike, *, threshold: float = 0.5) -> CbpeEstimate:
    """Estimate accuracy, precision, recall, F1 and ROC AUC from probabilities (CBPE).

    Args:
        probabilities: predicted probabilities of the positive class (NaN are ignored).
        threshold: decision threshold in (0, 1).

    Returns:
        A :class:`CbpeEstimate`; every metric is ``None`` when there are no rows.

    Raises:
        ConfigError: a probability outside [0, 1], or a bad threshold.

    Example:
        >>> est = estimate_performance([0.9, 0.8, 0.2])
        >>> round(est.accuracy, 4)
        0.8333
    """
    if not (isinstance(threshold, int | float) and 0.0 < float(threshold) < 1.0):
        raise ConfigError(f"The 'threshold' of CBPE must be in (0, 1). Got {threshold!r} instead.")
    p = _probabilities(probabilities)
    positive = p >= threshold
    tp, fp = float(p[positive].sum()), float((1.0 - p[positive]).sum())
    fn, tn = float(p[~positive].sum()), float((1.0 - p[~positive]).sum())
    n = int(p.size)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2.0 * tp, 2.0 * tp + fp + fn)
    accuracy = _ratio(tp + tn, float(n))
    auc = expected_roc_auc(p) if n else None
    return CbpeEstimate(
        rows=n,
        threshold=float(threshold),
        accuracy=accuracy,
        precision=precision,
        recall=recall,
        f1=f1,
        roc_auc=None if auc is None or math.isnan(auc) else auc,
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
    )

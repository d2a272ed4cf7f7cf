"""Evaluation: metrics with confidence intervals, the always-valid mSPRT and verdicts.

Metrics agree with scikit-learn on the same data; the sequential test follows Johari et al.
(see ``MONITORING.md`` Appendix B).
"""

from __future__ import annotations

from flotilla.evaluation.compare import Comparison, Estimate, compare
from flotilla.evaluation.intervals import MetricResult, delong, evaluate, paired_bootstrap
from flotilla.evaluation.metrics import (
    METRICS,
    MetricSpec,
    higher_is_better,
    metric_value,
    parse_metric,
    per_row_loss,
)
from flotilla.evaluation.promotion import (
    AutoPromotion,
    PromotionRefusedError,
    auto_promote,
    promote,
)
from flotilla.evaluation.report_html import write_html
from flotilla.evaluation.sequential import MsprtResult, log_lambda, msprt
from flotilla.evaluation.verdict import PromotionPolicy, Verdict, decide

__all__ = [
    "METRICS",
    "AutoPromotion",
    "Comparison",
    "Estimate",
    "MetricResult",
    "MetricSpec",
    "MsprtResult",
    "PromotionPolicy",
    "PromotionRefusedError",
    "Verdict",
    "auto_promote",
    "compare",
    "decide",
    "delong",
    "evaluate",
    "higher_is_better",
    "log_lambda",
    "metric_value",
    "msprt",
    "paired_bootstrap",
    "parse_metric",
    "per_row_loss",
    "promote",
    "write_html",
]

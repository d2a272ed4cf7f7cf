"""Feature age: how old each feature value was when it was used, in training and in serving.

In training, a row's feature age is ``event_time - <feature>__written_at``; in serving, it is
what the gateway recorded from the request's ``feature_times`` (``feature_ages_s`` of the
prediction records). A feature served much *fresher* than it was trained on is the signature
of a leak (training saw values written long after they could have been known, or serving has
a real-time path training never had); one served much *staler* is the signature of a broken
pipeline. Both are compared on medians, with a ratio and an absolute floor so that seconds
of jitter never alarm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from flotilla.audit._report import AuditReport, Finding, make_summary, sort_findings
from flotilla.audit._source import connect, quote, register, time_sql
from flotilla.errors import AuditError

__all__ = ["compare_feature_ages", "merge_reports", "training_feature_ages"]

WRITTEN_SUFFIX = "__written_at"
DEFAULT_RATIO = 10.0
DEFAULT_FLOOR_S = 60.0


def training_feature_ages(
    data: Path | str | pa.Table, *, event_time: str, suffix: str = WRITTEN_SUFFIX
) -> dict[str, np.ndarray]:
    """Per feature with a ``<feature><suffix>`` column: event time minus write time, seconds.

    Raises:
        AuditError: no write-time column, or a time column that does not parse.
    """
    conn = connect()
    try:
        columns = register(conn, "train", data, "training")
        features = [c[: -len(suffix)] for c in columns if c.endswith(suffix)]
        if not features:
            raise AuditError(
                f"The training data has no '<feature>{suffix}' columns, so feature ages cannot be "
                f"computed. Columns: {sorted(columns)[:20]}."
            )
        event = time_sql(conn, "train", event_time, "event time")
        out: dict[str, np.ndarray] = {}
        for feature in features:
            written = time_sql(conn, "train", feature + suffix, "write time")
            rows = conn.sql(
                f"SELECT epoch({event}) - epoch({written}) FROM {quote('train')} "
                f"WHERE {written} IS NOT NULL AND {event} IS NOT NULL"
            ).fetchnumpy()
            out[feature] = np.asarray(next(iter(rows.values())), dtype=np.float64)
        return out
    finally:
        conn.close()


def compare_feature_ages(
    training: Mapping[str, Sequence[float] | np.ndarray],
    serving: Mapping[str, Sequence[float] | np.ndarray],
    *,
    ratio: float = DEFAULT_RATIO,
    floor_s: float = DEFAULT_FLOOR_S,
    min_rows: int = 30,
) -> AuditReport:
    """Flag features served much fresher or staler than they were trained on.

    A feature is *fresher* when its median serving age is below the median training age
    divided by ``ratio`` and the difference exceeds ``floor_s`` seconds; *staler* when it is
    above the training median times ``ratio`` (with the same floor). Features with fewer than
    ``min_rows`` ages on either side are skipped (listed in the summary).

    Example:
        >>> r = compare_feature_ages({"x": [86400.0] * 50}, {"x": [1.0] * 50})
        >>> [f.check for f in r.findings]
        ['feature_age_fresher']
    """
    if ratio <= 1.0 or floor_s < 0:
        raise AuditError(
            f"The 'ratio' must be > 1 and 'floor_s' >= 0. Got ratio={ratio}, floor_s={floor_s}."
        )
    findings: list[Finding] = []
    skipped: list[str] = []
    for feature in sorted(set(training) & set(serving)):
        train = _clean(training[feature])
        serve = _clean(serving[feature])
        if len(train) < min_rows or len(serve) < min_rows:
            skipped.append(feature)
            continue
        finding = _compare_one(feature, train, serve, ratio, floor_s)
        if finding is not None:
            findings.append(finding)
    common = sorted(set(training) & set(serving))
    summary = make_summary(
        rows=0, features=common, findings=findings, extra={
            "check": "feature_ages", "ratio": ratio, "floor_s": floor_s, "skipped": skipped,
            "only_in_training": sorted(set(training) - set(serving)),
            "only_in_serving": sorted(set(serving) - set(training)),
        },
    )  # fmt: skip
    return AuditReport(findings=sort_findings(findings), summary=summary)


def _clean(values: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    return arr[np.isfinite(arr)]


def _compare_one(
    feature: str, train: np.ndarray, serve: np.ndarray, ratio: float, floor_s: float
) -> Finding | None:
    t_med, s_med = float(np.median(train)), float(np.median(serve))
    evidence: dict[str, Any] = {
        "training_median_age_s": t_med,
        "serving_median_age_s": s_med,
        "training_p90_age_s": float(np.percentile(train, 90)),
        "serving_p90_age_s": float(np.percentile(serve, 90)),
        "training_rows": len(train),
        "serving_rows": len(serve),
        "ratio_threshold": ratio,
    }
    if s_med < t_med / ratio and t_med - s_med > floor_s:
        return Finding(
            check="feature_age_fresher",
            feature=feature,
            severity="warning",
            message=(
                f"'{feature}' is served much fresher (median {s_med:,.0f} s old) than it was "
                f"trained on (median {t_med:,.0f} s): the signature of a leak or of a serving "
                "path training never saw."
            ),
            evidence=evidence,
            advice=(
                "Build the training set with a point-in-time join on the time values became "
                "available ('flotilla features join'), so training sees what serving sees."
            ),
        )
    if s_med > max(t_med, 0.0) * ratio and s_med - t_med > floor_s:
        return Finding(
            check="feature_age_staler",
            feature=feature,
            severity="warning",
            message=(
                f"'{feature}' is served much staler (median {s_med:,.0f} s old) than it was "
                f"trained on (median {t_med:,.0f} s): the pipeline that feeds it looks broken."
            ),
            evidence=evidence,
            advice="Check the job that writes this feature; its values stopped refreshing.",
        )
    return None


def merge_reports(report: AuditReport, ages: AuditReport) -> AuditReport:
    """The training-set audit with the feature-age comparison's findings added."""
    return AuditReport(
        findings=sort_findings([*report.findings, *ages.findings]),
        summary={**report.summary, "feature_ages": ages.summary},
    )

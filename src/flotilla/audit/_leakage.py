"""Missingness that encodes the label (exact counts over all rows)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from flotilla.audit._data import AuditData, Feature
from flotilla.audit._report import Finding
from flotilla.audit._rows import examples
from flotilla.audit._source import quote
from flotilla.audit._stats import indicator_auc, oof_target_encoding, symmetric_auc

__all__ = ["MIN_ROWS", "check_nulls", "scores_of", "value_auc", "values_of"]

NULL_ERROR = (0.80, 0.70)  # (AUC, lower bound of its 95% interval)
NULL_WARNING = (0.65, 0.60)
MIN_ROWS = 20


def values_of(data: AuditData, idx: int) -> tuple[NDArray[Any], NDArray[np.bool_]]:
    x = data.sample[f"f{idx}"]
    mask = np.array([v is not None for v in x]) if x.dtype == object else ~np.isnan(x)
    return x, mask


def scores_of(feature: Feature, x: NDArray[Any]) -> NDArray[np.float64]:
    if feature.kind != "categorical":
        return x.astype(np.float64)
    _, codes = np.unique(x.astype(str), return_inverse=True)
    return codes.astype(np.float64)


def value_auc(data: AuditData, idx: int, target: str) -> float:
    """Symmetric AUC of the feature's non-null values for ``target`` (target-encoded if text)."""
    feature = data.features[idx]
    x, mask = values_of(data, idx)
    positive = data.positive(target)[mask]
    if mask.sum() < MIN_ROWS or positive.all() or not positive.any():
        return math.nan
    if feature.kind == "categorical":
        _, codes = np.unique(x[mask].astype(str), return_inverse=True)
        return symmetric_auc(oof_target_encoding(codes.astype(np.int64), positive), positive)
    return symmetric_auc(scores_of(feature, x[mask]), positive)


def check_nulls(data: AuditData) -> list[Finding]:
    """``null_encodes_label``: exact counts of nulls per class over all rows."""
    if not data.features:
        return []
    parts = ", ".join(f"count(*) FILTER (WHERE {quote(f.name)} IS NULL)" for f in data.features)
    counts = {
        r[0]: r[1:]
        for r in data.conn.sql(
            f"SELECT __cls, count(*), {parts} FROM rows GROUP BY __cls"
        ).fetchall()
    }
    total = sum(c[0] for c in counts.values())
    findings = []
    for i in range(len(data.features)):
        nulls = sum(c[i + 1] for c in counts.values())
        if nulls == 0 or nulls == total:
            continue
        best: tuple[float, float, float, str] = (math.nan, math.nan, math.nan, "")
        empty = (0,) * (len(data.features) + 1)
        for t in data.targets:
            pos_total, pos_null = counts.get(t, empty)[0], counts.get(t, empty)[i + 1]
            stats = indicator_auc(pos_null, pos_total, nulls - pos_null, total - pos_total)
            if math.isnan(best[0]) or stats[0] > best[0]:
                best = (*stats, t)
        auc_null, low, high, target = best
        severity = _null_severity(auc_null, low)
        if severity is None:
            continue
        pos_total = counts[target][0]
        pos_null = counts[target][i + 1]
        findings.append(
            _null_finding(
                data,
                i,
                severity,
                {
                    "nulls": nulls,
                    "total": total,
                    "pos_null": pos_null,
                    "pos_total": pos_total,
                    "auc": auc_null,
                    "low": low,
                    "high": high,
                    "target": target,
                },
            )
        )
    return findings


def _null_severity(auc_null: float, low: float) -> str | None:
    if math.isnan(auc_null):
        return None
    if auc_null >= NULL_ERROR[0] and low > NULL_ERROR[1]:
        return "error"
    if auc_null >= NULL_WARNING[0] and low > NULL_WARNING[1]:
        return "warning"
    return None


def _null_finding(data: AuditData, i: int, severity: str, s: dict[str, Any]) -> Finding:
    f = data.features[i]
    rate_null = s["pos_null"] / s["nulls"]
    rate_value = (s["pos_total"] - s["pos_null"]) / (s["total"] - s["nulls"])
    lift = rate_null / rate_value if rate_value > 0 else None
    auc_values = value_auc(data, i, s["target"])
    shown = "the label" if data.label_kind == "binary" else f"label '{s['target']}'"
    return Finding(
        check="null_encodes_label",
        feature=f.name,
        severity="error" if severity == "error" else "warning",
        message=(
            f"Whether '{f.name}' is null predicts {shown} on its own (AUC {s['auc']:.2f}, 95% CI "
            f"{s['low']:.2f}-{s['high']:.2f}; its values give AUC "
            f"{'n/a' if math.isnan(auc_values) else f'{auc_values:.2f}'}): the rate of "
            f"{shown} is {rate_null:.1%} when it is null and {rate_value:.1%} when it is not. "
            "Missingness this strong is usually written by the outcome itself (a trigger or "
            "cleanup that clears the value), which the model will not see at prediction time."
        ),
        evidence={
            "null_auc": s["auc"],
            "null_auc_ci_low": s["low"],
            "null_auc_ci_high": s["high"],
            "values_auc": None if math.isnan(auc_values) else auc_values,
            "null_share": s["nulls"] / s["total"],
            "nulls": s["nulls"],
            "label_rate_when_null": rate_null,
            "label_rate_when_not_null": rate_value,
            "lift": lift,
            "target": s["target"],
        },
        examples=examples(
            data,
            {data.event_time: "__t", data.label: "__y", f.name: quote(f.name)},
            f"{quote(f.name)} IS NULL AND __cls = '{s['target'].replace(chr(39), chr(39) * 2)}'",
        ),
        advice=(
            "Find out what sets this value to null (a trigger, a job that runs after the "
            "outcome, a form only one class fills in). Rebuild the feature as of the event time "
            "with a point-in-time join, or drop it."
        ),
        chart={
            "kind": "bars",
            "labels": ["null", "not null"],
            "values": [rate_null, rate_value],
            "unit": f"rate of {shown}",
        },
    )

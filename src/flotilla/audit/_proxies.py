"""Features that stand in for the label: copies, too-good features and predictive identifiers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from flotilla.audit._data import AuditData, Feature
from flotilla.audit._leakage import MIN_ROWS, scores_of, value_auc, values_of
from flotilla.audit._report import Finding
from flotilla.audit._rows import examples
from flotilla.audit._source import quote
from flotilla.audit._stats import spearman, symmetric_auc

__all__ = ["check_values"]

TOO_GOOD_ERROR, TOO_GOOD_WARNING = 0.95, 0.90
ID_ERROR, ID_WARNING = 0.80, 0.70
UNIQUE_SHARE = 0.95
MONOTONE_RHO = 0.95
COPY_RHO = 0.999
MAX_MAPPING_VALUES = 1000


def _weighted(data: AuditData, scores: list[float]) -> float:
    weights = [float(data.positive(t).mean()) for t in data.targets]
    pairs = [(s, w) for s, w in zip(scores, weights, strict=True) if not math.isnan(s)]
    if not pairs:
        return math.nan
    return sum(s * w for s, w in pairs) / sum(w for _, w in pairs)


def _copy_kind(data: AuditData, idx: int) -> str | None:
    """How the feature copies the label ('equal', 'mapping', 'monotonic') or None."""
    x, mask = values_of(data, idx)
    if mask.sum() < MIN_ROWS:
        return None
    feature = data.features[idx]
    xs = x[mask]
    if data.label_kind == "numeric":
        y = data.sample["__y"][mask]
        if feature.kind != "categorical" and np.unique(xs).size >= 10:
            rho = spearman(xs.astype(np.float64), y)
            if not math.isnan(rho) and abs(rho) >= COPY_RHO:
                return "monotonic"
        return None
    cls = data.sample["__cls"][mask]
    text = (
        xs.astype(str)
        if feature.kind == "categorical"
        else np.array(
            [repr(v) if not float(v).is_integer() else str(int(v)) for v in xs], dtype=object
        )
    )
    if np.all(text == cls.astype(str)):
        return "equal"
    values = np.unique(text.astype(str))
    if 2 <= values.size <= MAX_MAPPING_VALUES and text.size >= 5 * values.size:
        pairs = np.unique(np.char.add(np.char.add(text.astype(str), "\x00"), cls.astype(str)))
        if pairs.size == values.size:  # each value goes with exactly one label
            return "mapping"
    return None


def _is_identifier(data: AuditData, idx: int, distinct: int) -> bool:
    feature = data.features[idx]
    if not (feature.integer or feature.kind == "categorical"):
        return False
    if distinct >= UNIQUE_SHARE * data.rows:
        return True
    if feature.integer and distinct >= 0.5 * data.rows:
        x, mask = values_of(data, idx)
        t = data.sample["__t"]
        ok = mask & ~np.isnan(t)
        rho = spearman(x[ok].astype(np.float64), t[ok]) if ok.sum() >= MIN_ROWS else math.nan
        return not math.isnan(rho) and abs(rho) >= MONOTONE_RHO
    return False


def check_values(data: AuditData) -> list[Finding]:
    """``label_copy``, ``identifier_leakage`` and ``too_good`` for each feature."""
    if not data.features:
        return []
    parts = ", ".join(f"approx_count_distinct({quote(f.name)})" for f in data.features)
    distinct = [
        min(int(d), data.rows) for d in data.conn.sql(f"SELECT {parts} FROM rows").fetchall()[0]
    ]
    findings: list[Finding] = []
    for idx, feature in enumerate(data.features):
        copy = _copy_kind(data, idx)
        if copy:
            findings.append(_copy_finding(data, feature, copy))
            continue
        if _is_identifier(data, idx, int(distinct[idx])):
            x, mask = values_of(data, idx)
            scores = [
                symmetric_auc(scores_of(feature, x[mask]), data.positive(t)[mask])
                for t in data.targets
            ]
            score = _weighted(data, scores)
            if not math.isnan(score) and score >= ID_WARNING:
                findings.append(_id_finding(data, feature, score, int(distinct[idx])))
            continue
        score = _weighted(data, [value_auc(data, idx, t) for t in data.targets])
        if not math.isnan(score) and score >= TOO_GOOD_WARNING:
            findings.append(_too_good_finding(data, feature, score))
    return findings


def _auc_chart(score: float, lines: list[float]) -> dict[str, Any]:
    return {
        "kind": "bars",
        "labels": ["AUC of this feature alone"],
        "values": [score],
        "lines": lines,
        "max": 1.0,
        "unit": "AUC",
    }


def _copy_finding(data: AuditData, feature: Feature, how: str) -> Finding:
    words = {
        "equal": "is equal to the label on every row",
        "mapping": "maps each of its values to exactly one label value",
        "monotonic": "is a monotonic transform of the label (Spearman |rho| >= 0.999)",
    }[how]
    return Finding(
        check="label_copy",
        feature=feature.name,
        severity="error",
        message=f"'{feature.name}' {words}: it is a copy of the answer, not a predictor.",
        evidence={"how": how, "sample_rows": int(data.sample["__cls"].size)},
        examples=examples(
            data,
            {data.label: "__y", feature.name: quote(feature.name)},
            f"{quote(feature.name)} IS NOT NULL",
        ),
        advice="Drop the column; it is derived from the label (or the label from it).",
        chart=_auc_chart(1.0, [TOO_GOOD_WARNING, TOO_GOOD_ERROR]),
    )


def _id_finding(data: AuditData, feature: Feature, score: float, distinct: int) -> Finding:
    return Finding(
        check="identifier_leakage",
        feature=feature.name,
        severity="error" if score >= ID_ERROR else "warning",
        message=(
            f"'{feature.name}' looks like a row id or sequential key ({distinct:,} distinct "
            f"values in {data.rows:,} rows) and its order predicts the label (AUC "
            f"{score:.2f}): the label depends on when or how rows were created, which the "
            "model will not be able to use on new ids."
        ),
        evidence={
            "auc": score,
            "distinct": distinct,
            "rows": data.rows,
            "thresholds": {"warning": ID_WARNING, "error": ID_ERROR},
        },
        examples=examples(
            data,
            {data.label: "__y", feature.name: quote(feature.name)},
            "TRUE",
            quote(feature.name),
        ),
        advice=(
            "Drop the key from the features. If its order carries real signal (e.g. account "
            "age), replace it with that quantity computed as of the event time."
        ),
        chart=_auc_chart(score, [ID_WARNING, ID_ERROR]),
    )


def _too_good_finding(data: AuditData, feature: Feature, score: float) -> Finding:
    how = "target-rate encoding (out of fold)" if feature.kind == "categorical" else "its values"
    return Finding(
        check="too_good",
        feature=feature.name,
        severity="error" if score >= TOO_GOOD_ERROR else "warning",
        message=(
            f"'{feature.name}' alone predicts the label with AUC {score:.3f} ({how}): single "
            "features rarely separate the classes this well unless they are recorded after, "
            "or because of, the outcome."
        ),
        evidence={
            "auc": score,
            "label_kind": data.label_kind,
            "thresholds": {"warning": TOO_GOOD_WARNING, "error": TOO_GOOD_ERROR},
            "sample_rows": int(data.sample["__cls"].size),
        },
        examples=examples(
            data,
            {data.label: "__y", feature.name: quote(feature.name)},
            f"{quote(feature.name)} IS NOT NULL",
        ),
        advice=(
            "Check when and how the value is produced: if it is only known after the outcome, "
            "drop it or rebuild it as of the event time; if it is legitimate, accept the risk "
            "explicitly."
        ),
        chart=_auc_chart(score, [TOO_GOOD_WARNING, TOO_GOOD_ERROR]),
    )

"""Drift of every field between a reference and a current table: :func:`compare_columns`.

The default test and threshold per field follow Evidently's documented defaults
(``get_default_stattest``; see ``MONITORING.md`` Appendix A), decided on the non-null values:

=========================  ==================================  ==============================
field                      reference ≤ 1000 non-null rows      reference > 1000 non-null rows
=========================  ==================================  ==============================
numeric, > 5 unique        KS, drift if p ≤ 0.05               normed Wasserstein ≥ 0.1
numeric, 3-5 unique        chi-square, p < 0.05                Jensen-Shannon ≥ 0.1
categorical, > 2 unique    chi-square, p < 0.05                Jensen-Shannon ≥ 0.1
binary (≤ 2 unique)        two-proportion z-test, p < 0.05     Jensen-Shannon ≥ 0.1
=========================  ==================================  ==============================

"Unique" counts the distinct non-null values of reference and current together. Every other
statistic is computed too, whatever the test. Beyond Evidently, the change in null rate is a
finding of its own (two-proportion z-test), and the p-value tests of a report are corrected
for multiple testing with Benjamini-Hochberg (``correction="bh"``, the default).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from flotilla.errors import ConfigError
from flotilla.monitoring import drift
from flotilla.monitoring._columns import (
    OTHER,
    TOP_CATEGORIES,
    aligned_counts,
    as_table,
    categorical_column,
    check_columns,
    numeric_column,
)
from flotilla.monitoring.profiles import is_profile, profile_to_reference

__all__ = ["DriftReport", "FieldDrift", "compare_columns"]

Correction = Literal["bh", "none"]
P_TESTS = ("ks", "chi2", "z")
_SMALL_REFERENCE = 1000


@dataclass(frozen=True, kw_only=True)
class FieldDrift:
    """The drift statistics of one field (``None`` where a statistic does not apply).

    ``drifted`` is the decision of ``test`` against ``threshold`` (after the report's
    correction for p-value tests), or ``None`` with a ``note`` when it cannot be decided.
    """

    name: str
    kind: str
    test: str | None
    threshold: float | None
    statistic: float | None
    drifted: bool | None
    n_reference: int
    n_current: int
    n_reference_values: int
    n_current_values: int
    null_rate_reference: float | None
    null_rate_current: float | None
    null_rate_pvalue: float | None = None
    null_rate_drifted: bool | None = None
    psi: float | None = None
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    chi2_pvalue: float | None = None
    z_pvalue: float | None = None
    jensen_shannon: float | None = None
    wasserstein_normed: float | None = None
    pvalue_adjusted: float | None = None
    null_rate_pvalue_adjusted: float | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: _clean(v) for k, v in asdict(self).items()}


@dataclass(frozen=True, kw_only=True)
class DriftReport:
    """Per-field drift and the dataset verdict (Evidently's ``drift_share``, default 0.5)."""

    fields: tuple[FieldDrift, ...]
    correction: Correction = "bh"
    q: float = 0.05
    drift_share: float = 0.5
    notes: tuple[str, ...] = field(default=())

    @property
    def drifted_fields(self) -> list[str]:
        return [f.name for f in self.fields if f.drifted]

    @property
    def null_rate_findings(self) -> list[str]:
        return [f.name for f in self.fields if f.null_rate_drifted]

    @property
    def share_drifted(self) -> float:
        return len(self.drifted_fields) / len(self.fields) if self.fields else 0.0

    @property
    def dataset_drift(self) -> bool:
        return any(f.drifted is not None for f in self.fields) and (
            self.share_drifted >= self.drift_share
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "fields": [f.to_dict() for f in self.fields],
            "summary": {
                "n_fields": len(self.fields),
                "n_drifted": len(self.drifted_fields),
                "drifted_fields": self.drifted_fields,
                "share_drifted": self.share_drifted,
                "drift_share": self.drift_share,
                "dataset_drift": self.dataset_drift,
                "null_rate_findings": self.null_rate_findings,
                "correction": self.correction,
                "q": self.q,
            },
            "notes": list(self.notes),
        }


def compare_columns(
    reference: pa.Table | Mapping[str, Any],
    current: pa.Table,
    *,
    fields: Sequence[str] | None = None,
    correction: Correction = "bh",
    q: float = 0.05,
    min_rows: int = 30,
    drift_share: float = 0.5,
) -> DriftReport:
    """Compare every field of ``current`` with ``reference`` and decide drift per field.

    Args:
        reference: a table, or a stored profile (see :func:`build_profile`), whose synthetic
            sample from :func:`profile_to_reference` is used.
        current: the data to check.
        fields: the fields to compare (default: every column of the reference).
        correction: ``"bh"`` applies Benjamini-Hochberg at ``q`` across every p-value test of
            the report (the chosen KS/chi-square/z tests and the null-rate tests); ``"none"``
            compares each raw p-value with its threshold, as Evidently does.
        q: the false discovery rate for ``"bh"``.
        min_rows: fewer non-null values than this in either sample give ``drifted=None``
            and the note ``"too few rows"`` (the statistics are still reported).
        drift_share: share of drifted fields above which ``dataset_drift`` is true.

    Returns:
        A :class:`DriftReport`.

    Raises:
        ConfigError: fields missing from either side, of incompatible or unsupported types,
            or invalid parameters.

    Example:
        >>> import pyarrow as pa
        >>> ref = pa.table({"x": list(range(100))})
        >>> compare_columns(ref, ref).fields[0].drifted
        False
    """
    if correction not in ("bh", "none"):
        raise ConfigError(f"The 'correction' must be 'bh' or 'none'. Got {correction!r} instead.")
    if min_rows < 1:
        raise ConfigError(f"The 'min_rows' must be at least 1. Got {min_rows} instead.")
    notes: tuple[str, ...] = ()
    if is_profile(reference):
        assert isinstance(reference, Mapping)
        synthetic = profile_to_reference(reference)
        notes = (
            f"reference: profile of {reference.get('source')!r} ({reference.get('rows')} rows), "
            f"compared through a synthetic sample of {synthetic.num_rows} rows",
        )
        reference = synthetic
    ref_t, cur_t = as_table(reference), as_table(current)
    plan = check_columns(ref_t.schema, cur_t.schema, fields)
    results = []
    for name, kind in plan:
        if kind == "categorical":
            results.append(_categorical(name, ref_t.column(name), cur_t.column(name), min_rows))
        else:
            results.append(_numeric(name, ref_t.column(name), cur_t.column(name), min_rows))
    decided = _decide(results, correction=correction, q=q, min_rows=min_rows)
    return DriftReport(
        fields=tuple(decided), correction=correction, q=q, drift_share=drift_share, notes=notes
    )


def _base(
    name: str, kind: str, ref_rows: int, ref_null: int, cur_rows: int, cur_null: int
) -> FieldDrift:
    nr_ref = ref_null / ref_rows if ref_rows else None
    nr_cur = cur_null / cur_rows if cur_rows else None
    null_p = None
    if ref_rows and cur_rows:
        null_p = drift.proportion_z_test(ref_null, ref_rows, cur_null, cur_rows)
    return FieldDrift(
        name=name,
        kind=kind,
        test=None,
        threshold=None,
        statistic=None,
        drifted=None,
        n_reference=ref_rows,
        n_current=cur_rows,
        n_reference_values=ref_rows - ref_null,
        n_current_values=cur_rows - cur_null,
        null_rate_reference=nr_ref,
        null_rate_current=nr_cur,
        null_rate_pvalue=null_p,
    )


def _note_if_empty(base: FieldDrift) -> FieldDrift | None:
    if base.n_reference_values == 0 or base.n_current_values == 0:
        side = "reference" if base.n_reference_values == 0 else "current data"
        return replace(base, note=f"no non-null values in the {side}")
    return None


def _numeric(name: str, ref_col: Any, cur_col: Any, min_rows: int) -> FieldDrift:
    ref, cur = numeric_column(ref_col), numeric_column(cur_col)
    base = _base(name, "numeric", ref.n_rows, ref.n_null, cur.n_rows, cur.n_null)
    empty = _note_if_empty(base)
    if empty is not None:
        return empty
    r, c = np.sort(ref.values), np.sort(cur.values)  # sorted once: later sorts are cheap
    merged = np.sort(np.concatenate([r, c]), kind="stable")
    n_unique = int(np.count_nonzero(np.diff(merged))) + 1
    ref_counts, cur_counts = drift.binned_counts(r, c, numeric=True)
    ks_stat, ks_p = drift.ks(r, c)
    stats = _shared_stats(ref_counts, cur_counts)
    stats.update(
        ks_statistic=ks_stat, ks_pvalue=ks_p, wasserstein_normed=drift.wasserstein_normed(r, c)
    )
    if n_unique <= 2:
        stats["z_pvalue"] = _binary_z(merged[0], r, c)
    kind = "binary" if n_unique <= 2 else "numeric"
    small = r.size <= _SMALL_REFERENCE
    if n_unique > 5:
        test = "ks" if small else "wasserstein_normed"
    elif small:
        test = "chi2" if n_unique > 2 else "z"
    else:
        test = "jensen_shannon"
    return _with_test(replace(base, kind=kind, **stats), test, min_rows)


def _categorical(name: str, ref_col: Any, cur_col: Any, min_rows: int) -> FieldDrift:
    ref, cur = categorical_column(ref_col), categorical_column(cur_col)
    base = _base(name, "categorical", ref.n_rows, ref.n_null, cur.n_rows, cur.n_null)
    empty = _note_if_empty(base)
    if empty is not None:
        return empty
    cur_counts_by_key = cur.counts
    if OTHER in ref.counts:  # a pooled reference (profile): unknown categories are "other"
        cur_counts_by_key = {}
        for key, count in cur.counts.items():
            pooled = key if key in ref.counts else OTHER
            cur_counts_by_key[pooled] = cur_counts_by_key.get(pooled, 0) + count
    keys, ref_counts, cur_counts = aligned_counts(ref.counts, cur_counts_by_key)
    stats = _shared_stats(ref_counts, cur_counts)
    n_unique = len(ref.counts.keys() | cur_counts_by_key.keys())
    note = None
    if n_unique > TOP_CATEGORIES:
        note = (
            f"{n_unique} categories: {len(keys) - 1} frequent reference categories compared, "
            "the rest pooled as __other__"
        )
    if n_unique <= 2:
        first = 0  # Evidently: sorted keys, the first one against the rest
        stats["z_pvalue"] = drift.proportion_z_test(
            int(ref_counts.sum() - ref_counts[first]),
            int(ref_counts.sum()),
            int(cur_counts.sum() - cur_counts[first]),
            int(cur_counts.sum()),
        )
    kind = "binary" if n_unique <= 2 else "categorical"
    small = base.n_reference_values <= _SMALL_REFERENCE
    test = ("chi2" if n_unique > 2 else "z") if small else "jensen_shannon"
    return _with_test(replace(base, kind=kind, note=note, **stats), test, min_rows)


def _shared_stats(ref_counts: Any, cur_counts: Any) -> dict[str, Any]:
    ref_f, cur_f = drift.counts_to_proportions(ref_counts, cur_counts, fill_zeros=True)
    ref_p, cur_p = drift.counts_to_proportions(ref_counts, cur_counts, fill_zeros=False)
    return {
        "psi": drift.psi(ref_f, cur_f),
        "jensen_shannon": drift.jensen_shannon(ref_p, cur_p),
        "chi2_pvalue": drift.chi2(ref_counts, cur_counts),
    }


def _binary_z(first: float, r: Any, c: Any) -> float:
    return drift.proportion_z_test(int((r != first).sum()), r.size, int((c != first).sum()), c.size)


_THRESHOLDS = {
    "ks": 0.05,
    "chi2": 0.05,
    "z": 0.05,
    "jensen_shannon": 0.1,
    "wasserstein_normed": 0.1,
}
_STAT_OF_TEST = {
    "ks": "ks_pvalue",
    "chi2": "chi2_pvalue",
    "z": "z_pvalue",
    "jensen_shannon": "jensen_shannon",
    "wasserstein_normed": "wasserstein_normed",
}


def _with_test(fd: FieldDrift, test: str, min_rows: int) -> FieldDrift:
    value = getattr(fd, _STAT_OF_TEST[test])
    note = fd.note
    if min(fd.n_reference_values, fd.n_current_values) < min_rows:
        note = "too few rows" if note is None else f"too few rows; {note}"
    return replace(fd, test=test, threshold=_THRESHOLDS[test], statistic=value, note=note)


def _raw_decision(test: str, value: float, threshold: float) -> bool:
    if test == "ks":
        return value <= threshold
    if test in P_TESTS:
        return value < threshold
    return value >= threshold


def _decide(
    results: list[FieldDrift], *, correction: Correction, q: float, min_rows: int
) -> list[FieldDrift]:
    decidable = [
        fd.test is not None and fd.statistic is not None and not _too_few(fd) for fd in results
    ]
    null_ok = [
        fd.null_rate_pvalue is not None and min(fd.n_reference, fd.n_current) >= min_rows
        for fd in results
    ]
    # no null on either side: a degenerate test (p = 1) that would only dilute the correction
    no_nulls = [
        fd.n_reference_values == fd.n_reference and fd.n_current_values == fd.n_current
        for fd in results
    ]
    pvals: list[float] = []
    slots: list[tuple[int, str]] = []
    for i, fd in enumerate(results):
        if decidable[i] and fd.test in P_TESTS:
            pvals.append(float(fd.statistic))  # type: ignore[arg-type]
            slots.append((i, "dist"))
        if null_ok[i] and not no_nulls[i]:
            pvals.append(float(fd.null_rate_pvalue))  # type: ignore[arg-type]
            slots.append((i, "null"))
    adjusted: dict[tuple[int, str], tuple[bool, float]] = {}
    if correction == "bh" and pvals:
        reject, adj = drift.benjamini_hochberg(pvals, q)
        adjusted = {s: (bool(r), float(a)) for s, r, a in zip(slots, reject, adj, strict=True)}
    out = []
    for i, fd in enumerate(results):
        changes: dict[str, Any] = {}
        if decidable[i]:
            assert fd.test is not None and fd.threshold is not None and fd.statistic is not None
            if (i, "dist") in adjusted:
                changes["drifted"], changes["pvalue_adjusted"] = adjusted[(i, "dist")]
            else:
                changes["drifted"] = _raw_decision(fd.test, fd.statistic, fd.threshold)
        if null_ok[i]:
            if (i, "null") in adjusted:
                flag, adj_p = adjusted[(i, "null")]
                changes["null_rate_drifted"], changes["null_rate_pvalue_adjusted"] = flag, adj_p
            else:
                changes["null_rate_drifted"] = float(fd.null_rate_pvalue or 1.0) < q
        out.append(replace(fd, **changes))
    return out


def _too_few(fd: FieldDrift) -> bool:
    return fd.note is not None and "too few rows" in fd.note


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

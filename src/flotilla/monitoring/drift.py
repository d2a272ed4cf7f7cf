"""Drift statistics as pure functions on NumPy arrays, following Evidently's conventions.

Every function here takes the *non-null* values of a reference and a current sample (or their
counts) and returns plain floats. Nulls are never dropped silently: :func:`null_rates` reports
them and :func:`split_nulls` separates them explicitly, so that the callers report both the
distribution statistics and the change in null rate.

Conventions (see ``MONITORING.md``, Appendix A and B):

- binning for PSI, KL-style and Jensen-Shannon (:func:`binned_proportions`): when the data are
  numeric and the reference has more than 20 unique values, the edges are
  ``np.histogram_bin_edges(ref ∪ cur, "sturges")``; otherwise one bin per category (value).
  PSI replaces zero proportions with ``1e-4`` (or ``min / 1e6`` when the smallest non-zero
  proportion is at most ``1e-4``), as Evidently does; Jensen-Shannon does not.
- Jensen-Shannon is the *distance* of ``scipy.spatial.distance.jensenshannon`` with the natural
  logarithm (Evidently's convention; NannyML uses base 2), so it lies in ``[0, sqrt(ln 2)]``.
- the normed Wasserstein distance is ``W1(ref, cur) / max(std(ref), 0.001)`` with the
  population standard deviation (``ddof=0``), as Evidently.
- KS is ``scipy.stats.ks_2samp`` with its default (exact p-value for small samples).
- chi-square is a goodness-of-fit test of the current counts against the reference
  proportions (expected = reference counts × n_cur / n_ref), as Evidently.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "benjamini_hochberg",
    "binned_counts",
    "binned_proportions",
    "chi2",
    "counts_to_proportions",
    "jensen_shannon",
    "ks",
    "null_rates",
    "proportion_z_test",
    "psi",
    "split_nulls",
    "wasserstein_normed",
]

FloatArray = NDArray[np.float64]
_UNIQUE_FOR_HISTOGRAM = 20
_ZERO_FILL = 1e-4


def split_nulls(values: ArrayLike) -> tuple[NDArray[Any], int]:
    """The non-null values of ``values`` and how many were null (``None`` or NaN)."""
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        mask = np.isnan(arr)
    elif arr.dtype.kind == "O":
        mask = np.fromiter(
            (v is None or (isinstance(v, float) and math.isnan(v)) for v in arr),
            dtype=bool,
            count=arr.size,
        )
    else:
        return arr, 0
    return arr[~mask], int(mask.sum())


def null_rates(reference: ArrayLike, current: ArrayLike) -> tuple[float, float]:
    """The share of nulls (``None`` or NaN) in each sample; ``nan`` for an empty sample.

    Example:
        >>> null_rates([1.0, float("nan")], [1.0, 2.0, 3.0, None])
        (0.5, 0.25)
    """
    out = []
    for values in (reference, current):
        arr = np.asarray(values)
        _, n_null = split_nulls(arr)
        out.append(n_null / arr.size if arr.size else math.nan)
    return out[0], out[1]


def binned_counts(
    reference: ArrayLike, current: ArrayLike, *, numeric: bool
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Evidently's bins (``get_binned_data``) of two non-null samples, as counts per bin.

    Numbers whose reference has more than 20 unique values get
    ``np.histogram_bin_edges(ref ∪ cur, "sturges")``; everything else one bin per value.
    """
    ref = np.asarray(reference)
    cur = np.asarray(current)
    if ref.size == 0 or cur.size == 0:
        raise ValueError("Both samples need at least one non-null value to be binned.")
    if numeric and np.unique(ref).size > _UNIQUE_FOR_HISTOGRAM:
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]).astype(float), bins="sturges")
        return np.histogram(ref, edges)[0], np.histogram(cur, edges)[0]
    keys, inverse = np.unique(np.concatenate([ref, cur]), return_inverse=True)
    return (
        np.bincount(inverse[: ref.size], minlength=keys.size),
        np.bincount(inverse[ref.size :], minlength=keys.size),
    )


def binned_proportions(
    reference: ArrayLike, current: ArrayLike, *, numeric: bool, fill_zeros: bool
) -> tuple[FloatArray, FloatArray]:
    """Evidently's binning (``get_binned_data``) of two non-null samples into proportions.

    Args:
        reference: the reference values, nulls removed.
        current: the current values, nulls removed.
        numeric: whether the values are numbers; numbers whose reference has more than 20
            unique values get Sturges bins over the union, everything else one bin per value.
        fill_zeros: replace zero proportions like Evidently's PSI (``True``) or keep them (JS).

    Returns:
        The reference and current proportions over the same bins.
    """
    ref_c, cur_c = binned_counts(reference, current, numeric=numeric)
    return counts_to_proportions(ref_c, cur_c, fill_zeros=fill_zeros)


def counts_to_proportions(
    reference_counts: ArrayLike, current_counts: ArrayLike, *, fill_zeros: bool
) -> tuple[FloatArray, FloatArray]:
    """Counts per bin to proportions, zero proportions filled as Evidently's PSI when asked."""
    ref_c = np.asarray(reference_counts, dtype=np.float64)
    cur_c = np.asarray(current_counts, dtype=np.float64)
    ref_p = ref_c / ref_c.sum()
    cur_p = cur_c / cur_c.sum()
    if fill_zeros:
        ref_p, cur_p = _fill_zeros(ref_p), _fill_zeros(cur_p)
    return ref_p, cur_p


def _fill_zeros(p: FloatArray) -> FloatArray:
    out = p.copy()
    nonzero = out[out != 0]
    if nonzero.size == 0:
        return out
    smallest = float(nonzero.min())
    out[out == 0] = smallest / 1e6 if smallest <= _ZERO_FILL else _ZERO_FILL
    return out


def psi(reference_proportions: ArrayLike, current_proportions: ArrayLike) -> float:
    """Population stability index ``Σ (r − c)·ln(r / c)`` over proportions without zeros.

    Use :func:`binned_proportions` with ``fill_zeros=True`` to get the proportions. PSI is
    never negative; Evidently's default drift threshold is ``psi >= 0.1``.
    """
    r = np.asarray(reference_proportions, dtype=np.float64)
    c = np.asarray(current_proportions, dtype=np.float64)
    if r.shape != c.shape:
        raise ValueError(f"PSI needs proportions over the same bins; got {r.shape} and {c.shape}.")
    if np.any(r <= 0) or np.any(c <= 0):
        raise ValueError("PSI needs strictly positive proportions; fill zero bins first.")
    return float(np.sum((r - c) * np.log(r / c)))


def jensen_shannon(p: ArrayLike, q: ArrayLike) -> float:
    """Jensen-Shannon *distance* with the natural log (Evidently), in ``[0, sqrt(ln 2)]``.

    ``p`` and ``q`` are proportions (or counts) over the same bins; they are normalised by
    SciPy. Evidently's default drift threshold is ``jensen_shannon >= 0.1``.
    """
    from scipy.spatial import distance

    value = float(distance.jensenshannon(np.asarray(p, float), np.asarray(q, float)))
    return 0.0 if math.isnan(value) else value  # nan only for two all-zero inputs


def ks(reference: ArrayLike, current: ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test: ``(statistic D, p-value)`` from ``ks_2samp``.

    Evidently flags drift when ``p <= 0.05``.
    """
    from scipy import stats  # imported here: scipy costs ~1 s at start-up

    res = stats.ks_2samp(np.asarray(reference, float), np.asarray(current, float))
    return float(res.statistic), float(res.pvalue)


def wasserstein_normed(reference: ArrayLike, current: ArrayLike) -> float:
    """``W1(ref, cur) / max(std(ref), 0.001)``: Evidently's normed Wasserstein distance.

    ``std`` is the population standard deviation (``ddof=0``). Evidently flags drift when the
    value is ``>= 0.1``.
    """
    from scipy import stats  # imported here: scipy costs ~1 s at start-up

    ref = np.asarray(reference, float)
    cur = np.asarray(current, float)
    norm = max(float(np.std(ref)), 0.001)
    return float(stats.wasserstein_distance(ref, cur)) / norm


def chi2(reference_counts: ArrayLike, current_counts: ArrayLike) -> float:
    """p-value of the chi-square goodness-of-fit test of current counts to the reference.

    Expected counts are the reference counts × ``n_cur / n_ref`` (Evidently). Bins empty in
    both samples are ignored. A bin with current observations but no reference observations
    makes the statistic infinite: the p-value is then ``0.0`` (a new category is drift).
    Evidently flags drift when ``p < 0.05``.
    """
    from scipy import stats  # imported here: scipy costs ~1 s at start-up

    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    if ref.shape != cur.shape:
        raise ValueError(f"chi2 needs counts over the same bins; got {ref.shape} and {cur.shape}.")
    n_ref, n_cur = ref.sum(), cur.sum()
    if n_ref <= 0 or n_cur <= 0:
        raise ValueError("chi2 needs at least one observation in each sample.")
    keep = (ref > 0) | (cur > 0)
    ref, cur = ref[keep], cur[keep]
    if np.any((ref == 0) & (cur > 0)):
        return 0.0
    if ref.size < 2:
        return 1.0
    expected = ref * (n_cur / n_ref)
    return float(stats.chisquare(cur, expected).pvalue)


def proportion_z_test(
    successes_reference: int, n_reference: int, successes_current: int, n_current: int
) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (Evidently's ``z`` test).

    Used for binary fields and for the change in null rate. Equal proportions of 0 or 1 in
    both samples give ``1.0``.
    """
    from scipy import stats  # imported here: scipy costs ~1 s at start-up

    if n_reference <= 0 or n_current <= 0:
        raise ValueError("The z-test needs at least one observation in each sample.")
    p1 = successes_reference / n_reference
    p2 = successes_current / n_current
    pooled = (successes_reference + successes_current) / (n_reference + n_current)
    var = pooled * (1 - pooled) * (1 / n_reference + 1 / n_current)
    if var <= 0:
        return 1.0
    z = (p1 - p2) / math.sqrt(var)
    return float(2 * stats.norm.sf(abs(z)))


def benjamini_hochberg(pvalues: ArrayLike, q: float = 0.05) -> tuple[NDArray[np.bool_], FloatArray]:
    """Benjamini-Hochberg: which hypotheses to reject at FDR ``q``, and adjusted p-values.

    Rejects ``p_(i)`` for ``i <= max{k : p_(k) <= k q / m}``; the adjusted p-values are those
    of ``scipy.stats.false_discovery_control`` and ``reject == adjusted <= q``. NaN p-values
    (tests that could not run) are left out of ``m`` and never rejected.
    """
    from scipy import stats  # imported here: scipy costs ~1 s at start-up

    if not 0 < q < 1:
        raise ValueError(f"The 'q' of benjamini_hochberg must be in (0, 1). Got {q} instead.")
    p = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    reject = np.zeros(p.shape, dtype=bool)
    ok = ~np.isnan(p)
    if ok.any():
        adj = np.asarray(stats.false_discovery_control(np.clip(p[ok], 0.0, 1.0)), float)
        adjusted[ok] = adj
        reject[ok] = adj <= q
    return reject, adjusted

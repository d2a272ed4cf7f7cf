"""The drift statistics against SciPy and direct reference computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from flotilla.monitoring import drift

TOL = 1e-9


@pytest.fixture
def samples() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    return rng.normal(0, 1, 800), rng.normal(0.3, 1.2, 600)


def _psi_by_hand(ref: np.ndarray, cur: np.ndarray) -> float:
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    r = np.histogram(ref, edges)[0] / len(ref)
    c = np.histogram(cur, edges)[0] / len(cur)
    total = 0.0
    for ri, ci in zip(r, c, strict=True):
        ri = ri if ri > 0 else 1e-4  # Evidently's fill (min proportion > 1e-4 here)
        ci = ci if ci > 0 else 1e-4
        total += (ri - ci) * math.log(ri / ci)
    return total


def test_psi_matches_hand_computation(samples: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = samples
    r, c = drift.binned_proportions(ref, cur, numeric=True, fill_zeros=True)
    assert drift.psi(r, c) == pytest.approx(_psi_by_hand(ref, cur), abs=TOL)


def test_sturges_bins_when_reference_has_more_than_20_unique_values() -> None:
    ref = np.arange(21, dtype=float)
    cur = np.arange(5, 26, dtype=float)
    r_counts, _ = drift.binned_counts(ref, cur, numeric=True)
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    assert len(r_counts) == len(edges) - 1
    few = np.arange(20, dtype=float)
    r_counts, c_counts = drift.binned_counts(few, few + 1, numeric=True)
    assert len(r_counts) == 21  # one bin per value of the union
    assert r_counts.sum() == 20 and c_counts.sum() == 20


def test_psi_fill_uses_min_over_million_for_tiny_proportions() -> None:
    ref = np.array([0] * 100_000 + [1] * 5)  # proportion 5e-5 <= 1e-4
    cur = np.array([0] * 10 + [2] * 10)
    r, c = drift.binned_proportions(ref, cur, numeric=False, fill_zeros=True)
    assert r[2] == pytest.approx((5 / 100_005) / 1e6, rel=1e-12)
    assert c[1] == pytest.approx(1e-4)


def test_jensen_shannon_matches_scipy_natural_log(samples: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = samples
    r, c = drift.binned_proportions(ref, cur, numeric=True, fill_zeros=False)
    assert drift.jensen_shannon(r, c) == pytest.approx(jensenshannon(r, c), abs=TOL)
    m = (r + c) / 2
    kl = lambda a, b: sum(x * math.log(x / y) for x, y in zip(a, b, strict=True) if x > 0)  # noqa: E731
    assert drift.jensen_shannon(r, c) == pytest.approx(
        math.sqrt(kl(r, m) / 2 + kl(c, m) / 2), abs=TOL
    )


def test_ks_matches_scipy(samples: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = samples
    stat, p = drift.ks(ref, cur)
    expected = stats.ks_2samp(ref, cur)
    assert stat == pytest.approx(expected.statistic, abs=TOL)
    assert p == pytest.approx(expected.pvalue, abs=TOL)
    d = max(abs(np.mean(ref <= x) - np.mean(cur <= x)) for x in np.concatenate([ref, cur]))
    assert stat == pytest.approx(d, abs=TOL)


def test_wasserstein_normed_matches_scipy(samples: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = samples
    expected = stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert drift.wasserstein_normed(ref, cur) == pytest.approx(expected, abs=TOL)
    const = np.full(50, 3.0)
    assert drift.wasserstein_normed(const, const + 1) == pytest.approx(1 / 0.001, abs=1e-6)


def test_chi2_matches_scipy_goodness_of_fit() -> None:
    ref_counts = np.array([500, 300, 200])
    cur_counts = np.array([40, 35, 25])
    expected = stats.chisquare(cur_counts, ref_counts * cur_counts.sum() / ref_counts.sum())
    assert drift.chi2(ref_counts, cur_counts) == pytest.approx(expected.pvalue, abs=TOL)


def test_chi2_new_category_is_drift_and_empty_bins_are_ignored() -> None:
    assert drift.chi2([10, 0, 5], [3, 4, 2]) == 0.0
    with_empty = drift.chi2([10, 0, 5], [3, 0, 2])
    assert with_empty == pytest.approx(drift.chi2([10, 5], [3, 2]), abs=TOL)


def test_proportion_z_test_matches_direct_formula() -> None:
    p = drift.proportion_z_test(30, 100, 50, 120)
    p1, p2, pooled = 30 / 100, 50 / 120, 80 / 220
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 120))
    assert p == pytest.approx(2 * (1 - stats.norm.cdf(abs(z))), abs=TOL)
    assert drift.proportion_z_test(0, 50, 0, 60) == 1.0


def test_null_rates_counts_none_and_nan() -> None:
    assert drift.null_rates([1.0, np.nan, 2.0, np.nan], np.array(["a", None], dtype=object)) == (
        0.5,
        0.5,
    )
    values, n_null = drift.split_nulls(np.array([1.0, np.nan]))
    assert n_null == 1 and values.tolist() == [1.0]
    assert math.isnan(drift.null_rates([], [1])[0])


def _bh_naive(p: list[float], q: float) -> list[bool]:
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    k_max = 0
    for rank, i in enumerate(order, start=1):
        if p[i] <= rank * q / m:
            k_max = rank
    reject = [False] * m
    for rank, i in enumerate(order, start=1):
        reject[i] = rank <= k_max
    return reject


def test_benjamini_hochberg_known_example() -> None:
    p = [0.01, 0.04, 0.03, 0.005, 0.2]
    reject, adjusted = drift.benjamini_hochberg(p, 0.05)
    assert reject.tolist() == _bh_naive(p, 0.05) == [True, True, True, True, False]
    assert adjusted[3] == pytest.approx(0.025)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=40),
    st.sampled_from([0.01, 0.05, 0.1, 0.2]),
)
def test_benjamini_hochberg_agrees_with_naive(p: list[float], q: float) -> None:
    reject, _ = drift.benjamini_hochberg(p, q)
    naive = _bh_naive(p, q)
    m = len(p)
    ranks = {i: r for r, i in enumerate(sorted(range(m), key=lambda i: p[i]), start=1)}
    for i, (got, want) in enumerate(zip(reject.tolist(), naive, strict=True)):
        if got != want:  # only floating-point ties at the boundary may differ
            assert any(abs(p[j] - ranks[j] * q / m) < 1e-12 for j in range(m)), (i, p)


def test_benjamini_hochberg_skips_nan_and_checks_q() -> None:
    reject, adjusted = drift.benjamini_hochberg([0.001, float("nan")], 0.05)
    assert reject.tolist() == [True, False] and math.isnan(adjusted[1])
    with pytest.raises(ValueError, match="'q'"):
        drift.benjamini_hochberg([0.1], 1.5)


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=100, deadline=None)
@given(st.lists(finite, min_size=1, max_size=200), st.lists(finite, min_size=1, max_size=200))
def test_psi_nonnegative_and_js_symmetric_and_bounded(a: list[float], b: list[float]) -> None:
    r, c = drift.binned_proportions(a, b, numeric=True, fill_zeros=True)
    assert drift.psi(r, c) >= -1e-12
    rp, cp = drift.binned_proportions(a, b, numeric=True, fill_zeros=False)
    js = drift.jensen_shannon(rp, cp)
    assert js == pytest.approx(drift.jensen_shannon(cp, rp), abs=1e-12)
    assert -1e-12 <= js <= math.sqrt(math.log(2)) + 1e-12


@settings(max_examples=100, deadline=None)
@given(st.lists(finite, min_size=2, max_size=200))
def test_identical_samples_show_no_drift(a: list[float]) -> None:
    r, c = drift.binned_proportions(a, a, numeric=True, fill_zeros=True)
    assert drift.psi(r, c) == pytest.approx(0.0, abs=1e-12)
    assert drift.jensen_shannon(r, c) == pytest.approx(0.0, abs=1e-6)
    assert drift.ks(a, a)[1] == pytest.approx(1.0)
    assert drift.wasserstein_normed(a, a) == pytest.approx(0.0, abs=1e-9)


def test_psi_and_js_detect_a_shift() -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(0, 1, 2000), rng.normal(1, 1, 2000)
    r, c = drift.binned_proportions(ref, cur, numeric=True, fill_zeros=True)
    assert drift.psi(r, c) > 0.1
    assert drift.ks(ref, cur)[1] < 1e-10
    assert drift.wasserstein_normed(ref, cur) > 0.5


def test_psi_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="same bins"):
        drift.psi([0.5, 0.5], [1.0])
    with pytest.raises(ValueError, match="positive"):
        drift.psi([0.5, 0.5], [1.0, 0.0])
    with pytest.raises(ValueError, match="non-null"):
        drift.binned_counts([], [1.0], numeric=True)

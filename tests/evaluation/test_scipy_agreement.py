"""flotilla's evaluation numbers against SciPy on the same generated data.

``test_evaluation_metrics.py`` compares with scikit-learn; here every number SciPy can also
compute is recomputed with it, by an independent route:

- AUC is the Mann-Whitney U over ``n_pos * n_neg`` (``scipy.stats.mannwhitneyu``);
- DeLong's interval from midranks (Sun & Xu 2014) with ``scipy.stats.rankdata`` and
  ``scipy.stats.norm``;
- log loss with ``scipy.special.xlogy``/``xlog1py``;
- the percentile bootstrap (single and paired) against ``scipy.stats.bootstrap``, and the
  paired interval against the t interval of ``scipy.stats.ttest_rel``;
- the mSPRT's ``ln Lambda_n`` as a ratio of normal densities (``scipy.stats.norm``) and as
  the mixture integral itself (``scipy.integrate.quad``);
- and all of these once more through ``compare()`` on prediction and outcome records.

Tolerances: where the formulas are the same the numbers must agree to rounding (``EXACT``).
Where both sides resample with different random numbers they agree only statistically: the
Monte Carlo standard deviation of a 2.5% or 97.5% percentile from ``B`` resamples is about
``sqrt(0.025 * 0.975 / B) / phi(1.96) * se = 2.67 * se / sqrt(B)`` (``se``: the bootstrap
standard error), so each such test states its bound in units of ``se`` with the number of
Monte Carlo standard deviations it allows. Every seed is fixed: the tests are deterministic.
"""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import integrate, special, stats

from flotilla.evaluation import (
    compare,
    delong,
    evaluate,
    log_lambda,
    metric_value,
    msprt,
    paired_bootstrap,
    per_row_loss,
)
from flotilla.portfolio import PromotionPolicy
from flotilla.records import OutcomeStore
from flotilla.testing import FakeClock
from shadow_support import T0, record_labeled

EXACT = 1e-12  # the same formula computed two ways: only rounding differs
Z975 = float(stats.norm.ppf(0.975))
# MC sd of a bootstrap percentile endpoint, in units of the bootstrap standard error
MC_SD_PER_SQRT_B = math.sqrt(0.025 * 0.975) / float(stats.norm.pdf(Z975))  # = 2.67


def _mc_sd(*resamples: int) -> float:
    """Monte Carlo sd (in se units) of the difference of percentile endpoints estimated
    independently from the given numbers of resamples."""
    return MC_SD_PER_SQRT_B * math.sqrt(sum(1 / b for b in resamples))


def _binary(n: int, seed: int, *, signal: float = 1.0, decimals: int | None = 2) -> Any:
    """Labels and probabilities; rounded to ``decimals`` so that many scores tie."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = special.expit(signal * (2 * y - 1) + rng.normal(size=n))
    return y, (p if decimals is None else np.round(p, decimals))


# -- SciPy oracles -------------------------------------------------------------------------------


def scipy_auc(y: NDArray[Any], s: NDArray[Any]) -> float:
    """AUC = U / (n_pos n_neg), U the Mann-Whitney statistic of the positives (ties: 1/2)."""
    pos, neg = s[y == 1], s[y == 0]
    u = stats.mannwhitneyu(pos, neg, method="asymptotic").statistic
    return float(u / (pos.size * neg.size))


def scipy_delong(
    y: NDArray[Any], s: NDArray[Any], confidence: float = 0.95
) -> tuple[float, float, float]:
    """DeLong by midranks (Sun & Xu 2014): placements from overall and within-class ranks."""
    pos, neg = s[y == 1], s[y == 0]
    m, k = pos.size, neg.size
    ranks = stats.rankdata(np.concatenate([pos, neg]))
    v10 = (ranks[:m] - stats.rankdata(pos)) / k  # share of negatives each positive beats
    v01 = 1 - (ranks[m:] - stats.rankdata(neg)) / m  # share of positives beating each negative
    auc = float((ranks[:m].sum() - m * (m + 1) / 2) / (m * k))
    var = np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / k
    half = float(stats.norm.ppf(0.5 + confidence / 2)) * math.sqrt(var)
    return auc, max(0.0, auc - half), min(1.0, auc + half)


def scipy_logloss_rows(y: NDArray[Any], p: NDArray[Any]) -> NDArray[np.float64]:
    """-(y log p + (1 - y) log(1 - p)), probabilities clipped to [eps, 1 - eps] (as sklearn)."""
    eps = np.finfo(np.float64).eps
    q = np.clip(p, eps, 1 - eps)
    return np.asarray(-(special.xlogy(y, q) + special.xlog1py(1 - y, -q)), dtype=np.float64)


def scipy_log_lambda(n: int, mean: float, *, sigma2: float, tau2: float, theta0: float) -> float:
    """The mixture likelihood ratio through the sufficient statistic: the sample mean is
    N(theta, sigma2/n), so
    Lambda_n = N(mean; theta0, sigma2/n + tau2) / N(mean; theta0, sigma2/n)."""
    return float(
        stats.norm.logpdf(mean, theta0, math.sqrt(sigma2 / n + tau2))
        - stats.norm.logpdf(mean, theta0, math.sqrt(sigma2 / n))
    )


def quad_lambda(d: NDArray[Any], *, sigma2: float, tau2: float, theta0: float) -> float:
    """Lambda_n as the integral of the likelihood ratio over the N(theta0, tau2) mixture."""
    n, total = d.size, float(d.sum())
    sd = math.sqrt(tau2)

    def integrand(theta: float) -> float:
        # prod_i N(d_i; theta, sigma2) / N(d_i; theta0, sigma2), expanded
        log_ratio = ((theta - theta0) * total - n * (theta**2 - theta0**2) / 2) / sigma2
        return math.exp(log_ratio) * float(stats.norm.pdf(theta, theta0, sd))

    value, _err = integrate.quad(integrand, theta0 - 12 * sd, theta0 + 12 * sd,
                                 epsabs=0, epsrel=1e-11, limit=200)  # fmt: skip
    return float(value)


def scipy_msprt_p(d: NDArray[Any], *, sigma2: float, tau2: float, theta0: float) -> Any:
    """The always-valid p-value: running min of 1/Lambda_k, and the first k with p <= 0.05."""
    p, first = 1.0, None
    means = np.cumsum(d) / np.arange(1, d.size + 1)
    for k, mean in enumerate(means, start=1):
        ll = scipy_log_lambda(k, float(mean), sigma2=sigma2, tau2=tau2, theta0=theta0)
        p = min(p, 1.0, math.exp(-ll))
        if first is None and p <= 0.05:
            first = k
    return p, first


def scipy_percentile_bootstrap(
    data: tuple[NDArray[Any], ...], statistic: Any, *, n: int, seed: int, vectorized: bool = True
) -> Any:
    return stats.bootstrap(
        data, statistic, n_resamples=n, paired=len(data) > 1, vectorized=vectorized,
        method="percentile", rng=np.random.default_rng(seed),
    )  # fmt: skip


# -- point values: the same formulas, exact agreement ----------------------------------------


@pytest.mark.parametrize(("seed", "decimals"), [(1, None), (2, 2), (3, 1)],
                         ids=["no-ties", "ties", "many-ties"])  # fmt: skip
def test_auc_is_the_mann_whitney_u(seed: int, decimals: int | None) -> None:
    y, s = _binary(500, seed, decimals=decimals)
    assert metric_value("auc", y, s) == pytest.approx(scipy_auc(y, s), abs=EXACT)
    # and U is the rank-sum statistic: the same number from scipy.stats.rankdata midranks
    assert metric_value("auc", y, s) == pytest.approx(scipy_delong(y, s)[0], abs=EXACT)


@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99], ids=["80", "95", "99"])
def test_delong_interval_matches_midrank_delong(confidence: float) -> None:
    y, s = _binary(700, seed=4, signal=0.7)
    got = delong(y, s, confidence=confidence)
    assert got == pytest.approx(scipy_delong(y, s, confidence), abs=EXACT)
    result = evaluate("auc", y, s, confidence=confidence)
    assert (result.method, result.value, result.lo, result.hi) == ("delong", *got)


def test_delong_interval_is_clipped_to_the_unit_interval() -> None:
    y, s = _binary(40, seed=5, signal=4.0)  # nearly separable: the normal interval passes 1
    auc, _lo, hi = scipy_delong(y, s)
    assert hi == 1.0 and auc > 0.95
    assert delong(y, s) == pytest.approx(scipy_delong(y, s), abs=EXACT)


def test_logloss_matches_xlogy() -> None:
    y, p = _binary(600, seed=6)
    p[:4] = [0.0, 1.0, 0.0, 1.0]  # exact 0 and 1: clipped to eps on both sides
    y[:4] = [0, 1, 1, 0]
    rows = scipy_logloss_rows(y, p)
    assert per_row_loss("logloss", y, p) == pytest.approx(rows, rel=EXACT, abs=0)
    assert per_row_loss("auc", y, p) == pytest.approx(rows, rel=EXACT, abs=0)  # the mSPRT's
    assert metric_value("logloss", y, p) == pytest.approx(rows.mean(), rel=EXACT)


# -- the mSPRT: closed form, integral and running p-value ----------------------------------


@pytest.mark.parametrize(
    ("n", "mean", "sigma2", "tau2", "theta0"),
    [(1, 0.3, 1.0, 0.01, 0.0), (50, 0.05, 0.4, 0.001, 0.0), (5000, 0.02, 0.2, 1e-4, 0.01),
     (10**7, -1e-3, 0.5, 2.5e-5, 0.0)],
    ids=["one", "fifty", "margin", "ten-million"],
)  # fmt: skip
def test_log_lambda_is_a_ratio_of_normal_densities(
    n: int, mean: float, sigma2: float, tau2: float, theta0: float
) -> None:
    want = scipy_log_lambda(n, mean, sigma2=sigma2, tau2=tau2, theta0=theta0)
    got = float(log_lambda(n, mean, sigma2=sigma2, tau2=tau2, theta0=theta0))
    assert got == pytest.approx(want, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("theta0", [0.0, 0.05], ids=["superiority", "margin"])
def test_log_lambda_is_the_mixture_integral(theta0: float) -> None:
    d = np.random.default_rng(7).normal(0.15, 0.6, 30)
    sigma2, tau2 = 0.36, 0.04
    want = quad_lambda(d, sigma2=sigma2, tau2=tau2, theta0=theta0)
    got = float(np.exp(log_lambda(d.size, d.mean(), sigma2=sigma2, tau2=tau2, theta0=theta0)))
    assert got == pytest.approx(want, rel=1e-8)  # quad's relative error bound is 1e-11


@pytest.mark.parametrize("known", [True, False], ids=["known-sigma", "estimated-sigma"])
def test_msprt_p_value_and_first_rejection(known: bool) -> None:
    d = np.random.default_rng(8).normal(0.08, 0.5, 800)
    sigma2 = 0.25 if known else float(stats.tvar(d))  # estimated: sample variance of all d
    tau2 = 0.01
    result = msprt(d, sigma2=sigma2 if known else None, tau2=tau2)
    p, first = scipy_msprt_p(d, sigma2=sigma2, tau2=tau2, theta0=0.0)
    assert result.sigma2 == pytest.approx(sigma2, rel=EXACT)
    assert result.p_value == pytest.approx(p, rel=1e-9, abs=1e-300)
    assert result.rejected_at == first and first is not None
    assert result.log_lambda == pytest.approx(
        scipy_log_lambda(d.size, float(d.mean()), sigma2=sigma2, tau2=tau2, theta0=0.0),
        rel=1e-10,
    )


# -- bootstrap intervals: statistical agreement -----------------------------------------------


def _mean_stat(x: NDArray[Any], axis: int = -1) -> Any:
    return np.mean(x, axis=axis)


def _rmse_stat(sq: NDArray[Any], axis: int = -1) -> Any:
    return np.sqrt(np.mean(sq, axis=axis))


def _f1_stat(tp: NDArray[Any], fp: NDArray[Any], fn: NDArray[Any], axis: int = -1) -> Any:
    tps = tp.sum(axis=axis)
    return 2 * tps / (2 * tps + fp.sum(axis=axis) + fn.sum(axis=axis))


def _auc_stat(y: NDArray[Any], s: NDArray[Any]) -> float:
    return scipy_auc(y, s)


def _f1_columns(y: NDArray[Any], p: NDArray[Any]) -> tuple[NDArray[Any], ...]:
    t, h = y == 1, p >= 0.5
    return tuple(c.astype(np.float64) for c in (t & h, ~t & h, t & ~h))


def _case(metric: str) -> tuple[Any, Any, tuple[NDArray[Any], ...], Any, bool]:
    """(y, pred) for flotilla and the same rows as SciPy's bootstrap data and statistic."""
    if metric in ("rmse", "mae"):
        rng = np.random.default_rng(9)
        y = rng.normal(size=800)
        pred = y + rng.standard_t(4, size=800)  # heavy-tailed errors: a skewed bootstrap
        err = pred - y
        data = (err**2,) if metric == "rmse" else (np.abs(err),)
        return y, pred, data, _rmse_stat if metric == "rmse" else _mean_stat, True
    y, p = _binary(800 if metric != "auc" else 300, seed=10, signal=0.6)
    if metric == "logloss":
        return y, p, (scipy_logloss_rows(y, p),), _mean_stat, True
    if metric == "accuracy":
        return y, p, (((p >= 0.5) == y).astype(np.float64),), _mean_stat, True
    if metric == "f1":
        return y, p, _f1_columns(y, p), _f1_stat, True
    return y, p, (y, p), _auc_stat, False  # auc: ranks per resample, not vectorised


@pytest.mark.parametrize("metric", ["logloss", "rmse", "mae", "accuracy", "f1", "auc"])
def test_percentile_bootstrap_agrees_with_scipy_bootstrap(metric: str) -> None:
    y, pred, data, statistic, vectorized = _case(metric)
    b_ours, b_scipy = (1000, 1000) if metric == "auc" else (4000, 4000)
    ours = evaluate(metric, y, pred, n_boot=b_ours, seed=11, method="bootstrap")
    ref = scipy_percentile_bootstrap(data, statistic, n=b_scipy, seed=12, vectorized=vectorized)
    assert ours.value == pytest.approx(float(statistic(*data)), rel=EXACT)
    se = float(ref.standard_error)
    # 4 Monte Carlo sds of the endpoint difference (about 0.24 se at B=4000, 0.48 at B=1000)
    bound = 4 * _mc_sd(b_ours, b_scipy) * se
    low, high = ref.confidence_interval
    assert abs(ours.lo - low) <= bound, (ours.lo, low, bound)
    assert abs(ours.hi - high) <= bound, (ours.hi, high, bound)


@pytest.mark.parametrize("metric", ["logloss", "auc"])
def test_paired_bootstrap_agrees_with_scipy_paired_bootstrap(metric: str) -> None:
    y, strong = _binary(600 if metric == "logloss" else 300, seed=13, signal=1.2)
    rng = np.random.default_rng(14)
    weak = np.round(special.expit(special.logit(np.clip(strong, 0.01, 0.99)) * 0.5
                                  + rng.normal(0, 0.7, y.size)), 2)  # fmt: skip
    b = 4000 if metric == "logloss" else 1000
    diff, lo, hi = paired_bootstrap(metric, y, strong, weak, n=b, seed=15)
    if metric == "logloss":
        la, lb = scipy_logloss_rows(y, strong), scipy_logloss_rows(y, weak)
        ref = scipy_percentile_bootstrap(
            (la, lb), lambda a, c, axis=-1: a.mean(axis=axis) - c.mean(axis=axis), n=b, seed=16
        )
        assert diff == pytest.approx(la.mean() - lb.mean(), rel=EXACT)
    else:
        ref = scipy_percentile_bootstrap(
            (y, strong, weak), lambda t, a, c: scipy_auc(t, a) - scipy_auc(t, c),
            n=b, seed=16, vectorized=False,
        )  # fmt: skip
        assert diff == pytest.approx(scipy_auc(y, strong) - scipy_auc(y, weak), abs=EXACT)
    se = float(ref.standard_error)
    bound = 4 * _mc_sd(b, b) * se  # 4 Monte Carlo sds, as above
    low, high = ref.confidence_interval
    assert abs(lo - low) <= bound and abs(hi - high) <= bound, ((lo, hi), (low, high), bound)


def test_paired_bootstrap_agrees_with_the_paired_t_interval() -> None:
    """For a mean difference the percentile bootstrap and the t interval of
    ``ttest_rel`` estimate the same interval; at n = 2000 they differ by the t vs normal
    quantile (0.1%), the bootstrap's ddof=0 (0.03%), the skew of the losses (O(se/sqrt(n)))
    and the Monte Carlo error (0.08 se at B = 2000): 0.25 se bounds all of it."""
    y, strong = _binary(2000, seed=17, signal=1.0, decimals=None)
    _, weak = _binary(2000, seed=18, signal=0.4, decimals=None)
    diff, lo, hi = paired_bootstrap("logloss", y, weak, strong, n=2000, seed=19)
    la, lb = scipy_logloss_rows(y, weak), scipy_logloss_rows(y, strong)
    test = stats.ttest_rel(la, lb)
    ci = test.confidence_interval(0.95)
    se = float(np.std(la - lb, ddof=1) / math.sqrt(y.size))
    assert diff == pytest.approx(float(np.mean(la - lb)), rel=EXACT)
    assert abs(lo - ci.low) <= 0.25 * se and abs(hi - ci.high) <= 0.25 * se


# -- compare(): the same numbers from prediction and outcome records --------------------------


def _records(root: Path, *, n: int, days: float) -> tuple[OutcomeStore, dict[str, Any]]:
    """Live churn@1 and shadow churn@2 probabilities (ties included), labels an hour later, so
    labels arrive in request order."""
    y, champ = _binary(n, seed=20, signal=0.5)
    rng = np.random.default_rng(21)
    chall = np.round(special.expit(1.2 * (2 * y - 1) + rng.normal(size=n)), 2)
    probabilities = {"churn@1": champ, "churn@2": chall}
    store = record_labeled(root, probabilities, y, days=days, with_index=True)
    return store, {"y": y, "champ": champ, "chall": chall}


def test_compare_numbers_agree_with_scipy(tmp_path: Path) -> None:
    store, data = _records(tmp_path, n=1500, days=4)
    y, champ, chall = data["y"], data["champ"], data["chall"]
    policy = PromotionPolicy(min_labeled=500, min_days=3, metric="auc")
    c = compare(store, "churn", policy=policy, clock=FakeClock(start=T0 + timedelta(days=5)))
    assert (c.champion, c.challenger, c.labeled_pairs) == ("churn@1", "churn@2", 1500)
    # AUC with DeLong's interval (under _DELONG_ROWS, so on every row): exact
    for got, scores in ((c.champion_metric, champ), (c.challenger_metric, chall)):
        assert (got.value, got.ci_low, got.ci_high) == pytest.approx(
            scipy_delong(y, scores), abs=EXACT
        )
    want_diff = scipy_auc(y, chall) - scipy_auc(y, champ)
    assert c.difference.value == pytest.approx(want_diff, abs=EXACT)
    assert c.improvement.value == pytest.approx(want_diff, abs=EXACT)  # higher is better
    # the difference's paired bootstrap: 500 resamples on these 1500 rows (under the AUC
    # bootstrap cap of 2000), against SciPy's with 2000; 4 Monte Carlo sds
    ref = scipy_percentile_bootstrap(
        (y, chall, champ), lambda t, a, b: scipy_auc(t, a) - scipy_auc(t, b),
        n=2000, seed=22, vectorized=False,
    )  # fmt: skip
    bound = 4 * _mc_sd(500, 2000) * float(ref.standard_error)
    assert abs(c.difference.ci_low - ref.confidence_interval.low) <= bound
    assert abs(c.difference.ci_high - ref.confidence_interval.high) <= bound
    # the mSPRT on log-loss differences in label-arrival order, tau = 0.1 sd(d): exact
    d = scipy_logloss_rows(y, champ) - scipy_logloss_rows(y, chall)
    sigma2 = float(stats.tvar(d))
    tau2 = 0.01 * sigma2
    p, first = scipy_msprt_p(d, sigma2=sigma2, tau2=tau2, theta0=0.0)
    seq = c.sequential
    assert seq["n"] == d.size and seq["mean"] == pytest.approx(d.mean(), rel=1e-10)
    assert seq["sigma2"] == pytest.approx(sigma2, rel=1e-10)
    assert seq["tau2"] == pytest.approx(tau2, rel=1e-10)
    assert seq["log_lambda"] == pytest.approx(
        scipy_log_lambda(d.size, float(d.mean()), sigma2=sigma2, tau2=tau2, theta0=0.0),
        rel=1e-9,
    )
    assert seq["p_value"] == pytest.approx(p, rel=1e-9, abs=1e-300)
    assert seq["rejected_at"] == first and seq["reject"] is True
    assert c.verdict == "promote"


def test_compare_logloss_interval_agrees_with_scipy(tmp_path: Path) -> None:
    store, data = _records(tmp_path, n=1200, days=2)
    y, champ, chall = data["y"], data["champ"], data["chall"]
    c = compare(store, "churn", metric="logloss", clock=FakeClock(start=T0 + timedelta(days=3)))
    la, lb = scipy_logloss_rows(y, chall), scipy_logloss_rows(y, champ)
    assert c.champion_metric.value == pytest.approx(lb.mean(), rel=EXACT)
    assert c.challenger_metric.value == pytest.approx(la.mean(), rel=EXACT)
    assert c.difference.value == pytest.approx(la.mean() - lb.mean(), rel=1e-10)
    # compare draws 1000 resamples for each interval; SciPy 4000; 4 Monte Carlo sds
    for got, data_, seed in ((c.champion_metric, (lb,), 23), (c.challenger_metric, (la,), 24)):
        ref = scipy_percentile_bootstrap(data_, _mean_stat, n=4000, seed=seed)
        bound = 4 * _mc_sd(1000, 4000) * float(ref.standard_error)
        assert abs(got.ci_low - ref.confidence_interval.low) <= bound
        assert abs(got.ci_high - ref.confidence_interval.high) <= bound
    ref = scipy_percentile_bootstrap(
        (la, lb), lambda a, b, axis=-1: a.mean(axis=axis) - b.mean(axis=axis), n=4000, seed=25
    )
    bound = 4 * _mc_sd(1000, 4000) * float(ref.standard_error)
    assert abs(c.difference.ci_low - ref.confidence_interval.low) <= bound
    assert abs(c.difference.ci_high - ref.confidence_interval.high) <= bound


def test_compare_accepts_the_policy_flotilla_evaluation_exports(tmp_path: Path) -> None:
    from flotilla.evaluation import PromotionPolicy as EvaluationPolicy

    store, _ = _records(tmp_path, n=50, days=1)
    policy = EvaluationPolicy(min_labeled=10, min_days=0, metric="logloss")
    clock = FakeClock(start=T0 + timedelta(days=2))
    c = compare(store, "churn", policy=policy, clock=clock)
    assert c.policy["min_labeled"] == 10

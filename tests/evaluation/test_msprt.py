"""The mSPRT: type I error under peeking, power, monotone p-value, the formula itself."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from flotilla.errors import ConfigError
from flotilla.evaluation import log_lambda, msprt


def _formula(n: int, mean: float, s2: float, t2: float, theta0: float) -> float:
    lam = math.sqrt(s2 / (s2 + n * t2)) * math.exp(
        n * n * t2 * (mean - theta0) ** 2 / (2 * s2 * (s2 + n * t2))
    )
    return lam


def test_log_lambda_matches_the_formula() -> None:
    for n, mean, s2, t2, th in [(10, 0.3, 1.0, 0.5, 0.0), (200, -0.1, 2.0, 0.01, 0.05)]:
        got = float(log_lambda(n, mean, sigma2=s2, tau2=t2, theta0=th))
        assert got == pytest.approx(math.log(_formula(n, mean, s2, t2, th)), abs=1e-9)


def test_p_value_is_the_running_minimum_of_inverse_lambda() -> None:
    rng = np.random.default_rng(4)
    d = rng.normal(0.2, 1, 150)
    result = msprt(d, sigma2=1.0, tau2=0.1)
    p = 1.0
    for k in range(1, len(d) + 1):
        p = min(p, 1 / _formula(k, float(d[:k].mean()), 1.0, 0.1, 0.0))
    assert result.p_value == pytest.approx(p, rel=1e-9)
    assert result.log_lambda == pytest.approx(math.log(_formula(150, d.mean(), 1.0, 0.1, 0.0)))


def test_p_value_never_increases_as_pairs_arrive() -> None:
    rng = np.random.default_rng(9)
    d = rng.normal(0.05, 1, 300)
    ps = [msprt(d[:k], sigma2=1.0, tau2=0.05).p_value for k in range(1, 301, 7)]
    assert all(b <= a + 1e-15 for a, b in itertools.pairwise(ps))


def test_type_one_error_with_peeking_at_every_step_stays_below_alpha() -> None:
    rng = np.random.default_rng(2026)
    sims, steps, alpha = 200, 1000, 0.05
    rejections = sum(
        msprt(rng.normal(0, 1, steps), sigma2=1.0, tau2=0.1, alpha=alpha).reject
        for _ in range(sims)
    )
    # `reject` is "p_n <= alpha at any n": the test was peeked at after every pair.
    assert rejections / sims <= alpha + 0.03


def test_an_effect_is_detected_in_the_right_direction() -> None:
    rng = np.random.default_rng(1)
    better = msprt(rng.normal(0.3, 1, 500), sigma2=1.0, tau2=0.09)
    assert better.reject and better.direction == "challenger" and better.rejected_at is not None
    worse = msprt(rng.normal(-0.3, 1, 500), tau2=0.09)
    assert worse.reject and worse.direction == "champion"
    assert worse.sigma2 == pytest.approx(1.0, rel=0.2)  # estimated


def test_margin_is_the_null_mean() -> None:
    rng = np.random.default_rng(3)
    d = rng.normal(0.1, 0.2, 400)
    assert msprt(d, tau2=0.01).reject
    assert not msprt(d, tau2=0.01, theta0=0.1).reject


def test_no_or_one_pair_is_no_evidence() -> None:
    empty = msprt([], tau2=1.0)
    assert (empty.n, empty.p_value, empty.reject, empty.direction) == (0, 1.0, False, "none")
    assert empty.to_dict()["mean"] is None
    one = msprt([0.5], tau2=1.0)
    assert one.p_value == 1.0 and not one.reject


def test_bad_parameters() -> None:
    with pytest.raises(ConfigError, match="tau2"):
        msprt([1.0, 2.0], tau2=0.0)
    with pytest.raises(ConfigError, match="alpha"):
        msprt([1.0, 2.0], tau2=1.0, alpha=1.0)
    with pytest.raises(ConfigError, match="sigma2"):
        msprt([1.0, 2.0], tau2=1.0, sigma2=-1.0)
    with pytest.raises(ConfigError, match="NaN"):
        msprt([1.0, float("nan")], tau2=1.0)


@pytest.mark.parametrize("effect", [0.0, 0.05, 0.2, -0.3], ids=["none", "small", "big", "neg"])
def test_p_value_and_first_rejection_equal_the_running_minimum_over_every_step(
    effect: float,
) -> None:
    """msprt() takes exp only near the maximum and the threshold; the same as over every k."""
    for seed in range(20):
        d = np.random.default_rng(seed).normal(effect, 1, 2_000)
        result = msprt(d, tau2=0.02, alpha=0.05)
        ks = np.arange(1, d.size + 1)
        means = np.cumsum(d) / ks
        sigma2 = float(np.var(d, ddof=1))
        log_l = log_lambda(ks, means, sigma2=sigma2, tau2=0.02)
        running = np.minimum.accumulate(np.minimum(1.0, np.exp(-log_l)))
        assert result.p_value == running[-1]
        assert result.log_lambda == pytest.approx(log_l[-1], rel=1e-12)
        hits = np.flatnonzero(running <= 0.05)
        assert result.rejected_at == (int(hits[0]) + 1 if hits.size else None)

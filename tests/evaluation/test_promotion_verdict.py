"""Promotion verdicts from paired loss differences."""

from __future__ import annotations

import numpy as np
import pytest

from flotilla.errors import ConfigError
from flotilla.evaluation import PromotionPolicy, decide


@pytest.fixture
def policy() -> PromotionPolicy:
    return PromotionPolicy(min_labeled=200, min_days=7, metric="logloss", margin=0.0, tau=0.1)


def test_zero_pairs_keeps_shadowing_with_not_enough_evidence(policy: PromotionPolicy) -> None:
    v = decide(policy, differences=[], days=0)
    assert v.verdict == "keep_shadowing"
    assert "not enough evidence" in v.reasons[0]
    assert v.needed_pairs == 200 and v.needed_days == 7
    assert v.to_dict()["promote_test"] is None


def test_clear_winner_is_promoted_after_minimums(policy: PromotionPolicy) -> None:
    d = np.random.default_rng(0).normal(0.3, 1, 600)
    v = decide(policy, differences=d, days=8)
    assert v.verdict == "promote" and v.needed_pairs == 0
    early = decide(policy, differences=d, days=3)
    assert early.verdict == "keep_shadowing"
    assert early.needed_days == pytest.approx(4.0) and early.needed_pairs == 0
    few = decide(policy, differences=d[:100], days=8)
    assert few.verdict == "keep_shadowing" and few.needed_pairs is not None
    assert few.needed_pairs >= 100


def test_worse_challenger_is_rejected(policy: PromotionPolicy) -> None:
    d = np.random.default_rng(1).normal(-0.4, 1, 300)
    v = decide(policy, differences=d, days=1)
    assert v.verdict == "reject" and "champion is better" in v.reasons[0]


def test_margin_must_be_beaten(policy: PromotionPolicy) -> None:
    d = np.random.default_rng(2).normal(0.05, 0.2, 3000)
    assert decide(policy, differences=d, days=10).verdict == "promote"
    strict = PromotionPolicy(min_labeled=200, min_days=7, metric="logloss", margin=0.05, tau=0.1)
    v = decide(strict, differences=d, days=10)
    assert v.verdict == "keep_shadowing"


def test_no_effect_keeps_shadowing_with_an_estimate(policy: PromotionPolicy) -> None:
    d = np.random.default_rng(5).normal(0.02, 1, 400)
    v = decide(policy, differences=d, days=10)
    assert v.verdict == "keep_shadowing"
    assert any("no significant improvement" in r for r in v.reasons)
    if v.needed_pairs is not None:
        assert v.needed_pairs > 0 and v.needed_days is not None and v.needed_days > 0


def test_policy_from_dict_validates() -> None:
    p = PromotionPolicy.from_dict({"min_labeled": 10, "min_days": 1, "metric": "ndcg@5"})
    assert p.metric == "ndcg@5" and p.margin == 0.0
    with pytest.raises(ConfigError, match="unknown keys"):
        PromotionPolicy.from_dict({"min_label": 3})
    with pytest.raises(ConfigError, match="'min_labeled'"):
        PromotionPolicy.from_dict({"min_labeled": -1})
    with pytest.raises(ConfigError, match="must be one of"):
        PromotionPolicy.from_dict({"metric": "precision"})
    with pytest.raises(ConfigError, match="'alpha'"):
        PromotionPolicy.from_dict({"alpha": 2})

"""Factories of training sets where the leak (or its absence) is known."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

Factory = Callable[..., pd.DataFrame]


def make_training(n: int = 3000, seed: int = 7) -> pd.DataFrame:
    """A clean churn-like training set: honest features, write times before event times."""
    rng = np.random.default_rng(seed)
    event = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 180 * 86400, n), unit="s"
    )
    tenure = rng.gamma(2.0, 12.0, n)
    spend = rng.normal(50, 15, n)
    plan = rng.choice(["basic", "plus", "pro"], n)
    logit = -1.2 - 0.03 * tenure + 0.01 * (spend - 50) + np.where(plan == "basic", 0.4, 0.0)
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    spend = np.where(rng.random(n) < 0.1, np.nan, spend)  # honest missingness
    lag = pd.to_timedelta(rng.integers(60, 86400, n), unit="s")
    return pd.DataFrame(
        {
            "user_id": rng.permutation(n // 2)[rng.integers(0, n // 2, n)].astype(str),
            "event_time": event,
            "tenure": tenure,
            "tenure__written_at": event - lag,
            "spend": spend,
            "spend__written_at": event - lag,
            "plan": plan,
            "churned": churned,
        }
    )


@pytest.fixture
def training() -> Factory:
    """Factory: ``training(n=..., seed=...)`` returns a clean training DataFrame."""
    return make_training

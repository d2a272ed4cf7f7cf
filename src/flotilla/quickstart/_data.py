"""Synthetic data for the quickstart: churn (with a deliberately leaky column), fraud, recs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

__all__ = ["churn_frame", "fraud_frame", "recs_popularity"]

SEGMENTS = ("new", "casual", "loyal", "power")


def churn_frame(n: int = 4000, *, seed: int = 7) -> pd.DataFrame:
    """Customers at the moment of prediction, with the label known 30 days later.

    ``days_since_login`` is the leak of issue 6: a database trigger clears the customer's
    last-login date when they cancel, so in the warehouse the value is NULL for almost every
    churner, and it was (re)written after the prediction time (``days_since_login__written_at``).
    At prediction time the value was there for everybody.
    """
    rng = np.random.default_rng(seed)
    tenure = rng.gamma(2.0, 12.0, n).clip(0, 120)
    spend = rng.normal(60, 20, n).clip(5, 200)
    tickets = rng.poisson(1.2, n)
    premium = rng.random(n) < 0.3
    logit = -1.0 - 0.04 * tenure + 0.5 * tickets + 0.01 * (spend - 60) - 0.6 * premium
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    start = datetime(2026, 6, 1, tzinfo=UTC)
    event_time = [start + timedelta(minutes=int(m)) for m in rng.integers(0, 60 * 24 * 90, n)]
    days_since_login = rng.exponential(5.0, n).round(1)
    lags = rng.uniform(1, 48, n)
    written_at = [t - timedelta(hours=float(h)) for t, h in zip(event_time, lags, strict=True)]
    leaky = days_since_login.astype(object)
    leak_written = list(written_at)
    for i in np.flatnonzero(churned & (rng.random(n) < 0.95)):
        leaky[i] = None  # the cancel trigger cleared it ...
        leak_written[i] = event_time[i] + timedelta(days=float(rng.uniform(1, 30)))  # ... later
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:05d}" for i in range(n)],
            "event_time": event_time,
            "tenure_months": tenure.round(1),
            "monthly_spend": spend.round(2),
            "support_tickets": tickets.astype(float),
            "is_premium": premium.astype(float),
            "days_since_login": pd.array(leaky, dtype="Float64"),
            "days_since_login__written_at": leak_written,
            "churned": churned.astype(int),
        }
    )


def fraud_frame(n: int = 6000, *, seed: int = 11) -> pd.DataFrame:
    """Card transactions with a rare fraud label."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.5, 1.0, n).clip(1, 5000)
    hour = rng.integers(0, 24, n).astype(float)
    merchant_risk = rng.beta(2, 8, n)
    tx_24h = rng.poisson(3, n).astype(float)
    foreign = (rng.random(n) < 0.1).astype(float)
    logit = -5.0 + 0.0008 * amount + 4.0 * merchant_risk + 0.15 * tx_24h + 1.5 * foreign
    logit += 0.8 * ((hour < 5) | (hour > 22))
    fraud = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "amount": amount.round(2),
            "hour": hour,
            "merchant_risk": merchant_risk.round(4),
            "tx_24h": tx_24h,
            "is_foreign": foreign,
            "fraud": fraud.astype(int),
        }
    )


def recs_popularity(n_items: int = 200, *, seed: int = 3) -> dict[str, list[int]]:
    """Item popularity per segment from simulated purchases (most popular first)."""
    rng = np.random.default_rng(seed)
    popular: dict[str, list[int]] = {}
    base = rng.zipf(1.6, 20000) % n_items
    popular["*"] = [int(i) for i in pd.Series(base).value_counts().index[:50]]
    for s, seg in enumerate(SEGMENTS):
        draws = (rng.zipf(1.6, 5000) + 17 * (s + 1)) % n_items
        popular[seg] = [int(i) for i in pd.Series(draws).value_counts().index[:50]]
    return popular

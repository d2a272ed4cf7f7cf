"""Promotion verdicts: ``promote``, ``keep_shadowing`` or ``reject`` from the evidence.

Two mSPRTs run on the paired loss differences ``d = loss_champion - loss_challenger``:

- *promote* test, ``theta0 = margin``: rejecting with ``d̄ > margin`` means the challenger is
  better than the champion by more than the margin;
- *reject* test, ``theta0 = 0``: rejecting with ``d̄ < 0`` means the champion is better.

The verdict is ``promote`` only with at least ``min_labeled`` pairs over at least ``min_days``
days and the promote test rejecting in favour of the challenger; ``reject`` as soon as the
reject test rejects in favour of the champion (no minimum: a worse challenger need not wait);
otherwise ``keep_shadowing`` with how many more pairs and days are needed. The mixing variance
``tau2`` defaults to ``policy.tau ** 2`` or, without one, ``(0.1 · sd(d))²``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from flotilla.errors import ConfigError
from flotilla.evaluation.metrics import parse_metric
from flotilla.evaluation.sequential import MsprtResult, log_lambda, msprt

__all__ = ["PromotionPolicy", "Verdict", "decide"]

VerdictName = Literal["promote", "keep_shadowing", "reject"]
_POLICY_KEYS = {"min_labeled", "min_days", "metric", "margin", "alpha", "tau", "auto"}


@dataclass(frozen=True, kw_only=True)
class PromotionPolicy:
    """When a challenger may replace the champion (``promotion:`` in the portfolio).

    Args:
        min_labeled: labeled pairs needed before a promotion.
        min_days: days of shadowing needed before a promotion.
        metric: the metric whose per-row loss is compared (see ``per_row_loss``).
        margin: how much lower the challenger's mean loss must be (in loss units).
        alpha: the type I error of each sequential test.
        tau: the smallest effect worth promoting, in loss units (``None``: 0.1 · sd(d)).
        auto: whether the monitor loop promotes by itself.
    """

    min_labeled: int = 1000
    min_days: float = 7.0
    metric: str = "auc"
    margin: float = 0.0
    alpha: float = 0.05
    tau: float | None = None
    auto: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The policy as plain data (what a comparison reports it applied)."""
        return asdict(self)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, where: str = "promotion policy"
    ) -> PromotionPolicy:
        """Parse and validate a mapping; raises ConfigError naming the bad key."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"The {where} must be a mapping. Got {type(data).__name__} instead.")
        unknown = set(data) - _POLICY_KEYS
        if unknown:
            raise ConfigError(
                f"The {where} has unknown keys {sorted(unknown)}; allowed: {sorted(_POLICY_KEYS)}."
            )
        policy = cls(**dict(data))
        policy.validate(where=where)
        return policy

    def validate(self, *, where: str = "promotion policy") -> None:
        """Raise ConfigError when a field is out of range."""
        if (
            isinstance(self.min_labeled, bool)
            or not isinstance(self.min_labeled, int)
            or (self.min_labeled < 0)
        ):
            raise ConfigError(
                f"The 'min_labeled' of the {where} must be an integer >= 0. "
                f"Got {self.min_labeled!r} instead."
            )
        _number(self.min_days, "min_days", where, low=0.0)
        _number(self.margin, "margin", where, low=0.0)
        _number(self.alpha, "alpha", where, low=0.0, high=1.0, open_ends=True)
        if self.tau is not None:
            _number(self.tau, "tau", where, low=0.0, open_ends=True)
        parse_metric(self.metric)


def _number(value: Any, key: str, where: str, *, low: float, high: float = math.inf,
            open_ends: bool = False) -> None:  # fmt: skip
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (low < value < high) if open_ends else (low <= value <= high)
    if not ok:
        bound = f"in ({low}, {high})" if open_ends else f">= {low}"
        raise ConfigError(f"The '{key}' of the {where} must be a number {bound}. Got {value!r}.")


@dataclass(frozen=True)
class Verdict:
    """The decision with its reasons and, when shadowing goes on, what is still needed."""

    verdict: VerdictName
    reasons: tuple[str, ...]
    needed_pairs: int | None
    needed_days: float | None
    labeled_pairs: int
    days: float
    promote_test: MsprtResult | None = None
    reject_test: MsprtResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "needed_pairs": self.needed_pairs,
            "needed_days": self.needed_days,
            "labeled_pairs": self.labeled_pairs,
            "days": self.days,
            "promote_test": None if self.promote_test is None else self.promote_test.to_dict(),
            "reject_test": None if self.reject_test is None else self.reject_test.to_dict(),
        }


def decide(
    policy: PromotionPolicy,
    *,
    differences: ArrayLike,
    days: float,
    sigma2: float | None = None,
) -> Verdict:
    """The verdict for a challenger from its paired loss differences (oldest first).

    Args:
        policy: the model's promotion policy.
        differences: ``loss_champion - loss_challenger`` per labeled pair, in maturity order.
        days: how long the challenger has been shadowing (with labels), in days.
        sigma2: the known variance of the differences (default: estimated).

    Returns:
        A :class:`Verdict`; zero pairs give ``keep_shadowing`` ("not enough evidence").
    """
    policy.validate()
    d = np.asarray(differences, dtype=np.float64).ravel()
    n, days = d.size, max(0.0, float(days))
    days_left = max(0.0, policy.min_days - days)
    if n < 2:
        return Verdict("keep_shadowing", ("not enough evidence: fewer than 2 labeled pairs",),
                       max(policy.min_labeled - n, 2 - n), days_left, n, days)  # fmt: skip
    sd = math.sqrt(sigma2) if sigma2 is not None else float(np.std(d, ddof=1))
    tau2 = policy.tau**2 if policy.tau is not None else max((0.1 * sd) ** 2, 1e-12)
    up = msprt(d, sigma2=sigma2, tau2=tau2, theta0=policy.margin, alpha=policy.alpha)
    down = (  # without a margin both tests are the same test
        up
        if policy.margin == 0.0
        else msprt(d, sigma2=sigma2, tau2=tau2, theta0=0.0, alpha=policy.alpha)
    )
    if down.reject and down.direction == "champion":
        reason = (f"the champion is better (mean loss difference {down.mean:.4g} < 0, "
                  f"always-valid p = {down.p_value:.3g} <= {policy.alpha})")  # fmt: skip
        return Verdict("reject", (reason,), None, None, n, days, up, down)
    reasons = []
    pairs_left = max(0, policy.min_labeled - n)
    if pairs_left:
        reasons.append(f"{n} labeled pairs of the {policy.min_labeled} required")
    if days_left > 0:
        reasons.append(f"{days:.1f} days of the {policy.min_days:g} required")
    won = up.reject and up.direction == "challenger"
    if won and not reasons:
        reason = (f"the challenger is better by more than the margin {policy.margin:g} "
                  f"(mean {up.mean:.4g}, always-valid p = {up.p_value:.3g})")  # fmt: skip
        return Verdict("promote", (reason,), 0, 0.0, n, days, up, down)
    needed: int | None = pairs_left
    if not won:
        reasons.append(f"no significant improvement yet (always-valid p = {up.p_value:.3g})")
        at = _pairs_to_reject(up)
        if at is None:
            reasons.append(
                "at the observed mean difference the challenger does not beat the margin; "
                "more pairs may change that, but no estimate of how many can be given"
            )
            needed = None
        else:
            needed = max(pairs_left, at - n)
    per_day = n / days if days > 0 else 0.0
    if per_day > 0 and needed:
        days_left = max(days_left, needed / per_day)
    return Verdict("keep_shadowing", tuple(reasons), needed, days_left, n, days, up, down)


def _pairs_to_reject(test: MsprtResult, limit: int = 10**9) -> int | None:
    """Pairs at which ``ln Lambda`` reaches ``ln(1/alpha)`` if the mean stayed as observed."""
    if test.mean <= test.theta0 or not math.isfinite(test.sigma2):
        return None
    target = math.log(1 / test.alpha)

    def reached(k: int) -> bool:
        value = log_lambda(k, test.mean, sigma2=test.sigma2, tau2=test.tau2, theta0=test.theta0)
        return bool(value >= target)

    hi = max(test.n, 1)
    while not reached(hi):
        hi *= 2
        if hi >= limit:
            return None
    lo = hi // 2
    while lo + 1 < hi:  # ln Lambda grows with n once the mean is away from theta0
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if reached(mid) else (mid, hi)
    return hi

"""The always-valid sequential test (mSPRT) on paired per-request loss differences.

For pairs ``d_i = loss_champion,i - loss_challenger,i`` (positive: the challenger is better),
the one-sample mixture SPRT of Johari, Koomen, Pekelis & Walsh (*Always Valid Inference*,
Operations Research 2022), with a normal mixing distribution ``N(theta0, tau2)``, is::

    Lambda_n = sqrt(s2 / (s2 + n tau2)) * exp(n^2 tau2 (mean_n - theta0)^2 / (2 s2 (s2 + n tau2)))

(``MONITORING.md`` Appendix B). The always-valid p-value is ``p_n = min(p_{n-1}, 1/Lambda_n)``
with ``p_0 = 1``; rejecting when ``p_n <= alpha`` keeps the type I error at most ``alpha``
however often the test is looked at (Ville's inequality). Valid only if the label delay is
independent of the outcome.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from flotilla.errors import ConfigError

__all__ = ["MsprtResult", "log_lambda", "msprt"]

Direction = Literal["challenger", "champion", "none"]


@dataclass(frozen=True)
class MsprtResult:
    """The state of the mSPRT after ``n`` pairs.

    Attributes:
        n: pairs seen.
        mean: mean difference ``d̄_n`` (``nan`` with no pairs).
        log_lambda: ``ln Lambda_n`` (the log form, stable for large ``n``).
        p_value: the always-valid p-value (running minimum of ``1/Lambda_k``, capped at 1).
        reject: whether ``p_value <= alpha``.
        direction: ``challenger`` when the test rejected with ``d̄ > theta0`` at the first
            rejection, ``champion`` when ``d̄ < theta0``, else ``none``.
        sigma2, tau2, theta0, alpha: the parameters used (``sigma2`` possibly estimated).
        rejected_at: the number of pairs at the first rejection, or ``None``.
    """

    n: int
    mean: float
    log_lambda: float
    p_value: float
    reject: bool
    direction: Direction
    sigma2: float
    tau2: float
    theta0: float
    alpha: float
    rejected_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in asdict(self).items()}  # fmt: skip


def log_lambda(
    n: ArrayLike, mean: ArrayLike, *, sigma2: float, tau2: float, theta0: float = 0.0
) -> NDArray[np.float64]:
    """``ln Lambda_n`` of the one-sample normal mSPRT, elementwise over ``n`` and ``mean``."""
    n_arr = np.asarray(n, dtype=np.float64)
    m_arr = np.asarray(mean, dtype=np.float64)
    denom = sigma2 + n_arr * tau2
    return np.asarray(
        0.5 * np.log(sigma2 / denom)
        + (n_arr**2) * tau2 * (m_arr - theta0) ** 2 / (2.0 * sigma2 * denom),
        dtype=np.float64,
    )


def msprt(
    d: ArrayLike,
    *,
    sigma2: float | None = None,
    tau2: float,
    theta0: float = 0.0,
    alpha: float = 0.05,
) -> MsprtResult:
    """Run the paired mSPRT over the differences ``d`` in the order they matured.

    Args:
        d: per-pair differences ``loss_champion - loss_challenger``, oldest first.
        sigma2: the variance of ``d``; ``None`` estimates it from all of ``d`` (sample
            variance, a plug-in that is standard in practice but makes validity approximate;
            floored at ``1e-12``).
        tau2: the mixing variance: about the square of the smallest effect worth acting on.
        theta0: the null mean: 0 for superiority, ``margin`` to demand a margin.
        alpha: the type I error bound.

    Returns:
        An :class:`MsprtResult`. Fewer than two pairs with ``sigma2=None``, or no pairs at all,
        give ``p_value = 1`` and no rejection.

    Raises:
        ConfigError: invalid parameters or non-finite differences.
    """
    arr = np.asarray(d, dtype=np.float64).ravel()
    _check(arr, sigma2=sigma2, tau2=tau2, alpha=alpha)
    n = arr.size
    if sigma2 is None:
        if n < 2:
            return _empty(arr, math.nan, tau2, theta0, alpha)
        sigma2 = max(float(np.var(arr, ddof=1)), 1e-12)
    if n == 0:
        return _empty(arr, sigma2, tau2, theta0, alpha)
    ks = np.arange(1, n + 1, dtype=np.float64)
    means = np.cumsum(arr)
    means /= ks
    log_l = _log_lambdas(ks, means, sigma2=sigma2, tau2=tau2, theta0=theta0)
    p_value, first = _running_p(log_l, alpha)
    reject = first is not None
    rejected_at: int | None = None
    direction: Direction = "none"
    if first is not None:
        rejected_at = first + 1
        direction = "challenger" if means[first] > theta0 else "champion"
    return MsprtResult(
        n=n,
        mean=float(means[-1]),
        log_lambda=float(log_l[-1]),
        p_value=p_value,
        reject=reject,
        direction=direction,
        sigma2=float(sigma2),
        tau2=tau2,
        theta0=theta0,
        alpha=alpha,
        rejected_at=rejected_at,
    )


def _log_lambdas(
    ks: NDArray[np.float64],
    means: NDArray[np.float64],
    *,
    sigma2: float,
    tau2: float,
    theta0: float,
) -> NDArray[np.float64]:
    """:func:`log_lambda` over every prefix, in place (the same arithmetic, fewer temporaries:
    millions of pairs take a fraction of a second)."""
    denom = ks * tau2
    denom += sigma2
    term = ks * ks
    term *= tau2
    out = means - theta0
    out *= out
    term *= out
    np.divide(sigma2, denom, out=out)
    np.log(out, out=out)
    out *= 0.5
    denom *= 2.0 * sigma2
    term /= denom
    out += term
    return out


def _running_p(log_l: NDArray[np.float64], alpha: float) -> tuple[float, int | None]:
    """The last running minimum of ``min(1, 1/Lambda_k)`` and the first ``k`` (from 0) where
    it is ``<= alpha``. ``exp`` runs only where ``ln Lambda_k`` is within 1e-6 of its maximum
    or of ``ln(1/alpha)``: every other ``k`` is farther than any rounding from deciding."""
    near = log_l[log_l >= float(log_l.max()) - 1e-6]
    p_value = float(np.minimum(1.0, np.exp(-near)).min())
    if not p_value <= alpha:
        return p_value, None
    candidates = np.flatnonzero(log_l >= math.log(1 / alpha) - 1e-6)
    hits = np.flatnonzero(np.minimum(1.0, np.exp(-log_l[candidates])) <= alpha)
    return p_value, int(candidates[hits[0]])


def _empty(
    arr: NDArray[np.float64], sigma2: float, tau2: float, theta0: float, alpha: float
) -> MsprtResult:
    mean = float(arr.mean()) if arr.size else math.nan
    return MsprtResult(arr.size, mean, 0.0, 1.0, False, "none", sigma2, tau2, theta0, alpha)


def _check(arr: NDArray[np.float64], *, sigma2: float | None, tau2: float, alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ConfigError(f"The 'alpha' of the mSPRT must be in (0, 1). Got {alpha} instead.")
    if not (math.isfinite(tau2) and tau2 > 0):
        raise ConfigError(f"The 'tau2' of the mSPRT must be a positive number. Got {tau2} instead.")
    if sigma2 is not None and not (math.isfinite(sigma2) and sigma2 > 0):
        raise ConfigError(
            f"The 'sigma2' of the mSPRT must be a positive number or None. Got {sigma2} instead."
        )
    if not np.all(np.isfinite(arr)):
        raise ConfigError("The differences given to the mSPRT contain NaN or infinite values.")

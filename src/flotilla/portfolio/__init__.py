"""The portfolio: every served model's deployment, declared in one YAML file.

- :func:`load_portfolio` reads and parses the file (every problem at once, with lines);
- :func:`validate` checks it against the registry (references, chains, inputs, outputs);
- :func:`plan` / :func:`apply` write one deployment revision per changed model;
- :func:`rollback` re-applies an earlier revision as a new one.

Example:
    >>> from flotilla.portfolio import load_portfolio, apply  # doctest: +SKIP
    >>> apply(load_portfolio("portfolio.yaml"), ws.registry, actor="ana")  # doctest: +SKIP
"""

from __future__ import annotations

from flotilla.portfolio._rules import PortfolioError
from flotilla.portfolio.deploy import (
    Change,
    DeploymentRegistry,
    apply,
    diff_specs,
    plan,
    rollback,
)
from flotilla.portfolio.file import Portfolio, load_portfolio
from flotilla.portfolio.spec import (
    INPUT_POLICIES,
    METRICS,
    TIERS,
    BreakerSpec,
    DeploymentSpec,
    PromotionPolicy,
    RefStep,
    ShadowSpec,
    StaticStep,
    Step,
)
from flotilla.portfolio.validate import RegistryReader, validate

__all__ = [
    "INPUT_POLICIES",
    "METRICS",
    "TIERS",
    "BreakerSpec",
    "Change",
    "DeploymentRegistry",
    "DeploymentSpec",
    "Portfolio",
    "PortfolioError",
    "PromotionPolicy",
    "RefStep",
    "RegistryReader",
    "ShadowSpec",
    "StaticStep",
    "Step",
    "apply",
    "diff_specs",
    "load_portfolio",
    "plan",
    "rollback",
    "validate",
]

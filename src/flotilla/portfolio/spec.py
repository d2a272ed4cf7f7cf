"""Deployment specs: how one model is served (live step, fallback chain, limits, shadows).

A spec is a frozen value with ``to_dict()``/``from_dict()``; the dict form is what the
registry stores in each deployment revision and what the portfolio YAML holds per model::

    recs:
      live: recs@champion
      deadline_ms: 50
      fallbacks: [recs-lite@2, {static: {items: [101, 7, 42]}}]
      input_policy: fallback
      max_concurrency: 32
      breaker: {failure_rate: 0.5, min_requests: 20, window_s: 10, open_s: 5}
      tier: cpu
      shadows: [{ref: recs@4, sample: 0.25}]
      promotion: {min_labeled: 1000, min_days: 7, metric: auc, margin: 0.0, auto: false}

A reference names a version (``recs@3``), an alias (``recs@champion``; serving follows the
alias when it moves) or a bare model name (``recs``: its latest version at serving time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from flotilla.errors import ConfigError
from flotilla.portfolio._policies import METRICS, BreakerSpec, PromotionPolicy, ShadowSpec
from flotilla.portfolio._rules import Path, PortfolioError, Problem, Reader, Rule, check_fields
from flotilla.portfolio._steps import (
    RefStep,
    StaticStep,
    Step,
    parse_step,
    raise_problems,
    ref_problem,
)
from flotilla.registry.models import check_name

__all__ = [
    "INPUT_POLICIES",
    "METRICS",
    "SPEC_KEYS",
    "TIERS",
    "BreakerSpec",
    "DeploymentSpec",
    "PromotionPolicy",
    "RefStep",
    "ShadowSpec",
    "StaticStep",
    "Step",
    "parse_step",
]

INPUT_POLICIES = ("fallback", "reject")
TIERS = ("cpu", "gpu")
SPEC_KEYS = (
    "live",
    "deadline_ms",
    "fallbacks",
    "input_policy",
    "max_concurrency",
    "breaker",
    "tier",
    "shadows",
    "promotion",
)
"""The keys a model's entry in the portfolio file may hold."""

_RULES = {
    "deadline_ms": Rule("number", gt=0.0),
    "input_policy": Rule("choice", choices=INPUT_POLICIES),
    "max_concurrency": Rule("integer", ge=1),
    "tier": Rule("choice", choices=TIERS),
}


@dataclass(frozen=True, kw_only=True)
class DeploymentSpec:
    """How one model is served.

    Args:
        model: the model's name (the key in the portfolio file).
        live: the reference of the live step (a version, an alias or the bare model name).
        deadline_ms: the whole request's deadline in milliseconds (> 0); the live step gets
            what the rest of the chain does not need.
        fallbacks: the ordered steps tried after the live step; the last must be static.
        input_policy: ``fallback`` (invalid input is answered by the chain) or ``reject``
            (422 with the violations).
        max_concurrency: requests in flight to the live step (>= 1); beyond it the chain
            answers with reason ``overloaded``.
        breaker: the circuit-breaker settings applied to each model step.
        tier: ``cpu`` or ``gpu``.
        shadows: challengers that receive sampled copies of the traffic.
        promotion: when a shadow may replace the live version (``None``: no policy).

    Raises:
        PortfolioError: (a ``DeploymentError``) when a value is out of range.

    Example:
        >>> spec = DeploymentSpec.from_dict(
        ...     {"live": "recs@champion", "fallbacks": [{"static": {"items": [1, 2]}}]},
        ...     model="recs")
        >>> spec.chain_refs()
        ['recs@champion']
    """

    model: str
    live: str
    deadline_ms: float = 100.0
    fallbacks: tuple[Step, ...] = ()
    input_policy: Literal["fallback", "reject"] = "fallback"
    max_concurrency: int = 32
    breaker: BreakerSpec = field(default_factory=BreakerSpec)
    tier: Literal["cpu", "gpu"] = "cpu"
    shadows: tuple[ShadowSpec, ...] = ()
    promotion: PromotionPolicy | None = None

    def __post_init__(self) -> None:
        try:
            check_name(self.model)
        except ConfigError as exc:
            raise PortfolioError([str(exc)], subject="The deployment spec") from None
        RefStep(self.live)
        object.__setattr__(self, "fallbacks", tuple(self.fallbacks))
        object.__setattr__(self, "shadows", tuple(self.shadows))
        object.__setattr__(self, "deadline_ms", _as_float(self.deadline_ms))
        check_fields(self, _RULES, f"model {self.model!r}")

    # -- views -----------------------------------------------------------------------------

    @property
    def chain(self) -> tuple[Step, ...]:
        """The live step followed by the fallbacks, in the order they are tried."""
        return (RefStep(self.live), *self.fallbacks)

    def chain_refs(self) -> list[str]:
        """The references of the chain's model steps (live first), statics left out."""
        return [s.ref for s in self.chain if isinstance(s, RefStep)]

    def static_step(self) -> StaticStep | None:
        """The chain's inline static step, if it has one."""
        return next((s for s in self.fallbacks if isinstance(s, StaticStep)), None)

    def describe_chain(self) -> str:
        """The chain on one line, e.g. ``recs@champion -> recs-lite@2 -> static items[3]``."""
        return " -> ".join(_describe(s) for s in self.chain)

    # -- dict form -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The canonical dict form (every key, defaults included) stored in each revision."""
        return {
            "model": self.model,
            "live": self.live,
            "deadline_ms": self.deadline_ms,
            "fallbacks": [s.to_dict() for s in self.fallbacks],
            "input_policy": self.input_policy,
            "max_concurrency": self.max_concurrency,
            "breaker": self.breaker.to_dict(),
            "tier": self.tier,
            "shadows": [s.to_dict() for s in self.shadows],
            "promotion": None if self.promotion is None else self.promotion.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, model: str | None = None) -> DeploymentSpec:
        """Parse a spec mapping (a portfolio entry or a stored revision).

        Args:
            data: the mapping; may hold ``model`` (it must then agree with ``model=``).
            model: the model's name when ``data`` does not hold it.

        Raises:
            PortfolioError: listing every problem found.
        """
        problems: list[Problem] = []
        name = (
            model if model is not None else data.get("model") if isinstance(data, Mapping) else None
        )
        if not isinstance(name, str):
            raise PortfolioError(
                [f"It needs the model's name: pass model= or add a 'model' key. Got {name!r}."],
                subject="The deployment spec",
            )
        spec = cls.parse(data, model=name, path=(), problems=problems)
        raise_problems(problems, f"The deployment spec of model {name!r}")
        assert spec is not None
        return spec

    @classmethod
    def parse(
        cls, data: Any, *, model: str, path: Path, problems: list[Problem]
    ) -> DeploymentSpec | None:
        """Parse one model's entry, appending every problem; ``None`` when there are any."""
        where = f"model {model!r}"
        if not isinstance(data, Mapping):
            problems.append(
                Problem(
                    path,
                    f"The entry of {where} must be a mapping with at least 'live'. "
                    f"Got {type(data).__name__} instead.",
                )
            )
            return None
        before = len(problems)
        reader = Reader(data, where=where, path=path, problems=problems)
        reader.check_keys((*SPEC_KEYS, "model"))
        live = _parse_head(reader, model)
        values = {k: reader.value(k, r, _DEFAULTS[k]) for k, r in _RULES.items()}
        fallbacks = [
            parse_step(
                raw,
                where=f"fallback {i + 1} of {where}",
                path=(*path, "fallbacks", i),
                problems=problems,
            )
            for i, raw in enumerate(reader.sequence("fallbacks"))
        ]
        shadows = [
            ShadowSpec.parse(
                raw,
                where=f"shadow {i + 1} of {where}",
                path=(*path, "shadows", i),
                problems=problems,
            )
            for i, raw in enumerate(reader.sequence("shadows"))
        ]
        breaker, promotion = _parse_policies(reader)
        if len(problems) != before:
            return None
        return cls(
            model=model,
            live=cast(str, live),
            fallbacks=tuple(cast(list[Step], fallbacks)),
            shadows=tuple(cast(list[ShadowSpec], shadows)),
            breaker=cast(BreakerSpec, breaker),
            promotion=promotion,
            **values,
        )


def _parse_head(reader: Reader, model: str) -> Any:
    """Check the model's name and its ``live`` reference; returns the raw ``live``."""
    where, data = reader.where, reader.data
    try:
        check_name(model)
    except ConfigError as exc:
        reader.problem(None, f"The key {model!r} cannot name a model: {exc}")
    if "model" in data and data["model"] != model:
        reader.problem(
            "model",
            f"The 'model' of {where} is {data['model']!r}; it must match the key {model!r} "
            "(or be left out).",
        )
    live = data.get("live")
    if live is None:
        reader.problem(
            None,
            f"{where[:1].upper()}{where[1:]} has no 'live' step. "
            f"Add e.g. 'live: {model}@champion' or 'live: {model}@1'.",
        )
    elif (problem := ref_problem(live, f"the 'live' of {where}")) is not None:
        reader.problem("live", problem)
    return live


def _parse_policies(reader: Reader) -> tuple[BreakerSpec | None, PromotionPolicy | None]:
    where, path, problems = reader.where, reader.path, reader.problems
    breaker_raw, promo_raw = reader.mapping("breaker"), reader.mapping("promotion")
    breaker = (
        BreakerSpec()
        if breaker_raw is None
        else BreakerSpec.parse(
            breaker_raw,
            where=f"the breaker of {where}",
            path=(*path, "breaker"),
            problems=problems,
        )
    )
    promotion = (
        None
        if promo_raw is None
        else PromotionPolicy.parse(
            promo_raw,
            where=f"the promotion policy of {where}",
            path=(*path, "promotion"),
            problems=problems,
        )
    )
    return breaker, promotion


_DEFAULTS: dict[str, Any] = {
    "deadline_ms": 100.0,
    "input_policy": "fallback",
    "max_concurrency": 32,
    "tier": "cpu",
}


def _as_float(value: Any) -> Any:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _describe(step: Step) -> str:
    if isinstance(step, RefStep):
        return step.ref
    if "items" in step.value:
        return f"static items[{len(step.value['items'])}]"
    return f"static {step.value['value']!r}"

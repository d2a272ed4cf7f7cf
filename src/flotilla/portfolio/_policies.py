"""Per-deployment policies: the circuit breaker, shadows and the promotion policy."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flotilla.portfolio._rules import Path, Problem, Reader, Rule, check_fields, show
from flotilla.portfolio._steps import RefStep, raise_problems, ref_problem

__all__ = ["METRICS", "BreakerSpec", "PromotionPolicy", "ShadowSpec"]

METRICS = ("auc", "logloss", "accuracy", "f1", "rmse", "mae", "ndcg@k", "hit_rate@k")
"""Promotion metrics; ``k`` of ``ndcg@k`` and ``hit_rate@k`` is a positive integer."""
_METRIC = re.compile(r"^(auc|logloss|accuracy|f1|rmse|mae|(ndcg|hit_rate)@[1-9][0-9]*)$")


_BREAKER_RULES = {
    "failure_rate": Rule("number", gt=0.0, le=1.0),
    "min_requests": Rule("integer", ge=1),
    "window_s": Rule("number", gt=0.0),
    "open_s": Rule("number", gt=0.0),
}


@dataclass(frozen=True, kw_only=True)
class BreakerSpec:
    """Circuit-breaker settings of one step.

    Args:
        failure_rate: the share of failed calls in the window that opens the breaker, (0, 1].
        min_requests: calls needed in the window before the rate is judged (>= 1).
        window_s: the length of the sliding window in seconds (> 0).
        open_s: how long the breaker stays open before half-open probes (> 0).
    """

    failure_rate: float = 0.5
    min_requests: int = 20
    window_s: float = 10.0
    open_s: float = 5.0

    def __post_init__(self) -> None:
        check_fields(self, _BREAKER_RULES, "the breaker")

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _BREAKER_RULES}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "the breaker") -> BreakerSpec:
        problems: list[Problem] = []
        spec = cls.parse(data, where=where, path=(), problems=problems)
        raise_problems(problems, where[:1].upper() + where[1:])
        assert spec is not None
        return spec

    @classmethod
    def parse(
        cls, data: Mapping[str, Any], *, where: str, path: Path, problems: list[Problem]
    ) -> BreakerSpec | None:
        reader = Reader(data, where=where, path=path, problems=problems)
        reader.check_keys(_BREAKER_RULES)
        before = len(problems)
        default = cls()
        values = {k: reader.value(k, r, getattr(default, k)) for k, r in _BREAKER_RULES.items()}
        return cls(**values) if len(problems) == before else None


_SHADOW_RULES = {"sample": Rule("number", gt=0.0, le=1.0)}


@dataclass(frozen=True, kw_only=True)
class ShadowSpec:
    """A challenger that receives a sampled copy of live traffic (never returned to callers).

    Args:
        ref: the version, alias or model to run in the shadows.
        sample: the share of requests mirrored to it, in (0, 1].
    """

    ref: str
    sample: float = 1.0

    def __post_init__(self) -> None:
        RefStep(self.ref)
        check_fields(self, _SHADOW_RULES, f"shadow {self.ref!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "sample": self.sample}

    @classmethod
    def parse(
        cls, raw: Any, *, where: str, path: Path, problems: list[Problem]
    ) -> ShadowSpec | None:
        if isinstance(raw, str):
            raw = {"ref": raw}
        if not isinstance(raw, Mapping):
            problems.append(
                Problem(
                    path,
                    f"{where[:1].upper()}{where[1:]} must be a mapping like "
                    f"{{ref: recs@4, sample: 0.25}}. Got {show(raw)} instead.",
                )
            )
            return None
        reader = Reader(raw, where=where, path=path, problems=problems)
        reader.check_keys(("ref", "sample"))
        before = len(problems)
        ref = raw.get("ref")
        problem = ref_problem(ref, f"the 'ref' of {where}")
        if problem is not None:
            reader.problem("ref", problem)
        sample = reader.value("sample", _SHADOW_RULES["sample"], 1.0)
        return cls(ref=ref, sample=sample) if len(problems) == before else None  # type: ignore[arg-type]


_PROMOTION_RULES = {
    "min_labeled": Rule("integer", ge=1),
    "min_days": Rule("number", ge=0.0),
    "margin": Rule("number", ge=0.0),
    "auto": Rule("bool"),
}


@dataclass(frozen=True, kw_only=True)
class PromotionPolicy:
    """When a shadow may replace the live version (used by ``flotilla compare``/``promote``).

    Args:
        min_labeled: labeled request pairs needed before a verdict (>= 1).
        min_days: days of shadowing needed before a verdict (>= 0).
        metric: one of ``auc, logloss, accuracy, f1, rmse, mae, ndcg@k, hit_rate@k``.
        margin: by how much (>= 0) the challenger's mean per-request loss must be lower,
            in the metric's loss units (log loss for ``auc`` and ``logloss``, 0/1 error for
            ``accuracy`` and ``f1``, squared error for ``rmse``, ...): the mSPRT's
            ``theta0`` (``flotilla.evaluation.verdict.decide``).
        auto: whether the monitor loop promotes by itself when the verdict says so.
    """

    min_labeled: int = 1000
    min_days: float = 7.0
    metric: str = "auc"
    margin: float = 0.0
    auto: bool = False

    def __post_init__(self) -> None:
        check_fields(self, _PROMOTION_RULES, "the promotion policy")
        if not isinstance(self.metric, str) or not _METRIC.match(self.metric):
            raise_problems(
                [Problem((), _metric_message(self.metric, "the promotion policy"))],
                "The promotion policy",
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_labeled": self.min_labeled,
            "min_days": self.min_days,
            "metric": self.metric,
            "margin": self.margin,
            "auto": self.auto,
        }

    @classmethod
    def parse(
        cls, data: Mapping[str, Any], *, where: str, path: Path, problems: list[Problem]
    ) -> PromotionPolicy | None:
        reader = Reader(data, where=where, path=path, problems=problems)
        reader.check_keys((*_PROMOTION_RULES, "metric"))
        before = len(problems)
        default = cls()
        values = {k: reader.value(k, r, getattr(default, k)) for k, r in _PROMOTION_RULES.items()}
        metric = data.get("metric", default.metric)
        if not isinstance(metric, str) or not _METRIC.match(metric):
            reader.problem("metric", _metric_message(metric, where))
        return cls(metric=metric, **values) if len(problems) == before else None


def _metric_message(metric: Any, where: str) -> str:
    return (
        f"The 'metric' of {where} must be one of {', '.join(METRICS)} "
        f"(k a positive integer, e.g. ndcg@10). Got {show(metric)} instead."
    )
